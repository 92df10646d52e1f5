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
)
