package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// newNetns returns the path of a new network namespace bound onto a file in
// a temporary registry, without moving the test process into it.
func newNetns(t *testing.T) string {
	t.Helper()
	r := testRegistry(t)
	if _, err := r.Add("id"); err != nil {
		t.Fatal(err)
	}
	return r.Path("id")
}

func TestCheckNetns(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	self := fmt.Sprintf("/proc/%d/ns/", os.Getpid())

	tests := []struct {
		name       string
		path       func(t *testing.T) string
		wantErr    error
		wantSameAs string // a path whose ID CheckNetns must return
	}{
		{name: "own network namespace", path: func(*testing.T) string { return self + "net" }, wantSameAs: self + "net"},
		{name: "bind-mounted network namespace", path: func(t *testing.T) string { return newNetns(t) }},
		{name: "uts namespace", path: func(*testing.T) string { return self + "uts" }, wantErr: ErrNotNetNamespace},
		{name: "regular file", path: func(*testing.T) string { return regular }, wantErr: ErrNotNamespace},
		{name: "directory", path: func(*testing.T) string { return dir }, wantErr: ErrNotNamespace},
		{name: "fifo is not opened", path: func(*testing.T) string { return fifo }, wantErr: ErrNotNamespace},
		{name: "missing", path: func(*testing.T) string { return filepath.Join(dir, "missing") }, wantErr: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path(t)
			id, err := CheckNetns(path)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckNetns(%s) error = %v, want %v", path, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			want, err := PathID(path)
			if tt.wantSameAs != "" {
				want, err = PathID(tt.wantSameAs)
			}
			if err != nil {
				t.Fatal(err)
			}
			if id != want || id == (ID{}) {
				t.Errorf("CheckNetns(%s) = %v, want %v", path, id, want)
			}
		})
	}
}

func TestNetnsIDs(t *testing.T) {
	own, err := ProcessNetnsID(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	thread, err := ThreadNetnsID(os.Getpid(), unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	if own != thread {
		t.Errorf("process namespace %v differs from its thread's %v", own, thread)
	}
	uts, err := PathID(fmt.Sprintf("/proc/%d/ns/uts", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if uts == own {
		t.Errorf("uts and net namespaces share the ID %v", own)
	}
	if _, err := ThreadNetnsID(os.Getpid(), 0); err == nil {
		t.Error("ThreadNetnsID of thread 0 succeeded")
	}

	t.Run("another namespace has another ID", func(t *testing.T) {
		other, err := PathID(newNetns(t))
		if err != nil {
			t.Fatal(err)
		}
		if other == own {
			t.Errorf("new namespace has our ID %v", own)
		}
	})
}
