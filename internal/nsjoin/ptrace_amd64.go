package nsjoin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netns-session/netns-session/internal/netns"
)

const (
	// redZone is the part below rsp that the amd64 ABI lets leaf functions
	// use without moving rsp; the scratch paths go below it.
	redZone = 128
	// errRestartSys is -ERESTARTSYS, what a wait interrupted by a signal or
	// by PTRACE_INTERRUPT holds in rax until the kernel restarts it.
	errRestartSys = -512
	// syscallInsnLen is the length of the `syscall` instruction (0f 05),
	// which rip points just past while the thread is in a syscall.
	syscallInsnLen = 2
	// injectedOpenFlags: O_NONBLOCK and O_NOCTTY make opening a FIFO or a
	// terminal put in place of the namespace file harmless to the caller;
	// the opened file is then compared with the target before setns.
	injectedOpenFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	// spinTime is how long wait polls without sleeping.
	spinTime = 200 * time.Microsecond
)

// stopState says where the tracee is. Every ptrace request but
// PTRACE_INTERRUPT needs it stopped.
type stopState int

const (
	// running: resumed and not yet seen stopping.
	running stopState = iota
	// inSignalPath: an interrupt, group or signal-delivery stop. These all
	// happen inside the kernel's get_signal(), before its syscall-restart
	// logic runs, which is where the caller was first stopped.
	inSignalPath
	atSyscallEntry
	atSyscallExit
)

// tracer drives one seized thread. The kernel ties a tracee to the thread
// that seized it, so a tracer is used from one locked OS thread only.
type tracer struct {
	pid, tid    int
	caller      *Caller
	stopTimeout time.Duration

	state     stopState
	inSyscall bool // whether the next syscall stop is an exit stop
	gone      bool // the tracee exited; nothing is left to restore
	// stranded: a mount join failed and the thread could not be put back
	// into its own mount namespace and working directory. Restored, it
	// would run on altered, so inject kills it instead.
	stranded bool

	saved        unix.PtraceRegs // at the first stop; restored before detaching
	scratch      uintptr         // where the paths were written on the caller's stack
	scratchSaved []byte          // the bytes it overwrote; nil while nothing was written
	cwdID        netns.ID        // the directory the thread was in, for a mount join

	// signals are those that arrived while attached. Each was suppressed at
	// its signal-delivery stop, because a handler must not run on injected
	// registers, and is queued again with tgkill just before detaching.
	signals []unix.Signal
	logs    []string
}

// inject runs the join plan p in the waiting thread w (openat, setns and
// close of each namespace, the chdir after the mount namespace's setns) and
// puts it back as it was. See JoinParent for what an error means for the
// caller.
func inject(ctx context.Context, caller *Caller, w waiter, p joinPlan, opts Options) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	step(stepBeforeSeize)
	if err := ctx.Err(); err != nil {
		return err
	}
	// EXITKILL is not set here but only once the thread is stopped and
	// checked (firstStop), just before anything is changed: until then, if
	// this process dies, the caller simply goes on, unchanged.
	if err := unix.PtraceSeize(w.tid); err != nil {
		if !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("seizing thread %d: %w", w.tid, err)
		}
		if tracer := tracerOf(w.pid, w.tid); tracer != 0 {
			return fmt.Errorf("seizing thread %d, already traced by %d: %w", w.tid, tracer, ErrPtraceRefused)
		}
		return fmt.Errorf("seizing thread %d: %w", w.tid, ErrPtraceRefused)
	}
	t := &tracer{pid: w.pid, tid: w.tid, caller: caller, stopTimeout: opts.StopTimeout}
	defer func() {
		for _, line := range t.logs {
			opts.Debugf("%s", line)
		}
	}()

	if err := t.firstStop(w); err != nil {
		// Nothing was changed. A stopped thread is let go at once; one that
		// never stopped is released when this process exits.
		if t.state != running && !t.gone {
			err = joinErrs(err, t.detach())
		}
		return err
	}
	step(stepStopped)

	err := t.run(ctx, p)
	switch {
	case t.gone:
	case t.stranded:
		err = t.abandon(err)
	default:
		err = joinErrs(err, t.finish())
	}
	return err
}

// finish restores and detaches the thread, or abandons it if it cannot be
// put back as it was.
func (t *tracer) finish() error {
	err := t.restore()
	if err == nil {
		step(stepBeforeDetach)
		err = t.detach()
	}
	if err != nil && !t.gone {
		return t.abandon(err)
	}
	return err
}

// joinErrs combines two errors, either possibly nil, on one line: the
// command line prints them as the one-line reason a login was denied.
func joinErrs(first, second error) error {
	switch {
	case first == nil:
		return second
	case second == nil:
		return first
	}
	return fmt.Errorf("%w; %w", first, second)
}

// tracerOf returns the pid of the process tracing thread tid of pid, 0 if
// none or unknown: a thread has only one tracer, which is the other common
// reason for EPERM from PTRACE_SEIZE.
func tracerOf(pid, tid int) int {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "TracerPid:"); ok {
			tracer, _ := strconv.Atoi(strings.TrimSpace(v))
			return tracer
		}
	}
	return 0
}

func (t *tracer) logf(format string, args ...any) {
	t.logs = append(t.logs, fmt.Sprintf(format, args...))
}

// firstStop interrupts the thread, checks that it stopped inside the wait it
// was found in, with the syscall instruction where it should be, in the
// caller, and arms PTRACE_O_EXITKILL so that it can never outlive us altered.
func (t *tracer) firstStop(w waiter) error {
	if err := unix.PtraceInterrupt(t.tid); err != nil {
		return fmt.Errorf("interrupting thread %d: %w", t.tid, err)
	}
	if err := t.wait(time.Now().Add(t.stopTimeout)); err != nil {
		return fmt.Errorf("waiting for thread %d to stop: %w", t.tid, err)
	}
	if t.state != inSignalPath {
		return fmt.Errorf("thread %d stopped at a syscall stop without PTRACE_SYSCALL: %w", t.tid, ErrNotWaiting)
	}
	if err := unix.PtraceGetRegs(t.tid, &t.saved); err != nil {
		return fmt.Errorf("reading registers of thread %d: %w", t.tid, err)
	}
	r := &t.saved
	if r.Orig_rax != w.nr || r.Rdi != w.a0 || r.Rsi != w.a1 || int64(r.Rax) != errRestartSys {
		return fmt.Errorf("thread %d stopped outside its wait on us (orig_rax=%d rdi=%#x rsi=%#x rax=%d): %w",
			t.tid, int64(r.Orig_rax), r.Rdi, r.Rsi, int64(r.Rax), ErrNotWaiting)
	}
	var insn [syscallInsnLen]byte
	if _, err := unix.PtracePeekText(t.tid, uintptr(r.Rip-syscallInsnLen), insn[:]); err != nil {
		return fmt.Errorf("reading the instruction before rip %#x: %w", r.Rip, err)
	}
	if insn != [syscallInsnLen]byte{0x0f, 0x05} {
		return fmt.Errorf("no syscall instruction before rip %#x (found % x): %w", r.Rip, insn, ErrNotWaiting)
	}
	// The caller may have exited since the thread was found, and its thread
	// ID named another process by the time it was seized. Stopped, the
	// thread can no longer change process.
	if err := t.caller.owns(t.tid); err != nil {
		return fmt.Errorf("checking the stopped thread %d: %w", t.tid, err)
	}
	if err := unix.PtraceSetOptions(t.tid, unix.PTRACE_O_EXITKILL|unix.PTRACE_O_TRACESYSGOOD); err != nil {
		return fmt.Errorf("setting ptrace options on thread %d: %w", t.tid, err)
	}
	t.logf("thread %d stopped in syscall %d at rip %#x, rsp %#x", t.tid, r.Orig_rax, r.Rip, r.Rsp)
	return nil
}

// run does the join proper on the stopped thread: openat, check, setns and
// close of the network namespace, or, for a mount join, runMount's. It may
// leave the thread anywhere; restore puts it back.
func (t *tracer) run(ctx context.Context, p joinPlan) error {
	if p.mount != nil {
		return t.runMount(ctx, p)
	}
	addrs, err := t.writeScratch(p.netnsPath)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.join(ctx, addrs[0], p.target)
}

// join opens, in the caller, the network namespace whose path is at addr in
// the caller's memory, joins it provided it is want, and closes it again.
func (t *tracer) join(ctx context.Context, addr uintptr, want netns.ID) error {
	fd, err := t.openat(addr, "namespace")
	if err != nil {
		return err
	}
	t.logf("openat of the namespace in thread %d returned fd %d", t.tid, fd)
	step(stepOpened)
	joinErr := t.check(fd, want)
	if joinErr == nil {
		joinErr = ctx.Err()
	}
	if joinErr == nil {
		joinErr = t.setns(fd, unix.CLONE_NEWNET)
	}
	if joinErr == nil {
		t.logf("setns into the namespace in thread %d succeeded", t.tid)
		step(stepJoined)
	}
	return joinErrs(joinErr, t.closeFD(fd))
}

// runMount joins the mount namespace, then the working directory again by
// its path (setns(CLONE_NEWNS) leaves the thread at the new namespace's
// root), then the network namespace. What fails for ordinary reasons (a
// path that does not open, a file that is not the namespace checked, ctx)
// comes first, in the caller's own mount namespace: the two namespaces and
// the caller's own mount namespace, to come back to, are opened and checked
// before the first setns, and ctx is not looked at after it, so that a join
// is not cut in half. What can still fail after the first setns is undone.
func (t *tracer) runMount(ctx context.Context, p joinPlan) error {
	cwd, err := t.cwd()
	if err != nil {
		return err
	}
	addrs, err := t.writeScratch(p.mountPath, ownMountPath, p.netnsPath, cwd)
	if err != nil {
		return err
	}
	mountAddr, ownAddr, netnsAddr, cwdAddr := addrs[0], addrs[1], addrs[2], addrs[3]
	if err := ctx.Err(); err != nil {
		return err
	}
	mntFD, err := t.openChecked(mountAddr, p.mount.ID, "mount namespace", stepMntOpened)
	if err != nil {
		return fmt.Errorf("joining mount namespace %s: %w", p.mount.Path, err)
	}
	fds := []uint64{mntFD}
	ownFD, err := t.openChecked(ownAddr, p.callerMount, "caller's own mount namespace", "")
	if err == nil {
		fds = append(fds, ownFD)
		var netFD uint64
		netFD, err = t.openChecked(netnsAddr, p.target, "namespace", stepOpened)
		if err == nil {
			fds = append(fds, netFD)
			err = ctx.Err()
		}
		if err == nil {
			err = t.enter(mntFD, ownFD, netFD, cwdAddr, p)
		}
	}
	if t.stranded {
		return err // closing is no use: the caller is to be killed
	}
	for _, fd := range slices.Backward(fds) {
		err = joinErrs(err, t.closeFD(fd))
	}
	return err
}

// ownMountPath names, in the caller, the mount namespace of its thread.
var ownMountPath = []byte("/proc/thread-self/ns/mnt\x00")

// noFD is what openChecked returns for no fd.
const noFD = ^uint64(0)

// enter does the changes of a mount join, with the namespaces open as mntFD
// and netFD in the caller, its own mount namespace as ownFD, and its working
// directory's path at cwdAddr. If a step fails once the thread has, or may
// have, left its mount namespace, undo brings it back.
func (t *tracer) enter(mntFD, ownFD, netFD uint64, cwdAddr uintptr, p joinPlan) error {
	ret, err := t.syscall(unix.SYS_SETNS, mntFD, unix.CLONE_NEWNS)
	switch {
	case err != nil:
		// Whether the setns ran is not known: undo as if it had.
		err = fmt.Errorf("joining mount namespace %s: injecting setns: %w", p.mount.Path, err)
	case errnoOf(ret) != nil:
		// Refused: the thread has not moved.
		return fmt.Errorf("joining mount namespace %s: setns in the caller: %w", p.mount.Path, errnoOf(ret))
	default:
		t.logf("setns into the mount namespace in thread %d succeeded", t.tid)
		step(stepMntJoined)
		err = t.enterRest(netFD, cwdAddr)
	}
	if err != nil {
		return joinErrs(err, t.undo(ownFD, cwdAddr, p))
	}
	return nil
}

// enterRest enters the working directory again, whose path is at cwdAddr,
// and joins the network namespace open as netFD, once the thread is in the
// new mount namespace.
func (t *tracer) enterRest(netFD uint64, cwdAddr uintptr) error {
	if err := t.chdir(cwdAddr); err != nil {
		return fmt.Errorf("entering the working directory again in the new mount namespace: %w", err)
	}
	step(stepChdir)
	if err := t.setns(netFD, unix.CLONE_NEWNET); err != nil {
		return err
	}
	t.logf("setns into the namespace in thread %d succeeded", t.tid)
	step(stepJoined)
	return nil
}

// undo brings the thread back into its own mount namespace, open as ownFD,
// and its working directory, whose path is at cwdAddr, after a mount join
// failed once the thread had, or may have, left them; then it proves from
// /proc that the thread is in both again, and in its network namespace.
// setns(CLONE_NEWNS) also sets the thread's root to the namespace's, which
// is where it was: netns.EnterMountNS refuses a chrooted caller. A thread
// that cannot be put back is stranded.
func (t *tracer) undo(ownFD uint64, cwdAddr uintptr, p joinPlan) error {
	if t.gone {
		return nil // nothing is left altered
	}
	err := t.ready()
	if err == nil {
		err = t.setns(ownFD, unix.CLONE_NEWNS)
	}
	if err == nil {
		err = t.chdir(cwdAddr)
	}
	if err == nil {
		err = t.verifyUndone(p)
	}
	if err != nil {
		t.stranded = !t.gone
		return fmt.Errorf("putting the caller back into its mount namespace and working directory: %w", err)
	}
	t.logf("thread %d is back in its mount namespace and working directory", t.tid)
	step(stepUndone)
	return nil
}

// ready brings the thread to a stop from which syscall can inject: an
// injection that failed may have left it running, or at a syscall's entry.
func (t *tracer) ready() error {
	if t.state == atSyscallExit {
		return nil
	}
	return t.park()
}

// verifyUndone fails unless the thread is in the namespaces and the working
// directory it was in before the join.
func (t *tracer) verifyUndone(p joinPlan) error {
	task := fmt.Sprintf("/proc/%d/task/%d/", t.pid, t.tid)
	for _, was := range []struct {
		what, path string
		id         netns.ID
	}{
		{"mount namespace", task + "ns/mnt", p.callerMount},
		{"network namespace", task + "ns/net", p.callerNet},
		{"working directory", task + "cwd", t.cwdID},
	} {
		id, err := netns.PathID(was.path)
		if err != nil {
			return fmt.Errorf("reading the %s of thread %d: %w", was.what, t.tid, err)
		}
		if id != was.id {
			return fmt.Errorf("thread %d is in %s %s, was in %s", t.tid, was.what, id, was.id)
		}
	}
	return nil
}

// openChecked opens, in the caller, the namespace file whose path is at addr
// in the caller's memory, runs step opened, and returns the fd provided it is
// want, closing it again otherwise; noFD when it opened nothing. what names
// the file in errors.
func (t *tracer) openChecked(addr uintptr, want netns.ID, what, opened string) (uint64, error) {
	fd, err := t.openat(addr, what)
	if err != nil {
		return noFD, err
	}
	t.logf("openat of the %s in thread %d returned fd %d", what, t.tid, fd)
	if opened != "" {
		step(opened)
	}
	if err := t.check(fd, want); err != nil {
		return noFD, joinErrs(err, t.closeFD(fd))
	}
	return fd, nil
}

// cwd returns the stopped thread's working directory, NUL-terminated, for
// the chdir after setns(CLONE_NEWNS), and records which directory it is, for
// an undo to prove it came back there. Read now, it cannot change before the
// chdir: the caller has one thread, and that one is stopped. A directory that
// was removed, or that the kernel cannot name from our root, has no path to
// enter again in the new namespace. One whose name really ends in
// " (deleted)" is refused with them: the kernel's mark cannot be told apart.
func (t *tracer) cwd() ([]byte, error) {
	link := fmt.Sprintf("/proc/%d/task/%d/cwd", t.pid, t.tid)
	dir, err := os.Readlink(link)
	if err != nil {
		return nil, fmt.Errorf("reading the working directory of thread %d: %w: %w", t.tid, ErrUnnamedCwd, err)
	}
	if !filepath.IsAbs(dir) || strings.HasSuffix(dir, " (deleted)") {
		return nil, fmt.Errorf("working directory of thread %d is %q: %w", t.tid, dir, ErrUnnamedCwd)
	}
	if t.cwdID, err = netns.PathID(link); err != nil {
		return nil, fmt.Errorf("identifying the working directory of thread %d: %w", t.tid, err)
	}
	// A path the kernel printed holds no NUL byte.
	return unix.ByteSliceFromString(dir)
}

// openat opens the file whose path is at addr in the caller's memory, in the
// caller, and returns the fd there; what names the file in errors.
func (t *tracer) openat(addr uintptr, what string) (uint64, error) {
	atFDCWD := int64(unix.AT_FDCWD)
	ret, err := t.syscall(unix.SYS_OPENAT, uint64(atFDCWD), uint64(addr), injectedOpenFlags)
	if err != nil {
		return 0, fmt.Errorf("injecting openat: %w", err)
	}
	if err := errnoOf(ret); err != nil {
		return 0, fmt.Errorf("opening the %s in the caller: %w", what, err)
	}
	return ret, nil
}

// check fails unless fd, open in the caller, is the namespace want: the
// caller resolved the path itself, in its own mount namespace and later than
// it was checked.
func (t *tracer) check(fd uint64, want netns.ID) error {
	opened, err := netns.PathID(fmt.Sprintf("/proc/%d/fd/%d", t.pid, fd))
	if err != nil {
		return fmt.Errorf("identifying the file the caller opened: %w", err)
	}
	if opened != want {
		return fmt.Errorf("caller opened %s, checked %s: %w", opened, want, ErrMismatch)
	}
	return nil
}

// setns joins, in the caller, the namespace open there as fd, of type
// nstype (CLONE_NEWNS, CLONE_NEWNET).
func (t *tracer) setns(fd uint64, nstype int) error {
	ret, err := t.syscall(unix.SYS_SETNS, fd, uint64(nstype))
	if err != nil {
		return fmt.Errorf("injecting setns: %w", err)
	}
	if err := errnoOf(ret); err != nil {
		return fmt.Errorf("setns in the caller: %w", err)
	}
	return nil
}

// chdir changes, in the caller, to the directory whose path is at addr in
// the caller's memory.
func (t *tracer) chdir(addr uintptr) error {
	ret, err := t.syscall(unix.SYS_CHDIR, uint64(addr))
	if err != nil {
		return fmt.Errorf("injecting chdir: %w", err)
	}
	if err := errnoOf(ret); err != nil {
		return fmt.Errorf("chdir in the caller: %w", err)
	}
	return nil
}

func (t *tracer) closeFD(fd uint64) error {
	ret, err := t.syscall(unix.SYS_CLOSE, fd)
	if err != nil {
		return fmt.Errorf("injecting close: %w", err)
	}
	if err := errnoOf(ret); err != nil {
		return fmt.Errorf("closing fd %d in the caller: %w", fd, err)
	}
	return nil
}

// errnoOf returns the error a raw syscall result stands for, if any.
func errnoOf(ret uint64) error {
	if r := int64(ret); r < 0 && r >= -4095 {
		return unix.Errno(-r)
	}
	return nil
}

// writeScratch puts the NUL-terminated strings one after the other on the
// caller's stack, below the red zone, and returns their addresses: no code
// of the thread runs while it is attached (signals are held back), so
// nothing else uses that memory until restore puts the old bytes back.
func (t *tracer) writeScratch(strs ...[]byte) ([]uintptr, error) {
	var all []byte
	for _, s := range strs {
		all = append(all, s...)
	}
	addr := (uintptr(t.saved.Rsp) - redZone - uintptr(len(all))) &^ 15
	old := make([]byte, len(all))
	if _, err := unix.PtracePeekData(t.tid, addr, old); err != nil {
		return nil, fmt.Errorf("reading the caller's stack at %#x: %w", addr, err)
	}
	// Recorded before writing, so that a partial write is undone too.
	t.scratch, t.scratchSaved = addr, old
	if _, err := unix.PtracePokeData(t.tid, addr, all); err != nil {
		return nil, fmt.Errorf("writing the paths to the caller's stack at %#x: %w", addr, err)
	}
	addrs := make([]uintptr, len(strs))
	for i, s := range strs {
		addrs[i] = addr
		addr += uintptr(len(s))
	}
	return addrs, nil
}

// syscall runs one system call in the stopped thread through its own
// syscall instruction and returns the raw result (rax).
func (t *tracer) syscall(nr uint64, args ...uint64) (uint64, error) {
	regs := t.saved
	regs.Rip -= syscallInsnLen
	regs.Rax = nr
	// orig_rax -1 says "not in a syscall", so that the kernel's restart logic
	// does not rewrite rip and rax before the thread gets back to user mode.
	regs.Orig_rax = ^uint64(0)
	argRegs := []*uint64{&regs.Rdi, &regs.Rsi, &regs.Rdx, &regs.R10, &regs.R8, &regs.R9}
	for i, a := range args {
		*argRegs[i] = a
	}
	if err := unix.PtraceSetRegs(t.tid, &regs); err != nil {
		return 0, fmt.Errorf("setting registers for syscall %d: %w", nr, err)
	}
	if err := t.stopAtSyscall(atSyscallEntry, &regs); err != nil {
		return 0, fmt.Errorf("running to the entry of syscall %d: %w", nr, err)
	}
	if regs.Orig_rax != nr {
		return 0, fmt.Errorf("expected the entry of syscall %d, thread entered %d", nr, int64(regs.Orig_rax))
	}
	if err := t.stopAtSyscall(atSyscallExit, &regs); err != nil {
		return 0, fmt.Errorf("running syscall %d: %w", nr, err)
	}
	return regs.Rax, nil
}

// stopAtSyscall resumes the thread up to its next syscall stop, which must
// be want, resuming it past signal and group stops on the way, and reads its
// registers there. If it does not get there in time, which means the
// injected syscall blocks, it interrupts the thread once: a blocking syscall
// then ends with a syscall-exit stop.
func (t *tracer) stopAtSyscall(want stopState, regs *unix.PtraceRegs) error {
	if err := t.resume(unix.PTRACE_SYSCALL); err != nil {
		return err
	}
	deadline := time.Now().Add(t.stopTimeout)
	interrupted := false
	for {
		err := t.wait(deadline)
		if errors.Is(err, ErrTimeout) && !interrupted {
			interrupted = true
			if err := unix.PtraceInterrupt(t.tid); err != nil {
				return fmt.Errorf("interrupting thread %d: %w", t.tid, err)
			}
			deadline = time.Now().Add(t.stopTimeout)
			continue
		}
		if err != nil {
			return err
		}
		if t.state == want {
			if err := unix.PtraceGetRegs(t.tid, regs); err != nil {
				return fmt.Errorf("reading registers of thread %d: %w", t.tid, err)
			}
			return nil
		}
		if t.state == atSyscallEntry || t.state == atSyscallExit {
			return fmt.Errorf("thread %d stopped at the other end of a syscall", t.tid)
		}
		if err := t.resume(unix.PTRACE_SYSCALL); err != nil {
			return err
		}
	}
}

// restore puts the thread back as it was first stopped: in the signal path
// of its interrupted wait, with its memory and registers. The kernel then
// restarts the wait, or ends it with EINTR for a handler without SA_RESTART,
// exactly as it would have had we never been there.
func (t *tracer) restore() error {
	if err := t.park(); err != nil {
		return fmt.Errorf("returning thread %d to its wait: %w", t.tid, err)
	}
	if t.scratchSaved != nil {
		if _, err := unix.PtracePokeData(t.tid, t.scratch, t.scratchSaved); err != nil {
			return fmt.Errorf("restoring the caller's stack at %#x: %w", t.scratch, err)
		}
	}
	if err := unix.PtraceSetRegs(t.tid, &t.saved); err != nil {
		return fmt.Errorf("restoring the registers of thread %d: %w", t.tid, err)
	}
	return nil
}

// park brings the thread into the signal path (get_signal), where it was
// first stopped. From a syscall-exit stop the restart logic runs only if a
// signal is pending as the thread leaves the kernel; PTRACE_DETACH happens
// to mark one today, but the documented way to be there is the stop that
// PTRACE_INTERRUPT causes before the thread returns to user mode.
func (t *tracer) park() error {
	deadline := time.Now().Add(t.stopTimeout)
	for t.state != inSignalPath {
		switch t.state {
		case running:
			// A resume did not stop in time. The interrupt ends a blocking
			// injected syscall (syscall-exit stop) or stops the thread.
			if err := unix.PtraceInterrupt(t.tid); err != nil {
				return fmt.Errorf("interrupting thread %d: %w", t.tid, err)
			}
		case atSyscallEntry:
			// Skip the injected syscall rather than run it unchecked.
			var regs unix.PtraceRegs
			if err := unix.PtraceGetRegs(t.tid, &regs); err != nil {
				return fmt.Errorf("reading registers of thread %d: %w", t.tid, err)
			}
			regs.Orig_rax = ^uint64(0)
			if err := unix.PtraceSetRegs(t.tid, &regs); err != nil {
				return fmt.Errorf("cancelling the syscall of thread %d: %w", t.tid, err)
			}
			fallthrough
		case atSyscallExit:
			if err := unix.PtraceInterrupt(t.tid); err != nil {
				return fmt.Errorf("interrupting thread %d: %w", t.tid, err)
			}
			if err := t.resume(unix.PTRACE_CONT); err != nil {
				return err
			}
		}
		if err := t.wait(deadline); err != nil {
			return err
		}
	}
	return nil
}

// resume restarts the stopped thread with request (PTRACE_SYSCALL or
// PTRACE_CONT), always without a signal: the ones it stopped for are
// re-queued at detach.
func (t *tracer) resume(request int) error {
	var err error
	if request == unix.PTRACE_SYSCALL {
		err = unix.PtraceSyscall(t.tid, 0)
	} else {
		err = unix.PtraceCont(t.tid, 0)
	}
	if err != nil {
		return fmt.Errorf("resuming thread %d: %w", t.tid, err)
	}
	t.state = running
	return nil
}

// wait polls until the thread's next stop, or deadline, and records what
// kind of stop it is.
func (t *tracer) wait(deadline time.Time) error {
	var ws unix.WaitStatus
	start := time.Now()
	for delay := 10 * time.Microsecond; ; {
		pid, err := unix.Wait4(t.tid, &ws, unix.WNOHANG|unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("waiting for thread %d: %w", t.tid, err)
		}
		if pid == t.tid {
			break
		}
		now := time.Now()
		if now.After(deadline) {
			return fmt.Errorf("waiting for thread %d to stop: %w", t.tid, ErrTimeout)
		}
		// A stop normally follows within microseconds, far below what a
		// Go timer resolves, so poll by yielding the CPU at first, then
		// sleep this (locked) thread in growing steps.
		if now.Sub(start) < spinTime {
			_, _, _ = unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
			continue
		}
		ts := unix.NsecToTimespec(delay.Nanoseconds())
		_ = unix.Nanosleep(&ts, nil) // EINTR only shortens the sleep
		delay = min(2*delay, time.Millisecond)
	}

	switch {
	case ws.Exited() || ws.Signaled():
		t.gone = true
		return fmt.Errorf("thread %d (wait status %#x): %w", t.tid, uint32(ws), ErrCallerGone)
	case !ws.Stopped():
		return fmt.Errorf("thread %d: unexpected wait status %#x", t.tid, uint32(ws))
	}
	sig := ws.StopSignal()
	event := int(ws) >> 16
	switch {
	case sig == unix.SIGTRAP|0x80: // PTRACE_O_TRACESYSGOOD marks syscall stops
		if t.inSyscall {
			t.state = atSyscallExit
		} else {
			t.state = atSyscallEntry
		}
		t.inSyscall = !t.inSyscall
	case event == unix.PTRACE_EVENT_STOP: // interrupt or group stop
		t.state, t.inSyscall = inSignalPath, false
	case event != 0:
		return fmt.Errorf("thread %d: unexpected ptrace event %d", t.tid, event)
	default:
		t.signals = append(t.signals, sig)
		t.logf("held back signal %v of thread %d", sig, t.tid)
		t.state, t.inSyscall = inSignalPath, false
	}
	return nil
}

// detach queues again the signals that were held back, while the thread is
// still stopped, then lets it go. It finds them pending the moment it
// resumes, before its wait restarts, as if they had just arrived (tgkill
// makes us their sender: the original siginfo cannot be forged).
func (t *tracer) detach() error {
	for _, sig := range t.signals {
		if err := unix.Tgkill(t.pid, t.tid, sig); err != nil {
			t.logf("re-queuing signal %v to thread %d: %v", sig, t.tid, err)
		}
	}
	if err := unix.PtraceDetach(t.tid); err != nil {
		return fmt.Errorf("detaching from thread %d: %w", t.tid, err)
	}
	return nil
}

// abandon is the last resort when the thread cannot be put back as it was.
// It stays attached, and the whole caller is killed now rather than when
// EXITKILL would do it at our exit, so it can never run on altered.
func (t *tracer) abandon(cause error) error {
	if err := unix.Kill(t.pid, unix.SIGKILL); err != nil {
		cause = joinErrs(cause, fmt.Errorf("killing caller %d: %w", t.pid, err))
	}
	return fmt.Errorf("%w: %w", ErrCallerKilled, cause)
}
