package nspawn

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookLine is the PAM line of the contract.
const hookLine = "session required pam_exec.so seteuid /usr/sbin/netns-session pam"

// netnsOfSelf prints the namespace identity of the shell it runs in, as
// device:inode, the way every placement is asserted.
const netnsOfSelf = "stat -L -c %d:%i /proc/self/ns/net"

// installHook puts the netns-session line, with args, where Debian's README
// instructions put it: before pam_systemd.so in common-session (ssh, login,
// su) and at the end of common-session-noninteractive (sudo, cron).
func installHook(t *testing.T, c *Container, args ...string) {
	t.Helper()
	line := strings.Join(append([]string{hookLine}, args...), " ")
	c.Sh(t, fmt.Sprintf(`set -e
grep -q pam_systemd.so /etc/pam.d/common-session
sed -i '/^[^#]*pam_systemd\.so/i %[1]s' /etc/pam.d/common-session
echo '%[1]s' >> /etc/pam.d/common-session-noninteractive`, line))
}

// restartSSH restarts sshd, which applies its config. It is also the way to
// be sure sshd listens: a reload makes bookworm's sshd re-execute itself
// after systemctl has returned, its listener closed meanwhile, while
// systemctl restart waits for the new sshd's readiness notification.
func restartSSH(t *testing.T, c *Container) {
	t.Helper()
	c.Run(t, "systemctl", "restart", "ssh.service")
}

// netnsID is the device:inode of the namespace file at path in c.
func netnsID(t *testing.T, c *Container, path string) string {
	t.Helper()
	return strings.TrimSpace(c.Run(t, "stat", "-L", "-c", "%d:%i", path))
}

// sshNetns logs in as user and returns the namespace identity of the shell.
func sshNetns(ctx context.Context, c *Container, user string) (string, string, error) {
	stdout, stderr, err := c.SSH(ctx, user, netnsOfSelf)
	return strings.TrimSpace(stdout), stderr, err
}

// journal returns what netns-session logged for user, one message a line.
func journal(t *testing.T, c *Container, user string) string {
	t.Helper()
	return c.Run(t, "journalctl", "--no-pager", "-o", "cat", "-t", "netns-session", "NETNS_SESSION_USER="+user)
}

// reloads counts the daemon reloads PID 1 has logged since boot: one line
// "Reloading." (systemd 252) or "Reloading..." (257) each.
func reloads(t *testing.T, c *Container) int {
	t.Helper()
	n := 0
	for line := range strings.Lines(c.Run(t, "journalctl", "--no-pager", "-o", "cat", "_PID=1")) {
		if strings.TrimRight(strings.TrimSpace(line), ".") == "Reloading" {
			n++
		}
	}
	return n
}

// loginFixture is a container with the hook installed and the namespaces,
// users and groups the login tests map:
//
//	alice  ns0    by her own line
//	carol  ns1    by @labx, a group only libnss-extrausers knows
//	dave   gone   a namespace that does not exist
//	bob           unmapped: the host namespace
type loginFixture struct {
	c              *Container
	host, ns0, ns1 string
}

const loginConfig = `# login path fixture
alice ns0
@labx ns1   # only extrausers knows this group
dave  gone
`

func newLoginFixture(t *testing.T, s Suite) *loginFixture {
	t.Helper()
	c := boot(t, s)
	c.Run(t, "ip", "netns", "add", "ns0")
	c.Run(t, "ip", "netns", "add", "ns1")
	c.WriteFile(t, "/var/lib/extrausers/group", "labx:x:2001:carol\n", 0o644)
	c.Sh(t, `sed -i 's/^group:.*/group: files extrausers/' /etc/nsswitch.conf`)
	c.WriteFile(t, configPath, loginConfig, 0o644)
	installHook(t, c)
	// A dozen logins at once exceed sshd's default of 10 unauthenticated
	// connections.
	c.WriteFile(t, "/etc/ssh/sshd_config.d/maxstartups.conf", "MaxStartups 50\n", 0o644)
	restartSSH(t, c)
	return &loginFixture{
		c:    c,
		host: netnsID(t, c, "/proc/1/ns/net"),
		ns0:  netnsID(t, c, "/run/netns/ns0"),
		ns1:  netnsID(t, c, "/run/netns/ns1"),
	}
}

func TestLoginPlacesSessions(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newLoginFixture(t, s)
		c := f.c
		if f.host == f.ns0 || f.ns0 == f.ns1 {
			t.Fatalf("fixture namespaces are not distinct: host %s ns0 %s ns1 %s", f.host, f.ns0, f.ns1)
		}

		t.Run("ssh as mapped user lands in the mapped netns", func(t *testing.T) {
			got, stderr, err := sshNetns(t.Context(), c, "alice")
			if err != nil || got != f.ns0 {
				t.Errorf("alice's ssh shell: netns %q, err %v, want %s (ns0)\n%s", got, err, f.ns0, stderr)
			}
		})
		t.Run("ssh as unmapped user lands on the host", func(t *testing.T) {
			got, stderr, err := sshNetns(t.Context(), c, "bob")
			if err != nil || got != f.host {
				t.Errorf("bob's ssh shell: netns %q, err %v, want %s (host)\n%s", got, err, f.host, stderr)
			}
		})
		t.Run("group known only to extrausers maps its member", func(t *testing.T) {
			got, stderr, err := sshNetns(t.Context(), c, "carol")
			if err != nil || got != f.ns1 {
				t.Errorf("carol's ssh shell: netns %q, err %v, want %s (ns1 via @labx)\n%s", got, err, f.ns1, stderr)
			}
		})
		t.Run("mapped user whose netns is missing gets no shell", func(t *testing.T) {
			got, _, err := sshNetns(t.Context(), c, "dave")
			if err == nil {
				t.Fatalf("dave got a shell in %s; want the login denied", got)
			}
			if log := journal(t, c, "dave"); !strings.Contains(log, "network namespace /run/netns/gone is not available") {
				t.Errorf("journal for dave does not give the reason:\n%s", log)
			}
			// pam_systemd runs after a failed "required" module too: the
			// manager it starts for dave must not run on the host.
			if state, _, _ := c.Exec(t.Context(), "systemctl", "is-active", "user@1004.service"); strings.TrimSpace(state) == "active" {
				t.Errorf("user@1004.service of dave is active after the denial")
			}
			if onHost := c.Sh(t, `for p in $(pgrep -u dave); do [ "$(stat -L -c %d:%i /proc/$p/ns/net)" = "`+f.host+`" ] && ps -o pid=,args= -p $p; done; true`); onHost != "" {
				t.Errorf("processes of dave on the host network:\n%s", onHost)
			}
		})
		t.Run("systemd-run --user and a user service run in the mapped netns", func(t *testing.T) {
			const unit = `[Service]
Type=oneshot
ExecStart=/bin/sh -c 'stat -L -c %%d:%%i /proc/self/ns/net > %h/probe.out'
`
			c.WriteFile(t, "/home/alice/.config/systemd/user/probe.service", unit, 0o644)
			c.Run(t, "chown", "-R", "alice:alice", "/home/alice/.config")
			stdout, stderr, err := c.SSH(t.Context(), "alice", strings.Join([]string{
				"systemd-run --user --quiet --wait --pipe " + netnsOfSelf,
				"systemctl --user start probe.service",
				"cat ~/probe.out",
			}, " && "))
			lines := strings.Fields(stdout)
			if err != nil || len(lines) != 2 {
				t.Fatalf("user units of alice: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			if lines[0] != f.ns0 {
				t.Errorf("systemd-run --user: netns %s, want %s (ns0)", lines[0], f.ns0)
			}
			if lines[1] != f.ns0 {
				t.Errorf("systemctl --user service: netns %s, want %s (ns0)", lines[1], f.ns0)
			}
		})
		t.Run("su and sudo from root to a mapped user", func(t *testing.T) {
			for _, cmd := range [][]string{
				{"su", "alice", "-c", netnsOfSelf},
				{"su", "-", "alice", "-c", netnsOfSelf},
				{"sudo", "-u", "alice", "sh", "-c", netnsOfSelf},
			} {
				if got := strings.TrimSpace(c.Run(t, cmd...)); got != f.ns0 {
					t.Errorf("%q: netns %s, want %s (ns0)", cmd, got, f.ns0)
				}
			}
		})
		t.Run("su to an unmapped user from inside a mapped netns goes to the host", func(t *testing.T) {
			got := strings.TrimSpace(c.Run(t, "nsenter", "--net=/run/netns/ns0", "su", "bob", "-c", netnsOfSelf))
			if got != f.host {
				t.Errorf("su bob from ns0: netns %s, want %s (host)", got, f.host)
			}
		})
		t.Run("concurrent first logins all land right", func(t *testing.T) {
			// With no manager running, the logins race to start it: the
			// manager shows up in its cgroup before it enters ns0.
			c.Run(t, "systemctl", "stop", "user@1001.service", "user@1003.service")
			const n = 12
			users := []struct{ name, want string }{{"alice", f.ns0}, {"carol", f.ns1}}
			var wg sync.WaitGroup
			results := make([]string, n)
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], _, errs[i] = sshNetns(t.Context(), c, users[i%2].name)
				}()
			}
			wg.Wait()
			for i := range n {
				if u := users[i%2]; errs[i] != nil || results[i] != u.want {
					t.Errorf("login %d of %d (%s): netns %q, err %v, want %s", i+1, n, u.name, results[i], errs[i], u.want)
				}
			}
			if t.Failed() {
				t.Logf("journal:\n%s", c.Run(t, "journalctl", "--no-pager", "-o", "cat", "-t", "netns-session", "NETNS_SESSION_ACTION=deny"))
			}
		})
		t.Run("sshd keeps serving and leaks no fds", func(t *testing.T) {
			listener := strings.TrimSpace(c.Sh(t, "systemctl show -p MainPID --value ssh.service"))
			fds := func() int {
				n, err := strconv.Atoi(strings.TrimSpace(c.Sh(t, "ls /proc/"+listener+"/fd | wc -l")))
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			before := fds()
			for i := range 30 {
				if got, stderr, err := sshNetns(t.Context(), c, "alice"); err != nil || got != f.ns0 {
					t.Fatalf("login %d: netns %q, err %v\n%s", i+1, got, err, stderr)
				}
			}
			if after := fds(); after != before {
				t.Errorf("sshd listener (PID %s) has %d fds after 30 joins, %d before", listener, after, before)
			}
			// The monitor that was joined must not keep the namespace fd we
			// opened in it.
			stdout, stderr, err := c.SSH(t.Context(), "alice",
				`mon=$(ps -o ppid= -p $PPID | tr -d ' '); ps -o args= -p $mon; ls -l /proc/$mon/fd | grep -c 'net:\[' || true`)
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			if err != nil || len(lines) != 2 {
				t.Fatalf("inspecting the privileged monitor: %v\n%s\n%s", err, stdout, stderr)
			}
			if !strings.Contains(lines[0], "[priv]") {
				t.Fatalf("process %q is not sshd's privileged monitor", lines[0])
			}
			if lines[1] != "0" {
				t.Errorf("sshd's monitor holds %s namespace fds after the join, want 0", lines[1])
			}
		})
	})
}

func TestLoginFollowsPolicyChanges(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newLoginFixture(t, s)
		c := f.c
		const dropIn = "/run/systemd/system/user@1001.service.d/50-netns-session.conf"

		t.Run("first login writes the drop-in and reloads once, the second reloads nothing", func(t *testing.T) {
			before := reloads(t, c)
			if got, stderr, err := sshNetns(t.Context(), c, "alice"); err != nil || got != f.ns0 {
				t.Fatalf("first login: netns %q, err %v\n%s", got, err, stderr)
			}
			if content := c.Run(t, "cat", dropIn); !strings.Contains(content, "NetworkNamespacePath=/run/netns/ns0") {
				t.Fatalf("drop-in after the first login:\n%s", content)
			}
			afterFirst := reloads(t, c)
			if afterFirst != before+1 {
				t.Errorf("first login: %d reloads, want 1", afterFirst-before)
			}
			if got, stderr, err := sshNetns(t.Context(), c, "alice"); err != nil || got != f.ns0 {
				t.Fatalf("second login: netns %q, err %v\n%s", got, err, stderr)
			}
			if n := reloads(t, c) - afterFirst; n != 0 {
				t.Errorf("second login of an unchanged user: %d reloads, want 0", n)
			}
		})

		t.Run("user manager running in another netns denies the login and names the fix", func(t *testing.T) {
			// A session keeps alice's manager running in ns0 while her
			// mapping moves to ns1.
			hold := holdSession(t, c, "alice")
			c.WriteFile(t, configPath, strings.Replace(loginConfig, "alice ns0", "alice ns1", 1), 0o644)
			if got, _, err := sshNetns(t.Context(), c, "alice"); err == nil {
				t.Fatalf("alice got a shell in %s while her manager runs in ns0; want the login denied", got)
			}
			if log := journal(t, c, "alice"); !strings.Contains(log, "systemctl stop user@1001.service") {
				t.Errorf("journal does not name the fix:\n%s", log)
			}
			hold()
			c.Run(t, "systemctl", "stop", "user@1001.service")
			if got, stderr, err := sshNetns(t.Context(), c, "alice"); err != nil || got != f.ns1 {
				t.Errorf("login after stopping the manager: netns %q, err %v, want %s (ns1)\n%s", got, err, f.ns1, stderr)
			}
		})

		t.Run("user unmapped later loses the drop-in", func(t *testing.T) {
			c.Run(t, "test", "-e", dropIn)
			c.WriteFile(t, configPath, "@labx ns1\n", 0o644)
			c.Run(t, "systemctl", "stop", "user@1001.service")
			if got, stderr, err := sshNetns(t.Context(), c, "alice"); err != nil || got != f.host {
				t.Fatalf("login of unmapped alice: netns %q, err %v, want %s (host)\n%s", got, err, f.host, stderr)
			}
			if _, _, err := c.Exec(t.Context(), "test", "-e", dropIn); err == nil {
				t.Errorf("%s still exists after alice was unmapped", dropIn)
			}
		})
	})
}

func TestLoginWithSeedConfig(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		c.Run(t, "ip", "netns", "add", "ns0")
		// The seed module's file: user nsname lines, nothing else.
		c.WriteFile(t, "/etc/security/pam_netns.conf", "alice ns0\ntest ns0\n", 0o644)
		installHook(t, c, "config=/etc/security/pam_netns.conf")
		want := netnsID(t, c, "/run/netns/ns0")
		if got, stderr, err := sshNetns(t.Context(), c, "alice"); err != nil || got != want {
			t.Errorf("alice with config=pam_netns.conf: netns %q, err %v, want %s\n%s", got, err, want, stderr)
		}
	})
}

func TestBrokenConfigLetsOnlyRootIn(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		c.Run(t, "ip", "netns", "add", "ns0")
		c.WriteFile(t, configPath, "alice ns0\nalice ns0 extra\n", 0o644)
		installHook(t, c)
		c.Run(t, "cp", "/root/.ssh/id_ed25519.pub", "/root/.ssh/authorized_keys")
		host := netnsID(t, c, "/proc/1/ns/net")

		if got, _, err := sshNetns(t.Context(), c, "alice"); err == nil {
			t.Errorf("alice got a shell in %s with a broken config; want the login denied", got)
		}
		if got, _, err := sshNetns(t.Context(), c, "bob"); err == nil {
			t.Errorf("unmapped bob got a shell in %s with a broken config; want the login denied", got)
		}
		if got, stderr, err := sshNetns(t.Context(), c, "root"); err != nil || got != host {
			t.Errorf("root with a broken config: netns %q, err %v, want %s (host)\n%s", got, err, host, stderr)
		}
		if log := c.Run(t, "journalctl", "--no-pager", "-o", "cat", "-t", "netns-session", "NETNS_SESSION_ACTION=root-fallback"); !strings.Contains(log, "config unusable") {
			t.Errorf("root's fallback is not logged loudly:\n%s", log)
		}
	})
}

// holdSession keeps an ssh session of user open until the returned func is
// called, so the user's manager keeps running.
func holdSession(t *testing.T, c *Container, user string) (release func()) {
	t.Helper()
	held, releaseFlag := "/tmp/held-"+user, "/run/release-"+user
	done := make(chan error, 1)
	go func() {
		// Held while the test works, which under load outlasts execTimeout.
		_, _, err := c.sshHeld(t.Context(), user, "touch "+held+"; timeout 600 sh -c 'until [ -e "+releaseFlag+" ]; do sleep 0.1; done'")
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, err := c.Exec(t.Context(), "test", "-e", held); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("session of %s ended before it was held: %v", user, err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session of %s within 30s", user)
		}
	}
	return func() {
		c.Run(t, "touch", releaseFlag)
		if err := <-done; err != nil {
			t.Errorf("held session of %s: %v", user, err)
		}
		c.Run(t, "rm", "-f", releaseFlag, held)
	}
}
