package units

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netns-session/netns-session/internal/netns"
)

// fakeSystemd counts what the package asks of systemd.
type fakeSystemd struct {
	mu                        sync.Mutex
	connects, reloads, closes int
	connectErr, reloadErr     error
	onReload                  func()
	// started are the units started, in order.
	started []string
}

func (f *fakeSystemd) connect(ctx context.Context) (Systemd, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connects++
	if f.connectErr != nil {
		return nil, f.connectErr
	}
	return fakeConn{f}, nil
}

func (f *fakeSystemd) counts() (connects, reloads, closes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connects, f.reloads, f.closes
}

func (f *fakeSystemd) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connects, f.reloads, f.closes = 0, 0, 0
	f.connectErr, f.reloadErr = nil, nil
	f.started = nil
}

type fakeConn struct{ f *fakeSystemd }

func (c fakeConn) ReloadContext(ctx context.Context) error {
	if c.f.onReload != nil {
		c.f.onReload()
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if c.f.reloadErr != nil {
		return c.f.reloadErr
	}
	c.f.reloads++
	return nil
}

func (c fakeConn) StartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.f.started = append(c.f.started, name+" "+mode)
	return len(c.f.started), nil
}

func (f *fakeSystemd) startedUnits() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.started)
}

func (c fakeConn) Close() {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.f.closes++
}

// testManager returns a Manager whose paths are all under a temporary
// directory; booted says whether its SystemDir exists.
func testManager(t testing.TB, booted bool) (*Manager, *fakeSystemd) {
	t.Helper()
	root := t.TempDir()
	m := &Manager{
		SystemDir:  filepath.Join(root, "run/systemd/system"),
		CgroupRoot: filepath.Join(root, "sys/fs/cgroup"),
		ProcRoot:   filepath.Join(root, "proc"),
		LockDir:    filepath.Join(root, "run/netns-session"),
	}
	if booted {
		if err := os.MkdirAll(m.SystemDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := &fakeSystemd{}
	m.Connect = f.connect
	return m, f
}

// ensure locks uid, ensures its drop-in and unlocks, as a login does.
func ensure(t testing.TB, m *Manager, user string, uid uint32, nsPath string, mounts ...Mount) (bool, error) {
	t.Helper()
	l, err := m.Lock(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	return l.Ensure(context.Background(), user, uid, nsPath, mounts...)
}

func remove(t testing.TB, m *Manager, uid uint32) (bool, error) {
	t.Helper()
	l, err := m.Lock(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	return l.Remove(context.Background(), uid)
}

func mustStat(t testing.TB, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func TestAppendDropIn(t *testing.T) {
	tests := []struct {
		name   string
		user   string
		uid    uint32
		nsPath string
		mounts []Mount
		want   string
	}{
		{
			name:   "plain",
			user:   "alice",
			uid:    1001,
			nsPath: "/run/netns/ns0",
			want: "# Written by netns-session for user alice (uid 1001); do not edit:\n" +
				"# regenerated at login and by \"netns-session sync\".\n" +
				"[Service]\n" +
				"NetworkNamespacePath=/run/netns/ns0\n",
		},
		{
			name:   "percent is escaped from specifier expansion",
			user:   "bob",
			uid:    7,
			nsPath: "/run/netns/100%u",
			want: "# Written by netns-session for user bob (uid 7); do not edit:\n" +
				"# regenerated at login and by \"netns-session sync\".\n" +
				"[Service]\n" +
				"NetworkNamespacePath=/run/netns/100%%u\n",
		},
		{
			name:   "control characters in the user name cannot inject settings",
			user:   "eve\n[Service]\nUser=root\r",
			uid:    1002,
			nsPath: "/run/netns/ns0",
			want: "# Written by netns-session for user eve?[Service]?User=root? (uid 1002); do not edit:\n" +
				"# regenerated at login and by \"netns-session sync\".\n" +
				"[Service]\n" +
				"NetworkNamespacePath=/run/netns/ns0\n",
		},
		{
			name:   "the mounts of a namespace's /etc directory follow, in order",
			user:   "alice",
			uid:    1001,
			nsPath: "/run/netns/ns0",
			mounts: []Mount{
				{Source: "/etc/netns/ns0/hosts", Target: "/etc/hosts"},
				{Source: "/run/netns-session/shadow/ns0/run/systemd/resolve", Target: "/run/systemd/resolve", ReadOnly: true},
				{Source: "/etc/netns/50%/hosts", Target: "/etc/hosts"},
			},
			want: "# Written by netns-session for user alice (uid 1001); do not edit:\n" +
				"# regenerated at login and by \"netns-session sync\".\n" +
				"[Service]\n" +
				"NetworkNamespacePath=/run/netns/ns0\n" +
				"BindPaths=/etc/netns/ns0/hosts:/etc/hosts\n" +
				"BindReadOnlyPaths=/run/netns-session/shadow/ns0/run/systemd/resolve:/run/systemd/resolve\n" +
				"BindPaths=/etc/netns/50%%/hosts:/etc/hosts\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendDropIn(nil, tt.user, tt.uid, tt.nsPath, tt.mounts...)); got != tt.want {
				t.Errorf("appendDropIn() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestEnsure(t *testing.T) {
	const uid = 1001
	tests := []struct {
		name        string
		existing    string // drop-in on disk before; "" for none
		user        string
		nsPath      string
		wantChanged bool
	}{
		{"writes when missing", "", "alice", "/run/netns/ns0", true},
		{"leaves an identical drop-in alone", string(appendDropIn(nil, "alice", uid, "/run/netns/ns0")), "alice", "/run/netns/ns0", false},
		{"rewrites when the namespace changes", string(appendDropIn(nil, "alice", uid, "/run/netns/ns0")), "alice", "/run/netns/ns1", true},
		// useradd -o, a case-insensitive directory, a renamed user: one
		// drop-in per uid, not rewritten for its comment.
		{"leaves the drop-in written under another name of the uid alone", string(appendDropIn(nil, "alice", uid, "/run/netns/ns0")), "alias2", "/run/netns/ns0", false},
		{"leaves it alone for a name with (uid in it", string(appendDropIn(nil, "a (uid 7); b", uid, "/run/netns/ns0")), "alice", "/run/netns/ns0", false},
		{"rewrites a header with another uid", string(appendDropIn(nil, "alice", uid+1, "/run/netns/ns0")), "alice", "/run/netns/ns0", true},
		{"rewrites when the header is not ours", strings.Replace(string(appendDropIn(nil, "alice", uid, "/run/netns/ns0")), "# Written", "# Hand-written", 1), "alice", "/run/netns/ns0", true},
		{"rewrites a longer file with the same start", string(appendDropIn(nil, "alice", uid, "/run/netns/ns0")) + "DNS=1.1.1.1\n", "alice", "/run/netns/ns0", true},
		{"rewrites a foreign file", "garbage", "alice", "/run/netns/ns0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, sd := testManager(t, true)
			path := m.DropInPath(uid)
			var before *syscall.Stat_t
			if tt.existing != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.existing), 0o644); err != nil {
					t.Fatal(err)
				}
				old := time.Now().Add(-time.Hour)
				if err := os.Chtimes(path, old, old); err != nil {
					t.Fatal(err)
				}
				before = mustStat(t, path)
			}

			matches, err := m.DropInMatches(uid, tt.user, tt.nsPath)
			if err != nil || matches == tt.wantChanged {
				t.Errorf("DropInMatches() = %v, %v before Ensure; want %v", matches, err, !tt.wantChanged)
			}
			changed, err := ensure(t, m, tt.user, uid, tt.nsPath)
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := appendDropIn(nil, tt.user, uid, tt.nsPath)
			if !tt.wantChanged {
				want = []byte(tt.existing)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("drop-in =\n%s\nwant\n%s", got, want)
			}
			connects, reloads, closes := sd.counts()
			wantReloads := 0
			if tt.wantChanged {
				wantReloads = 1
			}
			if reloads != wantReloads || connects != wantReloads || closes != connects {
				t.Errorf("connects/reloads/closes = %d/%d/%d, want %d/%d/%d", connects, reloads, closes, wantReloads, wantReloads, wantReloads)
			}
			after := mustStat(t, path)
			if !tt.wantChanged && (after.Ino != before.Ino || after.Mtim != before.Mtim) {
				t.Errorf("unchanged drop-in was rewritten: inode %d -> %d, mtime %v -> %v", before.Ino, after.Ino, before.Mtim, after.Mtim)
			}
			if tt.wantChanged && after.Mode&0o777 != 0o644 {
				t.Errorf("drop-in mode = %o, want 644", after.Mode&0o777)
			}
			if mode := mustStat(t, filepath.Dir(path)).Mode & 0o777; mode != 0o755 {
				t.Errorf("drop-in directory mode = %o, want 755", mode)
			}
			if mode := mustStat(t, m.LockDir).Mode & 0o777; mode != 0o700 {
				t.Errorf("lock directory mode = %o, want 700", mode)
			}
		})
	}
}

func TestEnsureIgnoresUmask(t *testing.T) {
	m, _ := testManager(t, true)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	if _, err := ensure(t, m, "alice", 1001, "/run/netns/ns0"); err != nil {
		t.Fatal(err)
	}
	if mode := mustStat(t, m.DropInPath(1001)).Mode & 0o777; mode != 0o644 {
		t.Errorf("drop-in mode = %o, want 644", mode)
	}
	if mode := mustStat(t, filepath.Dir(m.DropInPath(1001))).Mode & 0o777; mode != 0o755 {
		t.Errorf("drop-in directory mode = %o, want 755", mode)
	}
}

func TestEnsureWithoutSystemd(t *testing.T) {
	m, sd := testManager(t, false)
	changed, err := ensure(t, m, "alice", 1001, "/run/netns/ns0")
	if !errors.Is(err, ErrNoSystemd) {
		t.Fatalf("Ensure error = %v, want ErrNoSystemd", err)
	}
	if changed {
		t.Error("changed = true without systemd")
	}
	if _, err := os.Stat(m.SystemDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Ensure created %s, which would make the host look booted with systemd: %v", m.SystemDir, err)
	}
	if connects, _, _ := sd.counts(); connects != 0 {
		t.Errorf("connected %d times to a systemd that is not there", connects)
	}
	if m.SystemdBooted() {
		t.Error("SystemdBooted() = true without SystemDir")
	}
}

func TestSystemdBootedIsDecidedOnce(t *testing.T) {
	m, _ := testManager(t, false)
	if m.SystemdBooted() {
		t.Fatal("SystemdBooted() = true without SystemDir")
	}
	if err := os.MkdirAll(m.SystemDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if m.SystemdBooted() {
		t.Error("SystemdBooted() changed its answer within one Manager: it looked again")
	}
}

func TestEnsureRejectsPathsSystemdWouldRead(t *testing.T) {
	for _, nsPath := range []string{
		"",
		"ns0",
		"/run/netns/../netns/ns0",
		"/run/netns/ns0/",
		"/run/netns//ns0",
		"/run/netns/ns0 ",
		"/run/netns/ns0\nUser=root",
		"/run/netns/ns\x7f",
	} {
		t.Run(nsPath, func(t *testing.T) {
			m, sd := testManager(t, true)
			_, err := ensure(t, m, "alice", 1001, nsPath)
			if !errors.Is(err, ErrInvalidNetnsPath) {
				t.Fatalf("Ensure error = %v, want ErrInvalidNetnsPath", err)
			}
			if _, err := os.Stat(m.DropInPath(1001)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("drop-in written for an invalid path: %v", err)
			}
			if connects, _, _ := sd.counts(); connects != 0 {
				t.Errorf("connected %d times with nothing to reload", connects)
			}
		})
	}
}

func TestEnsureRejectsMountPathsSystemdWouldSplit(t *testing.T) {
	for _, p := range []string{
		"etc/hosts",
		"/etc/../etc/hosts",
		"/etc/my hosts",
		"/etc/a:b",
		"/etc/a\\b",
		"/etc/\"hosts\"",
		"/etc/'hosts'",
		"/etc/hosts\nUser=root",
	} {
		for _, m := range []Mount{{Source: p, Target: "/etc/hosts"}, {Source: "/etc/netns/ns0/hosts", Target: p}} {
			t.Run(fmt.Sprintf("%q:%q", m.Source, m.Target), func(t *testing.T) {
				m0, _ := testManager(t, true)
				_, err := ensure(t, m0, "alice", 1001, "/run/netns/ns0", m)
				if !errors.Is(err, ErrInvalidMountPath) {
					t.Fatalf("Ensure error = %v, want ErrInvalidMountPath", err)
				}
				if _, err := os.Stat(m0.DropInPath(1001)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("drop-in written for an unfit mount path: %v", err)
				}
			})
		}
	}
}

func TestRemove(t *testing.T) {
	const uid = 1001
	tests := []struct {
		name        string
		setup       func(t *testing.T, m *Manager)
		wantChanged bool
		wantDir     bool
	}{
		{
			name:        "no drop-in is a no-op",
			setup:       func(t *testing.T, m *Manager) {},
			wantChanged: false,
			wantDir:     false,
		},
		{
			name: "removes the drop-in and the directory it created",
			setup: func(t *testing.T, m *Manager) {
				if _, err := ensure(t, m, "alice", uid, "/run/netns/ns0"); err != nil {
					t.Fatal(err)
				}
			},
			wantChanged: true,
			wantDir:     false,
		},
		{
			name: "keeps a directory the administrator created",
			setup: func(t *testing.T, m *Manager) {
				if err := os.MkdirAll(filepath.Dir(m.DropInPath(uid)), 0o755); err != nil {
					t.Fatal(err)
				}
				if _, err := ensure(t, m, "alice", uid, "/run/netns/ns0"); err != nil {
					t.Fatal(err)
				}
			},
			wantChanged: true,
			wantDir:     true,
		},
		{
			name: "keeps its directory when other drop-ins are in it",
			setup: func(t *testing.T, m *Manager) {
				if _, err := ensure(t, m, "alice", uid, "/run/netns/ns0"); err != nil {
					t.Fatal(err)
				}
				other := filepath.Join(filepath.Dir(m.DropInPath(uid)), "60-limits.conf")
				if err := os.WriteFile(other, []byte("[Service]\nTasksMax=100\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantChanged: true,
			wantDir:     true,
		},
		{
			name: "removes leftovers of killed writers with the drop-in",
			setup: func(t *testing.T, m *Manager) {
				if _, err := ensure(t, m, "alice", uid, "/run/netns/ns0"); err != nil {
					t.Fatal(err)
				}
				leftover(t, filepath.Dir(m.DropInPath(uid)))
			},
			wantChanged: true,
			wantDir:     false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, sd := testManager(t, true)
			tt.setup(t, m)
			sd.reset()

			changed, err := remove(t, m, uid)
			if err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			connects, reloads, _ := sd.counts()
			if tt.wantChanged && (connects != 1 || reloads != 1) || !tt.wantChanged && connects != 0 {
				t.Errorf("connects/reloads = %d/%d, want one reload only for a change", connects, reloads)
			}
			if _, err := os.Stat(m.DropInPath(uid)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("drop-in still there: %v", err)
			}
			_, err = os.Stat(filepath.Dir(m.DropInPath(uid)))
			if gotDir := err == nil; gotDir != tt.wantDir {
				t.Errorf("drop-in directory exists = %v, want %v", gotDir, tt.wantDir)
			}

			sd.reset()
			if changed, err := remove(t, m, uid); err != nil || changed {
				t.Errorf("second Remove = %v, %v; want false, nil", changed, err)
			}
			if connects, _, _ := sd.counts(); connects != 0 {
				t.Errorf("second Remove connected %d times", connects)
			}
		})
	}
}

// leftover creates the temporary file a writer killed before its rename
// leaves, named the way writeAtomic names them, and returns its path.
func leftover(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, tempPrefix(DropInName)+"*")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("[Service]\nNetworkNamespacePath=/run/netns/half")
	f.Close()
	return f.Name()
}

func TestLeftoverTempFile(t *testing.T) {
	m, sd := testManager(t, true)
	if _, err := ensure(t, m, "alice", 1001, "/run/netns/ns0"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(m.DropInPath(1001))
	stale := leftover(t, dir)
	name := filepath.Base(stale)
	if match, _ := filepath.Match("*.conf", name); match || !strings.HasPrefix(name, ".") {
		t.Fatalf("temporary name %q would be read by systemd as a drop-in", name)
	}

	sd.reset()
	if changed, err := ensure(t, m, "alice", 1001, "/run/netns/ns0"); err != nil || changed {
		t.Fatalf("Ensure with a leftover = %v, %v; want it ignored", changed, err)
	}
	if changed, err := ensure(t, m, "alice", 1001, "/run/netns/ns1"); err != nil || !changed {
		t.Fatalf("Ensure = %v, %v; want a change", changed, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover %s not cleaned by the next write: %v", name, err)
	}
}

func TestFailedReloadIsRetried(t *testing.T) {
	tests := []struct {
		name string
		fail func(sd *fakeSystemd)
	}{
		{"connect fails", func(sd *fakeSystemd) { sd.connectErr = errors.New("no socket") }},
		{"reload fails", func(sd *fakeSystemd) { sd.reloadErr = errors.New("access denied") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, sd := testManager(t, true)
			tt.fail(sd)
			if changed, err := ensure(t, m, "alice", 1001, "/run/netns/ns0"); err == nil || changed {
				t.Fatalf("Ensure = %v, %v; want the reload error", changed, err)
			}

			sd.reset()
			changed, err := ensure(t, m, "alice", 1001, "/run/netns/ns0")
			if err != nil || !changed {
				t.Fatalf("Ensure after a failed reload = %v, %v; want a retried reload", changed, err)
			}
			if _, reloads, _ := sd.counts(); reloads != 1 {
				t.Errorf("reloads = %d, want 1", reloads)
			}

			sd.reset()
			if changed, err := ensure(t, m, "alice", 1001, "/run/netns/ns0"); err != nil || changed {
				t.Errorf("third Ensure = %v, %v; want nothing to do", changed, err)
			}
			if connects, _, _ := sd.counts(); connects != 0 {
				t.Errorf("third Ensure connected %d times", connects)
			}
		})
	}
}

func TestLockHonoursContext(t *testing.T) {
	m, _ := testManager(t, true)
	held, err := m.Lock(context.Background(), 1001)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.Lock(ctx, 1001); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a held UID = %v, want DeadlineExceeded", err)
	}
	other, err := m.Lock(context.Background(), 1002)
	if err != nil {
		t.Fatalf("Lock of another UID: %v", err)
	}
	other.Unlock()

	held.Unlock()
	again, err := m.Lock(context.Background(), 1001)
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	again.Unlock()
	if _, err := held.Ensure(context.Background(), "alice", 1001, "/run/netns/ns0"); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Ensure after Unlock = %v, want ErrNotLocked", err)
	}
}

func TestSet(t *testing.T) {
	m, sd := testManager(t, true)
	if _, err := ensure(t, m, "carol", 1003, "/run/netns/old"); err != nil {
		t.Fatal(err)
	}
	if _, err := ensure(t, m, "dave", 1004, "/run/netns/ns0"); err != nil {
		t.Fatal(err)
	}
	sd.reset()

	var s Set
	s.Ensure("alice", 1001, "/run/netns/ns0")
	s.Ensure("bob", 1002, "/run/netns/ns1")
	s.Ensure("carol", 1003, "/run/netns/ns0")
	s.Ensure("dave", 1004, "/run/netns/ns0")
	s.Remove(1005)
	s.Ensure("eve", 1006, "/run/netns/ns0")
	s.Remove(1006) // the last word for a UID wins

	applied, err := m.Apply(context.Background(), &s)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{1001, 1002, 1003}; !slices.Equal(applied.Reloaded, want) || applied.Started != nil {
		t.Errorf("Apply() = %+v, want reloaded for %v and nothing started", applied, want)
	}
	if connects, reloads, _ := sd.counts(); connects != 1 || reloads != 1 {
		t.Errorf("connects/reloads = %d/%d, want one reload for the batch", connects, reloads)
	}
	uids, err := m.DropInUIDs()
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{1001, 1002, 1003, 1004}; !slices.Equal(uids, want) {
		t.Errorf("DropInUIDs() = %v, want %v", uids, want)
	}

	sd.reset()
	if applied, err := m.Apply(context.Background(), &s); err != nil || applied.Reloaded != nil {
		t.Errorf("second Apply = %+v, %v; want nothing to do", applied, err)
	}
	if connects, _, _ := sd.counts(); connects != 0 {
		t.Errorf("second Apply connected %d times", connects)
	}

	l, err := m.Lock(context.Background(), 1001)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if _, err := l.Apply(context.Background(), &s); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Apply of UIDs the Lock does not hold = %v, want ErrNotLocked", err)
	}
}

func TestDropInUIDsIgnoresOtherUnits(t *testing.T) {
	m, _ := testManager(t, true)
	for _, dir := range []string{"user@.service.d", "user@01001.service.d", "user@x.service.d", "sshd.service.d", "user@1007.service.d"} {
		if err := os.MkdirAll(filepath.Join(m.SystemDir, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(m.SystemDir, dir, DropInName), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(m.DropInPath(1008)), 0o755); err != nil {
		t.Fatal(err)
	}
	uids, err := m.DropInUIDs()
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{1007}; !slices.Equal(uids, want) {
		t.Errorf("DropInUIDs() = %v, want %v", uids, want)
	}
}

func TestUserManagerUID(t *testing.T) {
	tests := []struct {
		name   string
		suffix string
		uid    uint32
		ok     bool
	}{
		{"user@1001.service", ".service", 1001, true},
		{"user@0.service", ".service", 0, true},
		{"user@1001.service.d", ".service.d", 1001, true},
		{"user@01001.service", ".service", 0, false},
		{"user@.service", ".service", 0, false},
		{"user@1001.service.d", ".service", 0, false},
		{"user-runtime-dir@1001.service", ".service", 0, false},
		{"user@4294967296.service", ".service", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+tt.suffix, func(t *testing.T) {
			uid, ok := userManagerUID(tt.name, tt.suffix)
			if uid != tt.uid || ok != tt.ok {
				t.Errorf("userManagerUID(%q, %q) = %d, %v; want %d, %v", tt.name, tt.suffix, uid, ok, tt.uid, tt.ok)
			}
		})
	}
}

func BenchmarkEnsureUnchanged(b *testing.B) {
	m, sd := testManager(b, true)
	ctx := context.Background()
	if _, err := ensure(b, m, "alice", 1001, "/run/netns/ns0"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		l, err := m.Lock(ctx, 1001)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Ensure(ctx, "alice", 1001, "/run/netns/ns0"); err != nil {
			b.Fatal(err)
		}
		l.Unlock()
	}
	if _, reloads, _ := sd.counts(); reloads != 1 {
		b.Fatalf("reloads = %d, want only the first", reloads)
	}
}

func TestOverlayMounts(t *testing.T) {
	tests := []struct {
		name    string
		overlay *netns.Overlay
		want    []Mount
	}{
		{name: "no /etc directory", overlay: nil, want: nil},
		{
			name: "binds read-write, then shadows read-only",
			overlay: &netns.Overlay{
				Name:    "ns0",
				Binds:   []netns.Mount{{Source: "/etc/netns/ns0/hosts", Target: "/etc/hosts"}},
				Shadows: []netns.Mount{{Source: "/run/netns-session/shadow/ns0/run/systemd/resolve", Target: "/run/systemd/resolve"}},
			},
			want: []Mount{
				{Source: "/etc/netns/ns0/hosts", Target: "/etc/hosts"},
				{Source: "/run/netns-session/shadow/ns0/run/systemd/resolve", Target: "/run/systemd/resolve", ReadOnly: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OverlayMounts(tt.overlay); !slices.Equal(got, tt.want) {
				t.Errorf("OverlayMounts() = %v, want %v", got, tt.want)
			}
		})
	}
}
