package netns

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		desc  string
		name  string
		valid bool
	}{
		{"plain", "ns0", true},
		{"dash", "lab-a", true},
		{"all classes", "Lab_2.b", true},
		{"digits only", "0", true},
		{"NAME_MAX", strings.Repeat("n", 255), true},
		{"empty", "", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"leading dash reads as an option", "-ns", false},
		{"slash", "a/b", false},
		{"escape", "../etc", false},
		{"space", "ns 0", false},
		{"newline", "ns\n0", false},
		{"systemd specifier", "ns%i", false},
		{"systemd escape", "ns\\x2d0", false},
		{"non-ASCII", "n\u015b", false},
		{"longer than NAME_MAX", strings.Repeat("n", 256), false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			err := ValidateName(tt.name)
			if tt.valid && err != nil {
				t.Errorf("ValidateName(%q) = %v, want nil", tt.name, err)
			}
			if !tt.valid && !errors.Is(err, ErrInvalidName) {
				t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", tt.name, err)
			}
		})
	}
}

func TestInvalidNamesTouchNothing(t *testing.T) {
	r := Registry{Dir: filepath.Join(t.TempDir(), "netns")}
	if _, err := r.Add("../escape"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Add(../escape) = %v, want ErrInvalidName", err)
	}
	if _, err := r.Delete(".."); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Delete(..) = %v, want ErrInvalidName", err)
	}
	if _, err := os.Stat(r.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("registry directory created for an invalid name: %v", err)
	}
}

func TestListMissingDirectory(t *testing.T) {
	entries, err := Registry{Dir: filepath.Join(t.TempDir(), "none")}.List()
	if err != nil || len(entries) != 0 {
		t.Errorf("List() = %v, %v; want nothing", entries, err)
	}
}

// testRegistry returns a registry in a temporary directory whose mounts are
// undone when the test ends.
func testRegistry(t testing.TB) Registry {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and mounts")
	}
	r := Registry{Dir: filepath.Join(t.TempDir(), "netns")}
	t.Cleanup(func() {
		entries, _ := os.ReadDir(r.Dir)
		for _, e := range entries {
			unix.Unmount(r.Path(e.Name()), unix.MNT_DETACH)
		}
		unix.Unmount(r.Dir, unix.MNT_DETACH)
	})
	return r
}

func TestAddListDelete(t *testing.T) {
	r := testRegistry(t)

	created, err := r.Add("ns0")
	if err != nil || !created {
		t.Fatalf("Add(ns0) = %v, %v; want created", created, err)
	}
	id, err := CheckNetns(r.Path("ns0"))
	if err != nil {
		t.Fatalf("ns0 is not a network namespace: %v", err)
	}
	if own, _ := PathID("/proc/self/ns/net"); own == id {
		t.Fatal("ns0 is the test's own namespace, not a new one")
	}
	if !isSharedMount(t, r.Dir) {
		t.Errorf("%s is not a shared mount point", r.Dir)
	}
	if !loopbackIsUp(t, r.Path("ns0")) {
		t.Error("loopback of the new namespace is down")
	}

	created, err = r.Add("ns0")
	if err != nil || created {
		t.Fatalf("second Add(ns0) = %v, %v; want an existing namespace", created, err)
	}
	if again, _ := CheckNetns(r.Path("ns0")); again != id {
		t.Errorf("second Add replaced the namespace: %v, was %v", again, id)
	}
	if _, err := r.Add("ns1"); err != nil {
		t.Fatal(err)
	}

	entries, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Name != "ns0" || entries[0].ID != id || entries[0].Err != nil || entries[1].Name != "ns1" {
		t.Errorf("List() = %+v, want ns0 (%v) and ns1", entries, id)
	}

	for _, want := range []bool{true, false} {
		deleted, err := r.Delete("ns0")
		if err != nil || deleted != want {
			t.Errorf("Delete(ns0) = %v, %v; want %v", deleted, err, want)
		}
	}
	if _, err := os.Lstat(r.Path("ns0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ns0 still there after Delete: %v", err)
	}
}

func TestAddBringsUpLoopbackOfExistingNamespace(t *testing.T) {
	r := testRegistry(t)
	if _, err := r.Add("ns0"); err != nil {
		t.Fatal(err)
	}
	err := Do(r.Path("ns0"), func() error {
		return withSocket(t, func(fd int, ifr *unix.Ifreq) error {
			ifr.SetUint16(ifr.Uint16() &^ unix.IFF_UP)
			return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
		})
	})
	if err != nil || loopbackIsUp(t, r.Path("ns0")) {
		t.Fatalf("could not set loopback down: %v", err)
	}
	if created, err := r.Add("ns0"); err != nil || created {
		t.Fatalf("Add(ns0) = %v, %v; want an existing namespace", created, err)
	}
	if !loopbackIsUp(t, r.Path("ns0")) {
		t.Error("Add of an existing namespace left its loopback down")
	}
}

func TestAddRefusesOccupiedName(t *testing.T) {
	r := testRegistry(t)
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.Path("stale"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add("stale"); !errors.Is(err, ErrOccupied) {
		t.Fatalf("Add over a plain file = %v, want ErrOccupied", err)
	}
	entries, err := r.List()
	if err != nil || len(entries) != 1 || !errors.Is(entries[0].Err, ErrNotNamespace) {
		t.Errorf("List() = %+v, %v; want stale flagged as not a namespace", entries, err)
	}
	if deleted, err := r.Delete("stale"); err != nil || !deleted {
		t.Errorf("Delete(stale) = %v, %v; want the leftover removed", deleted, err)
	}
	if created, err := r.Add("stale"); err != nil || !created {
		t.Errorf("Add after Delete = %v, %v; want created", created, err)
	}
}

func TestDoRunsInNamespaceAndComesBack(t *testing.T) {
	r := testRegistry(t)
	if _, err := r.Add("ns0"); err != nil {
		t.Fatal(err)
	}
	want, err := PathID(r.Path("ns0"))
	if err != nil {
		t.Fatal(err)
	}
	own, err := PathID("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var inside ID
	if err := Do(r.Path("ns0"), func() (err error) {
		inside, err = PathID("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside != want {
		t.Errorf("fn ran in %v, want %v", inside, want)
	}
	if now, _ := PathID("/proc/thread-self/ns/net"); now != own {
		t.Errorf("caller's thread moved to %v, was %v", now, own)
	}

	fnRan := false
	err = Do("/proc/self/ns/uts", func() error { fnRan = true; return nil })
	if err == nil || fnRan {
		t.Errorf("Do(uts namespace) = %v, fn ran = %v; want setns refused and fn not run", err, fnRan)
	}
}

func loopbackIsUp(t *testing.T, path string) bool {
	t.Helper()
	up := false
	err := Do(path, func() error {
		return withSocket(t, func(_ int, ifr *unix.Ifreq) error {
			up = ifr.Uint16()&unix.IFF_UP != 0
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return up
}

// withSocket calls fn with a socket of the current thread's namespace and
// the loopback's flags read through it.
func withSocket(t *testing.T, fn func(fd int, ifr *unix.Ifreq) error) error {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := loopbackFlags(fd)
	if err != nil {
		return err
	}
	return fn(fd, ifr)
}

// isSharedMount reports whether dir is a mount point with shared propagation.
func isSharedMount(t *testing.T, dir string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - ...
		fields := strings.Fields(line)
		if len(fields) < 7 || fields[4] != dir {
			continue
		}
		for _, f := range fields[6:] {
			if f == "-" {
				break
			}
			if strings.HasPrefix(f, "shared:") {
				return true
			}
		}
	}
	return false
}
