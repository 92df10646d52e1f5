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
	return waitManagerFor(t, c, uid, 30*time.Second)
}

// waitManagerFor is waitManager waiting up to wait.
func waitManagerFor(t *testing.T, c *Container, uid int, wait time.Duration) int {
	t.Helper()
	unit := fmt.Sprintf("user@%d.service", uid)
	deadline := time.Now().Add(wait)
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
			t.Fatalf("%s is %s, not active, after %v:\n%s", unit, state, wait, status)
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

// lingerProbe records, once logind has had its go at the managers of the
// lingering users dave (1004) and erin (2001, in LDAP), what became of
// them and of the boot-time sync, then clears every failed unit: a boot with
// the directory down is degraded on purpose, and the harness takes a
// degraded boot for a broken image. logind cannot start erin's manager at
// all while it cannot resolve her; the probe gives it 20 s.
const lingerProbe = `[Unit]
Description=Record what logind made of the lingering managers at boot
After=systemd-logind.service netns-session-sync.service

[Service]
Type=oneshot
ExecStart=/bin/bash -c 'settled() { case $(systemctl show -P ActiveState user@$1.service) in active|failed) return 0;; esac; return 1; }; \
  for i in $(seq 100); do settled 1004 && settled 2001 && break; sleep 0.2; done; \
  for uid in 1004 2001; do echo "user@$uid: $(systemctl show -P ActiveState user@$uid.service) $(systemctl show -P ExecMainStatus user@$uid.service)"; done > /run/boot-probe; \
  echo "sync: $(systemctl show -P Result netns-session-sync.service)" >> /run/boot-probe; \
  systemctl reset-failed'

[Install]
WantedBy=multi-user.target
`

// lingeringLDAPUsers are the lingering users of the directory-down tests:
// dave, local but mapped through the LDAP group, and erin, from LDAP.
var lingeringLDAPUsers = []int{1004, ldapUID}

// bootWithDirectoryDown sets up dave and erin as lingering users that
// "@labnet ns0" maps, with the PAM hook, the boot units, and the units in
// extra, enabled; runs sync, unless sync is nil, while the directory is up;
// and reboots with slapd disabled (see rebootWithDirectoryDown).
func bootWithDirectoryDown(t *testing.T, s Suite, sync func(c *Container), extra ...string) *Container {
	t.Helper()
	c := prepareDirectoryDown(t, s, extra...)
	lingerDaveAndErin(t, c)
	sync(c)
	rebootWithDirectoryDown(t, c)
	return c
}

// prepareDirectoryDown boots a container for the directory-down tests:
// dave and erin, whom "@labnet ns0" maps, the PAM hook, and the boot units
// and the units in extra enabled; slapd runs, but is disabled for the next
// boot.
func prepareDirectoryDown(t *testing.T, s Suite, extra ...string) *Container {
	t.Helper()
	c := boot(t, s)
	installUnits(t, c, append([]string{netnsUnit, syncUnit}, extra...)...)
	c.WriteFile(t, unitDir+"/boot-probe.service", lingerProbe, 0o644)
	enableLDAP(t, c)
	verifyUnits(t, c, unitDir+"/"+syncUnit, unitDir+"/netns-session-netns@ns0.service")
	installHook(t, c)
	c.Run(t, "cp", "/root/.ssh/id_ed25519.pub", "/root/.ssh/authorized_keys")
	c.WriteFile(t, configPath, "@"+ldapGroup+" ns0\n", 0o644)
	c.Run(t, "systemctl", "enable", "--now", "netns-session-netns@ns0.service")
	c.Run(t, append([]string{"systemctl", "enable", syncUnit, "boot-probe.service", "nslcd.service"}, extra...)...)
	c.Run(t, "systemctl", "disable", "slapd.service")
	return c
}

// lingerDaveAndErin makes dave and erin linger.
func lingerDaveAndErin(t *testing.T, c *Container) {
	t.Helper()
	c.Run(t, "systemd-run", "--wait", "--pipe", "--quiet", "loginctl", "enable-linger", "dave", ldapUser)
}

// rebootWithDirectoryDown checks that a sync recorded dave and erin as
// lingering users, and reboots with slapd disabled. It asserts what must
// hold while the directory is down: neither manager runs on the host
// network, both are held, and root logs in.
func rebootWithDirectoryDown(t *testing.T, c *Container) {
	t.Helper()
	record, _, err := c.Exec(t.Context(), "cat", "/var/lib/netns-session/lingering")
	if err != nil {
		t.Errorf("no record of lingering users after a sync: %v", err)
	}
	for _, want := range []string{"\n1004 dave\n", fmt.Sprintf("\n%d %s\n", ldapUID, ldapUser)} {
		if !strings.Contains(record, want) {
			t.Errorf("record of lingering users lacks %q:\n%s", strings.TrimSpace(want), record)
		}
	}

	c.Reboot(t)

	probe := c.Run(t, "cat", "/run/boot-probe")
	t.Logf("at boot, with slapd down:\n%s", probe)
	host := netnsID(t, c, "/proc/1/ns/net")
	for _, uid := range lingeringLDAPUsers {
		if strings.Contains(probe, fmt.Sprintf("user@%d: active", uid)) {
			pid := waitManager(t, c, uid)
			if got := netnsID(t, c, fmt.Sprintf("/proc/%d/ns/net", pid)); got == host {
				t.Errorf("user@%d.service (PID %d) started on the host network with the directory down", uid, pid)
			}
		}
		if got := managerNetns(t, c, uid); got != "/dev/null" {
			t.Errorf("user@%d.service NetworkNamespacePath = %q with the directory down, want /dev/null", uid, got)
		}
	}
	if got, stderr, err := sshNetns(t.Context(), c, "root"); err != nil || got != host {
		t.Errorf("root with the directory down: netns %q, err %v, want %s (host)\n%s", got, err, host, stderr)
	}
	log := c.Run(t, "journalctl", "-b", "-o", "cat", "--no-pager", "-u", syncUnit)
	if !strings.Contains(log, "holding the managers of the recorded lingering users") {
		t.Errorf("%s did not hold the recorded users first; its log:\n%s", syncUnit, log)
	}
	if cycles := c.Sh(t, "journalctl -b -o cat --no-pager | grep -i 'ordering cycle' || true"); cycles != "" {
		t.Errorf("ordering cycles at boot:\n%s", cycles)
	}
}

// assertManagersInNs0 waits up to wait for the managers of the lingering
// users to run, and checks that they run in ns0.
func assertManagersInNs0(t *testing.T, c *Container, wait time.Duration) {
	t.Helper()
	ns0 := netnsID(t, c, "/run/netns/ns0")
	for _, uid := range lingeringLDAPUsers {
		pid := waitManagerFor(t, c, uid, wait)
		if got := netnsID(t, c, fmt.Sprintf("/proc/%d/ns/net", pid)); got != ns0 {
			t.Errorf("user@%d.service (PID %d) runs in %s once the directory is back, want ns0 (%s)", uid, pid, got, ns0)
		}
	}
}

// TestBootWithDirectoryDownKeepsLingeringManagersOffTheHost: with the
// directory down at boot, lingering users mapped through an LDAP group - a
// local user (dave) and an LDAP user (erin) - must not get their managers
// started on the host network, root must still log in, and once the
// directory is back a sync brings both managers up in their namespace.
func TestBootWithDirectoryDownKeepsLingeringManagersOffTheHost(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := bootWithDirectoryDown(t, s, func(c *Container) { c.Run(t, "netns-session", "sync") })

		enableLDAP(t, c)
		out := c.Run(t, "netns-session", "sync")
		t.Logf("sync with the directory back:\n%s", out)
		assertManagersInNs0(t, c, 30*time.Second)
	})
}

// TestWatcherStartsHeldManagersWhenTheDirectoryReturns: the watcher, whose
// syncs keep the record too, syncs again while the boot-time sync's errors
// last; starting the directory is then all it takes for the held managers to
// come up in their namespace.
func TestWatcherStartsHeldManagersWhenTheDirectoryReturns(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := bootWithDirectoryDown(t, s, func(c *Container) {
			// The watcher's first sync writes the record, from its sandbox.
			c.Run(t, "systemctl", "start", watchUnit)
		}, watchUnit)

		enableLDAP(t, c)
		// Its tries come at most a minute apart; one may be under way.
		assertManagersInNs0(t, c, 100*time.Second)
		log := c.Run(t, "journalctl", "-b", "-o", "cat", "--no-pager", "-u", watchUnit)
		if !strings.Contains(log, "syncing drop-ins again in") {
			t.Errorf("the watcher did not try its failed sync again; its log:\n%s", log)
		}
	})
}

// TestWatcherRecordsUsersWhoStartLingering: users who start lingering while
// the watcher runs, after its last sync, are recorded within seconds, their
// managers run in their namespace, and a reboot with the directory down
// holds those managers rather than start them on the host network.
func TestWatcherRecordsUsersWhoStartLingering(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := prepareDirectoryDown(t, s, watchUnit)
		c.Run(t, "systemctl", "start", watchUnit)
		lingerDaveAndErin(t, c)
		waitFor(t, c, "the record to list dave and erin", fmt.Sprintf(
			"grep -qx '1004 dave' %[1]s && grep -qx '%[2]d %[3]s' %[1]s", "/var/lib/netns-session/lingering", ldapUID, ldapUser))
		assertManagersInNs0(t, c, 10*time.Second)
		rebootWithDirectoryDown(t, c)
	})
}
