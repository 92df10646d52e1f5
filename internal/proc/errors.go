package proc

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrNoPidfd: the kernel cannot pin a process (pidfd_open needs Linux
	// 5.3).
	ErrNoPidfd = errors.New("pidfds not supported by the kernel")
	// ErrBadProc: a /proc file does not read as the kernel writes it.
	ErrBadProc = errors.New("unexpected /proc contents")
	// ErrNoCgroupHierarchy: neither a unified cgroup hierarchy nor systemd's
	// named one is mounted where systemd mounts them.
	ErrNoCgroupHierarchy = errors.New("no cgroup hierarchy of systemd's mounted")
	// ErrNoFile: a process sees no file at a path (SeenFile); unlike
	// fs.ErrNotExist, it does not say that the process is gone.
	ErrNoFile = errors.New("no such file in the process's view")
)

// IsGone tells an error that says a process exited - its /proc directory is
// gone or going (fs.ErrNotExist), or the kernel no longer knows its PID
// (ESRCH) - from one that says it could not be read.
func IsGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
}
