package nspawn

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dropInPath is where netns-session places user@UID.service.
func dropInPath(uid int) string {
	return fmt.Sprintf("/run/systemd/system/user@%d.service.d/50-netns-session.conf", uid)
}

// reloadsLogged counts the reloads of PID 1 once journald has read all
// that was sent to it: the reload a command just made may still be queued.
func reloadsLogged(t *testing.T, c *Container) int {
	t.Helper()
	c.Run(t, "journalctl", "--sync")
	return reloads(t, c)
}

// managerNetns returns what systemd will give user@UID.service as its
// network namespace.
func managerNetns(t *testing.T, c *Container, uid int) string {
	t.Helper()
	return strings.TrimSpace(c.Run(t, "systemctl", "show", "--value", "-p", "NetworkNamespacePath", fmt.Sprintf("user@%d.service", uid)))
}

// syncSetup maps alice by name and bob through group lab to ns0, and leaves
// carol, unmapped, with the drop-in of an older policy.
func syncSetup(t *testing.T, c *Container) {
	t.Helper()
	c.Run(t, "netns-session", "netns", "add", "ns0")
	c.Run(t, "groupadd", "lab")
	c.Run(t, "usermod", "-aG", "lab", "bob")
	c.WriteFile(t, configPath, "alice ns0\n@lab  ns0\n", 0o644)
	c.WriteFile(t, dropInPath(1003), "[Service]\nNetworkNamespacePath=/run/netns/old\n", 0o644)
	c.Run(t, "systemctl", "daemon-reload")
}

func TestSyncWritesAndRemovesDropIns(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		syncSetup(t, c)

		before := reloadsLogged(t, c)
		out := c.Run(t, "netns-session", "sync")
		for _, want := range []string{"write", "alice (uid 1001)", "bob (uid 1002)", "remove", "carol (uid 1003)", "systemd reloaded"} {
			if !strings.Contains(out, want) {
				t.Errorf("sync output lacks %q:\n%s", want, out)
			}
		}
		if n := reloadsLogged(t, c) - before; n != 1 {
			t.Errorf("sync reloaded systemd %d times, want once", n)
		}
		for uid, want := range map[int]string{1001: "/run/netns/ns0", 1002: "/run/netns/ns0", 1003: "", 1004: ""} {
			if got := managerNetns(t, c, uid); got != want {
				t.Errorf("user@%d.service NetworkNamespacePath = %q, want %q", uid, got, want)
			}
		}
		if _, _, err := c.Exec(t.Context(), "test", "-e", dropInPath(1003)); err == nil {
			t.Errorf("carol's stale drop-in is still there")
		}

		before = reloadsLogged(t, c)
		if out := c.Run(t, "netns-session", "sync"); !strings.Contains(out, "nothing to change") {
			t.Errorf("second sync:\n%s\nwant nothing to change", out)
		}
		if n := reloadsLogged(t, c) - before; n != 0 {
			t.Errorf("second sync reloaded systemd %d times, want none", n)
		}

		// Dropping alice's line takes her drop-in away.
		c.WriteFile(t, configPath, "@lab ns0\n", 0o644)
		before = reloadsLogged(t, c)
		c.Run(t, "netns-session", "sync")
		if n := reloadsLogged(t, c) - before; n != 1 {
			t.Errorf("sync after a config change reloaded %d times, want once", n)
		}
		if got := managerNetns(t, c, 1001); got != "" {
			t.Errorf("alice's manager still gets %q after her line was removed", got)
		}
	})
}

func TestSyncDryRunChangesNothing(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		syncSetup(t, c)
		files := func() string {
			return c.Sh(t, "find /run/systemd/system -path '*user@*' -type f -printf '%p %s\n' | sort")
		}
		wantFiles := files()

		before := reloadsLogged(t, c)
		out := c.Run(t, "netns-session", "sync", "--dry-run")
		for _, want := range []string{"would write", "alice (uid 1001)", "would remove", "carol (uid 1003)", "nothing was changed"} {
			if !strings.Contains(out, want) {
				t.Errorf("sync --dry-run output lacks %q:\n%s", want, out)
			}
		}
		if got := files(); got != wantFiles {
			t.Errorf("dry run changed the drop-ins:\n%s\nwas:\n%s", got, wantFiles)
		}
		if n := reloadsLogged(t, c) - before; n != 0 {
			t.Errorf("dry run reloaded systemd %d times", n)
		}
	})
}

// TestSyncAtBootPlacesLingeringManager is the reason for the boot units: a
// lingering user's manager, which logind starts at boot before anyone logs
// in, must start in the user's namespace, which its own unit creates.
func TestSyncAtBootPlacesLingeringManager(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		installUnits(t, c, netnsUnit, syncUnit)
		verifyUnits(t, c, unitDir+"/"+syncUnit, unitDir+"/netns-session-netns@ns0.service")
		c.WriteFile(t, configPath, "alice ns0\n", 0o644)
		// From a unit of the container: logind of systemd 257 refuses
		// callers outside its cgroup tree, as nsenter leaves them.
		c.Run(t, "systemd-run", "--wait", "--pipe", "--quiet", "loginctl", "enable-linger", "alice")
		c.Run(t, "systemctl", "enable", "netns-session-netns@ns0.service", syncUnit)

		c.Reboot(t)

		pid := waitManager(t, c, 1001)
		if got, want := netnsID(t, c, fmt.Sprintf("/proc/%d/ns/net", pid)), netnsID(t, c, "/run/netns/ns0"); got != want {
			t.Errorf("alice's manager (PID %d) runs in %s, want ns0 (%s)", pid, got, want)
		}
		log := c.Run(t, "journalctl", "-b", "-o", "cat", "--no-pager", "-u", "netns-session-netns@ns0.service")
		if !strings.Contains(log, "created network namespace ns0") {
			t.Errorf("ns0 was not created by its unit; its log:\n%s", log)
		}
		if log := c.Run(t, "journalctl", "-b", "-o", "cat", "--no-pager", "-u", syncUnit); !strings.Contains(log, "alice (uid 1001)") {
			t.Errorf("%s did not write alice's drop-in; its log:\n%s", syncUnit, log)
		}
		if cycles := c.Sh(t, "journalctl -b -o cat --no-pager | grep -i 'ordering cycle' || true"); cycles != "" {
			t.Errorf("ordering cycles at boot:\n%s", cycles)
		}
	})
}

// waitManager waits for user@UID.service to be active and returns its main
// PID: logind starts lingering users' managers while the boot settles.
func waitManager(t *testing.T, c *Container, uid int) int {
	t.Helper()
	unit := fmt.Sprintf("user@%d.service", uid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		state := strings.TrimSpace(c.Run(t, "systemctl", "show", "--value", "-p", "ActiveState", unit))
		if state == "active" {
			pid, err := strconv.Atoi(strings.TrimSpace(c.Run(t, "systemctl", "show", "--value", "-p", "MainPID", unit)))
			if err == nil && pid > 0 {
				return pid
			}
		}
		if time.Now().After(deadline) {
			status, _, _ := c.Exec(t.Context(), "systemctl", "status", "--no-pager", unit)
			t.Fatalf("%s is %s, not active, after 30s:\n%s", unit, state, status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// bootProbe records, once logind has had its go at a lingering user's
// manager, what became of user@1001.service, then clears every failed unit:
// a fail-closed boot is degraded on purpose (the sync and the manager fail),
// and the harness takes a degraded boot for a broken image.
const bootProbe = `[Unit]
Description=Record what logind made of user@1001.service at boot
After=systemd-logind.service netns-session-sync.service

[Service]
Type=oneshot
ExecStart=/bin/bash -c 'for i in $(seq 150); do \
  case $(systemctl show -P ActiveState user@1001.service) in active|failed) break;; esac; sleep 0.2; done; \
  systemctl show -p ActiveState -p ExecMainStatus user@1001.service > /run/boot-probe; \
  systemctl show -p Result netns-session-sync.service >> /run/boot-probe; \
  systemctl reset-failed'

[Install]
WantedBy=multi-user.target
`

// TestSyncAtBootFailsClosed: with a config that does not load, the boot-time
// sync must keep a lingering mapped user's manager from starting, rather
// than let logind start it on the host network; once the config is fixed,
// a sync lets it start in its namespace.
func TestSyncAtBootFailsClosed(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		installUnits(t, c, netnsUnit, syncUnit)
		c.WriteFile(t, unitDir+"/boot-probe.service", bootProbe, 0o644)
		c.WriteFile(t, configPath, "alice ns0\n", 0o644)
		c.Run(t, "systemd-run", "--wait", "--pipe", "--quiet", "loginctl", "enable-linger", "alice")
		c.Run(t, "systemctl", "enable", "netns-session-netns@ns0.service", syncUnit, "boot-probe.service")
		c.WriteFile(t, configPath, "alice ns0\nthis line is broken\n", 0o644)

		c.Reboot(t)

		probe := c.Run(t, "cat", "/run/boot-probe")
		t.Logf("at boot:\n%s", probe)
		if strings.Contains(probe, "ActiveState=active") {
			pid := waitManager(t, c, 1001)
			t.Errorf("alice's manager (PID %d) started at boot with a broken config, in %s (host: %s)", pid,
				netnsID(t, c, fmt.Sprintf("/proc/%d/ns/net", pid)), netnsID(t, c, "/proc/1/ns/net"))
		} else if !strings.Contains(probe, "ExecMainStatus=225") && !strings.Contains(probe, "ActiveState=inactive") {
			t.Errorf("user@1001.service at boot: want failed with 225/NETWORK or inactive:\n%s", probe)
		}
		if !strings.Contains(probe, "Result=exit-code") {
			t.Errorf("%s succeeded with a broken config:\n%s", syncUnit, probe)
		}
		if got := managerNetns(t, c, 1001); got != "/dev/null" {
			t.Errorf("user@1001.service NetworkNamespacePath = %q, want /dev/null", got)
		}

		c.WriteFile(t, configPath, "alice ns0\n", 0o644)
		if out := c.Run(t, "netns-session", "sync"); !strings.Contains(out, "alice (uid 1001)") {
			t.Errorf("sync after the fix did not rewrite alice's drop-in:\n%s", out)
		}
		c.Run(t, "systemctl", "start", "user@1001.service")
		pid := waitManager(t, c, 1001)
		if got, want := netnsID(t, c, fmt.Sprintf("/proc/%d/ns/net", pid)), netnsID(t, c, "/run/netns/ns0"); got != want {
			t.Errorf("alice's manager (PID %d) runs in %s after the fix, want ns0 (%s)", pid, got, want)
		}
	})
}
