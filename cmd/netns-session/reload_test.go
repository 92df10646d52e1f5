package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/urfave/cli/v2"

	"github.com/netns-session/netns-session/internal/watch"
)

// quietEventLog is an event log that sends nowhere.
func quietEventLog() *eventLog {
	l := newEventLog(false, facilityDaemon)
	l.send = func(string, journal.Priority, map[string]string) error { return nil }
	return l
}

// serveReloads takes reload requests at a socket of its own until the test
// ends, answering each with what verdict returns (blocking while it does),
// and returns the socket's path.
func serveReloads(t *testing.T, verdict func() error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "watch.sock")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	reloads := make(chan watch.Reload)
	if err := listenReloads(ctx, path, reloads, quietEventLog()); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			select {
			case r := <-reloads:
				r.Done <- verdict()
			case <-ctx.Done():
				return
			}
		}
	}()
	return path
}

// TestReloadRequestGetsTheWatchersVerdict: watch --reload exits with what
// the watcher made of the config, its reason on one line: 0 for a config in
// force, 78 for one refused, 1 when there is no verdict.
func TestReloadRequestGetsTheWatchersVerdict(t *testing.T) {
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	tests := []struct {
		name     string
		verdict  func() error // nil: no watcher
		pid      int
		wantCode int    // 0 for success
		wantMsg  string // of the exit, "" to skip
	}{
		{name: "config in force", verdict: func() error { return nil }},
		{name: "config refused, every problem on one line",
			verdict: func() error {
				return errors.New("reload refused, the config in force stays: a.conf:1: 3 fields\na.conf:2: bad netns")
			},
			wantCode: exitConfig,
			wantMsg:  "netns-session: reload refused, the config in force stays: a.conf:1: 3 fields; a.conf:2: bad netns"},
		{name: "no verdict in time", verdict: func() error { <-never; return nil },
			wantCode: 1, wantMsg: "no verdict from the watcher within 200ms"},
		{name: "no watcher", wantCode: 1, wantMsg: "no watcher answers at"},
		{name: "another process than the service's", verdict: func() error { return nil }, pid: os.Getpid() + 1,
			wantCode: 1, wantMsg: "not the service's main process"},
		{name: "the service's process", verdict: func() error { return nil }, pid: os.Getpid()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "watch.sock")
			if tt.verdict != nil {
				path = serveReloads(t, tt.verdict)
			}
			err := reloadExit(requestReload(path, tt.pid, 200*time.Millisecond))
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("exit %v, want success", err)
				}
				return
			}
			var exit cli.ExitCoder
			if !errors.As(err, &exit) || exit.ExitCode() != tt.wantCode {
				t.Fatalf("exit %v, want status %d", err, tt.wantCode)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantMsg) || strings.Contains(msg, "\n") {
				t.Errorf("message %q, want one line with %q", msg, tt.wantMsg)
			}
		})
	}
}

// TestReloadSocketIsNotTakenFromAWatcherThatAnswers: a watcher started by
// hand beside the service must not take the service's reloads; a socket
// left by one that is gone is taken over.
func TestReloadSocketIsNotTakenFromAWatcherThatAnswers(t *testing.T) {
	path := serveReloads(t, func() error { return nil })
	if err := listenReloads(t.Context(), path, make(chan watch.Reload), quietEventLog()); err == nil || !strings.Contains(err.Error(), "another watcher answers there") {
		t.Errorf("second listener: %v, want refused", err)
	}

	stale := filepath.Join(t.TempDir(), "watch.sock")
	ctx, cancel := context.WithCancel(context.Background())
	if err := listenReloads(ctx, stale, make(chan watch.Reload), quietEventLog()); err != nil {
		t.Fatal(err)
	}
	cancel()
	// A watcher killed leaves its socket behind: stand one in for that.
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := os.Stat(stale); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("socket not removed when its watcher stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	if err := listenReloads(ctx2, stale, make(chan watch.Reload), quietEventLog()); err != nil {
		t.Errorf("listening where a stale file lies: %v", err)
	}
	if info, err := os.Stat(stale); err != nil || info.Mode()&os.ModeSocket == 0 || info.Mode().Perm() != 0o600 {
		t.Errorf("socket %v, %v: want a socket of mode 0600", info, err)
	}
}
