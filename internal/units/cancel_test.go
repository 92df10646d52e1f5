package units

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockFailsOnceContextEnded: a caller whose context ended, while it
// waited or before it asked, gets no lock even where the lock is free, so it
// cannot go on to change a drop-in it gave up on.
func TestLockFailsOnceContextEnded(t *testing.T) {
	tests := []struct {
		name string
		uids []uint32
	}{
		{"one uid", []uint32{1001}},
		{"several uids", []uint32{1001, 1002, 1003}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := testManager(t, true)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if l, err := m.Lock(ctx, tt.uids...); !errors.Is(err, context.Canceled) {
				if l != nil {
					l.Unlock()
				}
				t.Fatalf("Lock(%v) with an ended context = %v, want context.Canceled", tt.uids, err)
			}
			// Nothing stays locked behind the refusal.
			l, err := m.Lock(context.Background(), tt.uids...)
			if err != nil {
				t.Fatalf("Lock after a refused Lock: %v", err)
			}
			l.Unlock()
		})
	}
}

// TestApplyChangesNothingOnceContextEnded: a holder whose context ends
// before its turn to write or remove a drop-in changes nothing, and does not
// reload.
func TestApplyChangesNothingOnceContextEnded(t *testing.T) {
	tests := []struct {
		name string
		set  func(s *Set)
	}{
		{"new drop-in", func(s *Set) { s.Ensure("alice", 1001, "/run/netns/ns0") }},
		{"changed drop-in", func(s *Set) { s.Ensure("bob", 1002, "/run/netns/ns1") }},
		{"removed drop-in", func(s *Set) { s.Remove(1002) }},
		{"hold", func(s *Set) { s.Hold("alice", 1001) }},
		{"several", func(s *Set) {
			s.Ensure("alice", 1001, "/run/netns/ns0")
			s.Remove(1002)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, sd := testManager(t, true)
			if _, err := ensure(t, m, "bob", 1002, "/run/netns/ns0"); err != nil {
				t.Fatal(err)
			}
			sd.reset()
			before := dropInFiles(t, m)

			var s Set
			tt.set(&s)
			l, err := m.Lock(context.Background(), s.UIDs()...)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Unlock()
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // e.g. the watcher gave up while the lock was taken
			applied, err := l.Apply(ctx, &s)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Apply with an ended context = %v, want context.Canceled", err)
			}
			if applied.Reloaded != nil || applied.Started != nil {
				t.Errorf("Apply with an ended context = %+v, want nothing done", applied)
			}
			if after := dropInFiles(t, m); !maps.Equal(before, after) {
				t.Errorf("drop-ins changed after the context ended:\nbefore %q\nafter  %q", before, after)
			}
			if connects, _, _ := sd.counts(); connects != 0 {
				t.Errorf("connected to systemd %d times after the context ended", connects)
			}
		})
	}
}

// TestWriteFileAtomicKeepsOldFileOnceContextEnded: the rename that makes a
// new file seen does not happen once the context has ended.
func TestWriteFileAtomicKeepsOldFileOnceContextEnded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lingering")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteFileAtomic(ctx, path, []byte("new\n"), 0o644); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteFileAtomic with an ended context = %v, want context.Canceled", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old\n" {
		t.Errorf("file = %q after a cancelled write, want the old content", got)
	}
	if temps := tempCopies(t, path); len(temps) != 0 {
		t.Errorf("temporary files left behind: %v", temps)
	}
}

// dropInFiles returns every file under m.SystemDir with its content.
func dropInFiles(t *testing.T, m *Manager) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(m.SystemDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		files[path] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// tempCopies lists the temporary copies of path that writeAtomic left.
func tempCopies(t *testing.T, path string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var temps []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix(filepath.Base(path))) {
			temps = append(temps, e.Name())
		}
	}
	return temps
}
