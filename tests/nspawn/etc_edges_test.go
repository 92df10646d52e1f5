package nspawn

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The edges of the per-namespace /etc (issue 10): what else a login goes
// through with it, and the /etc directories it is not given.

// TestNamespaceEtcAtItsEdges: with /etc/netns/ns0 applied to alice's
// sessions, sshd's ChrootDirectory still jails her sftp session, in ns0
// and ns0's mount namespace; entries /etc has nothing to put under, and
// dot-files, are skipped; logins after the first change nothing outside
// their sessions; a namespace given by path is given no /etc, as
// documented; an /etc/netns/ns0 that cannot be applied denies her logins
// and keeps her manager off, and nobody else's, until it is fixed.
func TestNamespaceEtcAtItsEdges(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newEtcFixture(t, s)
		c := f.c

		t.Run("sshd's ChrootDirectory jails alice's sftp session, placed in ns0 with ns0's /etc", func(t *testing.T) {
			f.assertChrootedSFTP(t)
		})
		for _, tt := range []struct{ name, entry, setup string }{
			{"an entry with no /etc counterpart", "no-such-file", ""},
			// Not skipped, it would deny the login.
			{"a dot-file whose /etc counterpart is a dangling symlink", ".netns-test-dangling", "ln -sfn /nonexistent/netns-test /etc/.netns-test-dangling"},
		} {
			t.Run(tt.name+" is skipped: alice resolves through ns0", func(t *testing.T) {
				c.WriteFile(t, "/etc/netns/ns0/"+tt.entry, etcBreakContent+"\n", 0o644)
				defer c.Run(t, "rm", "-f", "/etc/netns/ns0/"+tt.entry, "/etc/"+tt.entry)
				if tt.setup != "" {
					c.Sh(t, tt.setup)
				}
				marker := "alice-skipped-" + strings.Trim(tt.entry, ".")
				f.assertNs0View(t, "alice's ssh shell", marker, f.sshView(t, "alice", marker))
			})
		}
		t.Run("20 logins of alice into ns0 leave no mount on the host and no helper, and rewrite neither the shadows nor the drop-in", func(t *testing.T) {
			f.assertRepeatedLoginsLeaveNothing(t, 20, 4)
		})
		t.Run("ns0 given by path gets no /etc: alice sees the host's resolv.conf and /sys in ns0", func(t *testing.T) {
			c.WriteFile(t, configPath, strings.Replace(etcConfig, "alice ns0\n", "alice /run/netns/ns0\n", 1), 0o644)
			defer c.WriteFile(t, configPath, etcConfig, 0o644)
			f.assertHostView(t, "alice's ssh shell, ns0 given by path", "alice-by-path", f.ns0, f.sshView(t, "alice", "alice-by-path"))
			if dropIn := managerDropIn(t, c, 1001); !strings.Contains(dropIn, "NetworkNamespacePath=/run/netns/ns0\n") || strings.Contains(dropIn, "Bind") {
				t.Errorf("alice's manager's drop-in, ns0 given by path, does not name ns0 alone:\n%s", dropIn)
			}
		})
		for _, b := range etcBreakages {
			t.Run("with "+b.name+", alice is denied and her manager kept off, bob gets in, and the fix lets her in", func(t *testing.T) {
				f.assertBrokenEtcDenies(t, b)
			})
		}
		t.Run("a manager started before ns0 had an /etc directory refuses alice's logins until it is stopped", func(t *testing.T) {
			f.assertStaleManagerDenies(t)
		})
	})
}

// assertStaleManagerDenies starts alice's manager, lingering, while ns0 has
// no /etc directory, so that it sees the host's resolv.conf and reaches the
// host's resolved; once the directory is back, her logins are refused, and
// let in again, with ns0's view, once the manager is stopped.
func (f *etcFixture) assertStaleManagerDenies(t *testing.T) {
	t.Helper()
	c := f.c
	const manager = "user@1001.service"
	c.Run(t, "mv", "/etc/netns/ns0", "/etc/netns/ns0.off")
	restored := false
	restore := func() {
		if !restored {
			c.Run(t, "mv", "/etc/netns/ns0.off", "/etc/netns/ns0")
			restored = true
		}
	}
	defer restore()
	// A manager of an earlier test, with ns0's view, may still run.
	c.Run(t, "systemctl", "stop", manager)
	// A login writes the drop-in without mounts; the manager that lingering
	// then starts with it stays.
	if got, stderr, err := sshNetns(t.Context(), c, "alice"); err != nil || got != f.ns0 {
		t.Fatalf("alice before ns0 had /etc: netns %q, err %v, want %s\n%s", got, err, f.ns0, stderr)
	}
	c.Run(t, "systemd-run", "--wait", "--pipe", "--quiet", "loginctl", "enable-linger", "alice")
	defer c.Run(t, "systemd-run", "--wait", "--pipe", "--quiet", "loginctl", "disable-linger", "alice")
	waitFor(t, c, "alice's manager running", "systemctl -q is-active "+manager)
	restore()
	cursor := journalCursor(t, c)

	if got, _, err := sshNetns(t.Context(), c, "alice"); err == nil {
		t.Errorf("alice got a shell in %s while her manager sees the host's resolv.conf; want the login denied", got)
	}
	journalSays(t, c, cursor, "session denied: "+manager+" of alice runs without the /etc directory of network namespace ns0")
	if state := strings.TrimSpace(c.Run(t, "systemctl", "is-active", manager)); state != "active" {
		t.Errorf("the denial stopped alice's manager (%s): it must leave it to her or an administrator", state)
	}

	c.Run(t, "systemctl", "stop", manager)
	f.assertNs0View(t, "alice's ssh shell once her manager was stopped", "alice-after-stale-manager", f.sshView(t, "alice", "alice-after-stale-manager"))
	out, stderr, err := c.SSH(t.Context(), "alice", "systemd-run --user --quiet --wait --pipe /usr/local/bin/netns-view alice-new-manager")
	if err != nil {
		t.Fatalf("systemd-run --user after the restart: %v\n%s", err, stderr)
	}
	f.assertNs0View(t, "alice's new manager's service", "alice-new-manager", parseView(t, "systemd-run --user", out))
}

// The sftp-only jail of alice.
const (
	jailDir   = "/srv/jail"
	jailFile  = "/pub/hello.txt"
	jailMatch = `
# netns-session tests: alice's sftp-only jail
Match User alice
	ChrootDirectory ` + jailDir + `
	ForceCommand internal-sftp
`
	// sftpOpen and sftpRelease hold an sftp session open: its batch runs
	// a local command that waits between them.
	sftpOpen    = "/run/sftp-open"
	sftpRelease = "/run/sftp-release"
)

// assertChrootedSFTP logs alice in with sftp, jailed by sshd's
// ChrootDirectory with internal-sftp, and while the session is open checks
// that sshd's jailed child runs in ns0, in its session leader's mount
// namespace, which shows ns0's resolv.conf, under the jail as its root.
func (f *etcFixture) assertChrootedSFTP(t *testing.T) {
	t.Helper()
	c := f.c
	// ChrootDirectory wants every component root's and writable by no one
	// else.
	c.Run(t, "/bin/bash", "-c", `set -e
install -d -m 0755 -o root -g root `+jailDir+` `+jailDir+`/pub
echo 'inside the jail' > `+jailDir+jailFile+`
cp /etc/ssh/sshd_config /etc/ssh/sshd_config.orig
printf '%s' "$1" >> /etc/ssh/sshd_config
sshd -t`, "bash", jailMatch)
	defer func() {
		c.Run(t, "mv", "/etc/ssh/sshd_config.orig", "/etc/ssh/sshd_config")
		restartSSH(t, c)
	}()
	restartSSH(t, c)
	cursor := journalCursor(t, c)

	batch := fmt.Sprintf("ls -1 %s\n!touch %s; timeout 60 sh -c 'until [ -e %s ]; do sleep 0.1; done'\nbye\n",
		"/pub", sftpOpen, sftpRelease)
	type result struct {
		out, stderr string
		err         error
	}
	done := make(chan result, 1)
	go func() {
		// Not the test's context: the session is released, and waited
		// for, by the deferred call below.
		out, stderr, err := c.execWithInput(context.Background(), strings.NewReader(batch),
			"sftp", "-b", "-", "-i", rootKey,
			"-o", "BatchMode=yes",
			"-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=/dev/null",
			"-o", "ConnectTimeout=5",
			"-o", "LogLevel=ERROR",
			"alice@127.0.0.1")
		done <- result{out, stderr, err}
	}()
	var r result
	released := false
	release := func() {
		if released {
			return
		}
		released = true
		c.Exec(context.Background(), "touch", sftpRelease)
		r = <-done
		c.Exec(context.Background(), "rm", "-f", sftpOpen, sftpRelease)
	}
	defer release()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, err := c.Exec(t.Context(), "test", "-e", sftpOpen); err == nil {
			break
		}
		select {
		case r = <-done:
			released = true
			t.Fatalf("alice's sftp session ended before it was held: %v\n%s\n%s", r.err, r.stderr, r.out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("alice's sftp session was not held within 30s")
		}
	}

	// sshd's child that serves the session, and the child that runs the
	// sftp server for it, have the jail as their root; the parent of the
	// first, sshd's monitor, is the session's leader and opened it.
	jailed := map[string]string{} // PID -> parent PID
	for line := range strings.Lines(c.Sh(t, `jail=$(stat -c %d:%i `+jailDir+`)
for p in /proc/[0-9]*; do
	[ "$(stat -L -c %d:%i $p/root 2>/dev/null)" = "$jail" ] && echo ${p#/proc/} $(ps -o ppid= -p ${p#/proc/})
done; true`)) {
		if fields := strings.Fields(line); len(fields) == 2 {
			jailed[fields[0]] = fields[1]
		}
	}
	var leaders []string
	for _, parent := range jailed {
		if _, ok := jailed[parent]; !ok {
			leaders = append(leaders, parent)
		}
	}
	if len(leaders) != 1 {
		t.Fatalf("processes with %s as their root, by parent: %v; want the processes of alice's session alone, under one parent", jailDir, jailed)
	}
	leader := leaders[0]
	t.Logf("alice's sftp session: leader %s, jailed processes by parent %v", leader, jailed)
	if !isSessionLeader(t, c, "alice", leader) {
		t.Errorf("the parent (PID %s) of the jailed sshd processes %v leads no session of alice", leader, jailed)
	}
	for _, pid := range append(slices.Sorted(maps.Keys(jailed)), leader) {
		if got := netnsID(t, c, "/proc/"+pid+"/ns/net"); got != f.ns0 {
			t.Errorf("PID %s of alice's sftp session runs in netns %s, want ns0 (%s)", pid, got, f.ns0)
		}
	}
	hostMnt := netnsID(t, c, "/proc/1/ns/mnt")
	leaderMnt := netnsID(t, c, "/proc/"+leader+"/ns/mnt")
	if leaderMnt == hostMnt {
		t.Errorf("the leader of alice's sftp session runs in the host's mount namespace (%s)", hostMnt)
	}
	for pid := range jailed {
		if got := netnsID(t, c, "/proc/"+pid+"/ns/mnt"); got != leaderMnt {
			t.Errorf("the jailed PID %s of alice's sftp session runs in mount namespace %s, want its leader's %s", pid, got, leaderMnt)
		}
	}
	if got := c.Run(t, "nsenter", "--target", leader, "--mount", "grep", "-v", "^#", "/etc/resolv.conf"); got != "nameserver 127.0.0.1\n" {
		t.Errorf("the mount namespace of alice's sftp session shows /etc/resolv.conf as %q, want ns0's (nameserver 127.0.0.1)", got)
	}
	journalSays(t, c, cursor, "session of alice placed in /run/netns/ns0, with /etc/netns/ns0")

	release()
	if r.err != nil {
		t.Fatalf("alice's sftp session: %v\n%s\n%s", r.err, r.stderr, r.out)
	}
	if !strings.Contains(r.out, jailFile) {
		t.Errorf("sftp's ls of /pub in alice's jail printed %q, want %s", r.out, jailFile)
	}
}

// isSessionLeader reports whether pid leads a logind session of user.
func isSessionLeader(t *testing.T, c *Container, user, pid string) bool {
	t.Helper()
	for _, id := range strings.Fields(c.Run(t, "loginctl", "show-user", user, "-p", "Sessions", "--value")) {
		if strings.TrimSpace(c.Run(t, "loginctl", "show-session", id, "-p", "Leader", "--value")) == pid {
			return true
		}
	}
	return false
}

// etcBreak is an /etc/netns/ns0 that cannot be applied: setup breaks it,
// detail is in the journal's record of the denial, fix makes the entry
// applicable, after which alice's sessions see its content at /etc/ENTRY.
type etcBreak struct {
	name, entry, setup, detail, fix string
}

// etcBreakContent is what /etc/netns/ns0/ENTRY of an etcBreak holds.
const etcBreakContent = "ns0's own"

var etcBreakages = []etcBreak{
	{
		name:   "an entry whose /etc counterpart is a dangling symlink",
		entry:  "netns-test-link",
		setup:  "ln -sfn /nonexistent/netns-test /etc/netns-test-link",
		detail: "resolving /etc/netns-test-link",
		fix:    "echo host > /etc/netns-test-target && ln -sfn netns-test-target /etc/netns-test-link",
	},
	{
		name:   "a file entry whose /etc counterpart is a directory",
		entry:  "netns-test-dir",
		setup:  "mkdir /etc/netns-test-dir",
		detail: "type mismatch",
		fix:    "rmdir /etc/netns-test-dir && echo host > /etc/netns-test-dir",
	},
}

// assertBrokenEtcDenies breaks /etc/netns/ns0 as b says and logs alice
// and bob in: alice's login is denied with the reason and the detail in
// the journal, leaves no session, and her manager's drop-in names
// /dev/null; unmapped bob still gets the host. Once b is fixed, alice's
// next login lands in ns0 and sees the entry.
func (f *etcFixture) assertBrokenEtcDenies(t *testing.T, b etcBreak) {
	t.Helper()
	c := f.c
	c.WriteFile(t, "/etc/netns/ns0/"+b.entry, etcBreakContent+"\n", 0o644)
	defer c.Run(t, "rm", "-rf", "/etc/netns/ns0/"+b.entry, "/etc/"+b.entry, "/etc/netns-test-target")
	c.Sh(t, b.setup)
	cursor := journalCursor(t, c)

	if got, _, err := sshNetns(t.Context(), c, "alice"); err == nil {
		t.Errorf("alice got a shell in %s (ns0 is %s, the host %s) with %s; want the login denied", got, f.ns0, f.host, b.name)
	}
	journalSays(t, c, cursor, "session denied: the /etc directory of network namespace ns0 cannot be applied; ask an administrator (netns-session check)")
	journalSays(t, c, cursor, b.detail)
	if dropIn := managerDropIn(t, c, 1001); !strings.Contains(dropIn, "NetworkNamespacePath=/dev/null\n") {
		t.Errorf("after the denial, alice's manager's drop-in does not keep it off with /dev/null:\n%s", dropIn)
	}
	assertNoSessionOf(t, c, "alice")
	if got, stderr, err := sshNetns(t.Context(), c, "bob"); err != nil || got != f.host {
		t.Errorf("unmapped bob with %s: netns %q, err %v, want %s (host)\n%s", b.name, got, err, f.host, stderr)
	}

	c.Sh(t, b.fix)
	out, stderr, err := c.SSH(t.Context(), "alice", netnsOfSelf+"; cat /etc/"+b.entry)
	if err != nil {
		t.Fatalf("alice after the fix: %v\n%s", err, stderr)
	}
	if want := f.ns0 + "\n" + etcBreakContent + "\n"; out != want {
		t.Errorf("alice after the fix: her shell printed its netns and /etc/%s as %q, want %q (ns0 and /etc/netns/ns0/%[2]s)", b.entry, out, want)
	}
	if dropIn := managerDropIn(t, c, 1001); !strings.Contains(dropIn, "NetworkNamespacePath=/run/netns/ns0\n") {
		t.Errorf("after the fix, alice's manager's drop-in does not name ns0:\n%s", dropIn)
	}
}

// etcTraces is what logins could leave outside their sessions: the host's
// mounts, helpers still running, and what the hook writes only when it is
// not right already: the shadow directories (every entry's inode and
// ctime), alice's manager's drop-in (inode and mtime), and reloads of PID 1.
type etcTraces struct {
	mounts, helpers, shadow, dropIn string
	reloads                         int
}

// etcTracesOf reads the traces once logind lists n sessions, so that logins
// still being torn down do not count.
func etcTracesOf(t *testing.T, c *Container, n int) etcTraces {
	t.Helper()
	waitSessions(t, c, n)
	return etcTraces{
		mounts:  c.Run(t, "cat", "/proc/1/mountinfo"),
		helpers: c.Sh(t, `ps -eLo pid=,tid=,stat=,comm= | awk '$4 == "netns-session"'`),
		shadow:  c.Sh(t, `find `+shadowDir+` -printf '%p %y %i %C@ %l\n' | sort`),
		dropIn:  c.Run(t, "stat", "-c", "%i %.9Y", dropInPath(1001)),
		reloads: reloadsLogged(t, c),
	}
}

// shadowDir holds the shadow directories of ns0.
const shadowDir = "/run/netns-session/shadow/ns0"

// assertRepeatedLoginsLeaveNothing logs alice in n times from workers
// concurrent ssh clients, each landing in ns0 with ns0's /etc, while a
// session of hers holds her manager and runtime directory: what the
// logins leave outside their sessions must be what was there before.
func (f *etcFixture) assertRepeatedLoginsLeaveNothing(t *testing.T, n, workers int) {
	t.Helper()
	c := f.c
	release := holdSession(t, c, "alice")
	defer release()
	if out := c.Run(t, "find", shadowDir, "-type", "l"); out == "" {
		t.Fatalf("%s holds no symlinks after alice's login: nothing shows that the logins leave it alone", shadowDir)
	}
	hostMnt := netnsID(t, c, "/proc/1/ns/mnt")
	before := etcTracesOf(t, c, 1)

	seen := make([]string, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out, stderr, err := c.SSH(t.Context(), "alice", "stat -L -c %d:%i /proc/self/ns/net /proc/self/ns/mnt; grep -v '^#' /etc/resolv.conf")
				if err != nil {
					out = fmt.Sprintf("denied: %v: %s", err, strings.TrimSpace(stderr))
				}
				seen[i] = out
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, out := range seen {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || lines[0] != f.ns0 || lines[1] == hostMnt || lines[2] != "nameserver 127.0.0.1" {
			t.Errorf("login %d of %d: printed %q, want ns0 (%s), a mount namespace other than the host's (%s) and ns0's resolv.conf", i+1, n, out, f.ns0, hostMnt)
		}
	}

	after := etcTracesOf(t, c, 1)
	if after.mounts != before.mounts {
		gone, added := lineChanges(before.mounts, after.mounts)
		t.Errorf("the host's mounts changed over %d logins: %d lines of /proc/1/mountinfo before, %d after\ngone:\n%s\nadded:\n%s",
			n, strings.Count(before.mounts, "\n"), strings.Count(after.mounts, "\n"), strings.Join(gone, "\n"), strings.Join(added, "\n"))
	}
	if after.helpers != "" {
		t.Errorf("threads of netns-session left after %d logins (pid tid state):\n%s", n, after.helpers)
	}
	if after.shadow != before.shadow {
		t.Errorf("%d logins rewrote %s (path, type, inode, ctime, link):\nbefore:\n%s\nafter:\n%s", n, shadowDir, before.shadow, after.shadow)
	}
	if after.dropIn != before.dropIn {
		t.Errorf("%d logins rewrote %s: inode and mtime %q before, %q after", n, dropInPath(1001), before.dropIn, after.dropIn)
	}
	if after.reloads != before.reloads {
		t.Errorf("%d logins reloaded PID 1 %d times, want none: nothing changed", n, after.reloads-before.reloads)
	}
	assertNothingStopped(t, c)
}

// lineChanges returns the lines of before that after lacks and those it
// adds, each as often as the count differs.
func lineChanges(before, after string) (gone, added []string) {
	count := map[string]int{}
	for line := range strings.Lines(before) {
		count[strings.TrimSuffix(line, "\n")]++
	}
	for line := range strings.Lines(after) {
		count[strings.TrimSuffix(line, "\n")]--
	}
	for _, line := range slices.Sorted(maps.Keys(count)) {
		for ; count[line] > 0; count[line]-- {
			gone = append(gone, line)
		}
		for ; count[line] < 0; count[line]++ {
			added = append(added, line)
		}
	}
	return gone, added
}

// managerDropIn returns what netns-session's drop-in for user@UID.service
// says, or that there is none.
func managerDropIn(t *testing.T, c *Container, uid int) string {
	t.Helper()
	return c.Sh(t, fmt.Sprintf("cat %s 2>/dev/null || echo '(no drop-in)'", dropInPath(uid)))
}
