package units

import (
	"context"
	"fmt"
	"os"
	"strconv"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// The addresses connectSystemd dials, fixed. godbus would take the system
// bus's from DBUS_SYSTEM_BUS_ADDRESS, and the hook's environment is the PAM
// environment, which a user can fill (pam_env user_readenv=1): a reload sent
// to a bus of theirs would leave the drop-in on disk but never loaded, and
// the manager would start on the host network.
const (
	systemdPrivateAddress = "unix:path=/run/systemd/private"
	systemBusAddress      = "unix:path=/run/dbus/system_bus_socket"
)

// busDialer opens an authenticated connection to address; hello says that
// the address is a bus, where a connection must say Hello before it calls.
type busDialer func(ctx context.Context, address string, hello bool) (*dbus.Conn, error)

// connectSystemd prefers systemd's private socket: it needs no dbus-daemon
// and keeps working while the system bus restarts. The bus is the fallback
// for systems where only it is reachable.
func connectSystemd(ctx context.Context) (Systemd, error) {
	return connectSystemdBy(ctx, dialBus)
}

func connectSystemdBy(ctx context.Context, dial busDialer) (Systemd, error) {
	conn, privateErr := sddbus.NewConnection(func() (*dbus.Conn, error) {
		return dial(ctx, systemdPrivateAddress, false)
	})
	if privateErr == nil {
		return conn, nil
	}
	conn, busErr := sddbus.NewConnection(func() (*dbus.Conn, error) {
		return dial(ctx, systemBusAddress, true)
	})
	if busErr != nil {
		return nil, fmt.Errorf("private socket: %w; system bus: %w", privateErr, busErr)
	}
	return conn, nil
}

// dialBus is the busDialer that go-systemd's own constructors amount to, at
// an address given rather than read from the environment.
func dialBus(ctx context.Context, address string, hello bool) (*dbus.Conn, error) {
	conn, err := dbus.Dial(address, dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", address, err)
	}
	// EXTERNAL with the uid as a number needs no user lookup.
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("authenticating to %s: %w", address, err)
	}
	if hello {
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("saying hello to %s: %w", address, err)
		}
	}
	return conn, nil
}

// connect opens a connection to systemd, for a reload (daemon-reload): systemd
// answers once it has read the drop-ins again, so a user manager started
// afterwards sees them.
func (m *Manager) connect(ctx context.Context) (Systemd, error) {
	conn, err := m.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to systemd: %w", err)
	}
	return conn, nil
}
