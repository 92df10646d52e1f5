package nspawn

// Reload and logs, the way an administrator meets them: systemctl reload
// that says whether the watcher took the config, and the hook's records in
// auth.log and explained by journalctl -x.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The MESSAGE_IDs of cmd/netns-session/log.go that these tests look for.
// They are fixed for good, as catalog(7) wants: a test that spells them
// also catches one changed by mistake.
const (
	deniedMessageID       = "35f72890dedf446ab7f48c969e1f7a54"
	rootFallbackMessageID = "bb9d1bf5419f40f9b57e6c226e3168ba"
	reloadRefusedID       = "3f339301a39147ad84c0cd4930067550"
)

// authpriv is LOG_AUTHPRIV as the journal's SYSLOG_FACILITY field gives it.
const authpriv = "10"

// TestReloadRefusesABrokenConfig: systemctl reload exits with the watcher's
// verdict: 0 once a good config is in force (its drop-ins written by then),
// non-zero for a config with errors, with the reason in systemctl status,
// while the watcher keeps the map it had: a session of a user mapped by it
// is left alone, and an escape of a user it maps is ended as that map says.
func TestReloadRefusesABrokenConfig(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newWatchFixture(t, s, "alice ns0\n", true)
		c := f.c
		restartSSH(t, c)
		pid := c.Run(t, "systemctl", "show", "-p", "MainPID", "--value", watchUnit)

		t.Run("a good config", func(t *testing.T) {
			c.WriteFile(t, configPath, "alice ns0\nbob ns1\n", 0o644)
			if _, stderr, err := c.Exec(t.Context(), "systemctl", "reload", watchUnit); err != nil {
				t.Fatalf("systemctl reload with a good config: %v\n%s", err, stderr)
			}
			// The verdict comes after the sync: no waiting for the drop-in.
			if out, _, err := c.Exec(t.Context(), "cat", dropInPath(1002)); err != nil || !strings.Contains(out, "NetworkNamespacePath=/run/netns/ns1") {
				t.Errorf("bob's drop-in when systemctl reload returned: %v\n%s", err, out)
			}
		})

		release := holdSession(t, c, "alice")
		const broken = "alice ns0\nbob ns0 extra\n"
		t.Run("a broken config", func(t *testing.T) {
			c.WriteFile(t, configPath, broken, 0o644)
			_, stderr, err := c.Exec(t.Context(), "systemctl", "reload", watchUnit)
			if err == nil {
				t.Fatalf("systemctl reload with a broken config succeeded\n%s", stderr)
			}
			status, _, _ := c.Exec(t.Context(), "systemctl", "status", "--no-pager", "--full", "--lines=20", watchUnit)
			for _, want := range []string{
				// The watcher's status line,
				"Status: \"watching logind sessions; reload refused at ",
				"the config loaded before stays in force: " + configPath + ":2: 3 fields",
				// and the line watch --reload printed, in the unit's log.
				"netns-session: reload refused, the config in force stays: " + configPath + ":2: 3 fields",
			} {
				if !strings.Contains(status, want) {
					t.Errorf("systemctl status does not show %q:\n%s", want, status)
				}
			}
			if now := c.Run(t, "systemctl", "show", "-p", "MainPID", "--value", watchUnit); now != pid {
				t.Errorf("the watcher restarted (PID %s, was %s)", strings.TrimSpace(now), strings.TrimSpace(pid))
			}
			rec := waitRecord(t, c, "ACTION=reload-refused")
			if rec["PRIORITY"] != "1" || rec["MESSAGE_ID"] != reloadRefusedID {
				t.Errorf("refusal logged at priority %s with MESSAGE_ID %q, want an alert with %s", rec["PRIORITY"], rec["MESSAGE_ID"], reloadRefusedID)
			}
		})

		t.Run("the old map stays in force", func(t *testing.T) {
			// bob is in ns1 by the map in force, in ns0 by the broken file.
			leader, lived := escape(t, c, "bob", "escape-bob", 5*time.Second)
			assertTerminated(t, f, "bob", leader, lived, f.ns1)
			if got := watchRecords(t, c, "USER=alice", "VERDICT=violation"); len(got) > 0 {
				t.Errorf("alice's session, in ns0 by the map in force, was judged a violation: %v", got)
			}
			release() // fails if the held session was ended
		})

		t.Run("fixed", func(t *testing.T) {
			c.WriteFile(t, configPath, "alice ns0\nbob ns0\n", 0o644)
			if _, stderr, err := c.Exec(t.Context(), "systemctl", "reload", watchUnit); err != nil {
				t.Fatalf("systemctl reload with the config fixed: %v\n%s", err, stderr)
			}
			if status := c.Run(t, "systemctl", "show", "-p", "StatusText", "--value", watchUnit); strings.TrimSpace(status) != "watching logind sessions" {
				t.Errorf("status after a good reload: %q, want the refusal gone", status)
			}
		})
	})
}

// TestAuthLogShowsWhyALoginWasRefused: the hook's records go to authpriv,
// so auth.log shows why a login was refused; a broken config is an alert;
// denials and root's fallback carry their MESSAGE_IDs, which journalctl -x
// explains once the catalog is installed.
func TestAuthLogShowsWhyALoginWasRefused(t *testing.T) {
	catalog, err := os.ReadFile(filepath.Join("..", "..", "catalog", "netns-session.catalog"))
	if err != nil {
		t.Fatal(err)
	}
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		c.Run(t, "ip", "netns", "add", "ns0")
		c.WriteFile(t, configPath, "alice ns0\ndave gone\n", 0o644)
		installHook(t, c)
		c.Run(t, "cp", "/root/.ssh/id_ed25519.pub", "/root/.ssh/authorized_keys")
		restartSSH(t, c)
		// Disabled in the images, so without the syslog.service alias
		// that syslog.socket starts: enabled, as installing it leaves it.
		// It reads what journald forwards to that socket
		// (ForwardToSyslog=yes: Debian's default on bookworm, a drop-in of
		// the rsyslog package on trixie) and writes auth and authpriv to
		// /var/log/auth.log.
		c.Run(t, "systemctl", "enable", "--now", "rsyslog")

		t.Run("a login refused", func(t *testing.T) {
			if got, _, err := sshNetns(t.Context(), c, "dave"); err == nil {
				t.Fatalf("dave, mapped to a namespace that does not exist, got a shell in %s", got)
			}
			rec := waitHookRecord(t, c, "NETNS_SESSION_USER=dave", "NETNS_SESSION_ACTION=deny")
			assertRecord(t, rec, "3", deniedMessageID)
			waitAuthLog(t, c, "session denied: network namespace /run/netns/gone is not available")
		})

		t.Run("a broken config", func(t *testing.T) {
			c.WriteFile(t, configPath, "alice ns0 extra\n", 0o644)
			if got, _, err := sshNetns(t.Context(), c, "bob"); err == nil {
				t.Fatalf("bob got a shell in %s with a broken config", got)
			}
			rec := waitHookRecord(t, c, "NETNS_SESSION_USER=bob", "NETNS_SESSION_ACTION=deny")
			assertRecord(t, rec, "1", deniedMessageID)
			waitAuthLog(t, c, "session denied: the netns-session configuration is broken")

			if _, stderr, err := sshNetns(t.Context(), c, "root"); err != nil {
				t.Fatalf("root with a broken config: %v\n%s", err, stderr)
			}
			// The alert that explains; the record of the session let in
			// after it, at info, has the same action and no MESSAGE_ID.
			rec = waitHookRecord(t, c, "NETNS_SESSION_USER=root", "NETNS_SESSION_ACTION=root-fallback", "PRIORITY=1")
			assertRecord(t, rec, "1", rootFallbackMessageID)
			waitAuthLog(t, c, "config unusable, letting root in on the host network")
		})

		t.Run("journalctl -x explains a denial", func(t *testing.T) {
			c.WriteFile(t, "/usr/lib/systemd/catalog/netns-session.catalog", string(catalog), 0o644)
			c.Run(t, "journalctl", "--update-catalog")
			out := c.Run(t, "journalctl", "--no-pager", "-x", "-t", "netns-session", "MESSAGE_ID="+deniedMessageID, "NETNS_SESSION_USER=dave")
			for _, want := range []string{
				"Subject: Login of dave refused by the netns-session PAM hook",
				"Documentation: man:netns-session(8)",
				"The PAM hook of netns-session refused to open a session of\n",
				"What to do: run `netns-session check`",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("journalctl -x does not show %q:\n%s", want, out)
				}
			}
		})
	})
}

// assertRecord checks the priority, facility and MESSAGE_ID of a record
// of the hook.
func assertRecord(t *testing.T, rec map[string]string, wantPriority, wantID string) {
	t.Helper()
	if rec["PRIORITY"] != wantPriority || rec["SYSLOG_FACILITY"] != authpriv || rec["MESSAGE_ID"] != wantID {
		t.Errorf("record %q: PRIORITY=%s SYSLOG_FACILITY=%s MESSAGE_ID=%s, want %s, %s, %s",
			rec["MESSAGE"], rec["PRIORITY"], rec["SYSLOG_FACILITY"], rec["MESSAGE_ID"], wantPriority, authpriv, wantID)
	}
}

// waitAuthLog waits for a line of netns-session with want in
// /var/log/auth.log, where rsyslog writes what it gets with facility auth
// or authpriv.
func waitAuthLog(t *testing.T, c *Container, want string) {
	t.Helper()
	script := fmt.Sprintf("grep -F ' netns-session[' /var/log/auth.log | grep -qF %q", want)
	if _, _, err := c.Exec(t.Context(), "timeout", "10", "sh", "-c", "until "+script+"; do sleep 0.1; done"); err != nil {
		log, _, _ := c.Exec(t.Context(), "tail", "-n", "20", "/var/log/auth.log")
		t.Errorf("/var/log/auth.log has no line of netns-session saying %q; its end:\n%s", want, log)
	}
}
