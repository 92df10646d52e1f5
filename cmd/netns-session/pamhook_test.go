package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/units"
)

// failingGroups is checkUsers with a group source that is down.
type failingGroups struct{ checkUsers }

func (failingGroups) GroupIDs(*config.User) ([]uint32, error) {
	return nil, errors.New("ldap server unreachable")
}

type nopReloader struct{}

func (nopReloader) ReloadContext(context.Context) error { return nil }
func (nopReloader) Close()                              {}

// TestDeniedUnknownPolicyKeepsManagerOff denies sessions whose user's policy
// cannot be known and checks that the drop-in then keeps the user manager,
// which pam_systemd starts anyway, from starting at all.
func TestDeniedUnknownPolicyKeepsManagerOff(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		users      config.Directory
		user       string
		wantDropIn bool
	}{
		{name: "broken config", config: "carol ns0 extra\n", users: checkUsers{}, user: "carol", wantDropIn: true},
		{name: "group source failing", config: "@research ns0\n", users: failingGroups{}, user: "carol", wantDropIn: true},
		{name: "unknown user", config: "carol ns0 extra\n", users: checkUsers{}, user: "mallory", wantDropIn: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := writeCheckConfig(t, tt.config)
			m := &units.Manager{
				SystemDir: t.TempDir(),
				LockDir:   t.TempDir(),
				Connect:   func(context.Context) (units.Reloader, error) { return nopReloader{}, nil },
			}
			log := newEventLog(false)
			log.stderr = io.Discard
			h := &pamHook{log: log, opts: pamOptions{configPath: path}, units: m, users: tt.users}

			if _, err := h.open(context.Background(), pamRequest{Type: "open_session", User: tt.user, Service: "sshd"}); err == nil {
				t.Fatalf("session of %s opened, want it denied", tt.user)
			}
			dropIn, err := os.ReadFile(m.DropInPath(checkUserTable["carol"].UID))
			switch {
			case tt.wantDropIn && err != nil:
				t.Errorf("no drop-in for %s: %v", tt.user, err)
			case tt.wantDropIn && !strings.Contains(string(dropIn), "NetworkNamespacePath=/dev/null\n"):
				t.Errorf("drop-in for %s does not keep the manager off:\n%s", tt.user, dropIn)
			case !tt.wantDropIn && err == nil:
				t.Errorf("drop-in written although no user was found:\n%s", dropIn)
			}
		})
	}
}
