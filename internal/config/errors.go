package config

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrNoConfig: the config file does not exist.
	ErrNoConfig = errors.New("no config")
	// ErrInsecure: a config file or directory is not owned by root or is
	// writable by group or others.
	ErrInsecure = errors.New("insecure config")
	// ErrInvalid: a line or file does not follow the format.
	ErrInvalid = errors.New("invalid config")
	// ErrUnknownUser: NSS knows no such user.
	ErrUnknownUser = errors.New("unknown user")
	// ErrUnknownGroup: NSS knows no such group.
	ErrUnknownGroup = errors.New("unknown group")
	// ErrSourceUnavailable: a source of the user database (an NSS module:
	// LDAP, SSSD, a missing file) failed, so whether the record exists is
	// unknown. It is never "not found": a policy that rests on the answer is
	// unknown too.
	ErrSourceUnavailable = errors.New("user database unavailable")
)

// position is where something was written; Line 0 means the whole file.
type position struct {
	File string
	Line int
}

func (p position) String() string {
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Error is one problem in one config file, printed as "FILE:LINE: message"
// ("FILE: message" for problems with the file as a whole).
type Error struct {
	File string
	// Line is 1-based; 0 for the file as a whole.
	Line int
	Msg  string
	// Err is the sentinel the problem belongs to (ErrInvalid, ErrInsecure, ...).
	Err error
}

func (e *Error) Error() string { return position{e.File, e.Line}.String() + ": " + e.Msg }

func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every problem found in the config, in file and line order.
type ErrorList []*Error

// Error prints one problem per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns the list as an error, nil when empty (never a typed nil).
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
