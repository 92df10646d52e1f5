package units

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary run a child role instead of the tests; the
// value is the role, the other settings travel in childEnv+"_*".
const childEnv = "UNITS_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		if err := runChild(role); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild is a login in another process. Its Manager shares the parent's
// directories; its reloads append the namespace on disk at that moment to a
// log, so the parent can check every reload followed a real change.
func runChild(role string) error {
	m := &Manager{
		SystemDir: os.Getenv(childEnv + "_SYSTEM_DIR"),
		LockDir:   os.Getenv(childEnv + "_LOCK_DIR"),
	}
	uid64, err := strconv.ParseUint(os.Getenv(childEnv+"_UID"), 10, 32)
	if err != nil {
		return err
	}
	uid := uint32(uid64)
	paths := strings.Split(os.Getenv(childEnv+"_NETNS"), ",")
	iterations, err := strconv.Atoi(os.Getenv(childEnv + "_ITERATIONS"))
	if err != nil {
		return err
	}
	logPath := os.Getenv(childEnv + "_RELOAD_LOG")
	sd := &fakeSystemd{onReload: func() { logReload(m, uid, logPath) }}
	if role == "hang-in-reload" {
		sd.onReload = func() {
			os.WriteFile(logPath, nil, 0o644)
			select {}
		}
	}
	m.Connect = sd.connect
	for i := range iterations {
		l, err := m.Lock(context.Background(), uid)
		if err != nil {
			return err
		}
		_, err = l.Ensure(context.Background(), "alice", uid, paths[i%len(paths)])
		l.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func logReload(m *Manager, uid uint32, logPath string) {
	data, err := os.ReadFile(m.DropInPath(uid))
	if err != nil {
		panic(err)
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	fmt.Fprintln(f, netnsOf(data))
}

// netnsOf returns the NetworkNamespacePath of a drop-in.
func netnsOf(dropIn []byte) string {
	for line := range strings.Lines(string(dropIn)) {
		if v, ok := strings.CutPrefix(line, "NetworkNamespacePath="); ok {
			return strings.TrimSuffix(v, "\n")
		}
	}
	return ""
}

func startChild(t *testing.T, m *Manager, role string, uid uint32, iterations int, logPath string, paths ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"="+role,
		childEnv+"_SYSTEM_DIR="+m.SystemDir,
		childEnv+"_LOCK_DIR="+m.LockDir,
		childEnv+"_UID="+strconv.FormatUint(uint64(uid), 10),
		childEnv+"_NETNS="+strings.Join(paths, ","),
		childEnv+"_ITERATIONS="+strconv.Itoa(iterations),
		childEnv+"_RELOAD_LOG="+logPath,
	)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// watchDropIns checks, until stop is closed, that every drop-in systemd could
// read at any moment is whole and that no other name in the drop-in directory
// ends in ".conf".
func watchDropIns(t *testing.T, m *Manager, uids []uint32, valid map[string]bool, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, uid := range uids {
				path := m.DropInPath(uid)
				if data, err := os.ReadFile(path); err == nil && !valid[string(data)] {
					t.Errorf("systemd could read a partial or wrong drop-in:\n%s", data)
					return
				}
				entries, _ := os.ReadDir(filepath.Dir(path))
				for _, e := range entries {
					if strings.HasSuffix(e.Name(), ".conf") && e.Name() != DropInName {
						t.Errorf("systemd would read %s as a drop-in", e.Name())
						return
					}
				}
			}
		}
	}()
	return &wg
}

func TestConcurrentEnsureGoroutines(t *testing.T) {
	tests := []struct {
		name        string
		paths       []string
		wantReloads func(calls int) (lo, hi int)
	}{
		{
			name:  "same namespace: one reload per user",
			paths: []string{"/run/netns/ns0"},
			wantReloads: func(int) (int, int) {
				return 1, 1
			},
		},
		{
			name:  "alternating namespaces: at most one reload per call",
			paths: []string{"/run/netns/ns0", "/run/netns/ns1"},
			wantReloads: func(calls int) (int, int) {
				return 1, calls
			},
		},
	}
	uids := []uint32{1001, 1002, 1003}
	const goroutines, iterations = 8, 25
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := testManager(t, true)
			var mu sync.Mutex
			reloads := map[uint32]int{}
			last := map[uint32]string{}
			valid := map[string]bool{}
			for _, uid := range uids {
				for _, p := range tt.paths {
					valid[string(appendDropIn(nil, "alice", uid, p))] = true
				}
			}
			stop := make(chan struct{})
			watcher := watchDropIns(t, m, uids, valid, stop)

			var wg sync.WaitGroup
			for g := range goroutines {
				uid := uids[g%len(uids)]
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range iterations {
						// Each login gets its own fake connection, which
						// records what systemd would have loaded.
						sd := &fakeSystemd{}
						lm := &Manager{SystemDir: m.SystemDir, CgroupRoot: m.CgroupRoot, ProcRoot: m.ProcRoot, LockDir: m.LockDir, Connect: sd.connect}
						sd.onReload = func() {
							data, err := os.ReadFile(m.DropInPath(uid))
							if err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							defer mu.Unlock()
							if ns := netnsOf(data); ns == last[uid] {
								t.Errorf("uid %d reloaded without a change (still %s)", uid, ns)
							} else {
								last[uid] = ns
							}
							reloads[uid]++
						}
						if _, err := ensure(t, lm, "alice", uid, tt.paths[(g+i)%len(tt.paths)]); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(stop)
			watcher.Wait()

			for _, uid := range uids {
				calls := 0
				for g := range goroutines {
					if uids[g%len(uids)] == uid {
						calls += iterations
					}
				}
				lo, hi := tt.wantReloads(calls)
				data, err := os.ReadFile(m.DropInPath(uid))
				if err != nil {
					t.Fatal(err)
				}
				if !valid[string(data)] {
					t.Errorf("final drop-in of uid %d is not whole:\n%s", uid, data)
				}
				if netnsOf(data) != last[uid] {
					t.Errorf("uid %d: last reload saw %s, disk has %s", uid, last[uid], netnsOf(data))
				}
				if n := reloads[uid]; n < lo || n > hi {
					t.Errorf("uid %d: %d reloads, want %d..%d", uid, n, lo, hi)
				}
			}
		})
	}
}

func TestConcurrentEnsureProcesses(t *testing.T) {
	tests := []struct {
		name  string
		paths []string
	}{
		{"same namespace", []string{"/run/netns/ns0"}},
		{"alternating namespaces", []string{"/run/netns/ns0", "/run/netns/ns1"}},
	}
	const processes, iterations, uid = 6, 30, 1001
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := testManager(t, true)
			logPath := filepath.Join(t.TempDir(), "reloads")
			valid := map[string]bool{}
			for _, p := range tt.paths {
				valid[string(appendDropIn(nil, "alice", uid, p))] = true
			}
			stop := make(chan struct{})
			watcher := watchDropIns(t, m, []uint32{uid}, valid, stop)

			var children []*exec.Cmd
			for i := range processes {
				// Rotate the order so that processes disagree.
				paths := append(tt.paths[i%len(tt.paths):], tt.paths[:i%len(tt.paths)]...)
				children = append(children, startChild(t, m, "ensure", uid, iterations, logPath, paths...))
			}
			for _, c := range children {
				if err := c.Wait(); err != nil {
					t.Errorf("child: %v", err)
				}
			}
			close(stop)
			watcher.Wait()

			data, err := os.ReadFile(m.DropInPath(uid))
			if err != nil {
				t.Fatal(err)
			}
			if !valid[string(data)] {
				t.Fatalf("final drop-in is not whole:\n%s", data)
			}
			log, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			reloads := strings.Fields(string(log))
			if len(tt.paths) == 1 && len(reloads) != 1 {
				t.Errorf("%d reloads for one unchanging drop-in, want 1: %v", len(reloads), reloads)
			}
			if len(reloads) < 1 || len(reloads) > processes*iterations {
				t.Errorf("%d reloads, want 1..%d", len(reloads), processes*iterations)
			}
			for i := 1; i < len(reloads); i++ {
				if reloads[i] == reloads[i-1] {
					t.Errorf("reload %d without a change (still %s)", i, reloads[i])
				}
			}
			if got := reloads[len(reloads)-1]; got != netnsOf(data) {
				t.Errorf("last reload saw %s, disk has %s", got, netnsOf(data))
			}
		})
	}
}

// TestKilledBeforeReload kills a login between its rename and its reload:
// the kernel must release its lock, and the next login must reload although
// the drop-in on disk is already the one it wants.
func TestKilledBeforeReload(t *testing.T) {
	m, sd := testManager(t, true)
	const uid = 1001
	inReload := filepath.Join(t.TempDir(), "in-reload")
	child := startChild(t, m, "hang-in-reload", uid, 1, inReload, "/run/netns/ns0")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(inReload); err == nil {
			break
		}
		if time.Now().After(deadline) {
			child.Process.Kill()
			t.Fatal("child never reached its reload")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := m.Lock(ctx, uid)
	if err != nil {
		t.Fatalf("lock of a killed holder not released: %v", err)
	}
	defer l.Unlock()
	if got, _ := os.ReadFile(m.DropInPath(uid)); !bytes.Equal(got, appendDropIn(nil, "alice", uid, "/run/netns/ns0")) {
		t.Fatalf("child did not get as far as its rename; drop-in:\n%s", got)
	}
	changed, err := l.Ensure(ctx, "alice", uid, "/run/netns/ns0")
	if err != nil || !changed {
		t.Fatalf("Ensure after a killed reload = %v, %v; want the reload done now", changed, err)
	}
	if _, reloads, _ := sd.counts(); reloads != 1 {
		t.Errorf("reloads = %d, want 1", reloads)
	}
}

// TestLockSerializesLogins checks that a second login waits while the first
// holds the lock across its drop-in change and its manager check.
func TestLockSerializesLogins(t *testing.T) {
	m, _ := testManager(t, true)
	first, err := m.Lock(context.Background(), 1001)
	if err != nil {
		t.Fatal(err)
	}
	var second atomic.Bool
	done := make(chan error)
	go func() {
		l, err := m.Lock(context.Background(), 1001)
		if err == nil {
			second.Store(true)
			l.Unlock()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if second.Load() {
		t.Fatal("second login took a held lock")
	}
	first.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second login still waits after Unlock")
	}
	both, err := m.Lock(context.Background(), 1001, 1002, 1001)
	if err != nil {
		t.Fatalf("Lock of several UIDs with a duplicate: %v", err)
	}
	defer both.Unlock()
	if len(both.held) != 2 {
		t.Errorf("Lock(1001, 1002, 1001) holds %d locks, want 2", len(both.held))
	}
}
