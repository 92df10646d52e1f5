package pamcheck

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrIncludeDepth: includes nest deeper than Linux-PAM follows them
	// (a file that includes itself, directly or not).
	ErrIncludeDepth = errors.New("includes nest too deep")
	// ErrNotRegular: a PAM file is not a regular file.
	ErrNotRegular = errors.New("not a regular file")
)
