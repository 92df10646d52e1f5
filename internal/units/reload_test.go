package units

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/godbus/dbus/v5"
)

// TestConnectSystemdIgnoresBusAddressInEnvironment sets
// DBUS_SYSTEM_BUS_ADDRESS, as a user can in the PAM environment the hook
// runs with, and fails systemd's private socket: the fallback still dials
// the system bus at its fixed address.
func TestConnectSystemdIgnoresBusAddressInEnvironment(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "fake-bus"))
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "fake-session-bus"))
	refused := errors.New("refused")
	var dialed []string
	dial := func(ctx context.Context, address string, hello bool) (*dbus.Conn, error) {
		dialed = append(dialed, fmt.Sprintf("%s hello=%t", address, hello))
		return nil, refused
	}
	if _, err := connectSystemdBy(context.Background(), dial); !errors.Is(err, refused) {
		t.Errorf("connecting: %v, want %v", err, refused)
	}
	want := []string{
		"unix:path=/run/systemd/private hello=false",
		"unix:path=/run/dbus/system_bus_socket hello=true",
	}
	if !slices.Equal(dialed, want) {
		t.Errorf("dialed %q, want %q", dialed, want)
	}
}
