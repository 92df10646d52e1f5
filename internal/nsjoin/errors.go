package nsjoin

import (
	"errors"
	"runtime"
)

// Errors returned, wrapped with the path or thread concerned, by this package.
// Match them with errors.Is; print the wrapped error, it says what was involved.
var (
	// ErrTargetUnavailable: the namespace to join failed netns.CheckNetns:
	// it is missing, not a network namespace, or could not be inspected. It
	// tells an administrator's fix from a join that went wrong.
	ErrTargetUnavailable = errors.New("target namespace unavailable")
	// ErrRelativePath: the caller resolves the path with its own working
	// directory, so only absolute paths can name the same file for both.
	ErrRelativePath = errors.New("namespace path is not absolute")
	// ErrNotWaiting: no thread of the parent is blocked waiting on this process.
	ErrNotWaiting = errors.New("parent is not waiting on this process")
	// ErrPtraceRefused: PTRACE_SEIZE failed with EPERM although we are root.
	ErrPtraceRefused = errors.New("ptrace refused (Yama ptrace_scope=3 or an LSM)")
	// ErrUnsupportedArch: the syscall injection exists for amd64 only.
	ErrUnsupportedArch = errors.New("not supported on " + runtime.GOARCH)
	// ErrTimeout: the caller did not reach a ptrace stop in time.
	ErrTimeout = errors.New("timed out")
	// ErrCallerChanged: the process that would be joined is not the caller
	// pinned by PinParent, alive and still the parent of this process.
	ErrCallerChanged = errors.New("not the caller pinned at start")
	// ErrCallerGone: the caller exited (or was killed by someone else) during the join.
	ErrCallerGone = errors.New("caller exited during the join")
	// ErrCallerKilled: the caller could not be put back as it was, so it was
	// killed rather than let run altered. See JoinParent for the contract.
	ErrCallerKilled = errors.New("caller could not be restored and was killed")
	// ErrCallerThreaded: a mount join was asked for a caller with more than
	// one thread. setns(CLONE_NEWNS) needs a thread whose fs_struct (root and
	// working directory) no other thread shares.
	ErrCallerThreaded = errors.New("caller has more than one thread")
	// ErrUnnamedCwd: a mount join was asked while the caller's working
	// directory has no path to enter again in the new namespace (deleted, or
	// outside the root). setns(CLONE_NEWNS) moves the thread to the root.
	ErrUnnamedCwd = errors.New("caller's working directory has no path")
	// ErrMismatch: the namespace the caller opened or ended up in is not the
	// one that was checked (the path changed under us).
	ErrMismatch = errors.New("namespace does not match the checked target")
)
