// Package nspawn owns the end-to-end tests of netns-session: each test boots
// Debian with real systemd, logind and sshd in a systemd-nspawn container, binds
// the freshly built binary in at /usr/sbin/netns-session and drives logins
// inside it.
//
// The suite runs only with NETNS_SESSION_NSPAWN=1, as root (make test-nspawn).
// Images are built with debootstrap once and cached under
// ${NETNS_SESSION_CACHE:-/var/cache/netns-session-test}; every boot gets a
// fresh overlay on top, so tests never see each other's changes.
//
// Test authors use forEachSuite, boot and the methods of Container.
package nspawn

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const (
	gateEnv     = "NETNS_SESSION_NSPAWN"
	cacheEnv    = "NETNS_SESSION_CACHE"
	mirrorEnv   = "NETNS_SESSION_MIRROR"
	skipMessage = "nspawn suite: set NETNS_SESSION_NSPAWN=1 and run as root (make test-nspawn)"

	defaultCache  = "/var/cache/netns-session-test"
	defaultMirror = "http://deb.debian.org/debian"
)

var (
	errNotRoot      = errors.New("nspawn suite: needs root")
	errNspawnExited = errors.New("systemd-nspawn exited")
	errBootTimeout  = errors.New("container not running")
	errDegraded     = errors.New("container booted degraded")
	errNoCgroup     = errors.New("finding own cgroup: no cgroup2 or name=systemd hierarchy mounted")
)

// The state TestMain sets up once per test binary.
var (
	enabled  bool   // NETNS_SESSION_NSPAWN=1
	setupErr error  // a missing prerequisite; every test fails with it
	cacheDir string // images/ and runs/ live here
	runDir   string // this run's binary and overlays, removed at exit
	binary   string // the netns-session under test
	runLock  *os.File
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if os.Getenv(gateEnv) != "1" {
		return m.Run()
	}
	enabled = true
	setupErr = setUp()
	defer removeRun()
	stopOnSignal()
	return m.Run()
}

// removeRun removes what this run created outside its containers.
func removeRun() {
	if runDir == "" {
		return
	}
	if err := removeCgroups(cgroupsOf(filepath.Base(runDir), "")...); err != nil {
		fmt.Fprintf(os.Stderr, "nspawn suite: %v\n", err)
	}
	os.RemoveAll(runDir)
}

// requireHarness skips the test unless the suite is enabled and fails it when
// the suite is enabled but cannot run: a requested end-to-end run that
// silently skips would look green.
func requireHarness(t *testing.T) {
	t.Helper()
	if !enabled {
		t.Skip(skipMessage)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

func setUp() error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	for _, tool := range []string{"systemd-nspawn", "debootstrap", "nsenter", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("nspawn suite: finding %s (make deps installs systemd-container and debootstrap): %w", tool, err)
		}
	}
	cacheDir = os.Getenv(cacheEnv)
	if cacheDir == "" {
		cacheDir = defaultCache
	}
	runs := filepath.Join(cacheDir, "runs")
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", runs, err)
	}
	var err error
	if cgroupRoots, err = findCgroupRoots(); err != nil {
		return err
	}
	if err := sweepStaleCgroups(runs); err != nil {
		return err
	}
	if err := sweepStaleRuns(runs); err != nil {
		return err
	}
	if runDir, err = claimRunDir(runs); err != nil {
		return err
	}
	binary = filepath.Join(runDir, "netns-session")
	return buildBinary(binary)
}

// buildBinary builds the command under test, with build tags, at out. It
// runs `make build`, so the suites test the binary `make install` installs:
// the Makefile is the one place that says how to build it.
func buildBinary(out string, tags ...string) error {
	cmd := exec.Command("make", "--no-print-directory", "build", "BIN="+out, "TAGS="+strings.Join(tags, ","))
	cmd.Dir = "../.." // go test runs in the package directory, tests/nspawn
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building netns-session (tags %q): %w\n%s", tags, err, output)
	}
	return nil
}

// claimRunDir creates this run's directory and holds a lock on it for the
// life of the process, so that sweepStaleRuns in a later or concurrent run
// can tell a live run from a killed one.
func claimRunDir(runs string) (string, error) {
	dir, err := os.MkdirTemp(runs, "run-")
	if err != nil {
		return "", fmt.Errorf("creating run directory: %w", err)
	}
	lock, err := os.Create(filepath.Join(dir, "lock"))
	if err != nil {
		return "", fmt.Errorf("creating run lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	// The descriptor stays open until the process ends: the kernel drops the
	// lock when this process dies, however it dies.
	runLock = lock
	return dir, nil
}

// sweepStaleRuns removes the overlays and binaries of runs that were killed
// before their cleanup ran. A run's containers cannot outlive it (their
// nspawn is PID 1 of a PID namespace that dies with the test binary) and
// their overlay mounts live only in nspawn's mount namespace, so what remains
// is plain directories (and cgroups, see sweepStaleCgroups).
func sweepStaleRuns(runs string) error {
	entries, err := os.ReadDir(runs)
	if err != nil {
		return fmt.Errorf("listing %s: %w", runs, err)
	}
	for _, e := range entries {
		dir := filepath.Join(runs, e.Name())
		if runIsLive(dir) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("removing stale run %s: %w", dir, err)
		}
	}
	return nil
}

func runIsLive(dir string) bool {
	lock, err := os.Open(filepath.Join(dir, "lock"))
	if err != nil {
		return false
	}
	defer lock.Close()
	return syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil
}

// live is every container that is booted or booting, for the signal handler.
var live = struct {
	sync.Mutex
	containers map[*Container]struct{}
}{containers: map[*Container]struct{}{}}

// stopOnSignal tears every container down when the test binary gets ^C or
// SIGTERM, then exits: t.Cleanup does not run on a signal.
func stopOnSignal() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-signals
		fmt.Fprintf(os.Stderr, "nspawn suite: %v: stopping every container\n", sig)
		live.Lock()
		var wg sync.WaitGroup
		for c := range live.containers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.stop()
				if err := c.remove(); err != nil {
					fmt.Fprintf(os.Stderr, "nspawn suite: %v\n", err)
				}
			}()
		}
		wg.Wait()
		removeRun() // still holding live: no container can be created now
		os.Exit(1)
	}()
}
