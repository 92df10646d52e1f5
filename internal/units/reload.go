package units

import (
	"context"
	"fmt"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// connectSystemd prefers systemd's private socket: it needs no dbus-daemon
// and keeps working while the system bus restarts. The bus is the fallback
// for systems where only it is reachable.
func connectSystemd(ctx context.Context) (Reloader, error) {
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

// reload makes systemd read the drop-ins again (daemon-reload). systemd
// answers once it has, so a user manager started afterwards sees them.
func (m *Manager) reload(ctx context.Context) error {
	conn, err := m.Connect(ctx)
	if err != nil {
		return fmt.Errorf("connecting to systemd: %w", err)
	}
	defer conn.Close()
	if err := conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("reloading systemd: %w", err)
	}
	return nil
}
