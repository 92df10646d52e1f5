package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// lingerEvents are the changes of a directory's entries: logind creates a
// file in DefaultLingerDir for each user who lingers (loginctl
// enable-linger) and removes it (disable-linger); a rename counts too.
const lingerEvents = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_ONLYDIR

// LingerWatch tells when the lingering users may have changed, so that a
// sync follows: the record of lingering users, which the boot-time sync
// holds managers by, and the drop-ins of those users. It watches the
// directory and its parent, which tells when the directory is created
// (logind creates it at the first enable-linger) or removed and created
// again.
type LingerWatch struct {
	file    *os.File
	name    string // of the directory in its parent
	path    string
	parent  int // watch descriptors
	dir     int // -1 while the directory does not exist
	changes chan struct{}
	// err is why the watch ended, set before changes is closed.
	err error
}

// inotifyAddWatch is unix.InotifyAddWatch, replaced in tests.
var inotifyAddWatch = unix.InotifyAddWatch

// WatchLinger starts watching dir, DefaultLingerDir unless in tests. dir
// need not exist; its parent must.
func WatchLinger(dir string) (*LingerWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", dir, err)
	}
	// Non-blocking, the file is read through Go's poller, so Close ends a
	// read under way.
	l := &LingerWatch{file: os.NewFile(uintptr(fd), "inotify"), name: filepath.Base(dir), path: dir, dir: -1, changes: make(chan struct{}, 1)}
	// The parent first: a directory created after it is watched is told.
	l.parent, err = inotifyAddWatch(fd, filepath.Dir(dir), lingerEvents)
	if err == nil {
		err = l.watchDir()
	}
	if err != nil {
		l.file.Close()
		return nil, fmt.Errorf("watching %s: %w", dir, err)
	}
	go l.read()
	return l, nil
}

// Changes receives after the lingering users may have changed; changes
// that come before the last is received are told once. It is closed when
// the watch ends: on Close, or when the directory can no longer be watched
// (Err says why).
func (l *LingerWatch) Changes() <-chan struct{} { return l.changes }

// Err tells, once Changes is closed, why the watch ended on its own: the
// directory, created again, could not be watched (no inotify watches left,
// ENOSPC; permission denied), or its parent was removed. It is nil after
// Close.
func (l *LingerWatch) Err() error { return l.err }

// Close ends the watch.
func (l *LingerWatch) Close() error { return l.file.Close() }

// watchDir watches the directory, if it exists.
func (l *LingerWatch) watchDir() error {
	// Not through File.Fd, which would make the descriptor blocking.
	raw, err := l.file.SyscallConn()
	if err != nil {
		return err
	}
	wd := -1
	if cerr := raw.Control(func(fd uintptr) { wd, err = inotifyAddWatch(int(fd), l.path, lingerEvents) }); cerr != nil {
		return cerr
	}
	switch {
	case errors.Is(err, unix.ENOENT):
		l.dir = -1
		return nil
	case err != nil:
		return err
	}
	l.dir = wd
	return nil
}

func (l *LingerWatch) read() {
	defer close(l.changes)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := l.file.Read(buf)
		switch {
		case errors.Is(err, os.ErrClosed):
			return
		case err != nil:
			l.err = fmt.Errorf("reading the changes of %s: %w", l.path, err)
			return
		}
		changed := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				// Events were lost: anything may have changed.
				changed = true
				err = l.watchDir()
			case int(ev.Wd) == l.parent && ev.Mask&unix.IN_IGNORED != 0:
				err = fmt.Errorf("%s was removed", filepath.Dir(l.path))
			case int(ev.Wd) == l.parent && string(bytes.TrimRight(name, "\x00")) == l.name:
				changed = true
				err = l.watchDir()
			case int(ev.Wd) == l.dir && ev.Mask&unix.IN_IGNORED != 0:
				// The directory is gone; the parent tells when it is back.
				l.dir = -1
			case int(ev.Wd) == l.dir:
				changed = true
			}
			if err != nil {
				// Unwatched, the directory would change untold.
				l.err = fmt.Errorf("watching %s again: %w", l.path, err)
				return
			}
		}
		if changed {
			select {
			case l.changes <- struct{}{}:
			default: // one is pending already
			}
		}
	}
}
