package nspawn

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// maxExposure is the highest "Overall exposure level" systemd-analyze
// security may give the units that run for every boot and every login:
// the watcher and the boot-time sync.
const maxExposure = 3.0

var exposureLine = regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`)

// exposure returns the overall exposure level systemd-analyze security
// gives unit in c, the running system's view of the unit as loaded.
func exposure(t *testing.T, c *Container, unit string) float64 {
	t.Helper()
	out, stderr, err := c.Exec(t.Context(), "systemd-analyze", "security", "--no-pager", unit)
	m := exposureLine.FindStringSubmatch(out + stderr)
	if m == nil {
		t.Fatalf("systemd-analyze security %s: no overall exposure level (%v)\n%s%s", unit, err, out, stderr)
	}
	level, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("systemd-analyze security %s: parsing %q: %v", unit, m[0], err)
	}
	return level
}

// TestUnitsVerifyCleanAndExposeAtMost3: the shipped units load without a
// complaint from systemd-analyze verify, and the sandboxes of the watcher
// and the boot-time sync keep their exposure at or below maxExposure, as
// systemd of each suite scores it. The namespace unit's score, which its
// job keeps higher, is logged.
func TestUnitsVerifyCleanAndExposeAtMost3(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		installUnits(t, c, netnsUnit, syncUnit, watchUnit)

		t.Run("systemd-analyze verify is clean", func(t *testing.T) {
			verifyUnits(t, c, unitDir+"/"+watchUnit, unitDir+"/"+syncUnit, unitDir+"/netns-session-netns@ns0.service")
		})
		for _, unit := range []string{watchUnit, syncUnit} {
			t.Run(unit+" exposure at most 3.0", func(t *testing.T) {
				level := exposure(t, c, unit)
				t.Logf("%s (%s): exposure %.1f", unit, s.Name, level)
				if level > maxExposure {
					out, _, _ := c.Exec(t.Context(), "systemd-analyze", "security", "--no-pager", unit)
					t.Errorf("%s: exposure %.1f, want at most %.1f\n%s", unit, level, maxExposure, out)
				}
			})
		}
		t.Logf("netns-session-netns@ns0.service (%s): exposure %.1f", s.Name, exposure(t, c, "netns-session-netns@ns0.service"))
	})
}

// sandboxProbe is a drop-in for the sync unit and the watcher that tries,
// from the unit's sandbox, to write in /run/netns-session, which the unit
// owns, and in /run, which it must not write.
const sandboxProbe = `[Service]
ExecStartPost=-/bin/touch /run/netns-session/%N.probe
ExecStartPost=-/bin/touch /run/%N.probe
`

// TestUnitsDoTheirJobSandboxed: from their sandboxes, the namespace unit
// makes a namespace the host sees, the sync unit writes a user's drop-in
// and the shadow directory of the namespace's /etc (under
// /run/netns-session, which a fresh boot does not have), and the watcher
// starts and syncs the same; neither of those two can write elsewhere in
// /run.
func TestUnitsDoTheirJobSandboxed(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		for _, unit := range []string{syncUnit, watchUnit} {
			c.WriteFile(t, "/etc/systemd/system/"+unit+".d/50-probe.conf", sandboxProbe, 0o644)
		}
		installUnits(t, c, netnsUnit, syncUnit, watchUnit)
		// A resolv.conf the host keeps under /run, and one of ns0's own:
		// ns0's sessions see theirs through a shadow of /run/resolver.
		c.Sh(t, `set -e
mkdir -p /run/resolver /etc/netns/ns0
echo 'nameserver 192.0.2.1' > /run/resolver/resolv.conf
ln -sfn ../run/resolver/resolv.conf /etc/resolv.conf
echo 'nameserver 192.0.2.53' > /etc/netns/ns0/resolv.conf
rm -rf /run/netns-session`)
		c.WriteFile(t, configPath, "alice ns0\n", 0o644)

		c.Run(t, "systemctl", "start", "netns-session-netns@ns0.service")
		assertNetns(t, c, "ns0")

		if _, stderr, err := c.Exec(t.Context(), "systemctl", "start", syncUnit); err != nil {
			log, _, _ := c.Exec(t.Context(), "journalctl", "-b", "-o", "cat", "--no-pager", "-u", syncUnit)
			t.Fatalf("starting %s: %v\n%s\nits log:\n%s", syncUnit, err, stderr, log)
		}
		const dropIn = "/run/systemd/system/user@1001.service.d/50-netns-session.conf"
		if out := c.Run(t, "cat", dropIn); !strings.Contains(out, "/run/netns/ns0") {
			t.Errorf("%s after the sync unit does not name ns0:\n%s", dropIn, out)
		}
		shadowed := c.Run(t, "find", "/run/netns-session/shadow/ns0", "-name", "resolv.conf", "-type", "l", "-lname", "/etc/netns/ns0/resolv.conf")
		if strings.TrimSpace(shadowed) == "" {
			listing, _, _ := c.Exec(t.Context(), "ls", "-laR", "/run/netns-session")
			t.Errorf("the sync unit wrote no shadow of /run/resolver with ns0's resolv.conf:\n%s", listing)
		}

		// The watcher syncs at start, in its own sandbox, over the same
		// directories.
		c.Run(t, "rm", "-rf", "/run/netns-session/shadow", dropIn)
		c.Run(t, "systemctl", "start", watchUnit)
		waitFor(t, c, "the watcher's sync to write alice's drop-in and ns0's shadow", "test -e "+dropIn+
			" && find /run/netns-session/shadow/ns0 -name resolv.conf -type l | grep -q .")
		if state := strings.TrimSpace(c.Run(t, "systemctl", "show", "-P", "ActiveState", watchUnit)); state != "active" {
			t.Errorf("%s is %s", watchUnit, state)
		}

		for _, unit := range []string{syncUnit, watchUnit} {
			name := strings.TrimSuffix(unit, ".service")
			if _, _, err := c.Exec(t.Context(), "test", "-e", "/run/netns-session/"+name+".probe"); err != nil {
				t.Errorf("the probe of %s did not run, or could not write in /run/netns-session", unit)
			}
			if _, _, err := c.Exec(t.Context(), "test", "-e", "/run/"+name+".probe"); err == nil {
				t.Errorf("%s can write in /run, outside what it owns", unit)
			}
		}
	})
}

// TestTrixieGoBuildsModule: the module builds, and vets, with Debian
// trixie's packaged Go (golang-1.24-go, /usr/lib/go-1.24/bin/go) and no
// other toolchain (GOTOOLCHAIN=local), offline, from the host's module
// cache. Only trixie packages Go 1.24: bookworm's golang is 1.19.
func TestTrixieGoBuildsModule(t *testing.T) {
	requireHarness(t)
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	// The container has no network: everything the build and vet need must
	// be in the cache it is given.
	download := exec.CommandContext(t.Context(), "go", "mod", "download")
	download.Dir = repo
	if out, err := download.CombinedOutput(); err != nil {
		t.Fatalf("go mod download on the host: %v\n%s", err, out)
	}
	modCache, err := exec.CommandContext(t.Context(), "go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE on the host: %v", err)
	}

	c := bootWith(t, Suite{Name: "trixie"}, bootOptions{bindRO: []string{
		repo + ":/src", strings.TrimSpace(string(modCache)) + ":/gomodcache",
	}})
	// -buildvcs=false: the checkout is a git worktree, and the image has no
	// git to stamp the binary with.
	const env = `export GOMODCACHE=/gomodcache GOFLAGS='-mod=mod -buildvcs=false' GOPROXY=off GOTOOLCHAIN=local
export GOCACHE=/var/tmp/gocache GOPATH=/var/tmp/gopath
cd /src
`
	const goBin = "/usr/lib/go-1.24/bin/go"
	if v := c.Sh(t, env+goBin+" version"); !strings.Contains(v, "go version go1.24") {
		t.Fatalf("%s version = %q, want go1.24", goBin, v)
	}
	// Go turns cgo off where it finds no C compiler, and the module needs
	// cgo (internal/userdb).
	if cgo := strings.TrimSpace(c.Sh(t, env+goBin+" env CGO_ENABLED")); cgo != "1" {
		t.Fatalf("cgo is off (CGO_ENABLED=%s) with %s: the image lacks gcc or libc6-dev, which golang-1.24-go recommends", cgo, goBin)
	}
	for _, step := range []string{goBin + " build -o /var/tmp/netns-session ./cmd/netns-session", goBin + " vet ./..."} {
		began := time.Now()
		if out, stderr, err := c.Exec(t.Context(), "/bin/bash", "-c", env+step); err != nil {
			t.Fatalf("%s: %v\n%s%s", step, err, out, stderr)
		}
		t.Logf("%s: %v", step, time.Since(began).Round(100*time.Millisecond))
	}
	if out := c.Run(t, "/var/tmp/netns-session", "--version"); !strings.Contains(out, "netns-session") {
		t.Errorf("the binary built with Go 1.24 says %q", out)
	}
	if info := c.Sh(t, goBin+" version /var/tmp/netns-session"); !strings.Contains(info, "go1.24") {
		t.Errorf("the binary was not built by Go 1.24: %s", info)
	}
}
