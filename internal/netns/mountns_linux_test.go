package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sessionSetup is a host whose resolv.conf leads to resolved's stub, with
// nscd, and a namespace ns0 with its own hosts and resolv.conf.
var sessionSetup = tree{
	"etc/hosts":                              "file:host hosts",
	"etc/resolv.conf":                        "link:../run/systemd/resolve/stub-resolv.conf",
	"run/systemd/resolve/stub-resolv.conf":   "file:host stub",
	"run/systemd/resolve/io.systemd.Resolve": "file:",
	"run/nscd/socket":                        "file:",
	"run/nscd/sub":                           "dir",
	"late":                                   "dir",
	"etc/netns/ns0/hosts":                    "file:ns0 hosts",
	"etc/netns/ns0/resolv.conf":              "file:ns0 resolv",
}

// The veth pair the test network namespace holds.
const vethA, vethB = "nsmnt0", "nsmnt1"

// sharedTestRoot returns a test root holding files that is a mount point
// with shared propagation, as / is on a systemd host: a mount namespace
// built from it whose mounts were not slaves would hand its binds back.
func sharedTestRoot(t testing.TB, files tree) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds mount namespaces")
	}
	root := testRoot(t, files)
	if err := unix.Mount(root, root, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	if err := unix.Mount("", root, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	return root
}

// vethNetns returns a new network namespace holding a veth pair.
func vethNetns(t testing.TB) string {
	t.Helper()
	r := testRegistry(t)
	if _, err := r.Add("mnt"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nsenter", "--net="+r.Path("mnt"), "ip", "link", "add", vethA, "type", "veth", "peer", "name", vethB).CombinedOutput()
	if err != nil {
		t.Fatalf("adding a veth pair: %v: %s", err, out)
	}
	return r.Path("mnt")
}

// newTestMountNS builds ns0's mount namespace from the tree under root.
func newTestMountNS(t testing.TB, root, netnsPath string) *heldMountNS {
	t.Helper()
	o := loadTestOverlay(t, root)
	if err := o.Prepare(); err != nil {
		t.Fatal(err)
	}
	m, err := holdMountNS(o, netnsPath, root+"/etc", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// heldMountNS is a MountNS entered by a thread of its own, which holds it
// until Close, so that the test's other threads can look into it.
type heldMountNS struct {
	*MountNS
	release, exited chan struct{}
}

// holdMountNS enters a mount namespace as EnterMountNS does, with
// afterUnshare, on a thread of its own that ends at Close (or at once, on
// failure).
func holdMountNS(o *Overlay, netnsPath, cwd string, afterUnshare func() error) (*heldMountNS, error) {
	h := &heldMountNS{release: make(chan struct{}), exited: make(chan struct{})}
	built := make(chan error, 1)
	go func() {
		defer close(h.exited)
		onDisposableThread(func() {
			m, err := enterMountNS(o, netnsPath, cwd, afterUnshare)
			h.MountNS = m
			built <- err
			if err == nil {
				<-h.release
			}
		})
	}()
	if err := <-built; err != nil {
		<-h.exited
		return nil, err
	}
	return h, nil
}

// Close lets the thread that holds the namespace exit.
func (h *heldMountNS) Close() {
	close(h.release)
	<-h.exited
}

// onDisposableThread runs fn on an OS thread locked to it that the runtime
// ends when fn returns, so that fn may change what cannot be changed back
// (unshare a namespace, CLONE_FS): no other goroutine will run there.
func onDisposableThread(fn func()) {
	runtime.LockOSThread()
	if unix.Gettid() != unix.Getpid() {
		// Never unlocked: the runtime ends the thread when the goroutine
		// exits.
		fn()
		return
	}
	// The runtime parks the main thread rather than end it, and the main
	// thread is what /proc/PID and /proc/self show. Held here, it cannot
	// be the thread of a new goroutine.
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		fn()
	}()
	<-done
	runtime.UnlockOSThread()
}

// inMountNS runs fn on a thread that joined the mount namespace at path,
// as a session's processes do.
func inMountNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go onDisposableThread(func() {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNS)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("joining %s: %w", path, err)
			return
		}
		errc <- fn()
	})
	return <-errc
}

// readIn reads the file at path as seen in the mount namespace of m.
func readIn(t *testing.T, m *heldMountNS, path string) (string, error) {
	t.Helper()
	var data []byte
	err := inMountNS(m.Path(), func() (err error) {
		data, err = os.ReadFile(path)
		return err
	})
	return string(data), err
}

func readOnHost(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// replaceByRename writes data to path the way resolved and editors do.
func replaceByRename(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".new")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// mountPoints lists the mount points in a mountinfo that lie under dir.
func mountPoints(mountinfo []byte, dir string) []string {
	var points []string
	for line := range strings.Lines(string(mountinfo)) {
		if fields := strings.Fields(line); len(fields) > 4 {
			if p := unescapeMountinfo(fields[4]); isUnder(p, dir) && !slices.Contains(points, p) {
				points = append(points, p)
			}
		}
	}
	slices.Sort(points)
	return points
}

func TestEnterMountNS(t *testing.T) {
	root := sharedTestRoot(t, sessionSetup)
	m := newTestMountNS(t, root, vethNetns(t))

	t.Run("ID is the namespace at Path and not the host's", func(t *testing.T) {
		id, err := PathID(m.Path())
		if err != nil || id != m.ID() {
			t.Errorf("PathID(%s) = %v, %v; want %v", m.Path(), id, err, m.ID())
		}
		if m.ID() == hostMountNS {
			t.Errorf("namespace %v is the host's", m.ID())
		}
	})
	t.Run("bound file seen at its target, host keeps its own", func(t *testing.T) {
		if got, err := readIn(t, m, root+"/etc/hosts"); got != "ns0 hosts" || err != nil {
			t.Errorf("inside: %q, %v; want ns0's file", got, err)
		}
		if got := readOnHost(t, root+"/etc/hosts"); got != "host hosts" {
			t.Errorf("host: %q; want its own file", got)
		}
	})
	t.Run("resolv.conf through resolved's stub is the namespace's", func(t *testing.T) {
		if got, err := readIn(t, m, root+"/etc/resolv.conf"); got != "ns0 resolv" || err != nil {
			t.Errorf("inside: %q, %v; want ns0's file", got, err)
		}
		if got := readOnHost(t, root+"/etc/resolv.conf"); got != "host stub" {
			t.Errorf("host: %q; want resolved's stub", got)
		}
	})
	t.Run("resolver sockets hidden", func(t *testing.T) {
		for _, path := range []string{"/run/systemd/resolve/io.systemd.Resolve", "/run/nscd/socket"} {
			if _, err := readIn(t, m, root+path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s inside: %v; want it hidden", path, err)
			}
		}
	})
	t.Run("shadows are read-only", func(t *testing.T) {
		err := inMountNS(m.Path(), func() error {
			return os.WriteFile(root+"/run/systemd/resolve/x", nil, 0o644)
		})
		if !errors.Is(err, unix.EROFS) {
			t.Errorf("writing into a shadow: %v; want EROFS", err)
		}
	})
	t.Run("host rewrite of the stub by rename changes nothing inside", func(t *testing.T) {
		replaceByRename(t, root+"/run/systemd/resolve/stub-resolv.conf", "host stub, rewritten")
		if got, err := readIn(t, m, root+"/etc/resolv.conf"); got != "ns0 resolv" || err != nil {
			t.Errorf("inside: %q, %v; want ns0's file", got, err)
		}
	})
	t.Run("edit of the namespace's resolv.conf by rename is followed", func(t *testing.T) {
		replaceByRename(t, root+"/etc/netns/ns0/resolv.conf", "ns0 resolv, edited")
		if got, err := readIn(t, m, root+"/etc/resolv.conf"); got != "ns0 resolv, edited" || err != nil {
			t.Errorf("inside: %q, %v; want the edited file", got, err)
		}
	})
	t.Run("host mount made later appears inside", func(t *testing.T) {
		if err := unix.Mount("tmpfs", root+"/late", "tmpfs", 0, ""); err != nil {
			t.Fatal(err)
		}
		defer unix.Unmount(root+"/late", unix.MNT_DETACH)
		if err := os.WriteFile(root+"/late/file", []byte("late"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := readIn(t, m, root+"/late/file"); got != "late" || err != nil {
			t.Errorf("inside: %q, %v; want the host's later mount", got, err)
		}
	})
	t.Run("/sys lists the network namespace's interfaces", func(t *testing.T) {
		var names []string
		err := inMountNS(m.Path(), func() error {
			entries, err := os.ReadDir("/sys/class/net")
			for _, e := range entries {
				names = append(names, e.Name())
			}
			return err
		})
		if want := []string{"lo", vethA, vethB}; err != nil || !slices.Equal(names, want) {
			t.Errorf("/sys/class/net inside: %v, %v; want %v", names, err, want)
		}
		// The links of /sys/class/net lead into /sys/devices, which must
		// show the namespace's devices too.
		err = inMountNS(m.Path(), func() error {
			_, err := os.ReadFile("/sys/class/net/" + vethA + "/address")
			return err
		})
		if err != nil {
			t.Errorf("reading %s's address inside: %v", vethA, err)
		}
		if _, err := os.Stat("/sys/class/net/" + vethA); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("host's /sys shows %s: %v", vethA, err)
		}
	})
	t.Run("/sys keeps its submounts and gains the namespace's devices", func(t *testing.T) {
		host, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		var inside []byte
		if err := inMountNS(m.Path(), func() (err error) {
			inside, err = os.ReadFile("/proc/thread-self/mountinfo")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		hostPoints := mountPoints(host, "/sys")
		if !slices.Contains(hostPoints, "/sys/fs/cgroup") {
			t.Fatalf("host has no /sys/fs/cgroup mount to check: %v", hostPoints)
		}
		want := slices.Compact(slices.Sorted(slices.Values(append(hostPoints, "/sys/class/net", "/sys/devices"))))
		if got := mountPoints(inside, "/sys"); !slices.Equal(got, want) {
			t.Errorf("mounts under /sys inside: %v\nwant the host's and the namespace's devices: %v", got, want)
		}
	})
}

// TestEnterMountNSBindsDirectoryEntriesWithTheirMounts: a directory entry
// of /etc/netns/NAME with a mount inside shows that mount in the session,
// as BindPaths= (recursive) shows it to the user manager.
func TestEnterMountNSBindsDirectoryEntriesWithTheirMounts(t *testing.T) {
	root := sharedTestRoot(t, tree{
		"etc/ssl/certs/host.pem":  "file:host",
		"etc/netns/ns0/ssl/certs": "dir",
	})
	certs := root + "/etc/netns/ns0/ssl/certs"
	if err := unix.Mount("tmpfs", certs, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(certs, unix.MNT_DETACH) })
	if err := os.WriteFile(certs+"/ns0.pem", []byte("ns0"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newTestMountNS(t, root, vethNetns(t))
	if got, err := readIn(t, m, root+"/etc/ssl/certs/ns0.pem"); got != "ns0" || err != nil {
		t.Errorf("inside: %q, %v; want the file of the mount in ns0's directory", got, err)
	}
	if _, err := readIn(t, m, root+"/etc/ssl/certs/host.pem"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("host's file inside: %v; want it covered", err)
	}
	if got := readOnHost(t, root+"/etc/ssl/certs/host.pem"); got != "host" {
		t.Errorf("host: %q; want its own file", got)
	}
}

// hostMountNS is the mount namespace the test process started in, taken
// by the main thread before any test.
var hostMountNS, hostMountNSErr = PathID("/proc/self/ns/mnt")

// threadsOutside returns the threads of the process whose mount
// namespace is not the one it started in.
func threadsOutside(t *testing.T) map[int]ID {
	t.Helper()
	if hostMountNSErr != nil {
		t.Fatal(hostMountNSErr)
	}
	host := hostMountNS
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	outside := map[int]ID{}
	for _, task := range tasks {
		dir := "/proc/self/task/" + task.Name()
		id, err := PathID(dir + "/ns/mnt")
		if errors.Is(err, fs.ErrNotExist) {
			continue // exiting: it has left its namespaces
		}
		if err != nil {
			// One reaped meanwhile fails with EACCES; its directory is
			// gone by now.
			if _, statErr := os.Lstat(dir); errors.Is(statErr, fs.ErrNotExist) {
				continue
			}
			t.Fatal(err)
		}
		if id != host {
			tid, _ := strconv.Atoi(task.Name())
			outside[tid] = id
		}
	}
	return outside
}

// waitAllThreadsHome waits for the threads left in other mount
// namespaces to exit.
func waitAllThreadsHome(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		outside := threadsOutside(t)
		if len(outside) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if id, ok := outside[os.Getpid()]; ok {
				t.Fatalf("the main thread was left in mount namespace %v (threads outside: %v)", id, outside)
			}
			t.Fatalf("threads still in other mount namespaces: %v", outside)
		}
	}
}

func tidOf(t *testing.T, m *heldMountNS) int {
	t.Helper()
	var pid, tid int
	if _, err := fmt.Sscanf(m.Path(), "/proc/%d/task/%d/ns/mnt", &pid, &tid); err != nil || pid != os.Getpid() {
		t.Fatalf("Path() = %s, want a thread of this process", m.Path())
	}
	return tid
}

func TestEnterMountNSLeavesTheRestOfTheProcessAlone(t *testing.T) {
	root := sharedTestRoot(t, sessionSetup)
	netnsPath := vethNetns(t)
	o := loadTestOverlay(t, root)
	if err := o.Prepare(); err != nil {
		t.Fatal(err)
	}
	waitAllThreadsHome(t)
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rootBefore, err := statRoot()
	if err != nil {
		t.Fatal(err)
	}

	const n = 8
	built := make([]*heldMountNS, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			built[i], errs[i] = holdMountNS(o, netnsPath, "/", nil)
		}()
	}
	wg.Wait()
	holders := map[int]ID{}
	for i, m := range built {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		holders[tidOf(t, m)] = m.ID()
	}
	if outside := threadsOutside(t); !mapsEqual(outside, holders) {
		t.Errorf("threads in other mount namespaces: %v; want only the %d holders %v", outside, n, holders)
	}
	if now, _ := os.Getwd(); now != cwd {
		t.Errorf("working directory changed to %s, was %s", now, cwd)
	}
	if now, _ := statRoot(); now != rootBefore {
		t.Errorf("root changed to %+v, was %+v", now, rootBefore)
	}
	if got := readOnHost(t, root+"/etc/hosts"); got != "host hosts" {
		t.Errorf("host sees %q at its hosts file", got)
	}
	for _, m := range built {
		m.Close()
	}
	waitAllThreadsHome(t)
}

func mapsEqual(a, b map[int]ID) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestEnterMountNSFailureLeavesNothing(t *testing.T) {
	root := sharedTestRoot(t, sessionSetup)
	netnsPath := vethNetns(t)
	prepared := loadTestOverlay(t, root)
	if err := prepared.Prepare(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		overlay   *Overlay
		netnsPath string
		cwd       string
		wantErr   string
		wantIs    error
	}{
		{
			name:    "bind source missing",
			overlay: &Overlay{Binds: []Mount{{root + "/none", root + "/etc/hosts"}}, Shadows: prepared.Shadows},
			wantErr: "binding " + root + "/none over",
		},
		{
			name:    "shadows not prepared",
			overlay: &Overlay{Binds: prepared.Binds, Shadows: []Mount{{root + "/run/netns-session/shadow/x/run/nscd", root + "/run/nscd"}}},
			wantErr: "binding " + root + "/run/netns-session/shadow/x",
		},
		{name: "not a network namespace", netnsPath: "/proc/self/ns/uts", wantIs: ErrNotNetNamespace},
		{name: "no namespace", netnsPath: root + "/none", wantIs: fs.ErrNotExist},
		{name: "working directory hidden by a shadow", cwd: root + "/run/nscd/sub", wantErr: "entering the working directory", wantIs: fs.ErrNotExist},
		{name: "relative working directory", cwd: "etc", wantErr: "not absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, path, cwd := prepared, netnsPath, "/"
			if tt.overlay != nil {
				o = tt.overlay
			}
			if tt.netnsPath != "" {
				path = tt.netnsPath
			}
			if tt.cwd != "" {
				cwd = tt.cwd
			}
			m, err := holdMountNS(o, path, cwd, nil)
			if err == nil {
				m.Close()
				t.Fatal("EnterMountNS() succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("EnterMountNS() = %v, want an error saying %q (%v)", err, tt.wantErr, tt.wantIs)
			}
			mountinfo, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			if extra := mountPoints(mountinfo, root); len(extra) != 0 {
				t.Errorf("host mounts under the test root: %v", extra)
			}
			if got := readOnHost(t, root+"/etc/hosts"); got != "host hosts" {
				t.Errorf("host sees %q at its hosts file", got)
			}
			waitAllThreadsHome(t)
		})
	}
}

func TestEnterMountNSRefusesChrootedCaller(t *testing.T) {
	root := sharedTestRoot(t, tree{"jail/bin": "dir", "slash": "dir"})
	netnsPath := vethNetns(t)
	tests := []struct {
		name   string
		chroot func() error
		want   error
	}{
		{name: "chroot into a directory", chroot: func() error { return unix.Chroot(root + "/jail") }, want: ErrChrooted},
		{name: "chroot into a bind mount of /", chroot: func() error {
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
				return err
			}
			if err := unix.Mount("/", root+"/slash", "", unix.MS_BIND, ""); err != nil {
				return err
			}
			return unix.Chroot(root + "/slash")
		}, want: ErrChrooted},
		{name: "chroot to / is none", chroot: func() error { return unix.Chroot("/") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := holdMountNS(nil, netnsPath, "/", tt.chroot)
			if err == nil {
				m.Close()
			}
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("EnterMountNS() = %v, want %v", err, tt.want)
			}
			waitAllThreadsHome(t)
		})
	}
}

// BenchmarkEnterMountNS measures building a session's mount namespace with
// ns0's overlay (a bind and two shadows), here on a thread made and ended
// each time; the hook builds on the thread it already runs on.
func BenchmarkEnterMountNS(b *testing.B) {
	root := sharedTestRoot(b, sessionSetup)
	netnsPath := vethNetns(b)
	o := loadTestOverlay(b, root)
	if err := o.Prepare(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		m, err := holdMountNS(o, netnsPath, "/", nil)
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in a path of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
