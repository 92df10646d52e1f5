package main

import (
	"context"
	"errors"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/policy"
	"github.com/netns-session/netns-session/internal/reconcile"
	"github.com/netns-session/netns-session/internal/watch"
)

// brokenConfigAtStart is what a watcher returns whose config has errors
// at start.
func brokenConfigAtStart(t *testing.T) error {
	t.Helper()
	unused := errors.New("not reached: the config is loaded first")
	w := watch.New(watch.Config{
		Log:        newEventLog(false, facilityDaemon),
		Judge:      &policy.Judge{},
		Load:       func() (*config.Config, error) { return nil, errors.New("test.conf:1: no namespace") },
		Sync:       func(context.Context, *config.Config) (*reconcile.Report, error) { return nil, unused },
		LookupUID:  func(uint32) (*config.User, error) { return nil, unused },
		ManagerPID: func(uint32) (int, error) { return 0, unused },
		Dial:       func(context.Context) (watch.Logind, error) { return nil, unused },
	})
	return w.Run(context.Background(), nil)
}

// TestWatchExitsWithEXConfigOnABrokenConfig: the watcher's refusal of a
// config with errors at start is exit status 78 (the unit does not restart
// it), with the message that names the problem; other errors are not.
func TestWatchExitsWithEXConfigOnABrokenConfig(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantMsg  string
	}{
		{name: "broken config", err: brokenConfigAtStart(t),
			wantCode: exitConfig, wantMsg: "netns-session: loading config (netns-session check shows the problems):\ntest.conf:1: no namespace"},
		{name: "other error", err: errors.New("something else"), wantCode: -1},
		{name: "stopped", err: nil, wantCode: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := watchExit(tt.err)
			var exit cli.ExitCoder
			if !errors.As(err, &exit) {
				if tt.wantCode != -1 {
					t.Fatalf("err = %v, want exit status %d", err, tt.wantCode)
				}
				if err != tt.err {
					t.Errorf("err = %v, want %v unchanged", err, tt.err)
				}
				return
			}
			if exit.ExitCode() != tt.wantCode || err.Error() != tt.wantMsg {
				t.Errorf("exit status %d, message %q; want %d, %q", exit.ExitCode(), err.Error(), tt.wantCode, tt.wantMsg)
			}
		})
	}
}
