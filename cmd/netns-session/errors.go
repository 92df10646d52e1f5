package main

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// errCheckFailed makes check exit 1; the problems are already printed.
	errCheckFailed = errors.New("check found errors")
	// errUsage matches the usage errors of usageError: exit status 64.
	errUsage = errors.New("usage error")
)
