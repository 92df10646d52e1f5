package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Load reads the config: with path "" DefaultFile and then DefaultDir/*.conf
// in lexical order (a missing DefaultDir is fine), otherwise the one file at
// path. Every file and directory it reads must be owned by root and not
// writable by group or others; ownership is checked on the opened
// descriptors, so a file swapped in after the check is never read.
//
// A missing file returns ErrNoConfig and no Config. Other problems, in all
// files, come back together as an ErrorList along with the valid rules, so
// a report can show them; a caller enforcing the policy must treat any error
// as fatal.
func Load(path string) (*Config, error) {
	if path != "" {
		return loader{file: path}.load()
	}
	return loader{file: DefaultFile, dir: DefaultDir}.load()
}

// LoadDraft reads the one file at path as Load does, for an administrator
// who validates a draft before installing it: wherever it lies (/tmp, a home
// directory), it is read even when someone other than root owns or may
// write it or its directory. Those problems come back apart, as insecure,
// each an ErrInsecure *Error whose Msg says what is wrong, so a report can
// warn that the PAM hook would refuse the file there; err holds the rest, as
// Load's does. The hook and the watcher use Load, which refuses such files.
func LoadDraft(path string) (cfg *Config, insecure ErrorList, err error) {
	cfg, err = loader{file: path, insecure: &insecure}.load()
	return cfg, insecure, err
}

// loader reads a config file and a drop-in directory ("" for none), all
// owned by trustedUID: root, except in tests that cannot create root-owned
// files.
type loader struct {
	file, dir  string
	trustedUID uint32
	// insecure, when set, collects the files and directories someone
	// other than trustedUID could have written, which are then read all
	// the same (LoadDraft); when nil they are refused.
	insecure *ErrorList
}

func (l loader) load() (*Config, error) {
	p := newParser()
	dirPath := filepath.Dir(l.file)
	dir, err := l.openDir(dirPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, l.errNoConfig()
	}
	if err != nil {
		// Nothing below a directory others can write to is read.
		p.errs = append(p.errs, asError(dirPath, err))
		return p.finish()
	}
	defer dir.Close()
	err = l.parseAt(p, dir, l.file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, l.errNoConfig()
	}
	if err != nil {
		p.errs = append(p.errs, asError(l.file, err))
	}
	if l.dir != "" {
		l.loadDir(p, l.dir)
	}
	return p.finish()
}

func (l loader) errNoConfig() error {
	if l.dir != "" {
		return fmt.Errorf("%w at %s: install one or run make install", ErrNoConfig, l.file)
	}
	return fmt.Errorf("%w at %s", ErrNoConfig, l.file)
}

// loadDir parses every *.conf file in dir, in lexical order.
func (l loader) loadDir(p *parser, path string) {
	dir, err := l.openDir(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		p.errs = append(p.errs, asError(path, err))
		return
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		p.errs = append(p.errs, asError(path, fmt.Errorf("listing: %w", err)))
		return
	}
	slices.Sort(names)
	for _, name := range names {
		if !strings.HasSuffix(name, ".conf") {
			continue
		}
		file := filepath.Join(path, name)
		if err := l.parseAt(p, dir, file); err != nil {
			p.errs = append(p.errs, asError(file, err))
		}
	}
}

// openDir opens a config directory and checks its owner and mode.
func (l loader) openDir(path string) (*os.File, error) {
	dir, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if _, err := l.checkOpened(dir, path, true); err != nil {
		dir.Close()
		return nil, err
	}
	return dir, nil
}

// parseAt opens the file named by the last element of path inside the
// already checked dir, checks it, and parses it into p.
func (l loader) parseAt(p *parser, dir *os.File, path string) error {
	// O_NONBLOCK: a FIFO under a config name must not hang the login.
	fd, err := unix.Openat(int(dir.Fd()), filepath.Base(path), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	size, err := l.checkOpened(f, path, false)
	if err != nil {
		return err
	}
	text, rerr := readConfig(path, f, size)
	if rerr != nil {
		return rerr
	}
	p.parseFile(path, text)
	return nil
}

// checkOpened checks the type, owner and mode of an opened file or
// directory, and returns its size.
func (l loader) checkOpened(f *os.File, path string, wantDir bool) (int64, error) {
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	switch {
	case wantDir && !info.IsDir():
		return 0, &Error{File: path, Msg: "not a directory", Err: ErrInvalid}
	case !wantDir && !info.Mode().IsRegular():
		return 0, &Error{File: path, Msg: "not a regular file", Err: ErrInvalid}
	}
	why := untrusted(info.Sys().(*syscall.Stat_t).Uid, info.Mode(), l.trustedUID)
	switch {
	case why == "":
	case l.insecure != nil:
		*l.insecure = append(*l.insecure, &Error{File: path, Msg: why, Err: ErrInsecure})
	default:
		return 0, refusal(path, why)
	}
	return info.Size(), nil
}

// checkTrusted returns an ErrInsecure *Error when a file or directory with
// this owner and mode could have been written by anyone but trustedUID.
func checkTrusted(path string, uid uint32, mode fs.FileMode, trustedUID uint32) error {
	if why := untrusted(uid, mode, trustedUID); why != "" {
		return refusal(path, why)
	}
	return nil
}

// untrusted says why a file or directory with this owner and mode could
// have been written by someone other than trustedUID, or "" if it could not.
func untrusted(uid uint32, mode fs.FileMode, trustedUID uint32) string {
	var why []string
	if uid != trustedUID {
		why = append(why, fmt.Sprintf("owned by uid %d, not root", uid))
	}
	if mode&0o020 != 0 {
		why = append(why, "writable by its group")
	}
	if mode&0o002 != 0 {
		why = append(why, "writable by others")
	}
	return strings.Join(why, " and ")
}

// refusal is the ErrInsecure *Error that refuses path for the reason why.
func refusal(path, why string) *Error {
	return &Error{
		File: path,
		Msg:  fmt.Sprintf("refusing: %s (fix: chown root:root %s; chmod go-w %s)", why, path, path),
		Err:  ErrInsecure,
	}
}

// asError makes err an *Error about path unless it already is one.
func asError(path string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	msg := err.Error()
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		// The path already leads the message.
		msg = pathErr.Op + ": " + pathErr.Err.Error()
	}
	return &Error{File: path, Msg: msg, Err: err}
}
