package units

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestUserManagerPID(t *testing.T) {
	const service = "user.slice/user-1001.slice/user@1001.service"
	tests := []struct {
		name    string
		procs   map[string]string // cgroup.procs files under CgroupRoot
		stats   map[string]string // /proc/PID/stat files
		want    int
		wantErr error
	}{
		{
			name:  "cgroup v2, systemd 247 and later: init.scope",
			procs: map[string]string{service + "/init.scope/cgroup.procs": "4242\n"},
			want:  4242,
		},
		{
			name: "the manager, not its (sd-pam) child, whatever the order",
			procs: map[string]string{
				service + "/init.scope/cgroup.procs": "4243\n4242\n",
				service + "/cgroup.procs":            "",
			},
			stats: map[string]string{
				"4242": "4242 (systemd) S 1 4242 4242 0 -1 4194560 2038 0 0 0\n",
				"4243": "4243 ((sd-pam) S) S 4242 4242 4242 0 -1 1077936448 41 0 0 0\n",
			},
			want: 4242,
		},
		{
			name: "a child that exited after the cgroup was read",
			procs: map[string]string{
				service + "/init.scope/cgroup.procs": "4243\n4242\n",
			},
			stats: map[string]string{"4242": "4242 (systemd) S 1 4242 4242 0 -1\n"},
			want:  4242,
		},
		{
			name:  "before systemd 247: the service cgroup",
			procs: map[string]string{service + "/cgroup.procs": "4242\n"},
			want:  4242,
		},
		{
			name: "starting: not yet in init.scope",
			procs: map[string]string{
				service + "/init.scope/cgroup.procs": "",
				service + "/cgroup.procs":            "4242\n",
			},
			want: 4242,
		},
		{
			name:  "hybrid hierarchy: the v2 tree in unified",
			procs: map[string]string{"unified/" + service + "/init.scope/cgroup.procs": "4242\n"},
			want:  4242,
		},
		{
			name:  "legacy hierarchy: systemd's v1 tree",
			procs: map[string]string{"systemd/" + service + "/init.scope/cgroup.procs": "4242\n"},
			want:  4242,
		},
		{
			name: "stopped: empty cgroups",
			procs: map[string]string{
				service + "/init.scope/cgroup.procs": "",
				service + "/cgroup.procs":            "",
			},
			wantErr: ErrNotRunning,
		},
		{
			name:    "never started",
			procs:   map[string]string{"user.slice/user-1002.slice/user@1002.service/init.scope/cgroup.procs": "4242\n"},
			wantErr: ErrNotRunning,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := testManager(t, true)
			for name, content := range tt.procs {
				writeTestFile(t, filepath.Join(m.CgroupRoot, name), content)
			}
			for pid, content := range tt.stats {
				writeTestFile(t, filepath.Join(m.ProcRoot, pid, "stat"), content)
			}
			got, err := m.UserManagerPID(1001)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("UserManagerPID() error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("UserManagerPID() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestUserManagerPIDRejectsGarbage(t *testing.T) {
	m, _ := testManager(t, true)
	writeTestFile(t, filepath.Join(m.CgroupRoot, "user.slice/user-1001.slice/user@1001.service/init.scope/cgroup.procs"), "42x\n")
	if _, err := m.UserManagerPID(1001); err == nil || errors.Is(err, ErrNotRunning) {
		t.Errorf("UserManagerPID() error = %v, want a parse error", err)
	}
}

func TestRunningManagerUIDs(t *testing.T) {
	m, _ := testManager(t, true)
	for _, dir := range []string{
		"user.slice/user-1001.slice/user@1001.service",
		"user.slice/user-0.slice/user@0.service",
		"unified/user.slice/user-1002.slice/user@1002.service",
		"systemd/user.slice/user-1002.slice/user@1002.service",
		"systemd/user.slice/user-1003.slice/user@1003.service",
		"user.slice/user-1004.slice/user-runtime-dir@1004.service",
		"user.slice/user-1005.slice/session-3.scope",
		"system.slice/user@1006.service",
	} {
		if err := os.MkdirAll(filepath.Join(m.CgroupRoot, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	uids, err := m.RunningManagerUIDs()
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{0, 1001, 1002, 1003}; !slices.Equal(uids, want) {
		t.Errorf("RunningManagerUIDs() = %v, want %v", uids, want)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
