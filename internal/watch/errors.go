package watch

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrConfig: the config could not be loaded at start, so the watcher
	// does not run (the CLI exits with EX_CONFIG, which the unit does not
	// restart).
	ErrConfig = errors.New("loading config")
	// ErrReloadRefused: the config could not be loaded on reload, so the
	// one loaded before stays in force (the verdict of a Reload).
	ErrReloadRefused = errors.New("reload refused, the config in force stays")
)
