package units

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
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
			changed, err := l.Apply(ctx, &s)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Apply with an ended context = %v, want context.Canceled", err)
			}
			if changed != nil {
				t.Errorf("Apply with an ended context reloaded for %v, want nothing done", changed)
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
