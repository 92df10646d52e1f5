// Package units owns netns-session's side of systemd: the drop-in
// /run/systemd/system/user@UID.service.d/50-netns-session.conf that places a
// user's systemd manager (and every user service under it) in a network
// namespace, with the mounts of that namespace's /etc directory
// (BindPaths=), the per-user lock that serializes logins while they change it,
// the daemon reload that makes systemd see it, the start of a manager whose
// NoNetns drop-in a sync replaced, and finding the main PID of a running user
// manager without D-Bus.
//
// A login holds the user's lock across writing the drop-in and checking the
// running manager, so a concurrent login cannot change the drop-in in between:
//
//	lk, err := m.Lock(ctx, uid)
//	...
//	defer lk.Unlock()
//	changed, err := lk.Ensure(ctx, user, uid, nsPath)
//	pid, err := m.UserManagerPID(uid)
//
// A sync of many users builds a Set and applies it with one reload.
package units

import (
	"context"
	"errors"
	"strconv"
	"sync"
)

// DropInName is the file name of the drop-in in user@UID.service.d. Its "50-"
// prefix lets an administrator's later drop-ins (60-*.conf) override it.
const DropInName = "50-netns-session.conf"

// NoNetns is the namespace a drop-in names for a user whose policy cannot be
// known (the config is unusable, or NSS fails for the user). Without a
// drop-in, logind would start that user's manager, and the services the user
// enabled, on the host network; /dev/null always exists and is never a
// namespace, so systemd fails to start the manager instead (status
// 225/NETWORK), until a drop-in for a known policy replaces it.
const NoNetns = "/dev/null"

var (
	// ErrNoSystemd means systemd is not the init system (no SystemDir, as
	// sd_booted(3) decides): there is no user manager to place.
	ErrNoSystemd = errors.New("systemd is not running")
	// ErrNotRunning means the user's systemd manager is not running.
	ErrNotRunning = errors.New("user manager is not running")
	// ErrNotLocked means a change names a UID its Lock does not hold.
	ErrNotLocked = errors.New("uid is not locked")
	// ErrInvalidNetnsPath means a namespace path systemd would read differently
	// from what was given (relative, unclean, or with control characters).
	ErrInvalidNetnsPath = errors.New("invalid network namespace path")
	// ErrInvalidMountPath means a path of a mount that systemd would read
	// differently in BindPaths=.
	ErrInvalidMountPath = errors.New("path unfit for BindPaths=")
)

// Systemd is the part of a systemd D-Bus connection this package uses: a
// reload after every change of a drop-in, and the start of a manager whose
// NoNetns drop-in a sync took away; *github.com/coreos/go-systemd/v22/dbus.Conn
// implements it.
type Systemd interface {
	ReloadContext(ctx context.Context) error
	StartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	Close()
}

// Manager manages the drop-ins under SystemDir. The zero value is not usable;
// New returns one with the production paths, which tests replace.
type Manager struct {
	// SystemDir is systemd's runtime unit directory; its existence is also
	// how sd_booted(3) tells that systemd is the init system.
	SystemDir string
	// CgroupRoot is where the cgroup hierarchies are mounted.
	CgroupRoot string
	// ProcRoot is the proc file system.
	ProcRoot string
	// LockDir holds the per-user lock files. It is created 0700 when missing.
	LockDir string
	// Connect opens a connection to the system manager. It is called only
	// when a reload is needed; the connection is closed after the reload
	// and the starts that follow it.
	Connect func(ctx context.Context) (Systemd, error)

	// bootedOnce and booted cache SystemdBooted: the init system does not
	// change while a process runs, and a login asks before placing the
	// manager and again before creating a drop-in.
	bootedOnce sync.Once
	booted     bool
}

// New returns a Manager for the running system.
func New() *Manager {
	return &Manager{
		SystemDir:  "/run/systemd/system",
		CgroupRoot: "/sys/fs/cgroup",
		ProcRoot:   "/proc",
		LockDir:    "/run/netns-session",
		Connect:    connectSystemd,
	}
}

// DropInPath returns the path of the drop-in for user@UID.service.
func (m *Manager) DropInPath(uid uint32) string {
	var id [10]byte
	return m.SystemDir + "/" + userManagerUnit(string(strconv.AppendUint(id[:0], uint64(uid), 10))) + ".d/" + DropInName
}
