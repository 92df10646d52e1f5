package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// overlaySetup is a host with resolved's stub, nscd and NetworkManager's
// file (as /etc/resolv.conf.nm's end), and a namespace ns0 that overrides
// all three and /etc/hosts.
var overlaySetup = with(resolvedSetup, tree{
	"etc/hosts":                      "file:127.0.0.1 host",
	"etc/resolv.conf.nm":             "link:../run/NetworkManager/resolv.conf",
	"run/NetworkManager/resolv.conf": "file:nameserver 192.0.2.2",
	"run/nscd/socket":                "file:",
	"etc/netns/ns0/hosts":            "file:127.0.0.1 ns0",
	"etc/netns/ns0/resolv.conf":      "file:nameserver 10.0.0.1",
	"etc/netns/ns0/resolv.conf.nm":   "file:nameserver 10.0.0.2",
})

// wantShadowFiles is what Prepare makes of overlaySetup, as readShadows
// shows it.
var wantShadowFiles = map[string]string{
	"run":                                  "dir",
	"run/NetworkManager":                   "dir",
	"run/NetworkManager/resolv.conf":       "link:$R/etc/netns/ns0/resolv.conf.nm",
	"run/nscd":                             "dir",
	"run/systemd":                          "dir",
	"run/systemd/resolve":                  "dir",
	"run/systemd/resolve/resolv.conf":      "link:$R/etc/netns/ns0/resolv.conf",
	"run/systemd/resolve/stub-resolv.conf": "link:$R/etc/netns/ns0/resolv.conf",
}

// readShadows lists ShadowRoot/ns0 under root, as tree does, failing on
// a directory whose mode is not shadowPerm.
func readShadows(t *testing.T, root string) map[string]string {
	t.Helper()
	dir := root + ShadowRoot + "/ns0"
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel := strings.TrimPrefix(path, dir+"/")
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			files[rel] = "dir"
			if fi.Mode().Perm() != shadowPerm {
				t.Errorf("%s has mode %v, want %#o", rel, fi.Mode().Perm(), shadowPerm)
			}
		case d.Type() == fs.ModeSymlink:
			dest, err := os.Readlink(path)
			if err != nil {
				return err
			}
			files[rel] = "link:" + strings.ReplaceAll(dest, root, "$R")
		default:
			files[rel] = "file"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// loadTestOverlay loads ns0's overlay from the tree under root.
func loadTestOverlay(t testing.TB, root string) *Overlay {
	t.Helper()
	o, err := layout{root}.loadOverlay("ns0")
	if err != nil || o == nil {
		t.Fatalf("loadOverlay() = %v, %v", o, err)
	}
	return o
}

// withUmask runs the test under umask mask, which must not keep the
// shadows from users.
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func TestPrepare(t *testing.T) {
	shadows := ShadowRoot + "/ns0/"
	tests := []struct {
		name   string
		before tree // under the root, besides overlaySetup
	}{
		{name: "nothing there yet"},
		{name: "state directory of the units' locks", before: tree{"run/netns-session/user-1000.lock": "file:"}},
		{
			name: "stale and wrong entries",
			before: tree{
				shadows + "run/systemd/resolve/resolv.conf":        "link:/etc/hosts",
				shadows + "run/systemd/resolve/.resolv.conf.tmp":   "file:",
				shadows + "run/systemd/resolve/io.systemd.Resolve": "file:",
				shadows + "run/systemd/resolve/old/x":              "file:",
				shadows + "run/nscd/socket":                        "link:/run/nscd/socket",
				shadows + "run/resolvconf/resolv.conf":             "link:stale, not mounted, kept",
			},
		},
		{
			name: "a file or symlink where a directory belongs",
			before: tree{
				shadows + "run/systemd":        "file:",
				shadows + "run/NetworkManager": "link:/run/NetworkManager",
				shadows + "run/nscd":           "file:",
			},
		},
		{
			name: "a directory where a symlink belongs",
			before: tree{
				shadows + "run/systemd/resolve/stub-resolv.conf/x": "file:",
				shadows + "run/systemd/resolve/resolv.conf":        "dir",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := testRoot(t, with(overlaySetup, tt.before))
			withUmask(t, 0o077)
			o := loadTestOverlay(t, root)
			if err := o.Prepare(); err != nil {
				t.Fatal(err)
			}
			want := maps.Clone(wantShadowFiles)
			if strings.Contains(tt.name, "stale") {
				// Outside every shadow: no session sees it.
				want["run/resolvconf"] = "dir"
				want["run/resolvconf/resolv.conf"] = "link:stale, not mounted, kept"
			}
			if got := readShadows(t, root); !maps.Equal(got, want) {
				t.Errorf("shadows = %v\nwant %v", got, want)
			}
			for _, m := range o.Shadows {
				if !strings.HasPrefix(m.Source, root+ShadowRoot+"/ns0/") {
					t.Errorf("shadow source %s outside %s", m.Source, root+ShadowRoot+"/ns0")
				}
			}
			if fi, err := os.Stat(root + "/run/netns-session"); err != nil || fi.Mode().Perm()&0o022 != 0 {
				t.Errorf("state directory: %v, %v", fi.Mode(), err)
			}
		})
	}
}

// fileIDs identifies every file under dir by inode and change time.
func fileIDs(t *testing.T, dir string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		ids[path] = fmt.Sprintf("%d %d.%d", st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestPrepareWritesNothingWhenRight(t *testing.T) {
	root := testRoot(t, overlaySetup)
	if err := loadTestOverlay(t, root).Prepare(); err != nil {
		t.Fatal(err)
	}
	before := fileIDs(t, root+"/run/netns-session")
	if err := loadTestOverlay(t, root).Prepare(); err != nil {
		t.Fatal(err)
	}
	if after := fileIDs(t, root+"/run/netns-session"); !maps.Equal(before, after) {
		t.Errorf("a second Prepare changed files:\n%v\nwas\n%v", after, before)
	}
}

func TestPrepareKeepsShadowDirectoriesSessionsHold(t *testing.T) {
	root := testRoot(t, overlaySetup)
	if err := loadTestOverlay(t, root).Prepare(); err != nil {
		t.Fatal(err)
	}
	resolved := root + ShadowRoot + "/ns0/run/systemd/resolve"
	before := fileIDs(t, resolved)[resolved]
	// The host's resolv.conf now leads to resolved's other file, which the
	// plan had linked already, and an entry is gone.
	for _, f := range []string{"etc/resolv.conf", "etc/netns/ns0/resolv.conf.nm"} {
		if err := os.Remove(filepath.Join(root, f)); err != nil {
			t.Fatal(err)
		}
	}
	addFiles(t, root, tree{"etc/resolv.conf": "link:../run/systemd/resolve/resolv.conf"})
	if err := os.WriteFile(resolved+"/extra", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := loadTestOverlay(t, root).Prepare(); err != nil {
		t.Fatal(err)
	}
	if after := fileIDs(t, resolved)[resolved]; after[:strings.IndexByte(after, ' ')] != before[:strings.IndexByte(before, ' ')] {
		t.Errorf("%s was replaced (%s, was %s): sessions that bound it lose the change", resolved, after, before)
	}
	if _, err := os.Lstat(resolved + "/extra"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("extra entry kept: %v", err)
	}
}

func TestPrepareAndCheckRefuseUnsafeDirectories(t *testing.T) {
	tests := []struct {
		name  string
		files tree
		setup func(t *testing.T, root string)
	}{
		{name: "state directory writable by others", files: tree{"run/netns-session": "dir"}, setup: func(t *testing.T, root string) {
			if err := os.Chmod(root+"/run/netns-session", 0o777); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "shadow root a symlink", files: tree{"run/elsewhere": "dir", "run/netns-session/shadow": "link:../elsewhere"}},
		{name: "namespace's directory a file", files: tree{"run/netns-session/shadow/ns0": "file:"}},
		{name: "namespace's directory someone else's", files: tree{"run/netns-session/shadow/ns0": "dir"}, setup: func(t *testing.T, root string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root: gives a directory away")
			}
			if err := os.Chown(root+"/run/netns-session/shadow/ns0", 1234, 1234); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := testRoot(t, with(overlaySetup, tt.files))
			if tt.setup != nil {
				tt.setup(t, root)
			}
			o := loadTestOverlay(t, root)
			if err := o.CheckShadows(); !errors.Is(err, ErrUnsafeShadow) {
				t.Errorf("CheckShadows() = %v, want ErrUnsafeShadow", err)
			}
			if err := o.Prepare(); !errors.Is(err, ErrUnsafeShadow) {
				t.Fatalf("Prepare() = %v, want ErrUnsafeShadow", err)
			}
		})
	}
}

// TestCheckShadowsWritesNothing: shadows not made yet are no error for a
// check, which leaves them to the next login.
func TestCheckShadowsWritesNothing(t *testing.T) {
	root := testRoot(t, overlaySetup)
	if err := loadTestOverlay(t, root).CheckShadows(); err != nil {
		t.Fatalf("CheckShadows() = %v, want nil", err)
	}
	if _, err := os.Lstat(root + "/run/netns-session"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CheckShadows created %s: %v", root+"/run/netns-session", err)
	}
}

func TestPrepareWithoutShadowsWritesNothing(t *testing.T) {
	root := testRoot(t, tree{"etc/hosts": "file:", "etc/netns/ns0/hosts": "file:"})
	if err := loadTestOverlay(t, root).Prepare(); err != nil {
		t.Fatal(err)
	}
	var none *Overlay
	if err := none.Prepare(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(root + "/run/netns-session"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Prepare without shadows created %s: %v", root+"/run/netns-session", err)
	}
}

func TestConcurrentPrepares(t *testing.T) {
	root := testRoot(t, overlaySetup)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := layout{root}.loadOverlay("ns0")
			if err == nil {
				err = o.Prepare()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := readShadows(t, root); !maps.Equal(got, wantShadowFiles) {
		t.Errorf("shadows = %v\nwant %v", got, wantShadowFiles)
	}
}

// BenchmarkLoadOverlayPrepare measures the hot path of a login into a
// namespace with an /etc directory whose shadows are right already.
func BenchmarkLoadOverlayPrepare(b *testing.B) {
	root := testRoot(b, overlaySetup)
	if err := loadTestOverlay(b, root).Prepare(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		o, err := layout{root}.loadOverlay("ns0")
		if err != nil {
			b.Fatal(err)
		}
		if err := o.Prepare(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadOverlayNone measures what a namespace without an /etc
// directory pays.
func BenchmarkLoadOverlayNone(b *testing.B) {
	root := testRoot(b, tree{"etc/hosts": "file:"})
	for b.Loop() {
		if o, err := (layout{root}).loadOverlay("ns0"); o != nil || err != nil {
			b.Fatal(o, err)
		}
	}
}
