package nspawn

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	benchEnv = "NETNS_SESSION_BENCH"
	// benchIterations are the timed rounds of each interleaved loop, after
	// benchWarmup rounds that are not counted.
	benchIterations = 150
	benchWarmup     = 10
	// sshIterations are the timed ssh logins with and without the hook each,
	// and so also the repeat logins whose reloads and connects are counted.
	sshIterations = 100
	// controlLogins are first logins counted like the repeat logins, to show
	// that the counting sees a reload and its connection when there is one.
	controlLogins = 10
	// emptyGoPath and emptyCgoPath are where the empty Go programs go:
	// statically linked, and linked with cgo like netns-session.
	emptyGoPath  = "/usr/local/libexec/empty-static-go"
	emptyCgoPath = "/usr/local/libexec/empty-cgo"
	// benchConfig maps alice (the steady state), carol (the first
	// logins, her drop-in removed before each) and dave (the steady state
	// into ns2, which has an /etc directory); bob is unmapped.
	benchConfig = "alice ns0\ncarol ns1\ndave ns2\n"
	carolDropIn = "/run/systemd/system/user@1003.service.d/50-netns-session.conf"
)

// benchSuites run one after the other: two containers at once would measure
// each other.
var benchSuites = []Suite{{Name: "trixie"}, {Name: "bookworm"}}

// pamServices are the PAM services the session-open rows drive, one session
// line each.
var pamServices = map[string]string{
	"bench-permit":  "session required pam_permit.so",
	"bench-true":    "session required pam_exec.so seteuid /bin/true",
	"bench-empty":   "session required pam_exec.so seteuid " + emptyGoPath,
	"bench-usernet": "session required pam_usernet.so",
	"bench-hook":    hookLine,
}

// pamCase is a row of the session-open table: `pamtester SERVICE USER
// open_session`, with an untimed command before each run.
type pamCase struct {
	row, service, user, before string
}

// The rows refer to each other by these indexes.
const (
	casePermit = iota
	caseTrue
	caseEmpty
	caseUsernet
	caseUnmapped
	caseSteady
	caseSteadyEtc
	caseFirst
)

var pamCases = []pamCase{
	casePermit:   {row: "`pam_permit` alone", service: "bench-permit", user: "alice"},
	caseTrue:     {row: "`pam_exec /bin/true`", service: "bench-true", user: "alice"},
	caseEmpty:    {row: "`pam_exec` of an empty static Go program", service: "bench-empty", user: "alice"},
	caseUsernet:  {row: "`pam_usernet` (libpam-net, in-process C)", service: "bench-usernet", user: "alice"},
	caseUnmapped: {row: "netns-session, unmapped user", service: "bench-hook", user: "bob"},
	caseSteady:   {row: "netns-session, mapped user, steady state", service: "bench-hook", user: "alice"},
	caseSteadyEtc: {row: "netns-session, mapped user, steady state, namespace with `/etc/netns/NAME` (2 files)",
		service: "bench-hook", user: "dave"},
	caseFirst: {row: "netns-session, mapped user, first login (drop-in + reload)", service: "bench-hook", user: "carol", before: "rm -f " + carolDropIn},
}

// TestBench is what `make bench` runs: it measures the cost of the hook per
// session open, per ssh login, in reloads and D-Bus connections, and of the
// config at scale, and prints the tables of BENCHMARKS.md. Its timings are
// reported, not asserted: the machine may be shared. What it asserts is that
// every login succeeded and that repeat logins cost no reload and no
// connection.
func TestBench(t *testing.T) {
	if os.Getenv(benchEnv) != "1" {
		t.Skip("benchmarks: run make bench")
	}
	requireHarness(t)
	report := []string{"# netns-session benchmarks", "", machineLine(), "load average at start: " + loadAverage()}
	empty := emptyPrograms{static: buildEmptyGo(t, false), cgo: buildEmptyGo(t, true)}
	for _, s := range benchSuites {
		t.Run(s.Name, func(t *testing.T) {
			report = append(report, benchSuite(t, s, empty)...)
		})
	}
	report = append(report, benchConfigScale(t)...)
	// The watcher's storm is TestBenchWatcherStorm, which prints its own
	// section.
	report = append(report, "", "load average at end: "+loadAverage())
	fmt.Fprintln(os.Stdout, strings.Join(report, "\n"))
}

// emptyPrograms are the floors of any Go hook: `func main() {}` linked
// statically and with cgo.
type emptyPrograms struct{ static, cgo []byte }

func benchSuite(t *testing.T, s Suite, empty emptyPrograms) []string {
	c := boot(t, s)
	setUpBench(t, c, empty)
	fdLimit := sshdFDLimit(t, c)
	out := []string{"", fmt.Sprintf("## Debian %s", s.Name), "",
		fmt.Sprintf("%d interleaved rounds after %d warm-up rounds; open-files limit %d, sshd's.", benchIterations, benchWarmup, fdLimit)}
	out = append(out, benchStartup(t, c)...)
	out = append(out, benchSessionOpen(t, c, fdLimit)...)
	out = append(out, benchSSH(t, c)...)
	return out
}

// setUpBench creates the namespaces, users' mappings and PAM services the
// rows use.
func setUpBench(t *testing.T, c *Container, empty emptyPrograms) {
	t.Helper()
	c.WriteFile(t, emptyGoPath, string(empty.static), 0o755)
	c.WriteFile(t, emptyCgoPath, string(empty.cgo), 0o755)
	c.WriteFile(t, configPath, benchConfig, 0o644)
	for name, line := range pamServices {
		c.WriteFile(t, "/etc/pam.d/"+name, line+"\n", 0o644)
	}
	// pam_usernet places members of group usernet in the namespace named
	// after them, and fails without /etc/netns/USER.
	c.Sh(t, `set -e
ip netns add ns0
ip netns add ns1
ip netns add ns2
mkdir -p /etc/netns/ns2
echo 'nameserver 127.0.0.1' > /etc/netns/ns2/resolv.conf
printf '127.0.0.1 localhost\n192.0.2.2 ns2\n' > /etc/netns/ns2/hosts
ip netns add alice
mkdir -p /etc/netns/alice
groupadd usernet
usermod -a -G usernet alice
# common-session with (1) and without (0) the hook, swapped in between logins.
cp /etc/pam.d/common-session /etc/pam.d/common-session.0
sed '/^[^#]*pam_systemd\.so/i `+hookLine+`' /etc/pam.d/common-session > /etc/pam.d/common-session.1
grep -q netns-session /etc/pam.d/common-session.1`)
}

// sshdFDLimit is the soft open-files limit of the ssh daemon: pam_exec
// closes every descriptor below it before it runs the hook.
func sshdFDLimit(t *testing.T, c *Container) int {
	t.Helper()
	pid := strings.TrimSpace(c.Run(t, "systemctl", "show", "-p", "MainPID", "--value", "ssh.service"))
	for line := range strings.Lines(c.Run(t, "cat", "/proc/"+pid+"/limits")) {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if n, err := strconv.Atoi(strings.Fields(rest)[0]); err == nil {
				return n
			}
		}
	}
	t.Fatalf("no open-files limit for sshd (PID %s)", pid)
	return 0
}

// benchStartup measures what a Go hook pays before it does anything: the
// empty programs and netns-session's no-op (PAM_TYPE=close_session), each
// started from bash.
func benchStartup(t *testing.T, c *Container) []string {
	rows := []struct{ row, command string }{
		{"`/bin/true` (C, dynamically linked)", "/bin/true"},
		{"empty Go program, static", emptyGoPath},
		{"empty Go program, cgo (dynamically linked)", emptyCgoPath},
		{"`PAM_TYPE=close_session netns-session pam` (a no-op)", "PAM_TYPE=close_session /usr/sbin/netns-session pam"},
	}
	var script strings.Builder
	script.WriteString("pre() { :; }\nrun() {\n\tcase $1 in\n")
	for i, r := range rows {
		fmt.Fprintf(&script, "\t%d) %s ;;\n", i, r.command)
	}
	script.WriteString("\tesac\n}\n")
	timings := interleave(t, c, script.String(), len(rows), benchIterations)
	static := median(timings[1])
	out := []string{"", "### Start-up (each program started from bash)", "",
		"| program | p50 ms | p95 ms | p50 − empty static Go ms |", "| --- | ---: | ---: | ---: |"}
	for i, r := range rows {
		out = append(out, fmt.Sprintf("| %s | %s | %s | %s |", r.row, ms(median(timings[i])), ms(percentile(timings[i], 95)), ms(median(timings[i])-static)))
	}
	return out
}

func benchSessionOpen(t *testing.T, c *Container, fdLimit int) []string {
	var script strings.Builder
	fmt.Fprintf(&script, "ulimit -n %d\n", fdLimit)
	script.WriteString("pre() {\n\tcase $1 in\n")
	for i, pc := range pamCases {
		if pc.before != "" {
			fmt.Fprintf(&script, "\t%d) %s ;;\n", i, pc.before)
		}
	}
	script.WriteString("\tesac\n}\nrun() {\n\tcase $1 in\n")
	for i, pc := range pamCases {
		fmt.Fprintf(&script, "\t%d) pamtester %s %s open_session ;;\n", i, pc.service, pc.user)
	}
	script.WriteString("\tesac\n}\n")
	// alice's and dave's first logins write their drop-ins; after them
	// only carol's reload.
	c.Run(t, "pamtester", "bench-hook", "alice", "open_session")
	c.Run(t, "pamtester", "bench-hook", "dave", "open_session")
	before := reloads(t, c)
	timings := interleave(t, c, script.String(), len(pamCases), benchIterations)
	firstLogins := reloads(t, c) - before
	if want := benchWarmup + benchIterations; firstLogins != want {
		t.Errorf("%d reloads during the session-open rounds, want one per first login (%d)", firstLogins, want)
	}

	permit, emptyGo := median(timings[casePermit]), median(timings[caseEmpty])
	out := []string{"", "### Session open (`pamtester SERVICE USER open_session`)", "",
		"| PAM session stack | p50 ms | p95 ms | p50 − pam_permit ms | p50 − empty static Go ms |",
		"| --- | ---: | ---: | ---: | ---: |"}
	for i, pc := range pamCases {
		p50 := median(timings[i])
		out = append(out, fmt.Sprintf("| %s | %s | %s | %s | %s |",
			pc.row, ms(p50), ms(percentile(timings[i], 95)), ms(p50-permit), ms(p50-emptyGo)))
	}
	steady := median(timings[caseSteady]) - emptyGo
	out = append(out, "", fmt.Sprintf("Steady state above the empty static Go program: %s ms (target ≤ 1 ms: %s). "+
		"First logins reloaded systemd %d times in %d logins.", ms(steady), met(steady <= time.Millisecond), firstLogins, benchWarmup+benchIterations))
	withEtc, without := median(timings[caseSteadyEtc]), median(timings[caseSteady])
	ratio := float64(withEtc) / float64(without)
	out = append(out, "", fmt.Sprintf("A namespace with an /etc directory against one without, steady state: %s ms more, %.2f× the session open (target ≤ 1.15×: %s).",
		ms(withEtc-without), ratio, met(ratio <= 1.15)))
	return out
}

func benchSSH(t *testing.T, c *Container) []string {
	// A first login with the hook writes alice's drop-in and starts her
	// manager in ns0; the rounds then see the steady state.
	c.Run(t, "cp", "/etc/pam.d/common-session.1", "/etc/pam.d/common-session")
	if _, stderr, err := c.SSH(t.Context(), "alice", "true"); err != nil {
		t.Fatalf("first ssh login of alice: %v\n%s", err, stderr)
	}
	const script = `pre() {
	cp /etc/pam.d/common-session.$1 /etc/pam.d/common-session.new
	mv -f /etc/pam.d/common-session.new /etc/pam.d/common-session
}
run() {
	ssh -i ` + rootKey + ` -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR alice@127.0.0.1 true </dev/null
}
`
	counter := startConnectCounter(t, c)
	before := reloads(t, c)
	timings := interleave(t, c, script, 2, sshIterations)
	repeatReloads := reloads(t, c) - before
	repeatConnects := counter.stop(t)

	// The control: first logins, which must reload and connect. They go
	// over ssh too, so that the hook runs in the container's cgroup, where
	// the counter looks.
	c.Run(t, "cp", "/etc/pam.d/common-session.1", "/etc/pam.d/common-session")
	counter = startConnectCounter(t, c)
	before = reloads(t, c)
	for i := range controlLogins {
		c.Run(t, "rm", "-f", carolDropIn)
		if _, stderr, err := c.SSH(t.Context(), "carol", "true"); err != nil {
			t.Fatalf("first login %d of carol: %v\n%s", i+1, err, stderr)
		}
	}
	controlReloads := reloads(t, c) - before
	controlConnects := counter.stop(t)

	without, with := median(timings[0]), median(timings[1])
	ratio := float64(with) / float64(without)
	out := []string{"", "### ssh login (`ssh alice@127.0.0.1 true`, alice mapped, steady state)", "",
		"| PAM session stack | p50 ms | p95 ms |", "| --- | ---: | ---: |",
		fmt.Sprintf("| Debian's, without the hook | %s | %s |", ms(without), ms(percentile(timings[0], 95))),
		fmt.Sprintf("| with the hook before pam_systemd | %s | %s |", ms(with), ms(percentile(timings[1], 95))),
		"", fmt.Sprintf("Ratio with/without (p50): %.3f (target ≤ 1.03: %s).", ratio, met(ratio <= 1.03)),
		"", "### Repeat logins", "",
		"| logins | systemd reloads | connections made by netns-session |", "| --- | ---: | ---: |",
		fmt.Sprintf("| %d repeat ssh logins of alice with the hook (target 0 and 0) | %d | %s |", sshIterations, repeatReloads, repeatConnects),
		fmt.Sprintf("| control: %d first ssh logins of carol (drop-in removed before each) | %d | %s |", controlLogins, controlReloads, controlConnects),
	}
	if repeatReloads != 0 {
		t.Errorf("%d repeat logins reloaded systemd %d times, want 0", sshIterations, repeatReloads)
	}
	if controlReloads != controlLogins {
		t.Errorf("%d first logins reloaded systemd %d times, want %d", controlLogins, controlReloads, controlLogins)
	}
	if counter.counted() && repeatConnects != "0" {
		t.Errorf("%d repeat logins: netns-session made %s connections, want 0", sshIterations, repeatConnects)
	}
	if counter.counted() && controlConnects == "0" {
		t.Errorf("%d first logins: no connection by netns-session seen; the counting does not work", controlLogins)
	}
	return out
}

// interleave runs the shell functions pre, untimed, and run, timed, that
// script defines, for cases 0..n-1 in rotating order, benchWarmup+rounds
// times each, and returns each case's wall times of the timed rounds. Any
// failed run fails the test.
func interleave(t *testing.T, c *Container, script string, n, rounds int) [][]time.Duration {
	t.Helper()
	// Bash's EPOCHREALTIME costs no fork; the loop lives in the container so
	// that nsenter's start-up is not measured. It runs in chunks, each well
	// within the time a command in the container may take.
	const chunk = 20
	timings := make([][]time.Duration, n)
	for start := 0; start < benchWarmup+rounds; start += chunk {
		loop := fmt.Sprintf(`%s
for ((i = %d; i < %d; i++)); do
	for ((k = 0; k < %d; k++)); do
		j=$(( (i + k) %% %d ))
		pre $j
		t0=$EPOCHREALTIME
		run $j >/dev/null 2>&1 || echo "failed case $j in round $i"
		t1=$EPOCHREALTIME
		(( i >= %d )) && echo "$j $t0 $t1"
	done
done
true
`, script, start, min(start+chunk, benchWarmup+rounds), n, n, benchWarmup)
		for line := range strings.Lines(c.Sh(t, loop)) {
			f := strings.Fields(line)
			if len(f) > 0 && f[0] == "failed" {
				t.Fatalf("%s", line)
			}
			j, err := strconv.Atoi(f[0])
			if err != nil || len(f) != 3 {
				t.Fatalf("unexpected line from the rounds: %q", line)
			}
			timings[j] = append(timings[j], micros(t, f[2])-micros(t, f[1]))
		}
	}
	return timings
}

// micros parses an EPOCHREALTIME value, seconds with six decimals.
func micros(t *testing.T, s string) time.Duration {
	t.Helper()
	sec, frac, ok := strings.Cut(s, ".")
	a, err1 := strconv.ParseInt(sec, 10, 64)
	b, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || len(frac) != 6 || err1 != nil || err2 != nil {
		t.Fatalf("bad EPOCHREALTIME %q", s)
	}
	return time.Duration(a)*time.Second + time.Duration(b)*time.Microsecond
}

func median(d []time.Duration) time.Duration { return percentile(d, 50) }

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// connectCounter records the successful connect(2) calls in one
// container's cgroup with perf, for counting those of netns-session: every
// D-Bus connection, to systemd's private socket or to the bus, starts with
// one. Failed calls are left out: glibc tries nscd's socket on every user
// lookup.
type connectCounter struct {
	cmd    *exec.Cmd
	stdin  io.Closer
	data   string
	reason string // why nothing is counted, if so
}

func startConnectCounter(t *testing.T, c *Container) *connectCounter {
	t.Helper()
	if _, err := exec.LookPath("perf"); err != nil {
		return &connectCounter{reason: "not counted: perf is not installed (make bench installs linux-perf)"}
	}
	cgroup, err := cgroup2Relative(c.cgroups)
	if err != nil {
		return &connectCounter{reason: "not counted: " + err.Error()}
	}
	cc := &connectCounter{data: filepath.Join(c.dir, fmt.Sprintf("connect-%d.perf", time.Now().UnixNano()))}
	// perf opens its events before it starts the workload, so the workload
	// saying "ready" means counting has begun; closing its stdin ends it.
	cc.cmd = exec.Command("perf", "record", "--quiet", "--all-cpus",
		"--event", "syscalls:sys_exit_connect", "--filter", "ret == 0", "--cgroup", cgroup, "--output", cc.data,
		"--", "sh", "-c", "echo ready; exec cat >/dev/null")
	stdin, err := cc.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cc.stdin = stdin
	stdout, err := cc.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cc.cmd.Stderr = &stderr
	if err := cc.cmd.Start(); err != nil {
		t.Fatalf("starting perf: %v", err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		cc.stdin.Close()
		cc.cmd.Wait()
		t.Fatalf("perf record did not start: %v\n%s", err, stderr.String())
	}
	return cc
}

func (cc *connectCounter) counted() bool { return cc.reason == "" }

// stop ends the recording and returns the number of connections made by
// processes named netns-session, or why there is no number.
func (cc *connectCounter) stop(t *testing.T) string {
	t.Helper()
	if !cc.counted() {
		return cc.reason
	}
	cc.stdin.Close()
	if err := cc.cmd.Wait(); err != nil {
		t.Fatalf("perf record: %v", err)
	}
	out, err := exec.Command("perf", "script", "--input", cc.data, "--fields", "comm").Output()
	if err != nil {
		t.Fatalf("perf script: %v", err)
	}
	n := 0
	for line := range strings.Lines(string(out)) {
		if strings.TrimSpace(line) == "netns-session" {
			n++
		}
	}
	return strconv.Itoa(n)
}

// cgroup2Relative returns the container's cgroup2 directory relative to the
// cgroup2 mount, which is how perf names a cgroup.
func cgroup2Relative(cgroups []string) (string, error) {
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	mountPoint, _, ok := findMount(string(mountinfo), "cgroup2", "")
	if !ok {
		return "", fmt.Errorf("no cgroup2 mount")
	}
	for _, cg := range cgroups {
		if rel, err := filepath.Rel(mountPoint, cg); err == nil && !strings.HasPrefix(rel, "..") {
			return rel, nil
		}
	}
	return "", fmt.Errorf("container has no cgroup under %s", mountPoint)
}

// buildEmptyGo builds `func main() {}`, with cgo or statically.
func buildEmptyGo(t *testing.T, cgo bool) []byte {
	t.Helper()
	source, cgoEnabled := "package main\n\nfunc main() {}\n", "CGO_ENABLED=0"
	if cgo {
		source, cgoEnabled = "package main\n\n// #include <stdlib.h>\nimport \"C\"\n\nfunc main() {}\n", "CGO_ENABLED=1"
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "empty")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "main.go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), cgoEnabled, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the empty Go program: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// benchConfigScale runs the config package's benchmarks on the host.
func benchConfigScale(t *testing.T) []string {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkResolve$", "-benchmem", "-count", "1", "./internal/config")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("running the config benchmarks: %v\n%s", err, out)
	}
	rows := []string{"", "## Config scale (host, `go test -bench BenchmarkResolve ./internal/config`)", "",
		"Parse the whole config and resolve a user that matches no line, the worst case.", "",
		"| config | time per login | allocated | allocations |", "| --- | ---: | ---: | ---: |"}
	for line := range strings.Lines(string(out)) {
		name, ok := strings.CutPrefix(line, "BenchmarkResolve/")
		f := strings.Fields(name)
		if !ok || len(f) != 8 {
			continue
		}
		nsPerOp, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			t.Fatalf("parsing %q: %v", line, err)
		}
		rows = append(rows, fmt.Sprintf("| %s | %s ms | %s B | %s |",
			strings.TrimSuffix(f[0], fmt.Sprintf("-%d", runtime.GOMAXPROCS(0))), ms(time.Duration(nsPerOp)), f[4], f[6]))
	}
	return rows
}

func machineLine() string {
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("Machine: %s, %d CPUs, Linux %s, %s; run %s.", model, runtime.NumCPU(), strings.TrimSpace(string(release)), runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}
