package hook

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// errRootResolveTimeout: root's resolution took longer than the hook
	// waits for it (see rootResolveTimeout).
	errRootResolveTimeout = errors.New("root's lookups took too long")
	// ErrEtcView: a Joiner could not give the session the view of its
	// namespace's /etc directory (building the session's mount namespace).
	ErrEtcView = errors.New("applying the namespace's /etc directory")
)
