package pamcheck

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	// ConfDir holds the PAM services' files; VendorDir is where
	// Linux-PAM (1.4 and later) looks for a file ConfDir lacks.
	ConfDir   = "/etc/pam.d"
	VendorDir = "/usr/lib/pam.d"
	// maxIncludeLevel is libpam's PAM_SUBSTACK_MAX_LEVEL: an include at
	// this depth fails.
	maxIncludeLevel = 16
	// maxFileBytes bounds a PAM file read; real ones are a few KiB.
	maxFileBytes = 1 << 20
)

// An Entry is one module line of a session stack.
type Entry struct {
	// File and Line are where the line is written.
	File string
	Line int
	// Control is "required", "optional", ... or the inside of "[...]".
	Control string
	// Module is the module's path as written ("pam_exec.so").
	Module string
	Args   []string
}

// Position is "FILE:LINE".
func (e Entry) Position() string { return position(e.File, e.Line) }

func position(file string, line int) string {
	if line == 0 {
		return file
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// A Stack is the session stack of one PAM service: its module lines in
// the order libpam runs them, includes followed.
type Stack struct {
	Service string
	// File is the service's own file; "" when the service has none, that
	// is, is not installed.
	File    string
	Entries []Entry
	// handlers is the list libpam dispatches, in its order.
	handlers []handler
	// broken are the includes that could not be followed.
	broken []brokenInclude
}

// A handler is one element of the list libpam builds for a stack and
// walks: a module line, or a line the walk passes over but a jump counts
// (the line of a substack, and the failing stand-in libpam puts where a
// line names no module or an include cannot be read).
type handler struct {
	// entry is the module line's index in Entries, -1 for the others.
	entry int
	// level is the depth of substacks the handler is in: "done" and
	// jumps do not leave the substack they are written in.
	level int
}

// brokenInclude is an include, at File:Line, that libpam fails too.
type brokenInclude struct {
	file   string
	line   int
	target string
	err    error
}

// readStack reads the session stack of service.
func (s System) readStack(service string) (Stack, error) {
	st := Stack{Service: service}
	file, text, err := s.readPAMFile(service)
	if err != nil {
		return st, err
	}
	st.File = file
	s.addLines(&st, file, text, 0, 0)
	return st, nil
}

// addLines appends the session lines of a file's text, read at include
// depth depth and substack level level, to st, following its includes.
// Lines of other types are skipped, as libpam skips them when it builds
// the session stack; a session line it cannot parse takes the place
// libpam gives the stand-in that fails it: the line is PAM's problem, not
// the hook's, but jumps count it.
func (s System) addLines(st *Stack, file, text string, depth, level int) {
	for _, l := range ParseLines(text) {
		f := l.Fields
		// Debian's "@include FILE" reads all of FILE's lines.
		if f[0] == "@include" {
			if len(f) > 1 {
				s.include(st, file, l.N, f[1], depth+1, level)
			}
			continue
		}
		if !strings.EqualFold(strings.TrimPrefix(f[0], "-"), "session") {
			continue
		}
		if len(f) < 3 {
			st.handlers = append(st.handlers, handler{entry: -1, level: level})
			continue
		}
		switch control := f[1]; {
		case strings.EqualFold(control, "include"):
			if !s.include(st, file, l.N, f[2], depth+1, level) {
				st.handlers = append(st.handlers, handler{entry: -1, level: level})
			}
		case strings.EqualFold(control, "substack"):
			// The substack's line, then its lines one level down.
			st.handlers = append(st.handlers, handler{entry: -1, level: level})
			if !s.include(st, file, l.N, f[2], depth+1, level+1) {
				st.handlers = append(st.handlers, handler{entry: -1, level: level})
			}
		default:
			st.handlers = append(st.handlers, handler{entry: len(st.Entries), level: level})
			st.Entries = append(st.Entries, Entry{File: file, Line: l.N, Control: control, Module: f[2], Args: f[3:]})
		}
	}
}

// include reads the file that the line at file:line includes into st, at
// include depth depth and substack level level, and reports whether it
// could.
func (s System) include(st *Stack, file string, line int, target string, depth, level int) bool {
	if depth >= maxIncludeLevel {
		st.broken = append(st.broken, brokenInclude{file, line, target, ErrIncludeDepth})
		return false
	}
	path, text, err := s.readPAMFile(target)
	if err != nil {
		st.broken = append(st.broken, brokenInclude{file, line, target, err})
		return false
	}
	s.addLines(st, path, text, depth, level)
	return true
}

// readPAMFile reads the PAM file name refers to: an absolute path, or a
// name under ConfDir, else VendorDir. It returns the file's path as the
// system names it.
func (s System) readPAMFile(name string) (string, string, error) {
	if strings.HasPrefix(name, "/") {
		text, err := s.readFile(name)
		return name, text, err
	}
	var firstErr error
	for _, dir := range []string{ConfDir, VendorDir} {
		path := dir + "/" + name
		text, err := s.readFile(path)
		if err == nil {
			return path, text, nil
		}
		if firstErr == nil || !errors.Is(err, fs.ErrNotExist) {
			firstErr = err
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	return ConfDir + "/" + name, "", firstErr
}

// readFile reads the file at path under the system's root. O_NONBLOCK: a
// FIFO under a PAM name must not hang check.
func (s System) readFile(path string) (string, error) {
	f, err := os.OpenFile(filepath.Join(s.root(), path), os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return string(data), nil
}
