// Package nsjoin owns the move of the PAM caller into a network namespace,
// and with it, when asked, into the session's mount namespace. Whether a
// path is a network namespace, and which one, is package netns's to tell
// (netns.CheckNetns, netns.ID); so is building the mount namespace.
//
// The join: `netns-session pam` runs as pam_exec's child, and its parent (the
// sshd monitor, login, su, sudo, cron's job child) is blocked in wait4 on it
// and forks the user's shell only once the session is open. No kernel API
// moves another process into a namespace, so JoinParent injects
// openat+setns+close into that parent's waiting thread with ptrace, through
// the thread's own syscall instruction, and then lets the wait go on exactly
// as it would have. The parent is pinned (PinParent) when the helper starts,
// and only a thread of it waiting on exactly the helper is ever touched: a
// process the helper was handed to after its parent exited is not the
// caller. It is implemented for amd64; elsewhere it fails with
// ErrUnsupportedArch.
package nsjoin

import (
	"fmt"
	"time"

	"github.com/netns-session/netns-session/internal/netns"
)

// MountJoin names the mount namespace a join moves the caller into before
// its network namespace: Path is opened by the caller itself, and the file it
// opens must be ID, the namespace that was built for the session, or nothing
// is joined.
type MountJoin struct {
	Path string
	ID   netns.ID
}

// Options tunes JoinParent. The zero value is ready to use.
type Options struct {
	// Debugf receives debug messages; nil discards them. Messages about the
	// time the caller is stopped are held back until it runs again, so that
	// a slow log sink never keeps it stopped.
	Debugf func(format string, args ...any)
	// WaitTimeout bounds the search for the parent's thread blocked waiting
	// on us: right after fork the parent may not have reached its wait yet.
	// Zero means one second.
	WaitTimeout time.Duration
	// StopTimeout bounds each wait for the caller to reach a ptrace stop.
	// Zero means one second.
	StopTimeout time.Duration
}

// describe names the mount namespace in debug messages; nothing for a join
// of the network namespace alone.
func (m *MountJoin) describe() string {
	if m == nil {
		return ""
	}
	return fmt.Sprintf(" and mount namespace %s (%s)", m.Path, m.ID)
}
