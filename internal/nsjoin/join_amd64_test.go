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
	reportTag   = "join: "
)

var allSteps = []string{stepBeforeSeize, stepStopped, stepOpened, stepJoined, stepBeforeDetach}

// joinReport is what the helper prints, as JSON after reportTag.
type joinReport struct {
	Err      string
	Steps    []string
	Logs     []string
	Parent   string        // the parent's network namespace after the join
	Join     time.Duration // JoinParent, from call to return
	Attached time.Duration // from stepBeforeSeize to return
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
	var seized time.Time
	signalAt := os.Getenv(envSignalAt)
	stepHook = func(step string) {
		rep.Steps = append(rep.Steps, step)
		if step == stepBeforeSeize {
			seized = time.Now()
		}
		if step == signalAt {
			_ = unix.Kill(os.Getppid(), unix.SIGUSR1)
		}
	}
	opts := Options{Debugf: func(format string, args ...any) {
		rep.Logs = append(rep.Logs, fmt.Sprintf(format, args...))
	}}
	if d, err := time.ParseDuration(os.Getenv(envWait)); err == nil {
		opts.WaitTimeout = d
	}
	start := time.Now()
	err := JoinParent(context.Background(), os.Getenv(envNetns), opts)
	end := time.Now()
	rep.Join = end.Sub(start)
	if !seized.IsZero() {
		rep.Attached = end.Sub(seized)
	}
	if err != nil {
		rep.Err = err.Error()
	}
	if id, err := ProcessNetnsID(os.Getppid()); err == nil {
		rep.Parent = id.String()
	}
	line, _ := json.Marshal(rep)
	fmt.Printf("%s%s\n", reportTag, line)
	if err != nil {
		return 1
	}
	return 0
}

// goCallerReport is what runGoCaller prints, as JSON after "go-caller: ".
type goCallerReport struct {
	Threads      int
	Waiter       string   // namespace of the thread that waited on the helper
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
	waiter, err := ThreadNetnsID(self, tid)
	if err != nil {
		fmt.Println("go-caller:", err)
		return 1
	}
	rep.Waiter = waiter.String()
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
		id, err := PathID(fmt.Sprintf("/proc/%d/task/%s/ns/net", self, task.Name()))
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
	id, err := PathID(path)
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

func TestWaitsOn(t *testing.T) {
	const child = 4242
	tests := []struct {
		name string
		w    waiter
		want waitKind
	}{
		{"wait4 on child", waiter{nr: sysWait4, a0: child}, waitsExactly},
		{"wait4 on child, high bits set", waiter{nr: sysWait4, a0: 0xffffffff00000000 | child}, waitsExactly},
		{"wait4 on any child", waiter{nr: sysWait4, a0: 0xffffffffffffffff}, waitsAnyChild},
		{"wait4 on another child", waiter{nr: sysWait4, a0: child + 1}, waitsNot},
		{"wait4 on a process group", waiter{nr: sysWait4, a0: 0}, waitsNot},
		{"waitid P_PID child", waiter{nr: sysWaitid, a0: idtypePID, a1: child}, waitsExactly},
		{"waitid P_PID another", waiter{nr: sysWaitid, a0: idtypePID, a1: child + 1}, waitsNot},
		{"waitid P_ALL", waiter{nr: sysWaitid, a0: idtypeAll}, waitsAnyChild},
		{"waitid P_PIDFD", waiter{nr: sysWaitid, a0: 3, a1: 5}, waitsNot},
		{"nanosleep", waiter{nr: unix.SYS_CLOCK_NANOSLEEP, a0: child}, waitsNot},
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
	tests := []struct {
		name    string
		path    string
		wantErr error
	}{
		{"relative", "run/netns/x", ErrRelativePath},
		{"empty", "", ErrRelativePath},
		{"NUL byte", "/run/netns/a\x00b", unix.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stepHook = func(step string) { t.Errorf("reached step %s", step) }
			defer func() { stepHook = nil }()
			err := JoinParent(context.Background(), tt.path, Options{})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("JoinParent(%q) = %v, want %v", tt.path, err, tt.wantErr)
			}
		})
	}
}

// runShell runs script with /bin/sh, $NSJOIN_TEST_BIN being the helper, and
// returns the want helper reports and the other lines of its output.
func runShell(t *testing.T, script string, want int, env ...string) ([]joinReport, []string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = environ(append([]string{envMode, "join", "NSJOIN_TEST_BIN", testBinary(t)}, env...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shell failed: %v\n%s", err, out)
	}
	reps, lines := reports(t, string(out))
	if len(reps) != want {
		t.Fatalf("got %d helper reports, want %d:\n%s", len(reps), want, out)
	}
	return reps, lines
}

// shellScript runs the helper, then reports the shell's open fds before and
// after (globbed by the shell itself: a pipe would race with its own fds),
// its namespace and that of a new child.
const shellScript = `set -- /proc/$$/fd/*; echo "fds-before=$*"
"$NSJOIN_TEST_BIN"
set -- /proc/$$/fd/*; echo "fds-after=$*"
echo "self=$(stat -L -c %d:%i /proc/$$/ns/net)"
echo "child=$(stat -L -c %d:%i /proc/self/ns/net)"
`

func TestJoinParentShell(t *testing.T) {
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
		netns     string
		script    string // shellScript if empty
		wantErr   string
		wantSteps []string
		wantNS    string // the shell's namespace afterwards
	}{
		{name: "joins", netns: target, wantSteps: allSteps, wantNS: joined},
		{name: "already in target, no ptrace", netns: ownNS + "net", wantNS: host},
		{name: "target not a namespace", netns: regular, wantErr: ErrNotNamespace.Error(), wantNS: host},
		{name: "target another namespace type", netns: ownNS + "uts", wantErr: ErrNotNetNamespace.Error(), wantNS: host},
		{name: "target missing", netns: filepath.Join(dir, "missing"), wantErr: "no such file or directory", wantNS: host},
		{
			name:    "caller not waiting on us",
			netns:   target,
			script:  `"$NSJOIN_TEST_BIN" & exec sleep 1`,
			wantErr: ErrNotWaiting.Error(),
			wantNS:  host,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := tt.script
			if script == "" {
				script = shellScript
			}
			reps, lines := runShell(t, script, 1, envNetns, tt.netns, envWait, "200ms")
			rep := reps[0]
			t.Logf("helper: %+v", rep)
			if tt.wantErr == "" && rep.Err != "" || !strings.Contains(rep.Err, tt.wantErr) {
				t.Errorf("JoinParent error = %q, want one containing %q", rep.Err, tt.wantErr)
			}
			if !slices.Equal(rep.Steps, tt.wantSteps) {
				t.Errorf("steps = %v, want %v", rep.Steps, tt.wantSteps)
			}
			if rep.Parent != tt.wantNS {
				t.Errorf("caller namespace after the helper = %s, want %s", rep.Parent, tt.wantNS)
			}
			if tt.script != "" {
				return
			}
			got := map[string]string{}
			for _, line := range lines {
				if k, v, ok := strings.Cut(line, "="); ok {
					got[k] = strings.TrimSpace(v)
				}
			}
			if got["fds-before"] == "" || got["fds-after"] != got["fds-before"] {
				t.Errorf("shell fds went from %q to %q", got["fds-before"], got["fds-after"])
			}
			if got["self"] != tt.wantNS || got["child"] != tt.wantNS {
				t.Errorf("shell namespace %q, its child's %q; want %s", got["self"], got["child"], tt.wantNS)
			}
		})
	}

	t.Run("already-in-target proof is a log line", func(t *testing.T) {
		reps, _ := runShell(t, `"$NSJOIN_TEST_BIN"; "$NSJOIN_TEST_BIN"`, 2, envNetns, target)
		if !slices.Equal(reps[0].Steps, allSteps) || len(reps[1].Steps) != 0 {
			t.Errorf("steps = %v then %v, want all then none", reps[0].Steps, reps[1].Steps)
		}
		if len(reps[1].Logs) != 1 || !strings.Contains(reps[1].Logs[0], "already in") {
			t.Errorf("second join logged %q, want one 'already in' line", reps[1].Logs)
		}
	})
}

func TestJoinParentCallerAlreadyTraced(t *testing.T) {
	requireRoot(t)
	target := newNetns(t)
	host := mustID(t, fmt.Sprintf("/proc/%d/ns/net", os.Getpid()))

	shell := exec.Command("/bin/sh", "-c", `read go; "$NSJOIN_TEST_BIN"; echo "self=$(stat -L -c %d:%i /proc/$$/ns/net)"`)
	shell.Env = environ(envMode, "join", envNetns, target, "NSJOIN_TEST_BIN", testBinary(t))
	stdin, err := shell.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	shell.Stdout = &out
	if err := shell.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shell.Wait() }()

	tracer := exec.Command(testBinary(t))
	tracer.Env = environ(envMode, "tracer", envTracee, fmt.Sprint(shell.Process.Pid))
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
	if err := shell.Wait(); err != nil {
		t.Fatalf("shell failed: %v\n%s", err, out.String())
	}

	reps, lines := reports(t, out.String())
	if len(reps) != 1 {
		t.Fatalf("got %d helper reports, want 1:\n%s", len(reps), out.String())
	}
	want := fmt.Sprintf("already traced by %d: %v", tracer.Process.Pid, ErrPtraceRefused)
	if !strings.Contains(reps[0].Err, want) {
		t.Errorf("JoinParent error = %q, want one containing %q", reps[0].Err, want)
	}
	if !slices.Equal(lines, []string{"self=" + host}) {
		t.Errorf("shell printed %q, want it unchanged in %s", lines, host)
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

	cmd := exec.Command(testBinary(t))
	cmd.Env = environ(envMode, "go-caller", envNetns, target)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go caller failed: %v\n%s", err, out)
	}
	reps, lines := reports(t, string(out))
	if len(reps) != 1 || reps[0].Err != "" || !slices.Equal(reps[0].Steps, allSteps) {
		t.Fatalf("helper reports = %+v, want one successful join", reps)
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
	t.Logf("caller: %+v, child in %s", rep, child)
	if rep.Threads < 2 {
		t.Fatalf("caller had %d threads, want several", rep.Threads)
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
// namespaces, and returns the helper reports.
func runCaller(t testing.TB, mode string, iterations int, env []string, netns ...string) []joinReport {
	t.Helper()
	args := append([]string{mode, fmt.Sprint(iterations), testBinary(t)}, netns...)
	cmd := exec.Command(buildCaller(t), args...)
	cmd.Env = env
	out, err := cmd.Output()
	reps, lines := reports(t, string(out))
	if err != nil || !slices.Contains(lines, fmt.Sprintf("caller: ok %d", iterations)) {
		t.Fatalf("caller failed: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if len(reps) != iterations {
		t.Fatalf("got %d helper reports, want %d", len(reps), iterations)
	}
	for i, rep := range reps {
		if rep.Err != "" || !slices.Equal(rep.Steps, allSteps) {
			t.Fatalf("join %d: %+v, want a full successful join", i, rep)
		}
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
// helper), the time of JoinParent itself and the time the caller is attached.
func BenchmarkJoinParent(b *testing.B) {
	requireRoot(b)
	x, y := newNetns(b), newNetns(b)
	b.ResetTimer()
	reps := runCaller(b, "plain", b.N, environ(envMode, "join"), x, y)
	var join, attached time.Duration
	for _, rep := range reps {
		join += rep.Join
		attached += rep.Attached
	}
	b.ReportMetric(float64(join.Nanoseconds())/float64(b.N), "join-ns/op")
	b.ReportMetric(float64(attached.Nanoseconds())/float64(b.N), "attached-ns/op")
}
