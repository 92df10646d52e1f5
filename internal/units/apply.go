package units

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// change is one user's wanted drop-in: the namespace path, or none.
type change struct {
	uid    uint32
	user   string
	nsPath string
	mounts []Mount
	remove bool
	// ifAbsent leaves a drop-in that exists alone, whatever it names.
	ifAbsent bool
	// startReleased asks for the user manager to be started when this
	// change takes a NoNetns drop-in away and the manager does not run.
	startReleased bool

	// Set by apply: released says the change replaced or removed a NoNetns
	// drop-in, reloaded that systemd reloaded for it, started that the
	// manager's start was queued.
	released, reloaded, started bool
}

// Set collects the wanted drop-ins of many users, to apply them with a
// single reload. The zero value is an empty Set; the last call for a UID wins.
type Set struct {
	changes map[uint32]change
	starts  map[uint32]bool
}

// Ensure asks for uid's drop-in to name nsPath and mounts.
func (s *Set) Ensure(user string, uid uint32, nsPath string, mounts ...Mount) {
	s.put(change{uid: uid, user: user, nsPath: nsPath, mounts: mounts})
}

// Remove asks for uid to have no drop-in.
func (s *Set) Remove(uid uint32) {
	s.put(change{uid: uid, remove: true})
}

// Hold asks for uid's drop-in to name NoNetns unless uid has a drop-in:
// whatever one names, a namespace or NoNetns, it keeps the manager off the
// host network, and a login or sync may have written it knowing the policy.
func (s *Set) Hold(user string, uid uint32) {
	s.put(change{uid: uid, user: user, nsPath: NoNetns, ifAbsent: true})
}

// StartIfReleased asks, whatever the change for uid, that user@UID.service
// be started after the reload if the change takes a NoNetns drop-in away and
// the manager does not run: nothing else would start the manager of a
// lingering user once logind has given up on it.
func (s *Set) StartIfReleased(uid uint32) {
	if s.starts == nil {
		s.starts = make(map[uint32]bool)
	}
	s.starts[uid] = true
}

func (s *Set) put(c change) {
	if s.changes == nil {
		s.changes = make(map[uint32]change)
	}
	s.changes[c.uid] = c
}

// UIDs returns the UIDs s changes, in ascending order.
func (s *Set) UIDs() []uint32 {
	return slices.Sorted(maps.Keys(s.changes))
}

// Applied is what Apply did, by UID in ascending order.
type Applied struct {
	// Reloaded are the UIDs systemd reloaded for.
	Reloaded []uint32
	// Started are the UIDs whose user manager was queued to start.
	Started []uint32
}

// Apply locks the UIDs of s, applies s and unlocks; see Lock.Apply.
func (m *Manager) Apply(ctx context.Context, s *Set) (Applied, error) {
	l, err := m.Lock(ctx, s.UIDs()...)
	if err != nil {
		return Applied{}, err
	}
	defer l.Unlock()
	return l.Apply(ctx, s)
}

// Apply writes or removes the drop-ins of s that differ from what is on disk
// and then reloads systemd once, if anything changed, and starts the managers
// StartIfReleased asked for. l must hold every UID of s. An error for one UID
// does not stop the others; once ctx is done, nothing more is changed.
func (l *Lock) Apply(ctx context.Context, s *Set) (Applied, error) {
	changes := make([]change, 0, len(s.changes))
	for _, uid := range s.UIDs() {
		c := s.changes[uid]
		c.startReleased = s.starts[uid]
		changes = append(changes, c)
	}
	err := l.apply(ctx, changes)
	var done Applied
	for _, c := range changes {
		if c.reloaded {
			done.Reloaded = append(done.Reloaded, c.uid)
		}
		if c.started {
			done.Started = append(done.Started, c.uid)
		}
	}
	return done, err
}

// Ensure makes uid's drop-in name nsPath and mounts and, if that changed it, reloads
// systemd before returning, so the caller may start or check the user
// manager. It reports whether systemd reloaded. When systemd is not running
// it returns an error matching ErrNoSystemd and changes nothing.
func (l *Lock) Ensure(ctx context.Context, user string, uid uint32, nsPath string, mounts ...Mount) (changed bool, err error) {
	c := [1]change{{uid: uid, user: user, nsPath: nsPath, mounts: mounts}}
	err = l.apply(ctx, c[:])
	return c[0].reloaded, err
}

// Remove removes uid's drop-in, and its directory if this package created it
// and nothing else is in it, then reloads systemd. Without a drop-in it does
// nothing. It reports whether systemd reloaded.
func (l *Lock) Remove(ctx context.Context, uid uint32) (changed bool, err error) {
	c := [1]change{{uid: uid, remove: true}}
	err = l.apply(ctx, c[:])
	return c[0].reloaded, err
}

// apply makes the changes and reloads once, before the caller can release the
// locks: a later holder who finds its drop-in in place may then rely on
// systemd having loaded it, unless pendingMark says otherwise. A change whose
// turn comes after ctx is done is not made: whoever gave up on it may have
// been replaced by a caller with another policy.
func (l *Lock) apply(ctx context.Context, changes []change) error {
	var errs []error
	reload := false
	for i := range changes {
		c := &changes[i]
		h := l.find(c.uid)
		if h == nil {
			errs = append(errs, fmt.Errorf("changing drop-in for uid %d: %w", c.uid, ErrNotLocked))
			continue
		}
		var err error
		if c.remove {
			err = l.m.removeDropIn(ctx, h, c)
		} else {
			err = l.m.writeDropIn(ctx, h, c)
		}
		if err != nil {
			errs = append(errs, err)
		}
		reload = reload || h.pending
	}
	if !reload {
		return errors.Join(errs...)
	}
	if err := ctx.Err(); err != nil {
		// The pending marks make the next holder reload.
		return errors.Join(append(errs, fmt.Errorf("reloading systemd: %w", err))...)
	}
	conn, err := l.m.connect(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer conn.Close()
	if err := conn.ReloadContext(ctx); err != nil {
		return errors.Join(append(errs, fmt.Errorf("reloading systemd: %w", err))...)
	}
	for i := range changes {
		c := &changes[i]
		h := l.find(c.uid)
		if h == nil || !h.pending {
			continue
		}
		c.reloaded = true
		if err := h.clearPending(); err != nil {
			errs = append(errs, err)
		}
	}
	for i := range changes {
		if c := &changes[i]; c.released && c.startReleased {
			if err := l.m.startReleased(ctx, conn, c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// startReleased queues the start of c's user manager unless it runs. It does
// not wait for the start: a manager takes its time, and one whose namespace
// is missing fails as it would at login.
func (m *Manager) startReleased(ctx context.Context, conn Systemd, c *change) error {
	_, err := m.UserManagerPID(c.uid)
	if !errors.Is(err, ErrNotRunning) {
		return err
	}
	if _, err := conn.StartUnitContext(ctx, UserManagerUnit(c.uid), "replace", nil); err != nil {
		return fmt.Errorf("starting %s: %w", UserManagerUnit(c.uid), err)
	}
	c.started = true
	return nil
}

// UserManagerUnit names the manager of uid: user@UID.service.
func UserManagerUnit(uid uint32) string {
	return userManagerUnit(strconv.FormatUint(uint64(uid), 10))
}

// userManagerUnit names the manager of the UID written out in decimal, for
// the login path's callers that have it so already.
func userManagerUnit(uid string) string { return "user@" + uid + ".service" }

// writeDropIn writes the drop-in of h's UID when it differs from the one on
// disk by more than the user name of its comment (see dropInIs), marking
// the reload pending first.
func (m *Manager) writeDropIn(ctx context.Context, h *heldUID, c *change) error {
	if err := checkNetnsPath(c.nsPath); err != nil {
		return fmt.Errorf("writing drop-in for uid %d: %w", h.uid, err)
	}
	for _, m := range c.mounts {
		for _, p := range [2]string{m.Source, m.Target} {
			if err := checkMountPath(p); err != nil {
				return fmt.Errorf("writing drop-in for uid %d: %w", h.uid, err)
			}
		}
	}
	var stack [512]byte
	want := appendDropIn(stack[:0], c.user, h.uid, c.nsPath, c.mounts...)
	path := m.DropInPath(h.uid)
	exists, equal, err := dropInIs(path, want)
	if err != nil {
		return fmt.Errorf("reading drop-in for uid %d: %w", h.uid, err)
	}
	if equal || (exists && c.ifAbsent) {
		return nil
	}
	// A drop-in on disk means systemd; only without one is it asked.
	if !exists && !m.SystemdBooted() {
		return fmt.Errorf("writing drop-in for uid %d: %w", h.uid, ErrNoSystemd)
	}
	if err := h.beginChange(ctx, c, path, "writing", exists && c.startReleased && c.nsPath != NoNetns); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := m.makeDropInDir(h.uid, dir); err != nil {
		return fmt.Errorf("creating drop-in directory for uid %d: %w", h.uid, err)
	}
	if err := removeLeftovers(dir, DropInName); err != nil {
		return fmt.Errorf("removing stale temporary drop-ins for uid %d: %w", h.uid, err)
	}
	if err := writeAtomic(ctx, dir, DropInName, want, 0o644); err != nil {
		return fmt.Errorf("writing drop-in for uid %d: %w", h.uid, err)
	}
	return nil
}

// removeDropIn removes the drop-in of h's UID if there is one, marking the
// reload pending first.
func (m *Manager) removeDropIn(ctx context.Context, h *heldUID, c *change) error {
	path := m.DropInPath(h.uid)
	var st unix.Stat_t
	switch err := unix.Lstat(path, &st); {
	case err == unix.ENOENT:
		return nil
	case err != nil:
		return fmt.Errorf("removing drop-in for uid %d: %w", h.uid, &fs.PathError{Op: "lstat", Path: path, Err: err})
	}
	if err := h.beginChange(ctx, c, path, "removing", c.startReleased); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing drop-in for uid %d: %w", h.uid, err)
	}
	if err := removeLeftovers(dir, DropInName); err != nil {
		return fmt.Errorf("removing stale temporary drop-ins for uid %d: %w", h.uid, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("removing drop-in for uid %d: %w", h.uid, err)
	}
	if err := m.removeDropInDir(h.uid, dir); err != nil {
		return fmt.Errorf("removing drop-in directory for uid %d: %w", h.uid, err)
	}
	return nil
}

// beginChange is what writing and removing the drop-in at path do before
// they touch it, in this order: when release asks, note whether the drop-in
// held the manager, for the start after the reload; stop if ctx is done,
// before anything is marked or changed; mark the reload pending, so that a
// crash once the drop-in changes leaves the reload to the next holder. The
// argument doing names the change for errors: "writing" or "removing".
func (h *heldUID) beginChange(ctx context.Context, c *change, path, doing string, release bool) error {
	if release {
		var err error
		if c.released, err = holdsManager(path); err != nil {
			return fmt.Errorf("reading drop-in for uid %d: %w", h.uid, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s drop-in for uid %d: %w", doing, h.uid, err)
	}
	return h.markPending()
}

// ownedDirSuffix names the file in LockDir that records that this package
// created a user's drop-in directory, so that it removes only what it made.
const ownedDirSuffix = ".owns-dropin-dir"

func (m *Manager) makeDropInDir(uid uint32, dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Mkdir obeys the umask of whoever logs in; systemd wants to read it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(m.userStatePath(uid, ownedDirSuffix), nil, 0o600); err != nil {
		return err
	}
	return syncDir(m.SystemDir)
}

func (m *Manager) removeDropInDir(uid uint32, dir string) error {
	marker := m.userStatePath(uid, ownedDirSuffix)
	if _, err := os.Lstat(marker); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	err := os.Remove(dir)
	if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		// Someone else put a file there: the directory is theirs too now.
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Remove(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(m.SystemDir)
}

// DropInMatches reports whether uid's drop-in exists and is the one Ensure
// would write for user, nsPath and mounts, but maybe for the user name in
// its comment, so that a dry run can tell what would change without taking
// the lock.
func (m *Manager) DropInMatches(uid uint32, user, nsPath string, mounts ...Mount) (bool, error) {
	var stack [512]byte
	_, equal, err := dropInIs(m.DropInPath(uid), appendDropIn(stack[:0], user, uid, nsPath, mounts...))
	if err != nil {
		return false, fmt.Errorf("reading drop-in for uid %d: %w", uid, err)
	}
	return equal, nil
}

// SystemdBooted reports whether systemd is the init system, as sd_booted(3)
// does: SystemDir exists and is a directory. It looks once per Manager.
func (m *Manager) SystemdBooted() bool {
	m.bootedOnce.Do(func() {
		fi, err := os.Lstat(m.SystemDir)
		m.booted = err == nil && fi.IsDir()
	})
	return m.booted
}

// DropInUIDs returns, in ascending order, the UIDs that have a drop-in, so a
// sync can remove those of users no longer mapped.
func (m *Manager) DropInUIDs() ([]uint32, error) {
	entries, err := os.ReadDir(m.SystemDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing drop-ins: %w", err)
	}
	var uids []uint32
	for _, e := range entries {
		uid, ok := userManagerUID(e.Name(), ".service.d")
		if !ok {
			continue
		}
		if _, err := os.Lstat(m.DropInPath(uid)); err == nil {
			uids = append(uids, uid)
		}
	}
	slices.Sort(uids)
	return uids, nil
}

// userManagerUID returns the UID of a name "user@UID" + suffix, in the
// canonical spelling systemd uses for the instance.
func userManagerUID(name, suffix string) (uint32, bool) {
	id, ok := strings.CutPrefix(name, "user@")
	if !ok {
		return 0, false
	}
	if id, ok = strings.CutSuffix(id, suffix); !ok {
		return 0, false
	}
	uid, err := strconv.ParseUint(id, 10, 32)
	if err != nil || strconv.FormatUint(uid, 10) != id {
		return 0, false
	}
	return uint32(uid), true
}
