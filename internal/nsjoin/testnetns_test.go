package nsjoin

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netns-session/netns-session/internal/netns"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and uses ptrace")
	}
}

// newNetns creates a network namespace bound onto a file in a temporary
// directory, without moving the test process into it.
func newNetns(t testing.TB) string {
	t.Helper()
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error)
	go func() {
		// The thread goes back to its namespace before it is unlocked. If
		// it cannot, it stays locked and the runtime retires it with this
		// goroutine (or, for the main thread, parks it for good).
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unsharing: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		mountErr := unix.Mount(src, path, "", unix.MS_BIND, "")
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("returning to the original namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- mountErr
	}()
	if err := <-errc; err != nil {
		t.Fatalf("creating a network namespace at %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", path, err)
		}
	})
	return path
}

// The main goroutine keeps the main thread: a goroutine of newMountNS that
// ran on it would leave it, parked for good, in the test's mount namespace,
// which /proc/PID/ns/mnt of the test process would show from then on.
func init() { runtime.LockOSThread() }

// testMountNS is a mount namespace made for a test, a copy of the test's,
// held by a locked thread of the test process as netns-session's helper holds
// the session's. join names it as JoinParent takes it.
type testMountNS struct {
	join MountJoin
	run  chan func()
}

// newMountNS makes a mount namespace whose mounts are slaves of the test's,
// so that none made in it shows outside; it lives until the test ends.
func newMountNS(t testing.TB) *testMountNS {
	t.Helper()
	requireRoot(t)
	m := &testMountNS{run: make(chan func())}
	errc := make(chan error)
	go func() {
		// Never unlocked: the thread leaves the test's mount namespace for
		// good, and the runtime retires it with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("unsharing: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			errc <- fmt.Errorf("making the mounts slaves: %w", err)
			return
		}
		m.join.Path = fmt.Sprintf("/proc/%d/task/%d/ns/mnt", os.Getpid(), unix.Gettid())
		id, err := netns.PathID(m.join.Path)
		m.join.ID = id
		errc <- err
		if err != nil {
			return
		}
		for fn := range m.run {
			fn()
		}
	}()
	if err := <-errc; err != nil {
		t.Fatalf("creating a mount namespace: %v", err)
	}
	t.Cleanup(func() { close(m.run) })
	return m
}

// do runs fn in the mount namespace.
func (m *testMountNS) do(fn func() error) error {
	errc := make(chan error)
	m.run <- func() { errc <- fn() }
	return <-errc
}
