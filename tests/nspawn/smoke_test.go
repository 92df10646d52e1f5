package nspawn

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const configPath = "/etc/security/netns-session.conf"

func TestContainerBootsWithLogind(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		if state := strings.TrimSpace(c.Run(t, "systemctl", "is-system-running")); state != "running" {
			t.Errorf("system state = %q, want running", state)
		}
		c.Run(t, "loginctl", "list-sessions")
	})
}

func TestSSHLoginOpensLogindSession(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		const release = "/run/release-ssh-session"
		type result struct {
			stdout, stderr string
			err            error
		}
		done := make(chan result, 1)
		go func() {
			// The session stays open until the test has looked for it.
			stdout, stderr, err := c.SSH(t.Context(), "alice",
				"id -un; timeout 60 sh -c 'until [ -e "+release+" ]; do sleep 0.1; done'")
			done <- result{stdout, stderr, err}
		}()

		deadline := time.After(30 * time.Second)
		for sessions := ""; !sessionOf(sessions, "alice"); {
			select {
			case r := <-done:
				t.Fatalf("ssh ended before a session of alice showed up: %v\nstderr:\n%s\nsessions:\n%s", r.err, r.stderr, sessions)
			case <-deadline:
				t.Fatalf("no session of alice in loginctl list-sessions within 30s:\n%s", sessions)
			case <-time.After(200 * time.Millisecond):
			}
			sessions = c.Run(t, "loginctl", "list-sessions", "--no-legend")
		}
		c.Run(t, "touch", release)

		r := <-done
		if r.err != nil {
			t.Fatalf("ssh alice@127.0.0.1: %v\nstderr:\n%s", r.err, r.stderr)
		}
		if got := strings.TrimSpace(r.stdout); got != "alice" {
			t.Errorf("id -un over ssh = %q, want alice", got)
		}
	})
}

// sessionOf reports whether `loginctl list-sessions --no-legend` output lists
// a session of user.
func sessionOf(sessions, user string) bool {
	for line := range strings.Lines(sessions) {
		fields := strings.Fields(line)
		if len(fields) > 2 && fields[2] == user { // SESSION UID USER ...
			return true
		}
	}
	return false
}

func TestRebootKeepsDiskAndStartsAfresh(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		const kept, volatile = "/var/lib/reboot-marker", "/run/reboot-marker"
		c.WriteFile(t, kept, "kept\n", 0o600)
		c.WriteFile(t, volatile, "gone\n", 0o600)

		c.Reboot(t)

		if got := c.Run(t, "cat", kept); got != "kept\n" {
			t.Errorf("%s after reboot = %q, want kept", kept, got)
		}
		if _, _, err := c.Exec(t.Context(), "test", "-e", volatile); err == nil {
			t.Errorf("%s survived the reboot: /run is not fresh", volatile)
		}
	})
}

// TestRebootEndsRunningCommands reboots under a command that Exec is still
// running, as a test that fails mid-login tears down under its ssh.
func TestRebootEndsRunningCommands(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		done := make(chan error, 1)
		go func() {
			_, _, err := c.Exec(t.Context(), "sleep", "600")
			done <- err
		}()
		c.Sh(t, "timeout 10 sh -c 'until pgrep -x sleep; do sleep 0.1; done'")

		c.Reboot(t)

		select {
		case err := <-done:
			if err == nil {
				t.Error("sleep 600 ended without an error across a reboot")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("sleep 600 still running after the reboot")
		}
	})
}

func TestBinaryVersionRuns(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		if out := c.Run(t, "netns-session", "--version"); !strings.Contains(out, "netns-session") {
			t.Errorf("netns-session --version = %q, want it to name netns-session", out)
		}
	})
}

func TestCheckValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		wantOK  bool
		mention []string
	}{
		{
			name:    "good file lists its mapping",
			config:  "# users on the lab network\nalice ns0\n",
			wantOK:  true,
			mention: []string{"alice", "/run/netns/ns0", configPath + ":2"},
		},
		{
			name:    "duplicate user and three fields are named by line",
			config:  "alice ns0\nalice -\nbob ns0 extra\n",
			wantOK:  false,
			mention: []string{configPath + ":2", configPath + ":3"},
		},
	}
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		c.Run(t, "ip", "netns", "add", "ns0")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c.WriteFile(t, configPath, tt.config, 0o644)
				stdout, stderr, err := c.Exec(t.Context(), "netns-session", "check", "--config", configPath)
				assertCheck(t, stdout+stderr, err, tt.wantOK, tt.mention)
			})
		}
	})
}

// TestCheckResolvesGroupFromNSS maps a group that only libnss-extrausers
// knows, so resolving it must go through NSS rather than read /etc/group.
func TestCheckResolvesGroupFromNSS(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		c.WriteFile(t, "/var/lib/extrausers/group", "labx:x:2001:alice\n", 0o644)
		c.Sh(t, `sed -i 's/^group:.*/group: files extrausers/' /etc/nsswitch.conf`)
		if got := strings.TrimSpace(c.Run(t, "id", "-nG", "alice")); !strings.Contains(got, "labx") {
			t.Fatalf("alice's groups = %q: extrausers not in effect", got)
		}
		c.Run(t, "ip", "netns", "add", "ns1")
		c.WriteFile(t, configPath, "@labx ns1\n", 0o644)

		stdout, stderr, err := c.Exec(t.Context(), "netns-session", "check", "--user", "alice", "--config", configPath)
		// The rule line names the selector, the namespace and the line.
		assertCheck(t, stdout+stderr, err, true, []string{"alice", "@labx ns1 at " + configPath + ":1", "/run/netns/ns1"})
	})
}

// assertCheck checks the outcome of `netns-session check`: its exit status and
// the words its output must contain.
func assertCheck(t *testing.T, output string, err error, wantOK bool, mention []string) {
	t.Helper()
	var exit *exec.ExitError
	switch {
	case wantOK && err != nil:
		t.Errorf("check failed: %v", err)
	case !wantOK && err == nil:
		t.Errorf("check succeeded, want a non-zero exit")
	case !wantOK && !errors.As(err, &exit):
		t.Errorf("check did not run: %v", err)
	}
	for _, word := range mention {
		if !strings.Contains(output, word) {
			t.Errorf("check output does not mention %q", word)
		}
	}
	if t.Failed() {
		t.Logf("check output:\n%s", output)
	}
}
