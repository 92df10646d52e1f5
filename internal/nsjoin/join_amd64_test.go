package nsjoin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netns-session/netns-session/internal/netns"
)

// The test binary doubles as the programs the tests run: the helper that
// joins its parent (as `netns-session pam` does), a multithreaded caller,
// and a tracer that holds a caller.
const (
	envMode     = "NSJOIN_TEST_MODE" // "join", "go-caller" or "tracer"
	envTracee   = "NSJOIN_TEST_TRACEE"
	envNetns    = "NSJOIN_TEST_NETNS"
	envWait     = "NSJOIN_TEST_WAIT_TIMEOUT"
	envSignalAt = "NSJOIN_TEST_SIGNAL_AT" // step at which the helper sends SIGUSR1 to its parent
	// envKillParent makes the helper, once pinned and waited on, kill its
	// parent and join only once it has been handed to a reaper.
	envKillParent = "NSJOIN_TEST_KILL_PARENT"
	envGate       = "NSJOIN_TEST_GATE" // the C caller waits for a line on stdin before each run
	// envMount and envMountID name the mount namespace the helper joins
	// too: its path (the C caller checks it too) and its "dev:ino".
	envMount   = "NSJOIN_TEST_MOUNT"
	envMountID = "NSJOIN_TEST_MOUNT_ID"
	envKillAt  = "NSJOIN_TEST_KILL_AT" // step at which the helper SIGKILLs itself
	envCwd     = "NSJOIN_TEST_CWD"     // the C caller's working directory
	// envCwdRmdir makes the C caller remove its working directory.
	envCwdRmdir = "NSJOIN_TEST_CWD_RMDIR"
	envCancelAt = "NSJOIN_TEST_CANCEL_AT" // step at which the helper cancels the join's ctx
	// envSwapNetns names a network namespace that the helper, at
	// stepMntOpened (after the target was checked), binds over
	// NSJOIN_TEST_NETNS in its mount namespace, which is the caller's.
	envSwapNetns = "NSJOIN_TEST_SWAP_NETNS"
	envRmdirAt   = "NSJOIN_TEST_RMDIR_AT" // step at which the helper removes NSJOIN_TEST_CWD
	// envExpectFail makes the C caller want every join to fail, and check
	// that it is where it was.
	envExpectFail = "NSJOIN_TEST_EXPECT_FAIL"
	// envDenyNetnsSetns makes the C caller confine itself with a seccomp
	// filter under which setns(fd, CLONE_NEWNET) fails with EPERM.
	envDenyNetnsSetns = "NSJOIN_TEST_DENY_NETNS_SETNS"
	reportTag         = "join: "
)

var (
	allSteps      = []string{stepBeforeSeize, stepStopped, stepOpened, stepJoined, stepBeforeDetach}
	allMountSteps = []string{stepBeforeSeize, stepStopped, stepMntOpened, stepOpened, stepMntJoined, stepChdir, stepJoined, stepBeforeDetach}
)

// joinReport is what the helper prints, as JSON after reportTag.
type joinReport struct {
	Err         string
	Steps       []string
	Logs        []string
	Parent      string        // the parent's network namespace after the join
	ParentMount string        // and its mount namespace
	Join        time.Duration // JoinParent, from call to return
	Attached    time.Duration // from stepBeforeSeize to return
	HookErr     string        // what the test's stepHook failed to do
}

func TestMain(m *testing.M) {
	switch os.Getenv(envMode) {
	case "join":
		os.Exit(runJoinHelper())
	case "go-caller":
		os.Exit(runGoCaller())
	case "tracer":
		os.Exit(runTracer())
	}
	os.Exit(m.Run())
}

func runJoinHelper() int {
	var rep joinReport
	// Pinned first, as the pam command does.
	caller, err := PinParent()
	if err == nil && os.Getenv(envKillParent) != "" {
		err = becomeOrphan(caller)
	}
	if err != nil {
		rep.Err = err.Error()
		line, _ := json.Marshal(rep)
		fmt.Printf("%s%s\n", reportTag, line)
		return 1
	}
	defer caller.Close()
	var seized time.Time
	signalAt := os.Getenv(envSignalAt)
	killAt := os.Getenv(envKillAt)
	cancelAt := os.Getenv(envCancelAt)
	rmdirAt := os.Getenv(envRmdirAt)
	swapNetns := os.Getenv(envSwapNetns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stepHook = func(step string) {
		rep.Steps = append(rep.Steps, step)
		if step == stepBeforeSeize {
			seized = time.Now()
		}
		if step == signalAt {
			_ = unix.Kill(os.Getppid(), unix.SIGUSR1)
		}
		if step == killAt {
			_ = unix.Kill(os.Getpid(), unix.SIGKILL)
		}
		if step == cancelAt {
			cancel()
		}
		if step == rmdirAt {
			if err := unix.Rmdir(os.Getenv(envCwd)); err != nil {
				rep.HookErr = err.Error()
			}
		}
		if step == stepMntOpened && swapNetns != "" {
			if err := bindOver(swapNetns, os.Getenv(envNetns)); err != nil {
				rep.HookErr = err.Error()
			}
		}
	}
	opts := Options{Debugf: func(format string, args ...any) {
		rep.Logs = append(rep.Logs, fmt.Sprintf(format, args...))
	}}
	if d, err := time.ParseDuration(os.Getenv(envWait)); err == nil {
		opts.WaitTimeout = d
	}
	var mount *MountJoin
	if path := os.Getenv(envMount); path != "" {
		mount = &MountJoin{Path: path}
		if _, err := fmt.Sscanf(os.Getenv(envMountID), "%d:%d", &mount.ID.Dev, &mount.ID.Ino); err != nil {
			fmt.Printf("join: bad %s %q: %v\n", envMountID, os.Getenv(envMountID), err)
			return 1
		}
	}
	start := time.Now()
	err = JoinParent(ctx, caller, os.Getenv(envNetns), mount, opts)
	end := time.Now()
	rep.Join = end.Sub(start)
	if !seized.IsZero() {
		rep.Attached = end.Sub(seized)
	}
	if err != nil {
		rep.Err = err.Error()
	}
	if id, err := netns.ProcessNetnsID(os.Getppid()); err == nil {
		rep.Parent = id.String()
	}
	if id, err := netns.PathID(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid())); err == nil {
		rep.ParentMount = id.String()
	}
	line, _ := json.Marshal(rep)
	fmt.Printf("%s%s\n", reportTag, line)
	if err != nil {
		return 1
	}
	return 0
}

// bindOver replaces the mount at target by a bind of src.
func bindOver(src, target string) error {
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmounting %s: %w", target, err)
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s over %s: %w", src, target, err)
	}
	return nil
}

// becomeOrphan waits until caller waits on this process, kills it, and
// returns once this process has been handed to a reaper: what happens to a
// pam_exec helper when the user kills their own su.
func becomeOrphan(caller *Caller) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, found, err := waitingThread(caller.pid, os.Getpid())
		if err != nil {
			return err
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("caller %d never waited on us", caller.pid)
		}
		time.Sleep(time.Millisecond)
	}
	if err := unix.Kill(caller.pid, unix.SIGKILL); err != nil {
		return fmt.Errorf("killing caller %d: %w", caller.pid, err)
	}
	for os.Getppid() == caller.pid {
		if time.Now().After(deadline) {
			return fmt.Errorf("still the child of killed caller %d", caller.pid)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// goCallerReport is what runGoCaller prints, as JSON after "go-caller: ".
type goCallerReport struct {
	Threads      int
	Waiter       string   // namespace of the thread that waited on the helper
	WaiterMount  string   // and its mount namespace
	Others       []string // distinct namespaces of all other threads
	HelperStatus int
}

// runGoCaller waits for a helper from one locked thread while the other
// threads of the Go runtime, and a few busy ones, go on. Then it reports the
// namespaces of its threads and starts `stat` from the waiting thread.
func runGoCaller() int {
	runtime.LockOSThread()
	for range 3 {
		go func() {
			runtime.LockOSThread()
			for {
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Println("go-caller:", err)
		return 1
	}
	attr := &syscall.ProcAttr{Env: environ(envMode, "join"), Files: []uintptr{0, 1, 2}}
	pid, err := syscall.ForkExec(exe, []string{exe}, attr)
	if err != nil {
		fmt.Println("go-caller: starting helper:", err)
		return 1
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		fmt.Println("go-caller: waiting for helper:", err)
		return 1
	}

	rep := goCallerReport{HelperStatus: ws.ExitStatus()}
	self, tid := os.Getpid(), unix.Gettid()
	waiter, err := netns.ThreadNetnsID(self, tid)
	if err != nil {
		fmt.Println("go-caller:", err)
		return 1
	}
	rep.Waiter = waiter.String()
	waiterMount, err := threadMountID(self, tid)
	if err != nil {
		fmt.Println("go-caller:", err)
		return 1
	}
	rep.WaiterMount = waiterMount.String()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", self))
	if err != nil {
		fmt.Println("go-caller:", err)
		return 1
	}
	rep.Threads = len(tasks)
	for _, task := range tasks {
		if task.Name() == fmt.Sprint(tid) {
			continue
		}
		id, err := netns.PathID(fmt.Sprintf("/proc/%d/task/%s/ns/net", self, task.Name()))
		if err == nil && !slices.Contains(rep.Others, id.String()) {
			rep.Others = append(rep.Others, id.String())
		}
	}
	line, _ := json.Marshal(rep)
	fmt.Printf("go-caller: %s\n", line)

	// Forked from this thread, so it must start in this thread's namespace.
	statArgs := []string{"stat", "-L", "-c", "child=%d:%i", "/proc/self/ns/net"}
	statPath, err := exec.LookPath("stat")
	if err != nil {
		fmt.Println("go-caller:", err)
		return 1
	}
	if pid, err = syscall.ForkExec(statPath, statArgs, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}); err == nil {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
	}
	if err != nil {
		fmt.Println("go-caller: running stat:", err)
		return 1
	}
	return 0
}

// environ returns the environment with the given key, value pairs set.
func environ(kv ...string) []string {
	env := os.Environ()
	for i := 0; i < len(kv); i += 2 {
		env = slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, kv[i]+"=") })
		env = append(env, kv[i]+"="+kv[i+1])
	}
	return env
}

func testBinary(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// reports returns the helper reports in out, and the other lines.
func reports(t testing.TB, out string) ([]joinReport, []string) {
	t.Helper()
	var reps []joinReport
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), reportTag)
		if !ok {
			lines = append(lines, sc.Text())
			continue
		}
		var rep joinReport
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			t.Fatalf("parsing helper report %q: %v", line, err)
		}
		reps = append(reps, rep)
	}
	return reps, lines
}

func mustID(t testing.TB, path string) string {
	t.Helper()
	id, err := netns.PathID(path)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func TestParseSyscall(t *testing.T) {
	tests := []struct {
		name        string
		raw         string
		want        waiter
		wantBlocked bool
	}{
		{
			name:        "blocked in wait4",
			raw:         "61 0x1f4a 0x7ffc8d1c 0x0 0x0 0x0 0x0 0x7ffc8d10 0x7f3a1b2c\n",
			want:        waiter{nr: 61, a0: 0x1f4a, a1: 0x7ffc8d1c},
			wantBlocked: true,
		},
		{name: "running", raw: "running\n"},
		{name: "not in a syscall", raw: "-1 0x7ffc8d10 0x7f3a1b2c\n"},
		{name: "truncated", raw: "61 0x1f4a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, blocked := parseSyscall([]byte(tt.raw))
			if got != tt.want || blocked != tt.wantBlocked {
				t.Errorf("parseSyscall(%q) = %+v, %v; want %+v, %v", tt.raw, got, blocked, tt.want, tt.wantBlocked)
			}
		})
	}
}

func TestWaitsOnlyOnExactlyTheChild(t *testing.T) {
	const child = 4242
	tests := []struct {
		name string
		w    waiter
		want bool
	}{
		{"wait4 on child", waiter{nr: sysWait4, a0: child}, true},
		{"wait4 on child, high bits set", waiter{nr: sysWait4, a0: 0xffffffff00000000 | child}, true},
		{"wait4 on any child", waiter{nr: sysWait4, a0: 0xffffffffffffffff}, false},
		{"wait4 on another child", waiter{nr: sysWait4, a0: child + 1}, false},
		{"wait4 on a process group", waiter{nr: sysWait4, a0: 0}, false},
		{"waitid P_PID child", waiter{nr: sysWaitid, a0: idtypePID, a1: child}, true},
		{"waitid P_PID another", waiter{nr: sysWaitid, a0: idtypePID, a1: child + 1}, false},
		{"waitid P_ALL", waiter{nr: sysWaitid, a0: 0}, false},
		{"waitid P_PIDFD", waiter{nr: sysWaitid, a0: 3, a1: 5}, false},
		{"nanosleep", waiter{nr: unix.SYS_CLOCK_NANOSLEEP, a0: child}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := waitsOn(tt.w, child); got != tt.want {
				t.Errorf("waitsOn(%+v, %d) = %v, want %v", tt.w, child, got, tt.want)
			}
		})
	}
}

func TestJoinParentRejectsBadPaths(t *testing.T) {
	parent := &Caller{pid: os.Getppid()}
	tests := []struct {
		name    string
		caller  *Caller
		path    string
		wantErr error
	}{
		{"relative", parent, "run/netns/x", ErrRelativePath},
		{"empty", parent, "", ErrRelativePath},
		{"NUL byte", parent, "/run/netns/a\x00b", unix.EINVAL},
		{"no caller pinned", nil, "/proc/self/ns/net", ErrCallerChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stepHook = func(step string) { t.Errorf("reached step %s", step) }
			defer func() { stepHook = nil }()
			err := JoinParent(context.Background(), tt.caller, tt.path, nil, Options{})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("JoinParent(%q) = %v, want %v", tt.path, err, tt.wantErr)
			}
		})
	}
}

// runShell runs script with /bin/sh, $NSJOIN_TEST_BIN being the helper, and
// returns the want helper reports. A shell waits on any child, so the helper
// never joins it.
func runShell(t *testing.T, script string, want int, env ...string) []joinReport {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = environ(append([]string{envMode, "join", "NSJOIN_TEST_BIN", testBinary(t)}, env...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shell failed: %v\n%s", err, out)
	}
	reps, _ := reports(t, string(out))
	if len(reps) != want {
		t.Fatalf("got %d helper reports, want %d:\n%s", len(reps), want, out)
	}
	return reps
}

// callerRun is what `caller report` and `caller orphan` say about one run
// of the helper.
type callerRun struct {
	status              string // the helper's wait status
	fdsBefore, fdsAfter string
	self, child         string // the caller's namespace afterwards, and a new child's
	mount               string // the caller's mount namespace afterwards
	cwd, cwdID          string // its working directory afterwards, and the directory's ID
}

// parseCallerRuns picks the runs out of the C caller's other lines.
func parseCallerRuns(t testing.TB, lines []string) []callerRun {
	t.Helper()
	var runs []callerRun
	for _, line := range lines {
		rest, ok := strings.CutPrefix(line, "caller: run=")
		if !ok {
			continue
		}
		// The working directory comes last: its name may hold spaces.
		rest, cwd, _ := strings.Cut(rest, " cwd=")
		kv := map[string]string{}
		for _, field := range strings.Fields(rest)[1:] {
			k, v, _ := strings.Cut(field, "=")
			kv[k] = v
		}
		runs = append(runs, callerRun{status: kv["status"], fdsBefore: kv["fds-before"], fdsAfter: kv["fds-after"], self: kv["self"], child: kv["child"],
			mount: kv["mnt"], cwd: cwd, cwdID: kv["cwdid"]})
	}
	return runs
}

// runReport runs `caller MODE WAIT HELPER NETNS...` (MODE report or orphan)
// and returns one helper report and one caller run per NETNS.
func runReport(t *testing.T, mode, wait string, env []string, netns ...string) ([]joinReport, []callerRun) {
	t.Helper()
	cmd := exec.Command(buildCaller(t), append([]string{mode, wait, testBinary(t)}, netns...)...)
	cmd.Env = environ(append([]string{envMode, "join"}, env...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("caller failed: %v\n%s", err, out)
	}
	reps, lines := reports(t, string(out))
	runs := parseCallerRuns(t, lines)
	if len(reps) != len(netns) || len(runs) != len(netns) {
		t.Fatalf("got %d helper reports and %d caller runs, want %d:\n%s", len(reps), len(runs), len(netns), out)
	}
	return reps, runs
}

// assertRun checks one run of the C caller in report mode: the helper's
// error and steps, the network namespace the caller and a new child of it
// are in, and the caller's fds, which must be as they were.
func assertRun(t *testing.T, rep joinReport, run callerRun, wantErr string, wantSteps []string, wantNS string) {
	t.Helper()
	t.Logf("helper: %+v; caller: %+v", rep, run)
	if rep.HookErr != "" {
		t.Fatalf("the helper's step hook failed: %s", rep.HookErr)
	}
	if wantErr == "" && rep.Err != "" || !strings.Contains(rep.Err, wantErr) {
		t.Errorf("JoinParent error = %q, want one containing %q", rep.Err, wantErr)
	}
	if !slices.Equal(rep.Steps, wantSteps) {
		t.Errorf("steps = %v, want %v", rep.Steps, wantSteps)
	}
	if run.self != wantNS || run.child != wantNS {
		t.Errorf("caller in %q, its new child in %q; want %s", run.self, run.child, wantNS)
	}
	if run.fdsBefore == "" || run.fdsAfter != run.fdsBefore {
		t.Errorf("caller fds went from %q to %q", run.fdsBefore, run.fdsAfter)
	}
}

// TestJoinParentJoinsOnlyACallerWaitingOnIt runs the helper under C callers
// that wait for it in each way there is, and with targets that fail.
func TestJoinParentJoinsOnlyACallerWaitingOnIt(t *testing.T) {
	requireRoot(t)
	target := newNetns(t)
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ownNS := fmt.Sprintf("/proc/%d/ns/", os.Getpid())
	host := mustID(t, ownNS+"net")
	joined := mustID(t, target)

	tests := []struct {
		name      string
		wait      string // how the caller waits (see testdata/caller.c)
		netns     string
		wantErr   string
		wantSteps []string
		wantNS    string // the caller's namespace afterwards
	}{
		{name: "wait4 on it is joined", wait: "pid", netns: target, wantSteps: allSteps, wantNS: joined},
		{name: "waitid on it is joined", wait: "waitid", netns: target, wantSteps: allSteps, wantNS: joined},
		{name: "wait4 on any child is not joined", wait: "any", netns: target, wantErr: ErrNotWaiting.Error(), wantNS: host},
		{name: "waitid on any child is not joined", wait: "waitid-all", netns: target, wantErr: ErrNotWaiting.Error(), wantNS: host},
		{name: "reading its output first is not joined", wait: "stdout", netns: target, wantErr: ErrNotWaiting.Error(), wantNS: host},
		{name: "already in target, no ptrace", wait: "pid", netns: ownNS + "net", wantNS: host},
		{name: "reading its output first, already in target, passes", wait: "stdout", netns: ownNS + "net", wantNS: host},
		{name: "waiting on any child, already in target, passes", wait: "any", netns: ownNS + "net", wantNS: host},
		{name: "target not a namespace", wait: "pid", netns: regular, wantErr: netns.ErrNotNamespace.Error(), wantNS: host},
		{name: "target another namespace type", wait: "pid", netns: ownNS + "uts", wantErr: netns.ErrNotNetNamespace.Error(), wantNS: host},
		{name: "target missing", wait: "pid", netns: filepath.Join(dir, "missing"), wantErr: "no such file or directory", wantNS: host},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reps, runs := runReport(t, "report", tt.wait, []string{envWait, "200ms"}, tt.netns)
			assertRun(t, reps[0], runs[0], tt.wantErr, tt.wantSteps, tt.wantNS)
		})
	}

	t.Run("not waiting, already in target, passes", func(t *testing.T) {
		rep := runShell(t, `"$NSJOIN_TEST_BIN" & exec sleep 1`, 1, envNetns, ownNS+"net", envWait, "200ms")[0]
		if rep.Err != "" || len(rep.Steps) != 0 {
			t.Errorf("helper: %+v, want it through without ptrace", rep)
		}
	})
	t.Run("not waiting", func(t *testing.T) {
		rep := runShell(t, `"$NSJOIN_TEST_BIN" & exec sleep 1`, 1, envNetns, target, envWait, "200ms")[0]
		if !strings.Contains(rep.Err, ErrNotWaiting.Error()) || len(rep.Steps) != 0 || rep.Parent != host {
			t.Errorf("helper: %+v, want %v and the caller left in %s", rep, ErrNotWaiting, host)
		}
	})
	t.Run("already-in-target proof is a log line", func(t *testing.T) {
		reps, _ := runReport(t, "report", "pid", nil, target, target)
		if !slices.Equal(reps[0].Steps, allSteps) || len(reps[1].Steps) != 0 {
			t.Errorf("steps = %v then %v, want all then none", reps[0].Steps, reps[1].Steps)
		}
		if len(reps[1].Logs) != 1 || !strings.Contains(reps[1].Logs[0], "already in") {
			t.Errorf("second join logged %q, want one 'already in' line", reps[1].Logs)
		}
	})
}

// TestJoinParentNeverJoinsTheReaperOfItsCaller kills the caller that the
// helper pinned, as a user may kill their own su, so that the helper is
// handed to a subreaper: one that waits on any child, as the reapers there
// are do, and one that even waits on exactly the helper. Neither is joined.
func TestJoinParentNeverJoinsTheReaperOfItsCaller(t *testing.T) {
	requireRoot(t)
	target := newNetns(t)
	host := mustID(t, fmt.Sprintf("/proc/%d/ns/net", os.Getpid()))
	for _, wait := range []string{"any", "pid"} {
		t.Run("reaper waiting on "+wait, func(t *testing.T) {
			reps, runs := runReport(t, "orphan", wait, []string{envWait, "200ms"}, target)
			rep, run := reps[0], runs[0]
			t.Logf("helper: %+v; reaper: %+v", rep, run)
			if !strings.Contains(rep.Err, ErrCallerChanged.Error()) || len(rep.Steps) != 0 {
				t.Errorf("helper: error %q, steps %v; want %v before any ptrace", rep.Err, rep.Steps, ErrCallerChanged)
			}
			if run.self != host || run.child != host {
				t.Errorf("reaper in %q, its new child in %q; want it left in %s", run.self, run.child, host)
			}
			if run.status == "0" {
				t.Errorf("helper exited 0")
			}
		})
	}
}

// TestCallerOwnsOnlyItsThreads checks the proof a join takes after seizing a
// thread: that it is one of the pinned caller's.
func TestCallerOwnsOnlyItsThreads(t *testing.T) {
	caller, err := PinParent()
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	if caller.pid != os.Getppid() {
		t.Fatalf("pinned %d, parent is %d", caller.pid, os.Getppid())
	}
	tests := []struct {
		name    string
		tid     int
		wantErr bool
	}{
		{name: "the caller's main thread", tid: caller.pid},
		{name: "a thread of this process", tid: unix.Gettid(), wantErr: true},
		{name: "init", tid: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := caller.owns(tt.tid)
			if tt.wantErr != (err != nil) || err != nil && !errors.Is(err, ErrCallerChanged) {
				t.Errorf("owns(%d) = %v, want error %t (%v)", tt.tid, err, tt.wantErr, ErrCallerChanged)
			}
		})
	}
}

func TestJoinParentCallerAlreadyTraced(t *testing.T) {
	requireRoot(t)
	target := newNetns(t)
	host := mustID(t, fmt.Sprintf("/proc/%d/ns/net", os.Getpid()))

	caller := exec.Command(buildCaller(t), "report", "pid", testBinary(t), target)
	caller.Env = environ(envMode, "join", envGate, "1")
	stdin, err := caller.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	caller.Stdout = &out
	if err := caller.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = caller.Wait() }()

	tracer := exec.Command(testBinary(t))
	tracer.Env = environ(envMode, "tracer", envTracee, fmt.Sprint(caller.Process.Pid))
	tracerOut, err := tracer.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tracer.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tracer.Wait() }()
	if line, err := bufio.NewReader(tracerOut).ReadString('\n'); line != "seized\n" {
		t.Fatalf("tracer said %q, %v", line, err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if err := caller.Wait(); err != nil {
		t.Fatalf("caller failed: %v\n%s", err, out.String())
	}

	reps, lines := reports(t, out.String())
	runs := parseCallerRuns(t, lines)
	if len(reps) != 1 || len(runs) != 1 {
		t.Fatalf("got %d helper reports and %d caller runs, want 1:\n%s", len(reps), len(runs), out.String())
	}
	want := fmt.Sprintf("already traced by %d: %v", tracer.Process.Pid, ErrPtraceRefused)
	if !strings.Contains(reps[0].Err, want) {
		t.Errorf("JoinParent error = %q, want one containing %q", reps[0].Err, want)
	}
	if runs[0].self != host {
		t.Errorf("caller in %s, want it unchanged in %s", runs[0].self, host)
	}
}

// runTracer seizes the process in $NSJOIN_TEST_TRACEE and passes every
// signal it stops for through, until it exits.
func runTracer() int {
	pid, err := strconv.Atoi(os.Getenv(envTracee))
	if err != nil {
		fmt.Println("tracer:", err)
		return 1
	}
	runtime.LockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		fmt.Println("tracer:", err)
		return 1
	}
	fmt.Println("seized")
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil || ws.Exited() || ws.Signaled() {
			return 0
		}
		sig := 0
		if ws.Stopped() && int(ws)>>16 == 0 {
			sig = int(ws.StopSignal())
		}
		_ = unix.PtraceCont(pid, sig)
	}
}

func TestJoinParentMultithreadedCaller(t *testing.T) {
	requireRoot(t)
	target := newNetns(t)
	host := mustID(t, fmt.Sprintf("/proc/%d/ns/net", os.Getpid()))
	joined := mustID(t, target)

	helper, rep, child := runMultithreadedCaller(t, envNetns, target)
	if helper.Err != "" || !slices.Equal(helper.Steps, allSteps) {
		t.Fatalf("helper report = %+v, want a successful join", helper)
	}
	if rep.HelperStatus != 0 {
		t.Errorf("helper exit status %d", rep.HelperStatus)
	}
	if rep.Waiter != joined {
		t.Errorf("waiting thread in %s, want %s", rep.Waiter, joined)
	}
	if !slices.Equal(rep.Others, []string{host}) {
		t.Errorf("other threads in %v, want all in %s", rep.Others, host)
	}
	if child != joined {
		t.Errorf("child of the waiting thread in %q, want %s", child, joined)
	}
}

// runMultithreadedCaller runs runGoCaller, the helper's env added, and
// returns the helper's report, the caller's, and the namespace of the child
// the caller's waiting thread started afterwards.
func runMultithreadedCaller(t *testing.T, env ...string) (joinReport, goCallerReport, string) {
	t.Helper()
	cmd := exec.Command(testBinary(t))
	cmd.Env = environ(append([]string{envMode, "go-caller"}, env...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go caller failed: %v\n%s", err, out)
	}
	reps, lines := reports(t, string(out))
	if len(reps) != 1 {
		t.Fatalf("got %d helper reports, want 1:\n%s", len(reps), out)
	}
	var rep goCallerReport
	var child string
	for _, line := range lines {
		if s, ok := strings.CutPrefix(line, "go-caller: "); ok {
			if err := json.Unmarshal([]byte(s), &rep); err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
		}
		if s, ok := strings.CutPrefix(line, "child="); ok {
			child = s
		}
	}
	t.Logf("helper: %+v; caller: %+v, child in %s", reps[0], rep, child)
	if rep.Threads < 2 {
		t.Fatalf("caller had %d threads, want several", rep.Threads)
	}
	return reps[0], rep, child
}

// buildCaller compiles testdata/caller.c.
func buildCaller(t testing.TB) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("needs gcc to build testdata/caller.c")
	}
	bin := filepath.Join(t.TempDir(), "caller")
	if out, err := exec.Command(gcc, "-O2", "-Wall", "-Werror", "-o", bin, "testdata/caller.c").CombinedOutput(); err != nil {
		t.Fatalf("building caller: %v\n%s", err, out)
	}
	return bin
}

// runCaller runs the C caller for iterations joins, alternating between the
// namespaces, and returns the helper reports. With envMount in env, each
// join is a mount join too.
func runCaller(t testing.TB, mode string, iterations int, env []string, netns ...string) []joinReport {
	t.Helper()
	return runBuiltCaller(t, buildCaller(t), mode, iterations, env, netns...)
}

// runBuiltCaller is runCaller with the caller built already.
func runBuiltCaller(t testing.TB, caller, mode string, iterations int, env []string, netns ...string) []joinReport {
	t.Helper()
	wantSteps := allSteps
	if slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, envMount+"=") }) {
		wantSteps = allMountSteps
	}
	reps := callerReports(t, caller, mode, iterations, env, netns...)
	for i, rep := range reps {
		if rep.Err != "" || !slices.Equal(rep.Steps, wantSteps) {
			t.Fatalf("join %d: %+v, want a full successful join", i, rep)
		}
	}
	return reps
}

// callerReports runs the built C caller for iterations joins and returns the
// helper reports, once the caller has checked every join and said so.
func callerReports(t testing.TB, caller, mode string, iterations int, env []string, netns ...string) []joinReport {
	t.Helper()
	args := append([]string{mode, fmt.Sprint(iterations), testBinary(t)}, netns...)
	cmd := exec.Command(caller, args...)
	cmd.Env = env
	out, err := cmd.Output()
	reps, lines := reports(t, string(out))
	if err != nil || !slices.Contains(lines, fmt.Sprintf("caller: ok %d", iterations)) {
		t.Fatalf("caller failed: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if len(reps) != iterations {
		t.Fatalf("got %d helper reports, want %d", len(reps), iterations)
	}
	return reps
}

func TestJoinParentKeepsCallerIntact(t *testing.T) {
	requireRoot(t)
	a, b := newNetns(t), newNetns(t)

	t.Run("200 joins", func(t *testing.T) {
		reps := runCaller(t, "plain", 200, environ(envMode, "join"), a, b)
		logTimes(t, reps)
	})
	// The caller checks that its handler ran once per join and that its
	// wait restarted (SA_RESTART) or failed with EINTR (no SA_RESTART).
	for _, mode := range []string{"signal", "signal-eintr"} {
		t.Run(mode+" while attached is delivered once, after", func(t *testing.T) {
			reps := runCaller(t, mode, 20, environ(envMode, "join", envSignalAt, stepOpened), a, b)
			for i, rep := range reps {
				if !slices.ContainsFunc(rep.Logs, func(l string) bool { return strings.Contains(l, "held back signal") }) {
					t.Errorf("join %d did not hold back the signal: %q", i, rep.Logs)
				}
			}
		})
	}
}

// logTimes logs the median and worst time of JoinParent and of the part
// where the caller is attached.
func logTimes(t testing.TB, reps []joinReport) {
	var join, attached []time.Duration
	for _, rep := range reps {
		join = append(join, rep.Join)
		attached = append(attached, rep.Attached)
	}
	slices.Sort(join)
	slices.Sort(attached)
	t.Logf("%d joins: JoinParent median %v, max %v; attached median %v, max %v",
		len(reps), join[len(join)/2], join[len(join)-1], attached[len(attached)/2], attached[len(attached)-1])
}

// BenchmarkJoinParent reports, besides ns/op (which includes starting the
// helpers), the mean time of JoinParent itself and of the part where the
// caller is attached, per join of the network namespace alone and per join
// that takes the mount namespace first; and how many times longer the second
// takes, from the medians, which the load spikes of a shared machine move
// less. Small batches of both alternate, so that both see the same load.
func BenchmarkJoinParent(b *testing.B) {
	requireRoot(b)
	x, y := newNetns(b), newNetns(b)
	session := newMountNS(b)
	caller := buildCaller(b)
	netnsEnv := environ(envMode, "join")
	withMountEnv := environ(append([]string{envMode, "join", envCwd, b.TempDir()}, mountEnv(session.join)...)...)
	var netnsOnly, withMount []joinReport
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(b.N-done, 20)
		netnsOnly = append(netnsOnly, runBuiltCaller(b, caller, "plain", n, netnsEnv, x, y)...)
		withMount = append(withMount, runBuiltCaller(b, caller, "plain", n, withMountEnv, x, y)...)
		done += n
	}
	join, attached := joinTimes(netnsOnly)
	mountJoin, mountAttached := joinTimes(withMount)
	b.ReportMetric(mean(join), "join-ns/op")
	b.ReportMetric(mean(attached), "attached-ns/op")
	b.ReportMetric(mean(mountJoin), "mount-join-ns/op")
	b.ReportMetric(mean(mountAttached), "mount-attached-ns/op")
	b.ReportMetric(median(mountJoin)/median(join), "mount-join-x")
	b.ReportMetric(median(mountAttached)/median(attached), "mount-attached-x")
}

// joinTimes returns the times, in nanoseconds, of JoinParent and of the part
// where the caller is attached.
func joinTimes(reps []joinReport) (join, attached []float64) {
	for _, rep := range reps {
		join = append(join, float64(rep.Join.Nanoseconds()))
		attached = append(attached, float64(rep.Attached.Nanoseconds()))
	}
	return join, attached
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

func median(xs []float64) float64 {
	sorted := slices.Sorted(slices.Values(xs))
	return sorted[len(sorted)/2]
}
