package units

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestHoldWritesNoNetnsOnlyWithoutDropIn: a hold keeps a manager off where
// nothing places it, and leaves every drop-in alone, which already keeps
// the manager off the host network and may know the policy.
func TestHoldWritesNoNetnsOnlyWithoutDropIn(t *testing.T) {
	tests := []struct {
		name     string
		existing string // the namespace of the drop-in before; "" for none
		want     string
	}{
		{"no drop-in", "", NoNetns},
		{"a namespace", "/run/netns/ns0", "/run/netns/ns0"},
		{"already held", NoNetns, NoNetns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, sd := testManager(t, true)
			if tt.existing != "" {
				if _, err := ensure(t, m, "alice", 1001, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			sd.reset()
			var s Set
			s.Hold("alice", 1001)
			applied, err := m.Apply(context.Background(), &s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(m.DropInPath(1001))
			if err != nil {
				t.Fatal(err)
			}
			if want := appendDropIn(nil, "alice", 1001, tt.want); string(got) != string(want) {
				t.Errorf("drop-in =\n%s\nwant\n%s", got, want)
			}
			if wantReload := tt.existing == ""; (applied.Reloaded != nil) != wantReload {
				t.Errorf("Apply() = %+v, want a reload: %v", applied, wantReload)
			}
		})
	}
}

// TestStartIfReleased: the manager is started after the reload exactly when
// the change takes away a NoNetns drop-in and the manager does not run.
func TestStartIfReleased(t *testing.T) {
	const uid = 1001
	tests := []struct {
		name     string
		existing string // "" for no drop-in
		change   func(s *Set)
		running  bool
		noStart  bool // StartIfReleased is not asked for
		want     []string
	}{
		{
			name:     "hold replaced by a namespace",
			existing: NoNetns,
			change:   func(s *Set) { s.Ensure("alice", uid, "/run/netns/ns0") },
			want:     []string{"user@1001.service replace"},
		},
		{
			name:     "hold removed",
			existing: NoNetns,
			change:   func(s *Set) { s.Remove(uid) },
			want:     []string{"user@1001.service replace"},
		},
		{
			name:     "manager runs",
			existing: NoNetns,
			change:   func(s *Set) { s.Ensure("alice", uid, "/run/netns/ns0") },
			running:  true,
		},
		{
			name:     "not asked for",
			existing: NoNetns,
			change:   func(s *Set) { s.Ensure("alice", uid, "/run/netns/ns0") },
			noStart:  true,
		},
		{
			name:     "another namespace replaced",
			existing: "/run/netns/ns1",
			change:   func(s *Set) { s.Ensure("alice", uid, "/run/netns/ns0") },
		},
		{
			name:   "no drop-in before",
			change: func(s *Set) { s.Ensure("alice", uid, "/run/netns/ns0") },
		},
		{
			name:     "hold kept",
			existing: NoNetns,
			change:   func(s *Set) { s.Ensure("alice", uid, NoNetns) },
		},
		{
			name:     "hold rewritten for a renamed user",
			existing: NoNetns,
			change:   func(s *Set) { s.Ensure("alicia", uid, NoNetns) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, sd := testManager(t, true)
			if tt.existing != "" {
				if _, err := ensure(t, m, "alice", uid, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			if tt.running {
				writeTestFile(t, filepath.Join(m.CgroupRoot, "user.slice/user-1001.slice/user@1001.service/init.scope/cgroup.procs"), "4242\n")
			}
			sd.reset()
			var s Set
			tt.change(&s)
			if !tt.noStart {
				s.StartIfReleased(uid)
			}
			s.StartIfReleased(1002) // no change for it: nothing to start
			applied, err := m.Apply(context.Background(), &s)
			if err != nil {
				t.Fatal(err)
			}
			if got := sd.startedUnits(); !slices.Equal(got, tt.want) {
				t.Errorf("started %q, want %q", got, tt.want)
			}
			if wantStarted := tt.want != nil; slices.Contains(applied.Started, uid) != wantStarted {
				t.Errorf("Apply() = %+v, want started: %v", applied, wantStarted)
			}
		})
	}
}

func TestWriteFileAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lingering")
	stale, err := os.CreateTemp(filepath.Dir(path), tempPrefix("lingering")+"*")
	if err != nil {
		t.Fatal(err)
	}
	stale.Close()
	for _, content := range []string{"first\n", "second\n"} {
		if err := WriteFileAtomic(context.Background(), path, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Errorf("file = %q, want %q", got, content)
		}
	}
	if mode := mustStat(t, path).Mode & 0o777; mode != 0o640 {
		t.Errorf("mode = %o, want 640", mode)
	}
	if temps := tempCopies(t, path); len(temps) != 0 {
		t.Errorf("temporary files left: %v", temps)
	}
}
