package units

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// pendingMark is the content of a lock file whose user's drop-in changed on
// disk while systemd has not yet confirmed a reload. The next holder reloads
// even if the drop-in is already right, so a writer killed or failing between
// rename and reload cannot leave systemd with the old setting for good. It
// lives in the lock file because a login opens that anyway.
var pendingMark = []byte("reload pending\n")

// Lock holds the per-user locks of some UIDs. Every change of a UID's drop-in
// happens under its lock, and a login keeps holding it while it checks the
// running user manager, so that check cannot race another login's change.
// The locks are flock(2)s: the kernel releases them when the holder dies.
type Lock struct {
	m    *Manager
	held []heldUID
	// one backs held for the usual single UID of a login.
	one [1]heldUID
}

type heldUID struct {
	uid uint32
	fd  int
	// pending says the lock file carries pendingMark.
	pending bool
}

// Lock blocks until it holds the lock of every UID in uids, or ctx is done;
// once ctx is done it fails even where a lock was free. It takes them in
// ascending order, so that batches never deadlock each other. The caller
// must call Unlock.
func (m *Manager) Lock(ctx context.Context, uids ...uint32) (*Lock, error) {
	if len(uids) > 1 {
		uids = slices.Compact(slices.Sorted(slices.Values(uids)))
	}
	l := &Lock{m: m}
	l.held = l.one[:0]
	for _, uid := range uids {
		h, err := m.lockUID(ctx, uid)
		if err != nil {
			l.Unlock()
			return nil, err
		}
		l.held = append(l.held, h)
	}
	return l, nil
}

// Unlock releases every lock l holds. It may be called more than once.
func (l *Lock) Unlock() {
	for i := len(l.held) - 1; i >= 0; i-- {
		unix.Close(l.held[i].fd)
	}
	l.held = nil
}

func (l *Lock) find(uid uint32) *heldUID {
	for i := range l.held {
		if l.held[i].uid == uid {
			return &l.held[i]
		}
	}
	return nil
}

// userStatePath names a file of uid's in LockDir.
func (m *Manager) userStatePath(uid uint32, suffix string) string {
	var id [10]byte
	return m.LockDir + "/user-" + string(strconv.AppendUint(id[:0], uint64(uid), 10)) + suffix
}

func (m *Manager) lockUID(ctx context.Context, uid uint32) (heldUID, error) {
	path := m.userStatePath(uid, ".lock")
	fd, err := openLockFile(path)
	if err == unix.ENOENT {
		if err = os.MkdirAll(m.LockDir, 0o700); err != nil {
			return heldUID{}, fmt.Errorf("creating lock directory: %w", err)
		}
		fd, err = openLockFile(path)
	}
	if err != nil {
		return heldUID{}, fmt.Errorf("opening lock of uid %d: %w", uid, &fs.PathError{Op: "open", Path: path, Err: err})
	}
	if err := flock(ctx, fd); err != nil {
		unix.Close(fd)
		return heldUID{}, fmt.Errorf("locking uid %d: %w", uid, err)
	}
	// A caller whose context ended while it waited has given up (a sync the
	// watcher abandoned, its config replaced since): what it came to change
	// is no longer wanted.
	if err := ctx.Err(); err != nil {
		unix.Close(fd)
		return heldUID{}, fmt.Errorf("locking uid %d: %w", uid, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return heldUID{}, fmt.Errorf("reading lock of uid %d: %w", uid, err)
	}
	return heldUID{uid: uid, fd: fd, pending: st.Size > 0}, nil
}

func openLockFile(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// maxLockPoll bounds the wait between attempts to take a contended lock when
// ctx can end: flock(2) itself cannot be interrupted by a context.
const maxLockPoll = 20 * time.Millisecond

func flock(ctx context.Context, fd int) error {
	if ctx.Done() == nil {
		for {
			if err := unix.Flock(fd, unix.LOCK_EX); err != unix.EINTR {
				return err
			}
		}
	}
	wait := time.Millisecond
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case err == unix.EINTR:
			continue
		case err != unix.EWOULDBLOCK:
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, maxLockPoll)
	}
}

func (h *heldUID) markPending() error {
	if h.pending {
		return nil
	}
	if _, err := unix.Pwrite(h.fd, pendingMark, 0); err != nil {
		return fmt.Errorf("marking reload pending for uid %d: %w", h.uid, err)
	}
	h.pending = true
	return nil
}

func (h *heldUID) clearPending() error {
	if err := unix.Ftruncate(h.fd, 0); err != nil {
		return fmt.Errorf("clearing pending reload for uid %d: %w", h.uid, err)
	}
	h.pending = false
	return nil
}
