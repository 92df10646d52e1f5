package netns

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrInvalidName: the name is not a plain file name of the portable
	// character set.
	ErrInvalidName = errors.New("invalid namespace name")
	// ErrOccupied: the name is taken by a file that is not a network
	// namespace, such as the leftover of an interrupted `ip netns add`.
	ErrOccupied = errors.New("name taken by a file that is not a network namespace")
	// ErrNotNamespace: the path exists but is not a namespace file (nsfs).
	ErrNotNamespace = errors.New("not a namespace")
	// ErrNotNetNamespace: the path is a namespace, of another type than network.
	ErrNotNetNamespace = errors.New("not a network namespace")
	// ErrTypeMismatch: an entry of a namespace's /etc directory and its
	// counterpart in /etc are not both directories or both regular files.
	ErrTypeMismatch = errors.New("type mismatch")
	// ErrOverlap: two mounts of an overlay would land on the same path or
	// one inside the other, so what a session sees would depend on order.
	ErrOverlap = errors.New("overlapping mounts")
	// ErrSessionRunDir: a shadow would cover, or lie in, a directory under
	// /run that every session needs as the host has it (journald's and
	// the system bus's sockets, the users' runtime directories, ...).
	ErrSessionRunDir = errors.New("would hide a directory sessions need")
	// ErrUnsafeShadow: a directory on the way to the shadow directories is
	// a symlink, someone else's, or writable by others.
	ErrUnsafeShadow = errors.New("unsafe shadow directory")
	// ErrChrooted: the caller runs under chroot; joining a mount namespace
	// would reset its root to the namespace's.
	ErrChrooted = errors.New("caller is chrooted")
)
