package proc

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrNoPidfd: the kernel cannot pin a process (pidfd_open needs Linux
	// 5.3).
	ErrNoPidfd = errors.New("pidfds not supported by the kernel")
	// ErrBadProc: a /proc file does not read as the kernel writes it.
	ErrBadProc = errors.New("unexpected /proc contents")
)
