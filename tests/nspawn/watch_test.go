package nspawn

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// watchUnit is the watcher's unit in units/.
const watchUnit = "netns-session.service"

// nohookPAM is a PAM service that registers sessions with logind but has no
// netns-session line: what a forgotten /etc/pam.d file looks like.
const nohookPAM = `auth     sufficient pam_permit.so
account  sufficient pam_permit.so
session  required   pam_unix.so
session  optional   pam_systemd.so
`

// watchConfig maps alice to ns0 and carol to ns1; bob and dave are unmapped.
const watchConfig = "alice ns0\ncarol ns1\n"

// watchFixture is a container with the hook, a nohook PAM service, ns0 and
// ns1, and the watcher's unit installed.
type watchFixture struct {
	c              *Container
	host, ns0, ns1 string
}

// newWatchFixture sets a container up with config and, if start is set, the
// watcher running.
func newWatchFixture(t *testing.T, s Suite, config string, start bool) *watchFixture {
	t.Helper()
	c := boot(t, s)
	c.Run(t, "ip", "netns", "add", "ns0")
	c.Run(t, "ip", "netns", "add", "ns1")
	c.WriteFile(t, configPath, config, 0o644)
	c.WriteFile(t, "/etc/pam.d/nohook", nohookPAM, 0o644)
	installHook(t, c)
	installUnits(t, c, watchUnit)
	verifyUnits(t, c, filepath.Join(unitDir, watchUnit))
	if start {
		// Type=notify: this returns once the watcher has synced, subscribed
		// and checked what runs.
		c.Run(t, "systemctl", "start", watchUnit)
	}
	return &watchFixture{
		c:    c,
		host: netnsID(t, c, "/proc/1/ns/net"),
		ns0:  netnsID(t, c, "/run/netns/ns0"),
		ns1:  netnsID(t, c, "/run/netns/ns1"),
	}
}

// escape opens a session of user through the nohook PAM service, in the
// host's namespace, as the main process of unit, and returns that process's
// PID, the session's leader. It waits up to limit for the leader to die and
// reports how long it lived after systemd-run returned, or -1 if it outlived
// limit.
func escape(t *testing.T, c *Container, user, unit string, limit time.Duration) (leader string, lived time.Duration) {
	t.Helper()
	// RemainAfterExit keeps the unit, and so its ExecMainPID, after a kill.
	out := c.Sh(t, fmt.Sprintf(`set -e
systemd-run --quiet --unit=%[1]s -p RemainAfterExit=yes -p PAMName=nohook -p User=%[2]s sleep 60
pid=$(systemctl show -p ExecMainPID --value %[1]s)
start=$(date +%%s%%N)
while [ -e /proc/$pid ] && ! grep -q '^State:.*zombie' /proc/$pid/status 2>/dev/null; do
	if [ $(( $(date +%%s%%N) - start )) -gt %[3]d ]; then echo $pid -1; exit; fi
	sleep 0.02
done
echo $pid $(( $(date +%%s%%N) - start ))`, unit, user, limit.Nanoseconds()))
	fields := strings.Fields(out)
	if len(fields) != 2 {
		t.Fatalf("escape session of %s: %q", user, out)
	}
	ns, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil || fields[0] == "0" {
		t.Fatalf("escape session of %s: %q", user, out)
	}
	return fields[0], time.Duration(ns)
}

// watchRecords returns the records the watcher logged that have every field
// of match, given as NAME=value without the NETNS_SESSION_ prefix.
func watchRecords(t *testing.T, c *Container, match ...string) []map[string]string {
	t.Helper()
	matches := []string{"_SYSTEMD_UNIT=" + watchUnit}
	for _, m := range match {
		matches = append(matches, "NETNS_SESSION_"+m)
	}
	return records(t, c, matches...)
}

// records returns the records netns-session logged that match every
// journalctl match of matches (full field names), their fields without
// the NETNS_SESSION_ prefix.
func records(t *testing.T, c *Container, matches ...string) []map[string]string {
	t.Helper()
	args := append([]string{"journalctl", "--no-pager", "-o", "json", "-t", "netns-session"}, matches...)
	var records []map[string]string
	for line := range strings.Lines(c.Run(t, args...)) {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatalf("journal entry %q: %v", line, err)
		}
		rec := map[string]string{}
		for k, v := range raw {
			if s, ok := v.(string); ok {
				rec[strings.TrimPrefix(k, "NETNS_SESSION_")] = s
			}
		}
		records = append(records, rec)
	}
	return records
}

// waitRecord waits for the watcher to log a record with every field of
// match and returns it.
func waitRecord(t *testing.T, c *Container, match ...string) map[string]string {
	t.Helper()
	return waitForRecord(t, c, "the watcher", match, func() []map[string]string { return watchRecords(t, c, match...) })
}

// waitHookRecord waits for the hook to log a record matching every
// journalctl match of matches and returns the last such.
func waitHookRecord(t *testing.T, c *Container, matches ...string) map[string]string {
	t.Helper()
	return waitForRecord(t, c, "the hook", matches, func() []map[string]string { return records(t, c, matches...) })
}

// waitForRecord waits up to 10 s for find to return a record of who's, asked
// for by match, and returns the last.
func waitForRecord(t *testing.T, c *Container, who string, match []string, find func() []map[string]string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if recs := find(); len(recs) > 0 {
			return recs[len(recs)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s logged nothing with %q; it logged:\n%s", who, match, c.Run(t, "journalctl", "--no-pager", "-o", "cat", "-t", "netns-session"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reloadWatcher reloads the watcher and returns the record of the reload
// that wantAction names: "reload", which systemctl reload must report as
// done, or "reload-refused", which it must report as failed.
func reloadWatcher(t *testing.T, c *Container, wantAction string) map[string]string {
	t.Helper()
	before := len(watchRecords(t, c, "ACTION="+wantAction))
	_, stderr, err := c.Exec(t.Context(), "systemctl", "reload", watchUnit)
	if refused := wantAction == "reload-refused"; (err != nil) != refused {
		t.Errorf("systemctl reload %s: %v, want it to fail: %t\n%s", watchUnit, err, refused, stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if records := watchRecords(t, c, "ACTION="+wantAction); len(records) > before {
			return records[len(records)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s record after systemctl reload", wantAction)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertTerminated checks that the watcher ended the escape session of
// user led by leader within two seconds, judging it by its namespace.
func assertTerminated(t *testing.T, f *watchFixture, user, leader string, lived time.Duration, wantExpected string) {
	t.Helper()
	if lived < 0 || lived > 2*time.Second {
		t.Errorf("escape session of %s lived %v after it started, want it terminated within 2s", user, lived)
	}
	rec := waitRecord(t, f.c, "LEADER="+leader, "SERVICE=nohook")
	want := map[string]string{"USER": user, "VERDICT": "violation", "ACTION": "terminate", "ACTUAL_NETNS_ID": f.host, "EXPECTED_NETNS_ID": wantExpected}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("record of the escape session: %s = %q, want %q\n%s", k, rec[k], v, rec["MESSAGE"])
		}
	}
	// logind drops the session only once the unit it stopped is gone, a
	// moment after the leader died: wait for that rather than race it.
	waitFor(t, f.c, "logind to drop terminated session "+rec["SESSION_ID"], "! loginctl show-session "+rec["SESSION_ID"]+" >/dev/null 2>&1")
}

func TestWatchEnforcesOnSessionsWithoutHook(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newWatchFixture(t, s, watchConfig, true)
		c := f.c

		t.Run("unit is a client of the socket-activated bus", func(t *testing.T) {
			for _, dep := range []string{"Wants", "After"} {
				units := strings.Fields(c.Run(t, "systemctl", "show", "--value", "-p", dep, watchUnit))
				if !slices.Contains(units, "dbus.socket") {
					t.Errorf("%s of %s: %v, want dbus.socket among them", dep, watchUnit, units)
				}
			}
		})
		t.Run("terminate", func(t *testing.T) {
			leader, lived := escape(t, c, "alice", "escape-alice", 5*time.Second)
			assertTerminated(t, f, "alice", leader, lived, f.ns0)
		})
		t.Run("unmapped user on the host is left alone", func(t *testing.T) {
			leader, lived := escape(t, c, "bob", "nohook-bob", 3*time.Second)
			if lived >= 0 {
				t.Errorf("session of unmapped bob on the host ended after %v", lived)
			}
			rec := waitRecord(t, c, "LEADER="+leader, "SERVICE=nohook")
			if rec["VERDICT"] != "ok" || rec["ACTUAL_NETNS_ID"] != f.host || rec["ACTION"] != "" {
				t.Errorf("bob on the host: verdict %s in %s, action %q; want ok in %s, no action", rec["VERDICT"], rec["ACTUAL_NETNS_ID"], rec["ACTION"], f.host)
			}
		})
		t.Run("warn", func(t *testing.T) {
			c.WriteFile(t, configPath, "enforce = warn\n"+watchConfig, 0o644)
			reloadWatcher(t, c, "reload")
			leader, lived := escape(t, c, "carol", "escape-carol", 3*time.Second)
			if lived >= 0 {
				t.Fatalf("escape session of carol ended after %v under enforce = warn", lived)
			}
			if got := netnsID(t, c, "/proc/"+leader+"/ns/net"); got != f.host {
				t.Errorf("carol's escape session runs in %s, want the host's %s", got, f.host)
			}
			rec := waitRecord(t, c, "LEADER="+leader, "SERVICE=nohook")
			want := map[string]string{"USER": "carol", "VERDICT": "violation", "ACTION": "warn", "ACTUAL_NETNS_ID": f.host, "EXPECTED_NETNS_ID": f.ns1}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("record: %s = %q, want %q\n%s", k, rec[k], v, rec["MESSAGE"])
				}
			}
			if rec["PRIORITY"] != "4" {
				t.Errorf("warning logged at priority %s, want 4", rec["PRIORITY"])
			}
		})
	})
}

func TestWatchLeavesCompliantSessionsAlone(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newWatchFixture(t, s, watchConfig, true)
		c := f.c
		want := map[string]string{"alice": f.ns0, "bob": f.host, "carol": f.ns1}
		const rounds = 5
		// The users log in at once, each one login after the other.
		var wg sync.WaitGroup
		for user, ns := range want {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					// The session stays open a while, so a watcher that
					// terminated it would cut it short.
					out, stderr, err := c.SSH(t.Context(), user, netnsOfSelf+"; sleep 1; echo done")
					if fields := strings.Fields(out); err != nil || len(fields) != 2 || fields[0] != ns || fields[1] != "done" {
						t.Errorf("login of %s: %q, err %v, want %s and done\n%s", user, out, err, ns, stderr)
					}
				}
			}()
		}
		wg.Wait()

		if terminated := watchRecords(t, c, "ACTION=terminate"); len(terminated) > 0 {
			t.Errorf("the watcher terminated %d compliant sessions: %s", len(terminated), terminated[0]["MESSAGE"])
		}
		// Every login was judged, by namespace identity.
		judged := 0
		for _, rec := range waitRecordsOf(t, c, rounds*len(want), "SERVICE=sshd") {
			judged++
			if rec["VERDICT"] != "ok" || rec["ACTUAL_NETNS_ID"] != want[rec["USER"]] || rec["EXPECTED_NETNS_ID"] != want[rec["USER"]] {
				t.Errorf("session %s of %s: verdict %s, actual %s, expected %s; want ok in %s",
					rec["SESSION_ID"], rec["USER"], rec["VERDICT"], rec["ACTUAL_NETNS_ID"], rec["EXPECTED_NETNS_ID"], want[rec["USER"]])
			}
		}
		if judged != rounds*len(want) {
			t.Errorf("the watcher judged %d ssh sessions, want %d", judged, rounds*len(want))
		}
		managers := watchRecords(t, c, "UNIT=user@1001.service")
		if len(managers) == 0 {
			t.Error("the watcher never judged alice's manager")
		}
		for _, rec := range managers {
			if rec["VERDICT"] != "ok" || rec["ACTUAL_NETNS_ID"] != f.ns0 {
				t.Errorf("alice's manager: %s", rec["MESSAGE"])
			}
		}
		for _, rec := range watchRecords(t, c) {
			if prio, _ := strconv.Atoi(rec["PRIORITY"]); prio <= 3 {
				t.Errorf("the watcher logged an error: %s", rec["MESSAGE"])
			}
		}
	})
}

// waitRecordsOf waits until the watcher has logged n records with match.
func waitRecordsOf(t *testing.T, c *Container, n int, match ...string) []map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		records := watchRecords(t, c, match...)
		if len(records) >= n || time.Now().After(deadline) {
			return records
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWatchReloadFollowsNewMap(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newWatchFixture(t, s, "alice ns0\n", true)
		c := f.c
		// The watcher's start synced the drop-in of the mapped user.
		if got := c.Run(t, "cat", dropInPath(1001)); !strings.Contains(got, "NetworkNamespacePath=/run/netns/ns0") {
			t.Fatalf("alice's drop-in after the watcher started:\n%s", got)
		}

		c.WriteFile(t, configPath, "bob ns1\n", 0o644)
		reloadWatcher(t, c, "reload")
		waitFor(t, c, "alice's stale drop-in removed and bob's written", fmt.Sprintf(
			"! test -e %s && grep -qx NetworkNamespacePath=/run/netns/ns1 %s", dropInPath(1001), dropInPath(1002)))
		for user, want := range map[string]string{"bob": f.ns1, "alice": f.host} {
			if got, stderr, err := sshNetns(t.Context(), c, user); err != nil || got != want {
				t.Errorf("login of %s after the reload: netns %q, err %v, want %s\n%s", user, got, err, want, stderr)
			}
		}

		t.Run("a broken config is refused and the old one kept", func(t *testing.T) {
			c.WriteFile(t, configPath, "bob ns1 extra\n", 0o644)
			rec := reloadWatcher(t, c, "reload-refused")
			if rec["PRIORITY"] != "1" || !strings.Contains(rec["MESSAGE"], configPath+":1") {
				t.Errorf("refusal logged as %q at priority %s: want an alert naming the line", rec["MESSAGE"], rec["PRIORITY"])
			}
			if state := strings.TrimSpace(c.Run(t, "systemctl", "is-active", watchUnit)); state != "active" {
				t.Errorf("watcher is %s after a broken reload", state)
			}
			// bob is still mapped to ns1 by the config kept in force.
			leader, lived := escape(t, c, "bob", "escape-bob", 5*time.Second)
			assertTerminated(t, f, "bob", leader, lived, f.ns1)
		})
	})
}

func TestWatchSurvivesLogindRestart(t *testing.T) {
	// Restarting logind keeps the watcher's bus connection but changes the
	// sender of the signals it subscribed to. Restarting dbus drops the
	// connection; logind is restarted with it, since systemd does not
	// support a logind that outlives its bus (on trixie it stops announcing
	// sessions).
	for _, restart := range [][]string{{"systemd-logind"}, {"dbus", "systemd-logind"}} {
		t.Run(strings.Join(restart, "+"), func(t *testing.T) {
			forEachSuite(t, func(t *testing.T, s Suite) {
				f := newWatchFixture(t, s, watchConfig, true)
				c := f.c
				pid := c.Run(t, "systemctl", "show", "-p", "MainPID", "--value", watchUnit)

				c.Run(t, append([]string{"systemctl", "restart"}, restart...)...)
				waitRecord(t, c, "ACTION=reconnect")
				// A check of everything follows every new subscription; wait
				// for the one after the restart.
				waitFor(t, c, "logind running", "systemctl -q is-active systemd-logind")

				leader, lived := escape(t, c, "alice", "escape-after-restart", 5*time.Second)
				assertTerminated(t, f, "alice", leader, lived, f.ns0)
				if now := c.Run(t, "systemctl", "show", "-p", "MainPID", "--value", watchUnit); now != pid {
					t.Errorf("the watcher restarted (PID %s, was %s): it must ride out a restart of %s", strings.TrimSpace(now), strings.TrimSpace(pid), restart)
				}
			})
		})
	}
}

// waitFor waits up to ten seconds for script to succeed in c.
func waitFor(t *testing.T, c *Container, what, script string) {
	t.Helper()
	if _, stderr, err := c.Exec(t.Context(), "timeout", "10", "sh", "-c", "until "+script+"; do sleep 0.1; done"); err != nil {
		t.Fatalf("waiting for %s: %v\n%s", what, err, stderr)
	}
}

// TestWatchSparesAProcessOnADeadLeadersPID leaves a session closing: its
// leader exits and a nohup child keeps it (KillUserProcesses=no, Debian's
// default), and logind keeps naming the leader's PID. A process of root on
// the host then takes that PID, and a reload maps the session's user
// elsewhere, so that root's process, judged as the session, would violate
// the policy. It must live. The child, left on the host network by a user
// now mapped to ns0, does violate it: the watcher judges the session by it
// and ends the session through logind, which ends the child.
func TestWatchSparesAProcessOnADeadLeadersPID(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		// alice is unmapped at first: her session on the host is in place.
		f := newWatchFixture(t, s, "carol ns1\n", true)
		c := f.c
		// The child leaves the leader's session and process group: the
		// kernel hands out no PID that is still some process's SID or
		// PGID. ($$$$ is $$ once systemd has read the command line.)
		fields := strings.Fields(c.Sh(t, `set -e
systemd-run --quiet --unit=closing-alice -p RemainAfterExit=yes -p PAMName=nohook -p User=alice \
	setsid -f sh -c 'echo $$$$ >/tmp/closing-child; exec nohup sleep 1000 </dev/null >/dev/null 2>&1'
leader=$(systemctl show -p ExecMainPID --value closing-alice)
timeout 10 sh -c "while [ -e /proc/$leader ] || ! [ -s /tmp/closing-child ]; do sleep 0.05; done"
child=$(cat /tmp/closing-child)
session=$(sed -n 's|^0::.*/session-\(.*\)\.scope$|\1|p' /proc/$child/cgroup)
timeout 10 sh -c "until [ \"\$(loginctl show-session $session -p State --value)\" = closing ]; do sleep 0.05; done"
echo $leader $session $child`))
		if len(fields) != 3 {
			t.Fatalf("closing session: %q", fields)
		}
		leader, session, child := fields[0], fields[1], fields[2]
		waitRecord(t, c, "SESSION_ID="+session, "VERDICT=ok")

		pid, err := strconv.Atoi(leader)
		if err != nil {
			t.Fatal(err)
		}
		// The kernel hands out ns_last_pid+1 next, unless another process
		// forks first. nspawn mounts /proc/sys read-only; root makes it
		// writable in a mount namespace of its own.
		squatter := strings.TrimSpace(c.Sh(t, fmt.Sprintf(`unshare --mount bash -c '
mount -o remount,bind,rw /proc/sys
for i in $(seq 200); do
	echo %d >/proc/sys/kernel/ns_last_pid
	sleep 1000 </dev/null >/dev/null 2>&1 &
	if [ $! = %d ]; then echo $!; exit 0; fi
	kill $!
done
echo "PID %[2]d never came free" >&2; exit 1'`, pid-1, pid)))
		if squatter != leader {
			t.Fatalf("root's process runs as %q, want PID %s", squatter, leader)
		}
		props := c.Run(t, "loginctl", "show-session", session, "-p", "State", "-p", "Leader")
		if !strings.Contains(props, "State=closing") || !strings.Contains(props, "Leader="+leader) {
			t.Fatalf("session %s after its leader exited:\n%s\nwant it closing, with Leader=%s", session, props, leader)
		}
		if got := netnsID(t, c, "/proc/"+squatter+"/ns/net"); got != f.host {
			t.Fatalf("root's process runs in %s, want the host's %s", got, f.host)
		}

		before := len(watchRecords(t, c, "SESSION_ID="+session))
		c.WriteFile(t, configPath, watchConfig, 0o644)
		reloadWatcher(t, c, "reload")
		records := waitRecordsOf(t, c, before+1, "SESSION_ID="+session)
		if len(records) <= before {
			t.Fatalf("the watcher did not judge session %s again after the reload", session)
		}
		// Neither logind (252, 257) names the leader's pidfd inode: the
		// start time of the process on its PID tells.
		const proof = "after the session was created"
		rec := records[len(records)-1]
		want := map[string]string{"VERDICT": "violation", "ACTION": "terminate", "JUDGED": "scope", "JUDGED_PID": child, "ACTUAL_NETNS_ID": f.host}
		for k, v := range want {
			if rec[k] != v {
				t.Errorf("session %s after the reload: %s = %q, want %q", session, k, rec[k], v)
			}
		}
		if !strings.Contains(rec["MESSAGE"], proof) {
			t.Errorf("session %s after the reload: %s\nwant the leader disproven by %q", session, rec["MESSAGE"], proof)
		}
		waitFor(t, c, "the closing session's child to end", "! test -e /proc/"+child)
		waitFor(t, c, "session "+session+" to end", "! loginctl show-session "+session+" >/dev/null 2>&1")
		if out, _, err := c.Exec(t.Context(), "ps", "-o", "user=,comm=", "-p", squatter); err != nil || strings.Join(strings.Fields(out), " ") != "root sleep" {
			t.Errorf("root's process %s on the dead leader's PID: %q, %v; want it alive", squatter, out, err)
		}
	})
}
