package hook

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// errRootResolveTimeout: root's resolution took longer than the hook
	// waits for it (see rootResolveTimeout).
	errRootResolveTimeout = errors.New("root's lookups took too long")
)
