package nspawn

import (
	"fmt"
	"strings"
	"testing"
)

// sourceDownConfig maps the LDAP group labnet - dave, a local user, and erin,
// an LDAP user - to ns0. bob has a line of his own, decided without a lookup;
// root has none, so its login needs the group line too.
const sourceDownConfig = "bob -\n@labnet ns0\n"

// TestSourceDownFailsClosed stops the LDAP directory, once by its server
// (slapd) and once by the daemon that libnss-ldapd asks (nslcd), and checks
// that nobody whose policy rests on it gets in, that nothing trusts "not
// found": dave and erin are denied, check and sync fail naming the failure,
// sync keeps dave's drop-in, and the watcher judges dave's session, opened
// while the directory answered, unknown and leaves it open. root (through
// its fallback) and bob still log in.
func TestSourceDownFailsClosed(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		c.Run(t, "ip", "netns", "add", "ns0")
		c.WriteFile(t, configPath, sourceDownConfig, 0o644)
		c.Run(t, "cp", "/root/.ssh/id_ed25519.pub", "/root/.ssh/authorized_keys")
		installHook(t, c)
		installUnits(t, c, watchUnit)
		enableLDAP(t, c)
		c.Run(t, "systemctl", "start", watchUnit)
		host, ns0 := netnsID(t, c, "/proc/1/ns/net"), netnsID(t, c, "/run/netns/ns0")

		if got, stderr, err := sshNetns(t.Context(), c, ldapUser); err != nil || got != ns0 {
			t.Fatalf("%s with the directory up: netns %q, err %v, want %s (ns0)\n%s", ldapUser, got, err, ns0, stderr)
		}
		release := holdSession(t, c, "dave")
		defer release()
		held := waitRecord(t, c, "USER=dave", "SERVICE=sshd", "VERDICT=ok")
		if held["ACTUAL_NETNS_ID"] != ns0 {
			t.Fatalf("dave's session with the directory up: %s", held["MESSAGE"])
		}
		// A drop-in that is gone reads as "".
		readDropIn := func() string {
			out, _, _ := c.Exec(t.Context(), "cat", dropInPath(1004))
			return out
		}
		daveDropIn := readDropIn()
		if !strings.Contains(daveDropIn, "NetworkNamespacePath=/run/netns/ns0\n") {
			t.Fatalf("dave's drop-in with the directory up:\n%s", daveDropIn)
		}

		for _, daemon := range []string{"slapd", "nslcd"} {
			t.Run(daemon+" stopped", func(t *testing.T) {
				c.Run(t, "systemctl", "stop", daemon+".service")
				defer func() {
					enableLDAP(t, c)
					// The directory back, sync rewrites what the denied
					// logins below left: the manager kept off.
					c.Run(t, "netns-session", "sync")
					if got := readDropIn(); got != daveDropIn {
						t.Errorf("dave's drop-in after the directory came back:\n%s\nwant:\n%s", got, daveDropIn)
					}
				}()

				out, _, err := c.Exec(t.Context(), "netns-session", "check", "--user", "dave")
				if err == nil || !strings.Contains(out, `getgrnam_r "labnet": user database unavailable`) {
					t.Errorf("check --user dave: err %v, want a failure naming the source:\n%s", err, out)
				}
				t.Logf("check --user dave with %s stopped:\n%s", daemon, out)
				out, _, err = c.Exec(t.Context(), "netns-session", "check")
				if err == nil || !strings.Contains(out, `getgrnam_r "labnet": user database unavailable`) {
					t.Errorf("check: err %v, want a failure naming the source:\n%s", err, out)
				}

				out, stderr, err := c.Exec(t.Context(), "netns-session", "sync")
				if err == nil || !strings.Contains(stderr, `resolving user "dave"`) {
					t.Errorf("sync: err %v, want a failure naming dave:\n%s%s", err, out, stderr)
				}
				if got := readDropIn(); got != daveDropIn {
					t.Errorf("sync changed dave's drop-in to:\n%s\nwant it kept:\n%s%s", got, daveDropIn, out)
				}

				unknown := []string{"SESSION_ID=" + held["SESSION_ID"], "VERDICT=unknown"}
				before := len(watchRecords(t, c, unknown...))
				reloadWatcher(t, c, "reload")
				if records := waitRecordsOf(t, c, before+1, unknown...); len(records) <= before {
					t.Errorf("the watcher did not judge dave's session %s unknown after the reload", held["SESSION_ID"])
				}
				if terminated := watchRecords(t, c, "ACTION=terminate"); len(terminated) > 0 {
					t.Errorf("the watcher terminated a session: %s", terminated[0]["MESSAGE"])
				}
				if _, _, err := c.Exec(t.Context(), "loginctl", "show-session", held["SESSION_ID"]); err != nil {
					t.Errorf("dave's session %s is gone: %v", held["SESSION_ID"], err)
				}

				cursor := journalCursor(t, c)
				if got, _, err := sshNetns(t.Context(), c, "dave"); err == nil {
					t.Errorf("dave got a shell in %s (host %s, ns0 %s) with %s stopped; want the login denied", got, host, ns0, daemon)
				}
				journalSays(t, c, cursor, "the user database is unavailable, so the network namespace of dave is unknown")
				if got, _, err := sshNetns(t.Context(), c, ldapUser); err == nil {
					t.Errorf("%s got a shell in %s with %s stopped; want the login denied", ldapUser, got, daemon)
				}
				for _, user := range []string{"root", "bob"} {
					if got, stderr, err := sshNetns(t.Context(), c, user); err != nil || got != host {
						t.Errorf("%s with %s stopped: netns %q, err %v, want %s (host)\n%s", user, daemon, got, err, host, stderr)
					}
				}
			})
		}
	})
}

// TestUserLineSelectsSecondNameOfUID logs alice's uid in under a second name
// (useradd -o): her line selects the user, not the spelling, so the login
// lands in ns0 and her drop-in stays as it is. Two lines for the one uid are
// an error to check; loaded anyway, alice's line applies to both names, and
// the watcher leaves the second name's session where the hook placed it.
func TestUserLineSelectsSecondNameOfUID(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		c.Run(t, "ip", "netns", "add", "ns0")
		c.WriteFile(t, configPath, "alice ns0\n", 0o644)
		installHook(t, c)
		ns0 := netnsID(t, c, "/run/netns/ns0")
		if got, stderr, err := sshNetns(t.Context(), c, "alice"); err != nil || got != ns0 {
			t.Fatalf("alice: netns %q, err %v, want %s (ns0)\n%s", got, err, ns0, stderr)
		}
		dropIn := c.Run(t, "cat", dropInPath(1001))
		c.Run(t, "useradd", "-o", "-u", "1001", "-g", "1001", "-M", "-d", "/home/alice", "-s", "/bin/bash", "alias2")

		for _, user := range []string{"alias2", "alice", "alias2"} {
			if got, stderr, err := sshNetns(t.Context(), c, user); err != nil || got != ns0 {
				t.Errorf("%s: netns %q, err %v, want %s (ns0)\n%s", user, got, err, ns0, stderr)
			}
			if got, _, err := c.Exec(t.Context(), "cat", dropInPath(1001)); got != dropIn {
				t.Errorf("alice's drop-in after a login of %s: %q, %v; want it as it was:\n%s", user, got, err, dropIn)
			}
		}
		if out, _, err := c.Exec(t.Context(), "netns-session", "check", "--user", "alias2"); err != nil || !strings.Contains(out, "user line for alice (uid 1001)") {
			t.Errorf("check --user alias2: err %v, want alice's line:\n%s", err, out)
		}

		// Two lines of uid 1001 that disagree: check errs, but the hook and
		// the watcher load the config all the same. Both must give alias2
		// the line of alice, the uid's own name, which the watcher knows
		// the session by, or the watcher ends a session the hook placed.
		c.Run(t, "ip", "netns", "add", "ns1")
		c.WriteFile(t, configPath, "alice ns0\nalias2 ns1\n", 0o644)
		out, _, err := c.Exec(t.Context(), "netns-session", "check")
		if want := fmt.Sprintf(`%s:2: user "alias2" is uid 1001, like "alice" at %s:1`, configPath, configPath); err == nil || !strings.Contains(out, want) {
			t.Errorf("check with two lines for uid 1001: err %v, want %q:\n%s", err, want, out)
		}
		installUnits(t, c, watchUnit)
		c.Run(t, "systemctl", "start", watchUnit)
		for _, user := range []string{"alias2", "alice"} {
			if got, stderr, err := sshNetns(t.Context(), c, user); err != nil || got != ns0 {
				t.Errorf("%s under two lines of uid 1001: netns %q, err %v, want %s (ns0)\n%s", user, got, err, ns0, stderr)
			}
		}
		release := holdSession(t, c, "alias2")
		rec := waitRecord(t, c, "UID=1001", "SERVICE=sshd", "VERDICT=ok")
		if rec["ACTUAL_NETNS_ID"] != ns0 || rec["ACTION"] != "" {
			t.Errorf("the watcher on alias2's session: in %s, action %q; want ok in %s, no action\n%s", rec["ACTUAL_NETNS_ID"], rec["ACTION"], ns0, rec["MESSAGE"])
		}
		release() // fails if the session was ended
		if terminated := watchRecords(t, c, "ACTION=terminate"); len(terminated) > 0 {
			t.Errorf("the watcher terminated %d sessions: %s", len(terminated), terminated[0]["MESSAGE"])
		}
		if got, _, err := c.Exec(t.Context(), "cat", dropInPath(1001)); got != dropIn {
			t.Errorf("alice's drop-in under two lines of uid 1001: %q, %v; want it as it was:\n%s", got, err, dropIn)
		}
	})
}
