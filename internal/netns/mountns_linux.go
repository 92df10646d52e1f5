package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// MountNS is a session's mount namespace: a copy of the calling process's,
// with an Overlay applied and /sys showing a network namespace's
// interfaces, as `ip netns exec` builds it, entered by the thread that
// built it, for another process to join through Path.
type MountNS struct {
	path string
	id   ID
}

// Path returns /proc/PID/task/TID/ns/mnt of the thread that built the
// namespace; it names the namespace while that thread lives.
func (m *MountNS) Path() string { return m.path }

// ID returns the namespace's ID, for a joiner to check that what it
// opened through Path is this namespace.
func (m *MountNS) ID() ID { return m.id }

// EnterMountNS builds the mount namespace of a session of the network
// namespace at netnsPath, whose /etc overlay is o (nil: none), for a
// caller whose working directory is cwd (absolute), on the OS thread of
// the calling goroutine, which it locks for good: that thread is left in
// the new mount namespace and in the network namespace, with its own root
// and working directory, so it must never run another goroutine, and the
// runtime ends it when the goroutine exits. It is meant for a helper that
// goes on to do its last work, the join, on that goroutine and then exits:
// building on the thread that joins costs no thread of its own and no
// hand-over between threads, which on a busy machine cost more than the
// mounts. The thread
//
//   - unshares the mount namespace: a copy of the caller's, so a private
//     namespace of pam_namespace or of a service is kept;
//   - refuses a chrooted caller (ErrChrooted): joining a mount namespace
//     resets a process's root to the namespace's, which would undo the
//     chroot;
//   - makes every mount a slave, so the host's later mounts (autofs, NFS
//     homes, media) still appear in the namespace and none of its own
//     reach the host;
//   - mounts o's Binds with the mounts inside them, then its Shadows
//     read-only (Prepare must have made them);
//   - enters the network namespace and shows its interfaces in /sys
//     (mountNetSys);
//   - checks that cwd exists in the namespace.
//
// Every failure is an error naming the step. All of it happens inside the
// new namespace, nothing on the host; the thread stays locked, maybe in
// the new namespaces, whether it fails or not.
func EnterMountNS(o *Overlay, netnsPath, cwd string) (*MountNS, error) {
	runtime.LockOSThread()
	return enterMountNS(o, netnsPath, cwd, nil)
}

// enterMountNS is EnterMountNS on an already locked thread, with
// afterUnshare, a test's hook, run on the thread right after the unshare.
func enterMountNS(o *Overlay, netnsPath, cwd string, afterUnshare func() error) (*MountNS, error) {
	if !filepath.IsAbs(cwd) {
		return nil, fmt.Errorf("building a mount namespace: working directory %q is not absolute", cwd)
	}
	if o == nil {
		o = &Overlay{}
	}
	m := &MountNS{}
	if err := m.build(o, netnsPath, cwd, afterUnshare); err != nil {
		return nil, err
	}
	return m, nil
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
		// Recursive, as BindPaths= binds for the user manager: a directory
		// entry brings the mounts inside it.
		if err := unix.Mount(b.Source, b.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
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
	if err := mountNetSys(); err != nil {
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

// netSysDirs are the directories of sysfs whose contents depend on the
// network namespace of the process that mounted it: the interfaces, and the
// device tree, whose net/ directories list the interfaces of the devices
// (physical ones too) and which /sys/class/net's links point into.
var netSysDirs = [...]string{"devices", "class/net"}

// mountNetSys makes /sys show the network namespace of the thread, as ip
// netns exec does by mounting a new sysfs over it, but without unmounting
// the old one or reading the mount table: a new sysfs, mounted for a moment
// on /sys/class/net, lends its netSysDirs to their places, the last one
// over itself. Everything else under /sys, the cgroup file systems and
// securityfs with it, stays as it was.
func mountNetSys() error {
	const staging = "/sys/class/net"
	var fs unix.Statfs_t
	if err := unix.Statfs(staging, &fs); err != nil {
		return fmt.Errorf("stating %s: %w", staging, err)
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	// A container's read-only /sys stays read-only; binds inherit it.
	if uintptr(fs.Flags)&unix.ST_RDONLY != 0 {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("sysfs", staging, "sysfs", flags, ""); err != nil {
		return fmt.Errorf("mounting sysfs on %s: %w", staging, err)
	}
	for _, dir := range netSysDirs {
		if err := unix.Mount(staging+"/"+dir, "/sys/"+dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding the namespace's /sys/%s: %w", dir, err)
		}
	}
	return nil
}
