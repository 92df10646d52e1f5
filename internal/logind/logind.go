// Package logind owns netns-session's conversation with systemd-logind over
// the system bus (org.freedesktop.login1): listing sessions and users,
// reading a session's properties, terminating a session, and a subscription
// to the signals that announce sessions and users as they come and go, and
// logind itself as it leaves and rejoins the bus.
//
// It speaks to the bus with godbus directly rather than through go-systemd's
// login1 package, whose TerminateSession and Subscribe drop the errors of
// their calls (AddMatch included) and whose connection cannot be shared; the
// method, property and signal names are those login1 uses.
package logind

import (
	"errors"

	"github.com/godbus/dbus/v5"
)

// Where logind lives on the bus.
const (
	BusName          = "org.freedesktop.login1"
	ManagerPath      = dbus.ObjectPath("/org/freedesktop/login1")
	ManagerInterface = "org.freedesktop.login1.Manager"
	SessionInterface = "org.freedesktop.login1.Session"
)

// The bus itself, which announces logind's arrival and departure.
const (
	busDaemonName      = "org.freedesktop.DBus"
	busDaemonPath      = dbus.ObjectPath("/org/freedesktop/DBus")
	busDaemonInterface = "org.freedesktop.DBus"
)

// The session classes the policy does not judge. systemd 252 knows user,
// greeter, lock-screen and background; 256 added the others, among them the
// manager classes of the session every user@UID.service now opens for itself.
const (
	ClassGreeter      = "greeter"
	ClassLockScreen   = "lock-screen"
	ClassManager      = "manager"
	ClassManagerEarly = "manager-early"
)

// StateClosing is the State of a session that is ending: its leader has
// exited or closed the session, and its scope lives on while processes
// remain in it (KillUserProcesses=no) or until logind stops it.
const StateClosing = "closing"

var (
	// ErrNoSuchSession means logind does not know the session (any more).
	ErrNoSuchSession = errors.New("no such session")
	// ErrBadReply means logind answered with values of unexpected types.
	ErrBadReply = errors.New("unexpected reply from logind")
)

// The D-Bus errors that mean a session is gone: logind's own, and the bus's
// for an object path that no longer exists.
var noSuchSessionErrors = []string{
	"org.freedesktop.login1.NoSuchSession",
	"org.freedesktop.DBus.Error.UnknownObject",
}

// scopeGoneErrors are the errors of KillSession for a session whose scope
// is gone while logind still lists the session, as right after
// TerminateSession: systemd's for a unit no longer loaded (systemd 257
// passes it on), and the errno logind makes of it (252: ENOENT).
var scopeGoneErrors = []string{
	"org.freedesktop.systemd1.NoSuchUnit",
	"org.freedesktop.DBus.Error.FileNotFound",
}

// Session is a logind session, as its properties describe it.
type Session struct {
	ID   string
	Path dbus.ObjectPath
	// User is the user name, UID the user's ID.
	User string
	UID  uint32
	// Leader is the PID of the process that opened the session (sshd's
	// monitor, login, su, cron); 0 when logind knows none.
	Leader uint32
	// Class is "user", "background", one of the Class constants, or a newer
	// one.
	Class string
	// State is "opening", "online", "active" or StateClosing.
	State string
	// What proves a process the leader; each is zero when logind does not
	// say. Scope is the session's scope unit (session-3.scope), and
	// TimestampMonotonic when logind created the session, in microseconds
	// of CLOCK_MONOTONIC. LeaderPIDFDID is the inode of the leader's pidfd
	// on pidfs (systemd after 257, Linux 6.9 and later).
	Scope              string
	TimestampMonotonic uint64
	LeaderPIDFDID      uint64
	// The rest only describe the session to a person, "" when logind does
	// not say: Type is "tty", "x11", "wayland", "mir", "web" or
	// "unspecified", Service the PAM service name (sshd, login, su, cron).
	Type       string
	Service    string
	TTY        string
	RemoteHost string
}

// SessionRef names a session, as ListSessionRefsContext lists it.
type SessionRef struct {
	ID   string
	Path dbus.ObjectPath
}

// User is a user logind tracks: one with sessions, or lingering.
type User struct {
	UID  uint32
	Name string
	Path dbus.ObjectPath
}
