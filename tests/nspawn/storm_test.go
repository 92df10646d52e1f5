package nspawn

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// stormSessions is how many sessions a storm opens, half of them
	// escapes.
	stormSessions = 500
	// stormClients is how many sessions are being opened at any time: each
	// client waits for its session before it starts the next. Enough to
	// keep PID 1 and logind, the bottlenecks, busy.
	stormClients = 8
	// stormBound is how long after the storm the watcher may take to end
	// every escape and judge every session.
	stormBound = 30 * time.Second
	// stormRSSTarget is the most the watcher may ever hold resident.
	stormRSSTarget = 20 << 20
	// stormList is the storm's sessions, one "UNIT USER SERVICE" a line.
	stormList = "/root/storm"
	// hookPAM is nohookPAM with the netns-session line.
	hookPAM = hookLine + "\n" + nohookPAM
)

// stormKind is one sort of session a storm opens.
type stormKind struct {
	user, service string
	escape        bool // the user is mapped and the service has no hook
}

// stormKinds are opened in turn: escapes of two users from two namespaces,
// interleaved with compliant sessions, placed by the hook or left on the
// host for an unmapped user.
var stormKinds = []stormKind{
	{user: "alice", service: "nohook", escape: true},
	{user: "alice", service: "hook"},
	{user: "carol", service: "nohook", escape: true},
	{user: "bob", service: "nohook"},
}

// stormUnit is the transient service one session of a storm runs in.
type stormUnit struct {
	kind stormKind
	// What PID 1 says: the session's leader; the main PID, 0 once the
	// leader is dead; when the leader was forked and died, in µs.
	leader, mainPID string
	forked, died    int64
}

// TestBenchWatcherStorm opens a storm of sessions with the watcher running
// under enforce = terminate, half of them escapes, and prints how long the
// escapes lived and what the watcher spent. It asserts that every escape
// was ended within stormBound of the storm and that every compliant session
// was judged and left alone; its timings are reported, not asserted: the
// machine may be shared.
func TestBenchWatcherStorm(t *testing.T) {
	if os.Getenv(benchEnv) != "1" {
		t.Skip("benchmarks: run make bench")
	}
	requireHarness(t)
	report := []string{"## Watcher under a login storm", "", machineLine(), "load average at start: " + loadAverage()}
	for _, s := range benchSuites {
		t.Run(s.Name, func(t *testing.T) {
			report = append(report, benchStorm(t, s)...)
		})
	}
	report = append(report, "", "load average at end: "+loadAverage())
	fmt.Fprintln(os.Stdout, strings.Join(report, "\n"))
}

func benchStorm(t *testing.T, s Suite) []string {
	f := newWatchFixture(t, s, watchConfig, true)
	c := f.c
	c.WriteFile(t, "/etc/pam.d/hook", hookPAM, 0o644)
	units := map[string]*stormUnit{}
	var list strings.Builder
	escapes := 0
	for i := range stormSessions {
		k := stormKinds[i%len(stormKinds)]
		name := fmt.Sprintf("storm-ok-%03d", i)
		if k.escape {
			name = fmt.Sprintf("storm-escape-%03d", i)
			escapes++
		}
		units[name+".service"] = &stormUnit{kind: k}
		fmt.Fprintf(&list, "%s %s %s\n", name, k.user, k.service)
	}
	c.WriteFile(t, stormList, list.String(), 0o644)
	watcher := strings.TrimSpace(c.Run(t, "systemctl", "show", "-p", "MainPID", "--value", watchUnit))
	cpuBefore := cpuTime(t, c, watcher)
	hwmBefore, _ := memoryOf(t, c, watcher)

	begun, ended := storm(t, c)
	escapesEnded(t, c, units)
	records := judgedSessions(t, c)
	cpu := cpuTime(t, c, watcher) - cpuBefore
	hwm, rss := memoryOf(t, c, watcher)
	lived, lastTerminated := assertStorm(t, c, units, records)
	for _, rec := range watchRecords(t, c) {
		if prio, _ := strconv.Atoi(rec["PRIORITY"]); prio <= 3 {
			t.Errorf("the watcher logged an error: %s", rec["MESSAGE"])
		}
	}
	if now := strings.TrimSpace(c.Run(t, "systemctl", "show", "-p", "MainPID", "--value", watchUnit)); now != watcher {
		t.Errorf("the watcher restarted during the storm (PID %s, was %s)", now, watcher)
	}
	if len(lived) == 0 {
		t.Fatal("the watcher terminated no escape")
	}

	// The watcher's pace while sessions pour in, and once they stop.
	var during, after int
	var lastJudged time.Duration
	for _, rec := range records {
		at := journalTime(t, rec["__REALTIME_TIMESTAMP"])
		lastJudged = max(lastJudged, at)
		if at <= ended {
			during++
		} else {
			after++
		}
	}
	wall := ended - begun
	drain := "none left"
	if after > 0 {
		drain = fmt.Sprintf("%.0f", float64(after)/(lastJudged-ended).Seconds())
	}
	return []string{"", fmt.Sprintf("### Debian %s", s.Name), "",
		fmt.Sprintf("%d sessions opened by `systemd-run -p PAMName=SERVICE -p User=USER sleep infinity`, %d at a time, "+
			"with `netns-session watch` running under `enforce = terminate`: %d escapes (alice and carol, mapped, through a PAM "+
			"service without the hook) interleaved with %d compliant sessions (alice through the hook, unmapped bob without it).",
			stormSessions, stormClients, escapes, stormSessions-escapes),
		"", "| what | result |", "| --- | ---: |",
		fmt.Sprintf("| storm wall time (every session open, or its escape dead) | %.2f s |", wall.Seconds()),
		fmt.Sprintf("| sessions per second | %.1f |", float64(stormSessions)/wall.Seconds()),
		fmt.Sprintf("| sessions judged per second, during the storm / after it | %.0f / %s |", float64(during)/wall.Seconds(), drain),
		fmt.Sprintf("| escape's life, fork to death, by PID 1 (p50 / p95 / max) | %s / %s / %s ms |",
			ms(median(lived)), ms(percentile(lived, 95)), ms(percentile(lived, 100))),
		fmt.Sprintf("| end of the storm to the last termination logged | %s ms |", ms(lastTerminated-ended)),
		fmt.Sprintf("| watcher CPU time, storm and terminations | %.2f s |", cpu.Seconds()),
		fmt.Sprintf("| watcher peak RSS (VmHWM) before the storm | %.1f MB |", mb(hwmBefore)),
		fmt.Sprintf("| watcher peak RSS (VmHWM) after it (target ≤ %d MB) | %.1f MB (%s) |", stormRSSTarget>>20, mb(hwm), met(hwm <= stormRSSTarget)),
		fmt.Sprintf("| watcher RSS at the end (VmRSS) | %.1f MB |", mb(rss)),
	}
}

// storm opens the sessions of stormList, stormClients at a time, and
// returns when it began and ended.
//
// systemd-run returns once PID 1 has forked the session's process, named
// (sleep) until it has opened its PAM session and runs sleep: a client
// waits for that, or for the leader's death, before its next session.
// Without the wait PID 1 forks far faster than logind opens sessions, and
// the processes waiting in pam_systemd exhaust the system bus's 256
// connections per user for root. The wait forks nothing: reading an empty
// FIFO with a timeout is bash's sleep.
func storm(t *testing.T, c *Container) (begun, ended time.Duration) {
	t.Helper()
	out := c.Sh(t, fmt.Sprintf(`mkfifo %[1]s.fifo
t0=$EPOCHREALTIME
xargs -P %[2]d -L 1 bash -c '
systemd-run --quiet --unit="$0" -p RemainAfterExit=yes -p PAMName="$2" -p User="$1" sleep infinity || { echo "failed $0"; exit; }
pid=$(systemctl show -p MainPID --value "$0")
exec 9<>%[1]s.fifo
while { read -r comm </proc/$pid/comm; } 2>/dev/null && [ "$comm" = "(sleep)" ]; do read -t 0.005 -u 9; done' <%[1]s
echo storm $t0 $EPOCHREALTIME`, stormList, stormClients))
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "storm" {
			t.Fatalf("storm: %s", out)
		}
		begun, ended = micros(t, f[1]), micros(t, f[2])
	}
	if ended == 0 {
		t.Fatalf("storm printed no times: %q", out)
	}
	return begun, ended
}

// assertStorm checks every session of the storm against the watcher's
// records of them and what PID 1 and logind say: an escape terminated and
// dead, a compliant session judged ok, untouched and still open. It returns
// how long the escapes lived and when the last was terminated.
func assertStorm(t *testing.T, c *Container, units map[string]*stormUnit, records []map[string]string) (lived []time.Duration, lastTerminated time.Duration) {
	t.Helper()
	byLeader := map[string]map[string]string{}
	for _, rec := range records {
		if byLeader[rec["LEADER"]] != nil {
			t.Errorf("session leader %s judged twice: %s; %s", rec["LEADER"], byLeader[rec["LEADER"]]["MESSAGE"], rec["MESSAGE"])
		}
		byLeader[rec["LEADER"]] = rec
	}
	open := openSessionLeaders(t, c)
	for name, u := range units {
		rec := byLeader[u.leader]
		if rec == nil {
			t.Errorf("%s (leader %s): the watcher never judged its session", name, u.leader)
			continue
		}
		if rec["USER"] != u.kind.user || rec["SERVICE"] != u.kind.service {
			t.Errorf("%s (leader %s): judged as a session of %s through %s, want %s through %s", name, u.leader, rec["USER"], rec["SERVICE"], u.kind.user, u.kind.service)
		}
		if !u.kind.escape {
			if u.mainPID != u.leader || !open[u.leader] {
				t.Errorf("compliant %s (session %s) was ended: main PID %s, session open %v; %s", name, rec["SESSION_ID"], u.mainPID, open[u.leader], rec["MESSAGE"])
			}
			if rec["VERDICT"] != "ok" || rec["ACTION"] != "" {
				t.Errorf("compliant %s: verdict %s, action %q: %s", name, rec["VERDICT"], rec["ACTION"], rec["MESSAGE"])
			}
			continue
		}
		if u.mainPID != "0" || open[u.leader] {
			t.Errorf("escape %s (session %s) was not ended: main PID %s, session open %v", name, rec["SESSION_ID"], u.mainPID, open[u.leader])
		}
		if rec["VERDICT"] != "violation" || rec["ACTION"] != "terminate" {
			t.Errorf("escape %s: verdict %s, action %q: %s", name, rec["VERDICT"], rec["ACTION"], rec["MESSAGE"])
			continue
		}
		lived = append(lived, time.Duration(u.died-u.forked)*time.Microsecond)
		lastTerminated = max(lastTerminated, journalTime(t, rec["__REALTIME_TIMESTAMP"]))
	}
	return lived, lastTerminated
}

// escapesEnded waits until the leader of every escape is dead, or
// stormBound has passed, and fills units in.
func escapesEnded(t *testing.T, c *Container, units map[string]*stormUnit) {
	t.Helper()
	deadline := time.Now().Add(stormBound)
	for {
		readStormUnits(t, c, units)
		alive := 0
		for _, u := range units {
			if u.kind.escape && u.mainPID != "0" {
				alive++
			}
		}
		if alive == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d escapes still run %v after the storm", alive, stormBound)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// readStormUnits fills units in with what PID 1 says of them.
func readStormUnits(t *testing.T, c *Container, units map[string]*stormUnit) {
	t.Helper()
	out := c.Run(t, "systemctl", "show", "-p", "Id,MainPID,ExecMainPID,ExecMainStartTimestampMonotonic,ExecMainExitTimestampMonotonic", "storm-*")
	seen := 0
	for block := range strings.SplitSeq(strings.TrimSpace(out), "\n\n") {
		props := map[string]string{}
		for line := range strings.Lines(block) {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
				props[k] = v
			}
		}
		u := units[props["Id"]]
		if u == nil {
			t.Fatalf("systemctl show listed a unit the storm did not start:\n%s", block)
		}
		seen++
		u.leader, u.mainPID = props["ExecMainPID"], props["MainPID"]
		u.forked, _ = strconv.ParseInt(props["ExecMainStartTimestampMonotonic"], 10, 64)
		u.died, _ = strconv.ParseInt(props["ExecMainExitTimestampMonotonic"], 10, 64)
	}
	if seen != len(units) {
		t.Fatalf("PID 1 knows %d of the storm's %d units", seen, len(units))
	}
}

// judgedSessions waits until the watcher has judged every session of the
// storm, or stormBound has passed, and returns its records of them.
func judgedSessions(t *testing.T, c *Container) []map[string]string {
	t.Helper()
	deadline := time.Now().Add(stormBound)
	for {
		records := append(watchRecords(t, c, "SERVICE=nohook"), watchRecords(t, c, "SERVICE=hook")...)
		if len(records) >= stormSessions || time.Now().After(deadline) {
			return records
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// journalTime parses a journal timestamp, microseconds since the epoch.
func journalTime(t *testing.T, usec string) time.Duration {
	t.Helper()
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil {
		t.Fatalf("journal timestamp %q: %v", usec, err)
	}
	return time.Duration(n) * time.Microsecond
}

// openSessionLeaders returns the leaders of the sessions logind has open.
func openSessionLeaders(t *testing.T, c *Container) map[string]bool {
	t.Helper()
	out := c.Sh(t, `ids=$(loginctl list-sessions --no-legend | awk '{print $1}'); [ -z "$ids" ] || loginctl show-session -p Leader --value $ids`)
	leaders := map[string]bool{}
	for _, pid := range strings.Fields(out) {
		leaders[pid] = true
	}
	return leaders
}

// cpuTime is the CPU time process pid has used, in user and system mode.
func cpuTime(t *testing.T, c *Container, pid string) time.Duration {
	t.Helper()
	out := c.Sh(t, "getconf CLK_TCK; cat /proc/"+pid+"/stat")
	tck, stat, _ := strings.Cut(out, "\n")
	hz, err := strconv.Atoi(tck)
	// After the command name, which may hold anything, come the state and
	// ten more fields, then utime and stime.
	fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if err != nil || len(fields) < 13 {
		t.Fatalf("CPU time of PID %s: %q", pid, out)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("CPU time of PID %s: %q", pid, out)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / time.Duration(hz)
}

// memoryOf returns the peak and current resident memory of pid, in bytes.
func memoryOf(t *testing.T, c *Container, pid string) (peak, now int64) {
	t.Helper()
	kB := map[string]int64{}
	for line := range strings.Lines(c.Run(t, "cat", "/proc/"+pid+"/status")) {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "VmHWM" || k == "VmRSS") {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s of PID %s: %q", k, pid, line)
			}
			kB[k] = n
		}
	}
	return kB["VmHWM"] << 10, kB["VmRSS"] << 10
}

func mb(bytes int64) float64 { return float64(bytes) / (1 << 20) }
