package netns

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// MountNS is a session's mount namespace: a copy of the calling process's,
// with an Overlay applied and /sys showing a network namespace's
// interfaces, as `ip netns exec` builds it. It is held by an OS thread of
// its own until Close, for another process to join through Path.
type MountNS struct {
	path    string
	id      ID
	release chan struct{}
	exited  chan struct{}
	once    sync.Once
}

// Path returns /proc/PID/task/TID/ns/mnt of the thread that holds the
// namespace; it names the namespace until Close.
func (m *MountNS) Path() string { return m.path }

// ID returns the namespace's ID, for a joiner to check that what it
// opened through Path is this namespace.
func (m *MountNS) ID() ID { return m.id }

// Close lets the thread that holds the namespace exit. The namespace
// lives on in the processes that joined it, and ends with the last one.
func (m *MountNS) Close() error {
	m.once.Do(func() {
		close(m.release)
		<-m.exited
	})
	return nil
}

// NewMountNS builds the mount namespace of a session of the network
// namespace at netnsPath, whose /etc overlay is o (nil: none), for a
// caller whose working directory is cwd (absolute). On an OS thread locked
// for good (a thread whose namespace, root and working directory are no
// longer the process's must never run other goroutines: it dies with its
// goroutine) it
//
//   - unshares the mount namespace: a copy of the caller's, so a private
//     namespace of pam_namespace or of a service is kept;
//   - refuses a chrooted caller (ErrChrooted): joining a mount namespace
//     resets a process's root to the namespace's, which would undo the
//     chroot;
//   - makes every mount a slave, so the host's later mounts (autofs, NFS
//     homes, media) still appear in the namespace and none of its own
//     reach the host;
//   - mounts o's Binds, then its Shadows read-only (Prepare must have made
//     them);
//   - enters the network namespace and mounts a fresh sysfs over /sys, so
//     that it shows that namespace's interfaces, moving the old /sys's
//     submounts (the cgroup file systems, securityfs, ...) onto it;
//   - checks that cwd exists in the namespace.
//
// Every failure is an error naming the step, and the namespace is
// discarded: all of it happened inside the namespace, nothing on the host.
// It needs kernel 5.2 (open_tree, move_mount).
func NewMountNS(o *Overlay, netnsPath, cwd string) (*MountNS, error) {
	return newMountNS(o, netnsPath, cwd, nil)
}

// newMountNS is NewMountNS with afterUnshare, a test's hook, run on the
// thread once it has a mount namespace and file system context of its own.
func newMountNS(o *Overlay, netnsPath, cwd string, afterUnshare func() error) (*MountNS, error) {
	if !filepath.IsAbs(cwd) {
		return nil, fmt.Errorf("building a mount namespace: working directory %q is not absolute", cwd)
	}
	if o == nil {
		o = &Overlay{}
	}
	m := &MountNS{release: make(chan struct{}), exited: make(chan struct{})}
	built := make(chan error, 1)
	go func() {
		defer close(m.exited)
		onDisposableThread(func() {
			err := m.build(o, netnsPath, cwd, afterUnshare)
			built <- err
			if err == nil {
				<-m.release
			}
		})
	}()
	if err := <-built; err != nil {
		<-m.exited
		return nil, err
	}
	return m, nil
}

// onDisposableThread runs fn on an OS thread locked to it that the runtime
// ends when fn returns, so that fn may change what cannot be changed back
// (unshare a namespace, CLONE_FS): no other goroutine will run there.
func onDisposableThread(fn func()) {
	runtime.LockOSThread()
	if unix.Gettid() != unix.Getpid() {
		// Never unlocked: the runtime ends the thread when the goroutine
		// exits.
		fn()
		return
	}
	// The runtime parks the main thread rather than end it, and the main
	// thread is what /proc/PID and /proc/self show. Held here, it cannot
	// be the thread of a new goroutine.
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		fn()
	}()
	<-done
	runtime.UnlockOSThread()
}

// build runs on the locked thread.
func (m *MountNS) build(o *Overlay, netnsPath, cwd string, afterUnshare func() error) error {
	// CLONE_NEWNS implies CLONE_FS: root and working directory become the
	// thread's own, as setns(CLONE_NEWNS) needs.
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unsharing the mount namespace: %w", err)
	}
	self, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the new mount namespace: %w", err)
	}
	defer unix.Close(self)
	if afterUnshare != nil {
		if err := afterUnshare(); err != nil {
			return err
		}
	}
	if err := enterOwnRoot(self); err != nil {
		return err
	}
	// Before any mount: the copies of shared mounts are peers of the
	// host's, and would carry our mounts back to it.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("making the mounts of / slaves: %w", err)
	}
	for _, b := range o.Binds {
		if err := unix.Mount(b.Source, b.Target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding %s over %s: %w", b.Source, b.Target, err)
		}
	}
	for _, s := range o.Shadows {
		if err := bindReadOnly(s.Source, s.Target); err != nil {
			return err
		}
	}
	fd, _, err := openNetns(netnsPath)
	if err != nil {
		return fmt.Errorf("entering the network namespace: %w", err)
	}
	err = unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("entering the network namespace %s: %w", netnsPath, err)
	}
	if err := remountSys(); err != nil {
		return err
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("entering the working directory %s: %w", cwd, err)
	}
	if m.id, err = PathID("/proc/thread-self/ns/mnt"); err != nil {
		return err
	}
	m.path = fmt.Sprintf("/proc/%d/task/%d/ns/mnt", os.Getpid(), unix.Gettid())
	return nil
}

// rootID identifies a root directory: its file and the mount it is seen
// through (statx's mount ID, when the kernel reports one), so that a
// chroot into a bind mount of / counts as one.
type rootID struct {
	dev, ino, mnt uint64
}

func statRoot() (rootID, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, "/", 0, unix.STATX_INO|unix.STATX_MNT_ID, &stx); err != nil {
		return rootID{}, fmt.Errorf("stating /: %w", err)
	}
	id := rootID{dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), ino: stx.Ino}
	if stx.Mask&unix.STATX_MNT_ID != 0 {
		id.mnt = stx.Mnt_id
	}
	return id, nil
}

// enterOwnRoot moves the thread to the root of its mount namespace by
// joining self, the namespace it is in, and fails with ErrChrooted when
// that is not where it was: the caller (whose root the helper inherits) is
// chrooted, and joining this namespace would free it.
func enterOwnRoot(self int) error {
	before, err := statRoot()
	if err != nil {
		return fmt.Errorf("checking for a chroot: %w", err)
	}
	if err := unix.Setns(self, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("checking for a chroot: entering the new mount namespace: %w", err)
	}
	after, err := statRoot()
	if err != nil {
		return fmt.Errorf("checking for a chroot: %w", err)
	}
	if before != after {
		return fmt.Errorf("building a mount namespace: %w", ErrChrooted)
	}
	return nil
}

// bindReadOnly binds source over target read-only, keeping the flags of
// the mount source lies on (nosuid, nodev, noexec, atime).
func bindReadOnly(source, target string) error {
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s over %s: %w", source, target, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(target, &fs); err != nil {
		return fmt.Errorf("stating %s: %w", target, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(fs.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		return fmt.Errorf("making %s read-only: %w", target, err)
	}
	return nil
}

// remountSys replaces /sys by a sysfs of the thread's network namespace,
// as ip netns exec does, but carries the old /sys's submounts over.
func remountSys() error {
	mountinfo, err := readMountinfo()
	if err != nil {
		return fmt.Errorf("reading the mount table: %w", err)
	}
	submounts := sysSubmounts(mountinfo)
	trees := make([]int, 0, len(submounts))
	defer func() {
		for _, fd := range trees {
			unix.Close(fd)
		}
	}()
	for _, path := range submounts {
		fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return fmt.Errorf("cloning %s: %w", path, err)
		}
		trees = append(trees, fd)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys", &fs); err != nil {
		return fmt.Errorf("stating /sys: %w", err)
	}
	// EINVAL: /sys is no mount point, the new one goes on the directory.
	if err := unix.Unmount("/sys", unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		return fmt.Errorf("unmounting /sys: %w", err)
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	// A container's read-only /sys stays read-only.
	if uintptr(fs.Flags)&unix.ST_RDONLY != 0 {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("sysfs", "/sys", "sysfs", flags, ""); err != nil {
		return fmt.Errorf("mounting sysfs on /sys: %w", err)
	}
	for i, path := range submounts {
		if err := unix.MoveMount(trees[i], "", unix.AT_FDCWD, path, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("moving %s onto the new /sys: %w", path, err)
		}
	}
	return nil
}

// readMountinfo reads the thread's mount table with large reads:
// os.ReadFile's small first buffer and poller registration take a dozen
// system calls more on the login path.
func readMountinfo() ([]byte, error) {
	fd, err := unix.Open("/proc/thread-self/mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 64<<10)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, err
		case n == 0:
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// sysSubmounts returns, in order, the mount points in mountinfo (the
// format of /proc/PID/mountinfo) to carry over to a new sysfs on /sys: the
// uppermost mounts under the uppermost mount of /sys that are not sysfs
// (cgroup, securityfs, tracefs, ...), each with what is mounted inside
// it, and not hidden under another. Mounts of sysfs are the old view of
// the network devices, which is what the new sysfs replaces: a container
// manager such as systemd-nspawn puts a tmpfs on /sys with sysfs's
// directories bound into it, and those are looked through, not kept.
func sysSubmounts(mountinfo []byte) []string {
	type entry struct {
		id, parent string
		path       string
		sysfs      bool
	}
	var entries []entry
	// stackedOn maps a mount to the one mounted over it at the same point.
	stackedOn := map[string]string{}
	for line := range strings.Lines(string(mountinfo)) {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE ...
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		e := entry{id: fields[0], parent: fields[1], path: unescapeMountinfo(fields[4])}
		if i := slices.Index(fields[5:], "-"); i >= 0 && 5+i+1 < len(fields) {
			e.sysfs = fields[5+i+1] == "sysfs"
		}
		entries = append(entries, e)
	}
	byID := make(map[string]entry, len(entries))
	for _, e := range entries {
		byID[e.id] = e
	}
	for _, e := range entries {
		if p, ok := byID[e.parent]; ok && p.path == e.path {
			stackedOn[p.id] = e.id
		}
	}
	uppermost := func(e entry) entry {
		for seen := 0; seen < len(entries); seen++ {
			over, ok := stackedOn[e.id]
			if !ok {
				break
			}
			e = byID[over]
		}
		return e
	}
	var paths []string
	// visited guards against a mount table that loops, as a fuzzer's may.
	visited := map[string]bool{}
	var walk func(m entry)
	walk = func(m entry) {
		if visited[m.id] {
			return
		}
		visited[m.id] = true
		// The last mount at a path counts, and one inside another mounted
		// on the same parent is hidden by it.
		last := map[string]entry{}
		for _, e := range entries {
			if e.parent == m.id && e.path != m.path && isUnder(e.path, m.path) {
				last[e.path] = e
			}
		}
		kids := slices.Sorted(maps.Keys(last))
		visible := kids[:0]
		for _, k := range kids {
			if !slices.ContainsFunc(visible, func(v string) bool { return isUnder(k, v) }) {
				visible = append(visible, k)
			}
		}
		for _, k := range visible {
			e := uppermost(last[k])
			if e.path != k {
				continue // IDs repeat: no kernel's table
			}
			if e.sysfs {
				walk(e)
			} else {
				paths = append(paths, e.path)
			}
		}
	}
	var sys *entry
	for _, e := range entries {
		if e.path == "/sys" {
			top := uppermost(e)
			sys = &top
		}
	}
	if sys == nil {
		return nil
	}
	walk(*sys)
	slices.Sort(paths)
	// Sorted, a mount point comes before those inside it.
	kept := paths[:0]
	for _, p := range paths {
		if !slices.ContainsFunc(kept, func(k string) bool { return isUnder(p, k) }) {
			kept = append(kept, p)
		}
	}
	return kept
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in a path of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
