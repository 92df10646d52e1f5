package nsjoin

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/proc"
)

// Caller is the process a join is for: the parent of this process when it
// started, pinned with a pidfd (proc.Pin). A PID read later proves nothing:
// if the caller exits (a user kills their own su), this process is handed to
// a reaper, a root subreaper or init, and getppid() names that one instead.
type Caller struct {
	pid int
	// process is nil where pidfd_open is missing (Linux before 5.3) or
	// filtered out.
	process *proc.Process
}

// PinParent pins the parent of this process as the Caller of a later join.
// Call it first thing: it can only pin whichever process is the parent then.
func PinParent() (*Caller, error) {
	pid := os.Getppid()
	process, err := proc.Pin(pid)
	switch {
	case errors.Is(err, proc.ErrNoPidfd) || errors.Is(err, unix.EPERM):
		// An old kernel, or a seccomp filter: check then rests on getppid
		// alone, which suffices (see check).
		process = nil
	case err != nil:
		return nil, fmt.Errorf("pinning the parent: %w", err)
	}
	c := &Caller{pid: pid, process: process}
	// The parent may have exited between getppid and pidfd_open, and its PID
	// named another process by the time the pidfd was opened.
	if err := c.check(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close releases the pidfd.
func (c *Caller) Close() {
	if c.process != nil {
		c.process.Close()
		c.process = nil
	}
}

// check fails with ErrCallerChanged unless the pinned caller is alive and
// still the parent of this process. Whatever was read under /proc/PID before
// a successful check was read about the caller: an exiting process hands its
// children to a reaper before its PID can be freed, so while getppid() still
// returns the caller's PID that PID cannot name anything else. The pidfd
// proves the same by itself: it tells once the caller exited.
func (c *Caller) check() error {
	if ppid := os.Getppid(); ppid != c.pid {
		return fmt.Errorf("caller %d is no longer the parent of this process (%d is): %w", c.pid, ppid, ErrCallerChanged)
	}
	if c.process == nil {
		return nil
	}
	exited, err := c.process.Exited()
	switch {
	case err != nil:
		return fmt.Errorf("checking caller %d: %w", c.pid, err)
	case exited:
		return fmt.Errorf("caller %d exited: %w", c.pid, ErrCallerChanged)
	}
	return nil
}

// owns checks that thread tid, found under the caller's PID and since
// seized, is a thread of the pinned caller.
func (c *Caller) owns(tid int) error {
	if _, err := os.Lstat(fmt.Sprintf("/proc/%d/task/%d", c.pid, tid)); err != nil {
		return fmt.Errorf("thread %d is not one of caller %d: %w: %w", tid, c.pid, ErrCallerChanged, err)
	}
	return c.check()
}

// alreadyIn reports whether every thread of the caller is in target, and in
// the mount namespace of mount unless that is nil, so that no join is needed:
// also when no thread waits on us, as when pam_exec's stdout option makes it
// read our output before it waits, or when the caller's wait is not one this
// package can recognise.
func (c *Caller) alreadyIn(target netns.ID, mount *MountJoin) bool {
	return parentIn(c.pid, target, mount) && c.check() == nil
}

// parentIn reports whether every thread of pid is in the namespace target,
// and in mount's unless that is nil.
func parentIn(pid int, target netns.ID, mount *MountJoin) bool {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			return false
		}
		if id, err := netns.ThreadNetnsID(pid, tid); err != nil || id != target {
			return false
		}
		if mount == nil {
			continue
		}
		if id, err := threadMountID(pid, tid); err != nil || id != mount.ID {
			return false
		}
	}
	return true
}

// threadMountID returns the ID of the mount namespace of thread tid of pid.
func threadMountID(pid, tid int) (netns.ID, error) {
	return netns.PathID(fmt.Sprintf("/proc/%d/task/%d/ns/mnt", pid, tid))
}

// threadCount returns how many threads process pid has.
func threadCount(pid int) (int, error) {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return 0, fmt.Errorf("listing threads of %d: %w", pid, err)
	}
	return len(tasks), nil
}
