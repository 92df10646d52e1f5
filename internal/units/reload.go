package units

import (
	"context"
	"fmt"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// connectSystemd prefers systemd's private socket: it needs no dbus-daemon
// and keeps working while the system bus restarts. The bus is the fallback
// for systems where only it is reachable.
func connectSystemd(ctx context.Context) (Systemd, error) {
	conn, privateErr := sddbus.NewSystemdConnectionContext(ctx)
	if privateErr == nil {
		return conn, nil
	}
	conn, busErr := sddbus.NewSystemConnectionContext(ctx)
	if busErr != nil {
		return nil, fmt.Errorf("private socket: %w; system bus: %w", privateErr, busErr)
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
