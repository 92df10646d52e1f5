package main

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// errCheckFailed makes check exit 1; the problems are already printed.
	errCheckFailed = errors.New("check found errors")
	// errRootResolveTimeout: root's resolution took longer than the hook
	// waits for it (see rootResolveTimeout).
	errRootResolveTimeout = errors.New("root's lookups took too long")
)
