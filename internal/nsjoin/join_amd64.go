package nsjoin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/proc"
)

// Wait syscalls as the caller's thread shows them in /proc/PID/task/TID/syscall
// and in orig_rax (arch/x86/entry/syscalls/syscall_64.tbl).
const (
	sysWait4  = 61
	sysWaitid = 247
	// idtypePID is waitid's first argument for a wait on one PID (P_PID).
	idtypePID = 1
)

const (
	defaultWaitTimeout = time.Second
	defaultStopTimeout = time.Second
)

// The steps of a join, in order. stepHook runs between them, so a test can
// act at each point where the caller is in a different state: untouched,
// stopped, holding the mount namespace fd (in a mount join only), holding the
// network namespace fd, in the mount namespace, back in its working directory
// there (these two in a mount join only), joined, restored. stepUndone
// replaces the last of the mount join's when one fails after its setns: the
// caller is then back in its own mount namespace and working directory.
const (
	stepBeforeSeize  = "before-seize"
	stepStopped      = "stopped"
	stepMntOpened    = "after-mnt-openat"
	stepOpened       = "after-openat"
	stepMntJoined    = "after-mnt-setns"
	stepChdir        = "after-chdir"
	stepJoined       = "after-setns"
	stepUndone       = "after-undo"
	stepBeforeDetach = "before-detach"
)

// stepHook is set by tests only. It must not block or do I/O: when it runs
// past stepBeforeSeize the caller is stopped.
var stepHook func(step string)

func step(name string) {
	if stepHook != nil {
		stepHook(name)
	}
}

// JoinParent moves the thread of caller that is blocked in wait4 or waitid
// on this process into the network namespace at nsPath, an absolute path.
// caller comes from PinParent, called when this process started: a process
// that has become our parent since, because the caller exited, is never
// touched. It does nothing if the caller is already in the namespace, and it
// checks afterwards that the thread is in exactly the namespace
// netns.CheckNetns(nsPath) identified.
//
// With mount, the caller opens mount.Path, nsPath and its own mount
// namespace (/proc/thread-self/ns/mnt), all in its own mount namespace, and
// each must be the namespace expected (mount.ID, the one netns.CheckNetns
// identified, the one its thread is in) before anything changes. Its thread then
// joins the mount namespace, enters again the working directory it had, by
// its path (setns(CLONE_NEWNS) moves it to the new namespace's root), and
// joins the network namespace. A mount join is refused, with the caller
// untouched, when the caller has more than one thread (ErrCallerThreaded: the
// kernel wants a thread whose root and working directory no other thread
// shares), and when the working directory of the stopped thread has no path
// (ErrUnnamedCwd: stopped for that moment, the caller is not altered).
//
// On error the login must be denied, and the caller runs on unchanged: its
// registers, memory, fds, namespaces and working directory as they were. A
// mount join that fails once the caller's thread is in the mount namespace
// (the chdir there failed, or the setns into the network namespace) brings
// it back into its own mount namespace, through a file of it that the
// caller opened before the first setns, and into its working directory, by
// its path, and proves from /proc that it is there again, and still in its
// network namespace. Its root is then its namespace's root, which is where it
// was: netns.EnterMountNS refuses a chrooted caller. The exceptions: an fd
// whose close failed stays open in the caller; an error after the setns
// into the network namespace succeeded (a close failed, or the caller ended
// up in another namespace than mount.ID or the one checked, ErrMismatch)
// leaves the caller's thread in the new namespaces; and ErrCallerKilled: the
// caller could not be restored, or brought back from a failed mount join,
// so it has been sent SIGKILL and is still attached to this process with
// PTRACE_O_EXITKILL; the process must then exit promptly, without trying
// anything else on it. Likewise, a process that calls JoinParent must not
// linger after an error wrapping ErrTimeout: a caller that never stopped
// stays attached until exit.
//
// ctx bounds the search for the waiting thread and is checked between the
// injected syscalls up to the first setns, never after it: a mount join is
// not cut in half. Once the caller is stopped, every wait is bounded by
// Options.StopTimeout instead, so that cancelling can never cut a restore
// short.
func JoinParent(ctx context.Context, caller *Caller, nsPath string, mount *MountJoin, opts Options) error {
	if opts.Debugf == nil {
		opts.Debugf = func(string, ...any) {}
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = defaultWaitTimeout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = defaultStopTimeout
	}
	if !filepath.IsAbs(nsPath) {
		return fmt.Errorf("joining the caller to %s: %w", nsPath, ErrRelativePath)
	}
	plan := joinPlan{mount: mount}
	var err error
	if plan.netnsPath, err = unix.ByteSliceFromString(nsPath); err != nil {
		return fmt.Errorf("joining the caller to %q: %w", nsPath, err)
	}
	if mount != nil {
		if !filepath.IsAbs(mount.Path) {
			return fmt.Errorf("joining the caller to mount namespace %s: %w", mount.Path, ErrRelativePath)
		}
		if plan.mountPath, err = unix.ByteSliceFromString(mount.Path); err != nil {
			return fmt.Errorf("joining the caller to mount namespace %q: %w", mount.Path, err)
		}
	}
	if caller == nil {
		return fmt.Errorf("joining the caller to %s: no caller pinned: %w", nsPath, ErrCallerChanged)
	}
	target, err := netns.CheckNetns(nsPath)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTargetUnavailable, err)
	}
	plan.target = target
	if err := caller.check(); err != nil {
		return fmt.Errorf("joining the caller to %s: %w", nsPath, err)
	}

	w, inPlace, err := findWaiter(ctx, caller, os.Getpid(), target, mount, opts.WaitTimeout)
	if err != nil {
		return err
	}
	if inPlace {
		opts.Debugf("caller %d is already in %s (%s)%s, every thread of it", caller.pid, nsPath, target, mount.describe())
		return nil
	}
	current, err := netns.ThreadNetnsID(w.pid, w.tid)
	if err != nil {
		return fmt.Errorf("reading the namespace of caller %d thread %d: %w", w.pid, w.tid, err)
	}
	plan.callerNet = current
	inMount, threads := true, 1
	if mount != nil {
		if plan.callerMount, err = threadMountID(w.pid, w.tid); err != nil {
			return fmt.Errorf("reading the mount namespace of caller %d thread %d: %w", w.pid, w.tid, err)
		}
		inMount = plan.callerMount == mount.ID
		if threads, err = threadCount(w.pid); err != nil {
			return fmt.Errorf("joining the caller to mount namespace %s: %w", mount.Path, err)
		}
	}
	if err := caller.check(); err != nil {
		return fmt.Errorf("joining the caller to %s: %w", nsPath, err)
	}
	if current == target && inMount {
		opts.Debugf("caller %d thread %d is already in %s (%s)%s", w.pid, w.tid, nsPath, target, mount.describe())
		return nil
	}
	if threads > 1 {
		return fmt.Errorf("joining caller %d to mount namespace %s: %d threads: %w", w.pid, mount.Path, threads, ErrCallerThreaded)
	}

	start := time.Now()
	if err := inject(ctx, caller, w, plan, opts); err != nil {
		return fmt.Errorf("joining caller %d thread %d to %s: %w", w.pid, w.tid, nsPath, err)
	}
	if mount != nil {
		joined, err := threadMountID(w.pid, w.tid)
		if err != nil {
			return fmt.Errorf("verifying the mount namespace of caller %d thread %d: %w", w.pid, w.tid, err)
		}
		if joined != mount.ID {
			return fmt.Errorf("verifying caller %d thread %d: in mount namespace %s, want %s: %w", w.pid, w.tid, joined, mount.ID, ErrMismatch)
		}
	}
	joined, err := netns.ThreadNetnsID(w.pid, w.tid)
	if err != nil {
		return fmt.Errorf("verifying the namespace of caller %d thread %d: %w", w.pid, w.tid, err)
	}
	if joined != target {
		return fmt.Errorf("verifying caller %d thread %d: in %s, want %s: %w", w.pid, w.tid, joined, target, ErrMismatch)
	}
	opts.Debugf("joined caller %d thread %d to %s (%s)%s in %v", w.pid, w.tid, nsPath, target, mount.describe(), time.Since(start))
	return nil
}

// joinPlan is what inject does in the caller, with the paths NUL-terminated
// as the caller's syscalls read them.
type joinPlan struct {
	netnsPath []byte
	target    netns.ID
	// mount is nil, and mountPath with it, when only the network namespace
	// is joined.
	mount     *MountJoin
	mountPath []byte
	// callerNet and callerMount are the namespaces the caller's thread is
	// in before a mount join (callerMount is unset without one), which a
	// join that fails halfway brings it back to.
	callerNet, callerMount netns.ID
}

// waiter is a thread blocked in a wait syscall, with the syscall number and
// the first two arguments it was seen with, which the registers of the
// stopped thread must match.
type waiter struct {
	pid, tid int
	nr       uint64
	a0, a1   uint64
}

// findWaiter returns the thread of caller that is blocked waiting on child.
// The caller may still be between fork and wait when we start, so it polls
// until timeout; while no thread waits, it looks whether every thread of the
// caller is in target (and mount) already, and then returns inPlace instead.
func findWaiter(ctx context.Context, caller *Caller, child int, target netns.ID, mount *MountJoin, timeout time.Duration) (w waiter, inPlace bool, err error) {
	pid := caller.pid
	deadline := time.Now().Add(timeout)
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
		w, found, err := waitingThread(pid, child)
		if err != nil || found {
			return w, false, err
		}
		if caller.alreadyIn(target, mount) {
			return waiter{}, true, nil
		}
		if time.Now().After(deadline) {
			return waiter{}, false, fmt.Errorf("finding the thread of %d blocked waiting on %d within %v: %w", pid, child, timeout, ErrNotWaiting)
		}
		select {
		case <-ctx.Done():
			return waiter{}, false, fmt.Errorf("finding the thread of %d blocked waiting on %d: %w", pid, child, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// waitingThread looks once through the threads of pid for one blocked in
// wait4(child) or waitid(P_PID, child), which is how pam_exec waits. A
// thread waiting for any child is never taken: the process it belongs to
// may be a reaper that this process was handed to, not the caller.
func waitingThread(pid, child int) (waiter, bool, error) {
	taskDir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(taskDir)
	if err != nil {
		return waiter{}, false, fmt.Errorf("listing threads of %d: %w", pid, err)
	}
	var exact []waiter
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(taskDir, task.Name(), "syscall"))
		if proc.IsGone(err) {
			continue // the thread exited meanwhile
		}
		if err != nil {
			return waiter{}, false, fmt.Errorf("reading the syscall of %d thread %d: %w", pid, tid, err)
		}
		w, blocked := parseSyscall(raw)
		if !blocked || !waitsOn(w, child) {
			continue
		}
		w.pid, w.tid = pid, tid
		exact = append(exact, w)
	}
	switch {
	case len(exact) == 1:
		return exact[0], true, nil
	case len(exact) > 1:
		return waiter{}, false, fmt.Errorf("%d threads of %d wait on %d: %w", len(exact), pid, child, ErrNotWaiting)
	}
	return waiter{}, false, nil
}

// parseSyscall reads /proc/PID/task/TID/syscall: "NR ARG0 ... ARG5 SP PC" for
// a thread blocked in a syscall, "-1 SP PC" or "running" otherwise.
func parseSyscall(raw []byte) (w waiter, blocked bool) {
	fields := strings.Fields(string(raw))
	if len(fields) != 9 {
		return waiter{}, false
	}
	nr, err0 := strconv.ParseUint(fields[0], 10, 64)
	a0, err1 := strconv.ParseUint(fields[1], 0, 64)
	a1, err2 := strconv.ParseUint(fields[2], 0, 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return waiter{}, false
	}
	return waiter{nr: nr, a0: a0, a1: a1}, true
}

// waitsOn tells whether a thread blocked in w waits on exactly child. pid
// arguments are C ints: only the low 32 bits of the register count.
func waitsOn(w waiter, child int) bool {
	switch w.nr {
	case sysWait4:
		return int32(w.a0) == int32(child)
	case sysWaitid:
		return w.a0 == idtypePID && int32(w.a1) == int32(child)
	}
	return false
}
