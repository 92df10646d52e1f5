package reconcile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitChange waits for w to tell a change after what did one, then drops
// what else it tells meanwhile: a step may be told twice, and the next step
// must be told on its own.
func waitChange(t *testing.T, w *LingerWatch, what string) {
	t.Helper()
	select {
	case _, ok := <-w.Changes():
		if !ok {
			t.Fatalf("%s: the watch ended", what)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no change told", what)
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case <-w.Changes():
	default:
	}
}

// noChange checks that w tells nothing for a while.
func noChange(t *testing.T, w *LingerWatch, what string) {
	t.Helper()
	select {
	case <-w.Changes():
		t.Errorf("%s: a change told", what)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestLingerWatchTellsEnableAndDisableLinger(t *testing.T) {
	tests := []struct {
		name   string
		exists bool // the directory exists when the watch starts
	}{
		{"directory exists", true},
		{"directory created later, as logind does at the first enable-linger", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "linger")
			if tt.exists {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			w, err := WatchLinger(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if !tt.exists {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				waitChange(t, w, "directory created")
			}
			// Other entries of the parent are none of its business.
			if err := os.WriteFile(filepath.Join(parent, "random-seed"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			noChange(t, w, "a file created beside the directory")

			alice := filepath.Join(dir, "alice")
			if err := os.WriteFile(alice, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			waitChange(t, w, "enable-linger alice")
			if err := os.Remove(alice); err != nil {
				t.Fatal(err)
			}
			waitChange(t, w, "disable-linger alice")
			outside := filepath.Join(parent, "bob")
			if err := os.WriteFile(outside, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			noChange(t, w, "a file created beside the directory")
			if err := os.Rename(outside, filepath.Join(dir, "bob")); err != nil {
				t.Fatal(err)
			}
			waitChange(t, w, "a file moved in")
			if err := os.Rename(filepath.Join(dir, "bob"), outside); err != nil {
				t.Fatal(err)
			}
			waitChange(t, w, "a file moved out")

			// Removed and created again, it is still watched.
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			waitChange(t, w, "directory removed")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			waitChange(t, w, "directory created again")
			if err := os.WriteFile(alice, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			waitChange(t, w, "enable-linger alice in the new directory")

			w.Close()
			select {
			case _, ok := <-w.Changes():
				if ok {
					// A change may have been pending; the end follows.
					_, ok = <-w.Changes()
				}
				if ok {
					t.Error("changes told after Close")
				}
			case <-time.After(5 * time.Second):
				t.Error("the watch did not end on Close")
			}
		})
	}
}

func TestLingerWatchNeedsTheParent(t *testing.T) {
	if _, err := WatchLinger(filepath.Join(t.TempDir(), "missing", "linger")); err == nil {
		t.Error("watching a directory whose parent is missing succeeded")
	}
}

// waitEnd waits for w to end on its own, and returns why.
func waitEnd(t *testing.T, w *LingerWatch) error {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-w.Changes():
			if !ok {
				return w.Err()
			}
		case <-timeout:
			t.Fatal("the watch goes on, deaf to the directory")
		}
	}
}

// TestLingerWatchEndsWhenItCannotGoOn: a watch that could no longer tell
// the changes of the directory ends, saying why, instead of going deaf.
func TestLingerWatchEndsWhenItCannotGoOn(t *testing.T) {
	t.Run("directory created again, but no inotify watch left", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "linger")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var full atomic.Bool
		inotifyAddWatch = func(fd int, path string, mask uint32) (int, error) {
			if full.Load() && path == dir {
				return -1, unix.ENOSPC
			}
			return unix.InotifyAddWatch(fd, path, mask)
		}
		t.Cleanup(func() { inotifyAddWatch = unix.InotifyAddWatch })
		w, err := WatchLinger(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		waitChange(t, w, "directory removed")
		full.Store(true)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := waitEnd(t, w); !errors.Is(err, unix.ENOSPC) {
			t.Errorf("the watch ended: %v, want ENOSPC", err)
		}
	})
	t.Run("parent removed", func(t *testing.T) {
		parent := filepath.Join(t.TempDir(), "systemd")
		if err := os.Mkdir(parent, 0o755); err != nil {
			t.Fatal(err)
		}
		w, err := WatchLinger(filepath.Join(parent, "linger"))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if err := os.Remove(parent); err != nil {
			t.Fatal(err)
		}
		if err := waitEnd(t, w); err == nil || !strings.Contains(err.Error(), parent+" was removed") {
			t.Errorf("the watch ended: %v, want it to say that %s was removed", err, parent)
		}
	})
}

func TestLingerWatchClosedEndsWithoutError(t *testing.T) {
	w, err := WatchLinger(filepath.Join(t.TempDir(), "linger"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := waitEnd(t, w); err != nil {
		t.Errorf("a watch closed ended with %v, want nil", err)
	}
}
