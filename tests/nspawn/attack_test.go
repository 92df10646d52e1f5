package nspawn

// The attack suite: what a user, a broken directory or bad luck with PIDs
// does to try to land a mapped session on the host network, hit a process
// that is not the session's, or lock root out. Each case of the fail-closed
// review and the test that proves it:
//
//	a source that is down is not "not found"  TestSourceDownFailsClosed (nss_test.go)
//	a dead leader's PID reused                TestWatchSparesAProcessOnADeadLeadersPID (watch_test.go)
//	user lines select users, not spellings    TestUserLineSelectsSecondNameOfUID (nss_test.go)
//	a directory down at boot                  TestBootWithDirectoryDownKeepsLingeringManagersOffTheHost,
//	                                          TestWatcherStartsHeldManagersWhenTheDirectoryReturns (sync_test.go)
//	the hook pins its caller                  TestJoinParentNeverJoinsTheReaperOfItsCaller (internal/nsjoin)
//	the PAM line must not fail open           TestAttackPAMLineFailsClosed
//	a cancelled sync must not write           TestCancelledSyncWritesNothing (internal/reconcile)
//	the environment that reaches the hook     TestAttackUnsafePAMEnvironmentRefused
//
// The rest of this file: leaving the namespace from inside a session, and
// configs an unprivileged user could have written.

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// journalCursor returns the cursor of the last entry in c's journal, so that
// journalSays can look only at what comes after.
func journalCursor(t *testing.T, c *Container) string {
	t.Helper()
	out := strings.TrimSpace(c.Run(t, "journalctl", "--quiet", "--lines=0", "--show-cursor"))
	cursor, ok := strings.CutPrefix(out, "-- cursor: ")
	if !ok {
		t.Fatalf("journalctl --show-cursor printed %q", out)
	}
	return cursor
}

// journalSays fails the test unless netns-session logs want after cursor
// within a few seconds: journald stores what it is sent asynchronously.
func journalSays(t *testing.T, c *Container, cursor, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		logged := loggedAfter(t, c, cursor)
		for _, msg := range logged {
			if strings.Contains(msg, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("netns-session did not log %q; it logged:\n%s", want, strings.Join(logged, "\n"))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// loggedAfter returns the messages netns-session logged after cursor. It
// filters the entries itself: journalctl 252 shows nothing when a match
// and --after-cursor are combined.
func loggedAfter(t *testing.T, c *Container, cursor string) []string {
	t.Helper()
	var msgs []string
	for line := range strings.Lines(c.Run(t, "journalctl", "--no-pager", "--output=json", "--after-cursor="+cursor)) {
		var entry struct {
			Identifier json.RawMessage `json:"SYSLOG_IDENTIFIER"`
			Message    json.RawMessage `json:"MESSAGE"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("parsing journal entry %q: %v", line, err)
		}
		if journalField(entry.Identifier) == "netns-session" {
			msgs = append(msgs, journalField(entry.Message))
		}
	}
	return msgs
}

// journalField decodes a field of journalctl's JSON output: a string, or an
// array of bytes when the value holds control characters.
func journalField(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var b []byte
	var ints []int
	if json.Unmarshal(raw, &ints) == nil {
		for _, i := range ints {
			b = append(b, byte(i))
		}
	}
	return string(b)
}

// waitForFile returns the content of path in c once it is not empty.
func waitForFile(t *testing.T, c *Container, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if out, _, err := c.Exec(t.Context(), "cat", path); err == nil && out != "" {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still missing or empty after %v", path, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAttackLeaveTheNetns has alice, mapped to ns0, try every way out of it
// that an unprivileged user has.
func TestAttackLeaveTheNetns(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newLoginFixture(t, s)
		c := f.c
		restartSSH(t, c)
		alice := func(t *testing.T, script string) (string, string, error) {
			t.Helper()
			stdout, stderr, err := c.SSH(t.Context(), "alice", script)
			return strings.TrimSpace(stdout), stderr, err
		}
		// cron starts jobs on the minute: the crontab goes in first, its
		// check comes last.
		if _, stderr, err := alice(t, `echo '* * * * * `+strings.ReplaceAll(netnsOfSelf, "%", `\%`)+` > ~/cron.out' | crontab -`); err != nil {
			t.Fatalf("installing alice's crontab: %v\n%s", err, stderr)
		}

		for _, tt := range []struct{ name, command string }{
			{"nsenter into the host netns is refused", "nsenter --net=/proc/1/ns/net " + netnsOfSelf},
			{"nsenter into another named netns is refused", "nsenter --net=/run/netns/ns1 " + netnsOfSelf},
			{"unshare -n is refused", "unshare --net " + netnsOfSelf},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if stdout, _, err := alice(t, tt.command); err == nil {
					t.Errorf("%q succeeded as alice, printing %q", tt.command, stdout)
				}
			})
		}

		t.Run("a netns of her own reaches nothing on the host", func(t *testing.T) {
			// sshd listens on the host netns's loopback: reachable from there
			// (the control), from nowhere else.
			const connect = `exec 3<>/dev/tcp/127.0.0.1/22 && echo connected`
			c.Run(t, "bash", "-c", connect)
			if stdout, _, err := alice(t, connect); err == nil || strings.Contains(stdout, "connected") {
				t.Errorf("alice reached the host's sshd from ns0: %q, err %v", stdout, err)
			}
			// A user namespace lets her create a network namespace, which
			// starts with nothing but a loopback device.
			stdout, stderr, err := alice(t, `unshare --map-root-user --net bash -c 'PATH=$PATH:/usr/sbin:/sbin ip link set lo up; `+netnsOfSelf+`; `+connect+`'`)
			if strings.Contains(stdout, "connected") {
				t.Errorf("alice reached the host's sshd from a netns of her own: %q, err %v", stdout, err)
			}
			if own := strings.Fields(stdout); len(own) == 0 || own[0] == f.ns0 || own[0] == f.host {
				t.Errorf("unshare --map-root-user --net did not create a netns (output %q), so the attempt proves nothing\n%s", stdout, stderr)
			}
		})

		t.Run("systemd-run --user lands in the mapped netns, whatever it asks for", func(t *testing.T) {
			for _, tt := range []struct {
				args      string
				mayRefuse bool // asking for another netns may fail instead
			}{
				{args: "--wait --pipe"},
				{args: "--scope"},
				{args: "--wait --pipe -p NetworkNamespacePath=/proc/1/ns/net", mayRefuse: true},
				{args: "--wait --pipe -p NetworkNamespacePath=/run/netns/ns1", mayRefuse: true},
				{args: "--wait --pipe -p PrivateNetwork=no"},
			} {
				stdout, stderr, err := alice(t, "systemd-run --user --quiet "+tt.args+" "+netnsOfSelf)
				switch {
				case err != nil && tt.mayRefuse:
				case err != nil:
					t.Errorf("systemd-run --user %s: %v\n%s", tt.args, err, stderr)
				case stdout != f.ns0:
					t.Errorf("systemd-run --user %s ran in %q, want %s (ns0)", tt.args, stdout, f.ns0)
				}
			}
		})

		t.Run("an at job lands in the mapped netns", func(t *testing.T) {
			if _, stderr, err := alice(t, `echo '`+netnsOfSelf+` > ~/at.out' | at now`); err != nil {
				t.Fatalf("at: %v\n%s", err, stderr)
			}
			if got := strings.TrimSpace(waitForFile(t, c, "/home/alice/at.out", 30*time.Second)); got != f.ns0 {
				t.Errorf("at job of alice ran in %s, want %s (ns0)", got, f.ns0)
			}
		})

		t.Run("sudo without rights is denied and runs nothing", func(t *testing.T) {
			for _, command := range []string{
				"sudo -n touch /run/sudo-ran",
				"sudo -S touch /run/sudo-ran </dev/null",
				"echo | sudo -S -u bob touch /run/sudo-ran",
			} {
				if _, _, err := alice(t, command); err == nil {
					t.Errorf("%q succeeded as alice", command)
				}
			}
			if _, _, err := c.Exec(t.Context(), "test", "-e", "/run/sudo-ran"); err == nil {
				t.Errorf("sudo ran a command for alice")
			}
		})

		// A planted item, if the hook believed it, would leave the session
		// on the host: bob is unmapped, and close_session and the user
		// manager's own service are no-ops.
		plants := []string{"PAM_USER=bob", "PAM_TYPE=close_session", "PAM_SERVICE=systemd-user"}

		t.Run("PAM items sent with ssh SetEnv do not steer the hook", func(t *testing.T) {
			c.WriteFile(t, "/etc/ssh/sshd_config.d/acceptenv.conf", "AcceptEnv PAM_* NETNS*\n", 0o644)
			restartSSH(t, c)
			defer func() {
				c.Run(t, "rm", "-f", "/etc/ssh/sshd_config.d/acceptenv.conf", "/root/.ssh/config")
				restartSSH(t, c)
			}()
			for _, plant := range plants {
				c.WriteFile(t, "/root/.ssh/config", "Host 127.0.0.1\n\tSetEnv "+plant+"\n", 0o600)
				assertPlantIgnored(t, c, f, plant)
			}
		})

		t.Run("PAM items planted in ~/.pam_environment do not steer the hook", func(t *testing.T) {
			// Debian reads ~/.pam_environment only after the session stack
			// ran; here pam_env fills the PAM environment before the hook.
			c.Sh(t, `sed -i 's|^@include common-session$|session required pam_env.so user_readenv=1 envfile=/dev/null\n&|' /etc/pam.d/sshd`)
			defer func() {
				c.Sh(t, `sed -i '/^session required pam_env.so user_readenv=1 envfile=\/dev\/null$/d' /etc/pam.d/sshd`)
				c.Run(t, "rm", "-f", "/home/alice/.pam_environment")
			}()
			for _, plant := range plants {
				name, value, _ := strings.Cut(plant, "=")
				c.WriteFile(t, "/home/alice/.pam_environment", name+" DEFAULT="+value+"\n", 0o644)
				c.Run(t, "chown", "alice:alice", "/home/alice/.pam_environment")
				assertPlantIgnored(t, c, f, plant)
			}
		})

		t.Run("a cron job lands in the mapped netns", func(t *testing.T) {
			if got := strings.TrimSpace(waitForFile(t, c, "/home/alice/cron.out", 2*time.Minute)); got != f.ns0 {
				t.Errorf("cron job of alice ran in %s, want %s (ns0)", got, f.ns0)
			}
		})
	})
}

// assertPlantIgnored logs alice in with plant, NAME=VALUE, set up to reach
// her session, and checks that it did reach her shell and that she still
// lands in ns0.
func assertPlantIgnored(t *testing.T, c *Container, f *loginFixture, plant string) {
	t.Helper()
	stdout, stderr, err := c.SSH(t.Context(), "alice", netnsOfSelf+"; env")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if err != nil || len(lines) == 0 {
		t.Fatalf("alice with %s planted: %v\n%s", plant, err, stderr)
	}
	if lines[0] != f.ns0 {
		t.Errorf("alice with %s planted landed in %s, want %s (ns0; host is %s)", plant, lines[0], f.ns0, f.host)
	}
	found := false
	for _, line := range lines[1:] {
		found = found || line == plant
	}
	if !found {
		t.Errorf("%s did not reach alice's session, so the attempt proves nothing; her environment:\n%s", plant, strings.Join(lines[1:], "\n"))
	}
}

// TestAttackConfigRefused shows that the hook refuses a config anyone but
// root could have written, and names it cannot trust, and a PAM_USER that
// is no user.
func TestAttackConfigRefused(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newLoginFixture(t, s)
		c := f.c
		restartSSH(t, c)
		const dropInDir = "/etc/security/netns-session.d"
		c.Run(t, "install", "-d", "-m", "0755", dropInDir)
		if got, stderr, err := sshNetns(t.Context(), c, "alice"); err != nil || got != f.ns0 {
			t.Fatalf("alice before any attack: netns %q, err %v, want %s (ns0)\n%s", got, err, f.ns0, stderr)
		}

		// deniedWith logs alice in and checks that she is denied and the
		// journal says why.
		deniedWith := func(t *testing.T, why string) {
			t.Helper()
			cursor := journalCursor(t, c)
			if got, _, err := sshNetns(t.Context(), c, "alice"); err == nil {
				t.Errorf("alice got a shell in %s (ns0 %s, host %s); want the login denied", got, f.ns0, f.host)
			}
			journalSays(t, c, cursor, why)
		}

		for _, tt := range []struct{ name, attack, undo, why string }{
			{
				name:   "config file owned by a user",
				attack: "chown alice " + configPath, undo: "chown root " + configPath,
				why: configPath + ": refusing: owned by uid 1001, not root",
			},
			{
				name:   "config file writable by its group",
				attack: "chmod 0664 " + configPath, undo: "chmod 0644 " + configPath,
				why: configPath + ": refusing: writable by its group",
			},
			{
				name:   "config file writable by others",
				attack: "chmod 0646 " + configPath, undo: "chmod 0644 " + configPath,
				why: configPath + ": refusing: writable by others",
			},
			{
				name:   "config directory writable by its group",
				attack: "chmod 0775 /etc/security", undo: "chmod 0755 /etc/security",
				why: "/etc/security: refusing: writable by its group",
			},
			{
				name:   "drop-in directory owned by a user",
				attack: "chown alice " + dropInDir, undo: "chown root " + dropInDir,
				why: dropInDir + ": refusing: owned by uid 1001, not root",
			},
			{
				name:   "drop-in directory writable by others",
				attack: "chmod 0757 " + dropInDir, undo: "chmod 0755 " + dropInDir,
				why: dropInDir + ": refusing: writable by others",
			},
			{
				name:   "drop-in file writable by its group",
				attack: "echo 'alice -' > " + dropInDir + "/50-mine.conf; chmod 0664 " + dropInDir + "/50-mine.conf",
				undo:   "rm " + dropInDir + "/50-mine.conf",
				why:    dropInDir + "/50-mine.conf: refusing: writable by its group",
			},
		} {
			t.Run(tt.name, func(t *testing.T) {
				c.Sh(t, tt.attack)
				defer c.Sh(t, tt.undo)
				deniedWith(t, tt.why)
			})
		}

		t.Run("insecure config keeps the user manager of a denied user from starting", func(t *testing.T) {
			// pam_systemd runs after the failed hook and starts the
			// manager, which starts the user's enabled services. carol
			// (ns1 by @labx) has no drop-in yet to place it.
			const unit = "[Service]\nType=oneshot\nExecStart=/bin/sh -c '" + `stat -L -c %%d:%%i /proc/self/ns/net` + " > %h/probe.out'\n[Install]\nWantedBy=default.target\n"
			c.WriteFile(t, "/home/carol/.config/systemd/user/probe.service", unit, 0o644)
			c.Sh(t, `cd /home/carol/.config/systemd/user && mkdir default.target.wants && ln -s ../probe.service default.target.wants/ && chown -R carol:carol /home/carol/.config`)
			c.Run(t, "chmod", "0646", configPath)
			cursor := journalCursor(t, c)
			if got, _, err := sshNetns(t.Context(), c, "carol"); err == nil {
				t.Errorf("carol got a shell in %s with an insecure config; want the login denied", got)
			}
			journalSays(t, c, cursor, "refusing: writable by others")
			// Started, the manager runs the probe within a second or two.
			if out, _, err := c.Exec(t.Context(), "timeout", "5", "sh", "-c", "until cat /home/carol/probe.out 2>/dev/null; do sleep 0.1; done"); err == nil {
				t.Errorf("a user service of denied carol ran, in %s (host %s)", strings.TrimSpace(out), f.host)
			}
			if state, _, _ := c.Exec(t.Context(), "systemctl", "is-active", "user@1003.service"); strings.TrimSpace(state) == "active" {
				t.Errorf("user@1003.service of denied carol is active")
			}

			// Fixed, the config places the manager again.
			c.Run(t, "chmod", "0644", configPath)
			if got, stderr, err := sshNetns(t.Context(), c, "carol"); err != nil || got != f.ns1 {
				t.Fatalf("carol after the fix: netns %q, err %v, want %s (ns1)\n%s", got, err, f.ns1, stderr)
			}
			if got := strings.TrimSpace(waitForFile(t, c, "/home/carol/probe.out", 10*time.Second)); got != f.ns1 {
				t.Errorf("carol's user service ran in %s, want %s (ns1)", got, f.ns1)
			}
		})

		// loginConfig has four lines: the bad one is line 5.
		for _, tt := range []struct{ name, line string }{
			{"user name with a slash", "al/ice ns1"},
			{"user name ..", ".. ns1"},
			{"user name with a space", "al ice ns1"},
			{"user name with a control character", "al\x1bice ns1"},
			{"netns name with a slash", "bob ns/../ns1"},
			{"netns name ..", "bob .."},
			{"netns path with ..", "bob /run/netns/../../proc/1/ns/net"},
			{"netns name with a space", "bob ns 1"},
			{"netns name with a control character", "bob ns\x07"},
		} {
			t.Run("config with a "+tt.name, func(t *testing.T) {
				c.WriteFile(t, configPath, loginConfig+tt.line+"\n", 0o644)
				defer c.WriteFile(t, configPath, loginConfig, 0o644)
				deniedWith(t, configPath+":5: ")
			})
		}

		// pamtester drives the hook with any PAM_USER, through a service
		// of its own.
		c.WriteFile(t, "/etc/pam.d/netns-attack", "auth required pam_permit.so\naccount required pam_permit.so\n"+hookLine+"\n", 0o644)
		c.Run(t, "pamtester", "netns-attack", "alice", "open_session")
		for _, tt := range []struct{ name, user string }{
			{"parent directory", "../x"},
			{"dot-dot", ".."},
			{"slash", "al/ice"},
			{"space", "al ice"},
			{"trailing newline", "alice\n"},
			{"control character", "al\x1bice"},
		} {
			t.Run("PAM_USER with a "+tt.name, func(t *testing.T) {
				cursor := journalCursor(t, c)
				if _, _, err := c.Exec(t.Context(), "pamtester", "netns-attack", tt.user, "open_session"); err == nil {
					t.Errorf("pamtester opened a session for %q", tt.user)
				}
				journalSays(t, c, cursor, "session denied: cannot look up user "+tt.user)
			})
		}
	})
}

// TestAttackPAMLineFailsClosed puts on the PAM line what would once have
// opened every session unplaced: a help flag, which printed help and exited
// 0, and a relative config path, resolved against the caller's working
// directory (sshd's is /, so this one names the real config). Either is a
// broken config: alice is denied, root logs in on the host network.
func TestAttackPAMLineFailsClosed(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newLoginFixture(t, s)
		c := f.c
		c.Run(t, "cp", "/root/.ssh/id_ed25519.pub", "/root/.ssh/authorized_keys")
		for _, args := range []string{"--help", "--config " + configPath + " -h", "config=" + strings.TrimPrefix(configPath, "/")} {
			t.Run(args, func(t *testing.T) {
				setHookLine(t, c, hookLine+" "+args)
				defer setHookLine(t, c, hookLine)
				// A manager that an earlier login left on the host would
				// deny alice for that reason instead.
				c.Run(t, "systemctl", "stop", "user@1001.service")
				cursor := journalCursor(t, c)
				if got, _, err := sshNetns(t.Context(), c, "alice"); err == nil {
					t.Errorf("alice got a shell in %s (ns0 %s, host %s) with %q on the PAM line; want the login denied", got, f.ns0, f.host, args)
				}
				journalSays(t, c, cursor, "session denied: the netns-session configuration is broken")
				if got, stderr, err := sshNetns(t.Context(), c, "root"); err != nil || got != f.host {
					t.Errorf("root with %q on the PAM line: netns %q, err %v, want %s (host)\n%s", args, got, err, f.host, stderr)
				}
			})
		}
	})
}

// setHookLine replaces the netns-session line that installHook put in the
// PAM stacks with line.
func setHookLine(t *testing.T, c *Container, line string) {
	t.Helper()
	c.Sh(t, `sed -i 's|^session required pam_exec.so seteuid /usr/sbin/netns-session pam.*$|`+line+`|' /etc/pam.d/common-session /etc/pam.d/common-session-noninteractive`)
}

// TestAttackUnsafePAMEnvironmentRefused has pam_env read ~/.pam_environment
// before the hook, so that a user's file puts LD_PRELOAD or GCONV_PATH into
// the environment pam_exec starts the hook with, as root: alice is denied
// and the journal names the variable; bob, without such a file, logs in;
// root, with one, still gets in on the host network.
func TestAttackUnsafePAMEnvironmentRefused(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newLoginFixture(t, s)
		c := f.c
		c.Run(t, "cp", "/root/.ssh/id_ed25519.pub", "/root/.ssh/authorized_keys")
		// Debian reads ~/.pam_environment only after the session stack
		// ran; here pam_env fills the PAM environment before the hook.
		c.Sh(t, `sed -i 's|^@include common-session$|session required pam_env.so user_readenv=1 envfile=/dev/null\n&|' /etc/pam.d/sshd`)
		for _, plant := range []string{"LD_PRELOAD=/nonexistent", "GCONV_PATH=/home/alice"} {
			name, value, _ := strings.Cut(plant, "=")
			t.Run(name, func(t *testing.T) {
				c.WriteFile(t, "/home/alice/.pam_environment", name+" DEFAULT="+value+"\n", 0o644)
				c.Run(t, "chown", "alice:alice", "/home/alice/.pam_environment")
				cursor := journalCursor(t, c)
				if got, _, err := sshNetns(t.Context(), c, "alice"); err == nil {
					t.Errorf("alice with %s in ~/.pam_environment got a shell in %s (ns0 %s, host %s); want the login denied", plant, got, f.ns0, f.host)
				}
				journalSays(t, c, cursor, "the PAM environment sets "+name)
			})
		}
		t.Run("bob without one logs in", func(t *testing.T) {
			if got, stderr, err := sshNetns(t.Context(), c, "bob"); err != nil || got != f.host {
				t.Errorf("bob: netns %q, err %v, want %s (host)\n%s", got, err, f.host, stderr)
			}
		})
		t.Run("root with one logs in on the host network", func(t *testing.T) {
			c.WriteFile(t, "/root/.pam_environment", "GCONV_PATH DEFAULT=/root\n", 0o644)
			cursor := journalCursor(t, c)
			if got, stderr, err := sshNetns(t.Context(), c, "root"); err != nil || got != f.host {
				t.Errorf("root: netns %q, err %v, want %s (host)\n%s", got, err, f.host, stderr)
			}
			journalSays(t, c, cursor, "unsafe PAM environment, letting root in on the host network")
		})
	})
}
