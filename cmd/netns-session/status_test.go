package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/config/configtest"
	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/netns/netnstest"
	"github.com/netns-session/netns-session/internal/policy/policytest"
	"github.com/netns-session/netns-session/internal/reconcile"
	"github.com/netns-session/netns-session/internal/units"
)

const aliceInNs0 = "alice ns0\n"

// statusFixture is a system with sessions of every verdict, one of them
// judged by the process its exited leader left in its scope, two user
// managers (one misplaced), and a stale drop-in.
func statusFixture(t *testing.T, conf string, dropIns *reconcile.Report, dropInErr error) *statusTaker {
	t.Helper()
	sys := policytest.NewSystem()
	sys.KillErr = errors.New("status killed a process: it only looks")
	sys.AddSession("1", "alice", 1000, 101, "user", netnstest.NS0)
	sys.AddSession("c2", "alice", 1000, 102, "background", netnstest.Host)
	sys.AddSession("3", "carol", 1002, 103, "user", netnstest.Host)
	sys.AddSession("4", "alice", 1000, 104, logind.ClassManager, netnstest.NS0)
	sys.AddSession("5", "root", 0, 105, "user", netns.ID{}) // leader exited
	sys.AddSession("6", "alice", 1000, 106, "user", netns.ID{})
	sys.Sessions[5].State = logind.StateClosing
	sys.Netns[306], sys.Cgroups[306], sys.UIDs[306] = netnstest.Host, "/user.slice/user-1000.slice/session-6.scope", 1000
	sys.Sessions[2].TTY, sys.Sessions[2].RemoteHost = "", "192.0.2.7"
	sys.Users = []logind.User{{UID: 1000, Name: "alice"}, {UID: 1002, Name: "carol"}, {UID: 0, Name: "root"}}
	sys.Managers[1000], sys.Netns[200] = 200, netnstest.NS0
	sys.Managers[1002], sys.Netns[202] = 202, netnstest.NS1
	cfg, err := config.Parse("test.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	return &statusTaker{
		logind:     sys,
		judge:      sys.Judge(cfg, configtest.Users()),
		managerPID: sys.ManagerPID,
		dropIns:    func(context.Context) (*reconcile.Report, error) { return dropIns, dropInErr },
		names: func() (map[netns.ID]string, error) {
			return map[netns.ID]string{netnstest.Host: "host", netnstest.NS0: "ns0", netnstest.NS1: "ns1"}, nil
		},
	}
}

func TestStatusText(t *testing.T) {
	stale := &reconcile.Report{DryRun: true, Changes: []reconcile.Change{
		{Action: reconcile.Remove, UID: 1004, User: "dave", Reason: "no line matches; unmapped = host"},
	}}
	report, err := statusFixture(t, aliceInNs0, stale, nil).take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := report.writeText(&out); err != nil {
		t.Fatal(err)
	}
	want := `SESSION  USER   UID   CLASS       SERVICE  TTY    REMOTE     LEADER  PID  EXPECTED  ACTUAL  VERDICT
1        alice  1000  user        sshd     pts/0  -          101     101  ns0       ns0     ok
c2       alice  1000  background  sshd     pts/0  -          102     102  ns0       host    violation
3        carol  1002  user        sshd     -      192.0.2.7  103     103  host      host    ok
4        alice  1000  manager     sshd     pts/0  -          104     -    -         -       exempt
5        root   0     user        sshd     pts/0  -          105     -    host      -       gone
6        alice  1000  user        sshd     pts/0  -          106     306  ns0       host    violation

USER MANAGER       USER   UID   PID  EXPECTED  ACTUAL  VERDICT
user@1000.service  alice  1000  200  ns0       ns0     ok
user@1002.service  carol  1002  202  host      ns1     violation

drop-ins that do not match the config (netns-session sync fixes them):
  user@1004.service of dave: has a drop-in it should not have: no line matches; unmapped = host

session c2 of alice: violation: process 102 runs in netns 4:4026531840, not in /run/netns/ns0 (4:4026532100): user line for alice
session 6 of alice: violation: leader 106 exited before it was looked at; judged by process 306 of its scope session-6.scope: process 306 runs in netns 4:4026531840, not in /run/netns/ns0 (4:4026532100): user line for alice
user@1002.service of carol: violation: process 202 runs in netns 4:4026532101, not in /proc/1/ns/net (4:4026531840): no line matches; unmapped = host

6 sessions, 2 user managers: 4 violations, 0 unknown verdicts
`
	if got := out.String(); got != want {
		t.Errorf("status output:\n%s\nwant:\n%s", got, want)
	}
	if got := report.exitStatus(); got != statusViolation {
		t.Errorf("exit status %d, want %d", got, statusViolation)
	}
}

// TestStatusResolvConf shows which resolv.conf each process judged sees
// when ns0 has one of its own, and changes no verdict and no exit status.
func TestStatusResolvConf(t *testing.T) {
	s := statusFixture(t, aliceInNs0, &reconcile.Report{DryRun: true}, nil)
	sys := s.logind.(*policytest.System)
	sys.GiveNS0ResolvConf()
	sys.ResolvConfs[101] = policytest.NS0ResolvConf  // session 1: in ns0, with its view
	sys.ResolvConfs[102] = policytest.HostResolvConf // session c2: on the host
	// Session 6 is judged by process 306, which sees no resolv.conf at all.
	sys.ResolvConfErrs[200] = syscall.EACCES // alice's manager
	report, err := s.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := report.writeText(&out); err != nil {
		t.Fatal(err)
	}
	want := `SESSION  USER   UID   CLASS       SERVICE  TTY    REMOTE     LEADER  PID  EXPECTED  ACTUAL  RESOLV.CONF  VERDICT
1        alice  1000  user        sshd     pts/0  -          101     101  ns0       ns0     namespace    ok
c2       alice  1000  background  sshd     pts/0  -          102     102  ns0       host    host         violation
3        carol  1002  user        sshd     -      192.0.2.7  103     103  host      host    -            ok
4        alice  1000  manager     sshd     pts/0  -          104     -    -         -       -            exempt
5        root   0     user        sshd     pts/0  -          105     -    host      -       -            gone
6        alice  1000  user        sshd     pts/0  -          106     306  ns0       host    other        violation

USER MANAGER       USER   UID   PID  EXPECTED  ACTUAL  RESOLV.CONF  VERDICT
user@1000.service  alice  1000  200  ns0       ns0     unknown      ok
user@1002.service  carol  1002  202  host      ns1     -            violation

session c2 of alice: violation: process 102 runs in netns 4:4026531840, not in /run/netns/ns0 (4:4026532100): user line for alice
session 6 of alice: violation: leader 106 exited before it was looked at; judged by process 306 of its scope session-6.scope: process 306 runs in netns 4:4026531840, not in /run/netns/ns0 (4:4026532100): user line for alice
user@1002.service of carol: violation: process 202 runs in netns 4:4026532101, not in /proc/1/ns/net (4:4026531840): no line matches; unmapped = host
warning: user@1000.service of alice: which resolv.conf it sees is unknown: looking up /etc/resolv.conf as process 200 sees it: permission denied

6 sessions, 2 user managers: 3 violations, 0 unknown verdicts
`
	if got := out.String(); got != want {
		t.Errorf("status output:\n%s\nwant:\n%s", got, want)
	}
	if got := report.exitStatus(); got != statusViolation {
		t.Errorf("exit status %d, want %d: the views change nothing", got, statusViolation)
	}
	out.Reset()
	if err := report.writeJSON(&out); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Sessions []map[string]any `json:"sessions"`
		Managers []map[string]any `json:"managers"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	var views []any
	for _, st := range append(got.Sessions, got.Managers...) {
		views = append(views, st["resolv_conf"])
	}
	if want := []any{"namespace", "host", "", "", "", "other", "unknown", ""}; !slices.Equal(views, want) {
		t.Errorf("resolv_conf of the sessions and managers %q, want %q", views, want)
	}
}

func TestStatusJSON(t *testing.T) {
	report, err := statusFixture(t, aliceInNs0, &reconcile.Report{DryRun: true}, nil).take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := report.writeJSON(&out); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Sessions   []map[string]any `json:"sessions"`
		Managers   []map[string]any `json:"managers"`
		DropIns    []map[string]any `json:"drop_ins"`
		Warnings   []string         `json:"warnings"`
		Violations int              `json:"violations"`
		Unknown    int              `json:"unknown"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(got.Sessions) != 6 || len(got.Managers) != 2 || got.DropIns == nil || got.Warnings == nil {
		t.Fatalf("want 6 sessions, 2 managers and empty lists, not nulls:\n%s", out.String())
	}
	wantSessions := map[int]map[string]any{
		1: {"id": "c2", "user": "alice", "uid": 1000.0, "class": "background", "service": "sshd", "leader": 102.0,
			"pid": 102.0, "judged": "leader",
			"expected": "/run/netns/ns0", "expected_id": netnstest.NS0.String(), "actual_id": netnstest.Host.String(), "actual_name": "host",
			"verdict": "violation"},
		4: {"id": "5", "leader": 105.0, "pid": 0.0, "judged": "", "verdict": "gone"},
		5: {"id": "6", "leader": 106.0, "pid": 306.0, "judged": "scope", "actual_id": netnstest.Host.String(), "verdict": "violation"},
	}
	for i, want := range wantSessions {
		for k, v := range want {
			if got.Sessions[i][k] != v {
				t.Errorf("session %s: %s = %#v, want %#v", want["id"], k, got.Sessions[i][k], v)
			}
		}
	}
	if m := got.Managers[1]; m["unit"] != "user@1002.service" || m["pid"] != 202.0 || m["actual_id"] != netnstest.NS1.String() || m["verdict"] != "violation" {
		t.Errorf("manager of carol: %v", m)
	}
	if got.Violations != 3 || got.Unknown != 0 {
		t.Errorf("violations %d, unknown %d; want 3 and 0", got.Violations, got.Unknown)
	}
}

func TestStatusExitStatus(t *testing.T) {
	escaped := policytest.Session("8", "alice", 1000, 102, "user")
	unknown := policytest.Session("10", "mallory", 1666, 101, "user")
	// Its leader exited; a process of root on the host, started after the
	// session, holds its PID now.
	reused := policytest.Session("11", "alice", 1000, 103, "user")
	staleDropIn := &reconcile.Report{Changes: []reconcile.Change{{Action: reconcile.Write, UID: 1000, User: "alice", Netns: "/run/netns/ns0"}}}
	tests := []struct {
		name      string
		extra     []logind.Session
		dropIns   *reconcile.Report
		dropInErr error
		// managerErr is what looking for carol's manager fails with.
		managerErr error
		// namesErr is what listing the named namespaces fails with.
		namesErr error
		// hostResolvConf: ns0 has a resolv.conf, alice's session sees the
		// host's, and her manager's view cannot be read.
		hostResolvConf bool
		want           int
	}{
		{name: "everything in place", dropIns: &reconcile.Report{}, want: 0},
		{name: "a session escaped", extra: []logind.Session{escaped}, dropIns: &reconcile.Report{}, want: statusViolation},
		{name: "a stale drop-in", dropIns: staleDropIn, want: statusViolation},
		{name: "drop-ins could not be checked", dropIns: &reconcile.Report{}, dropInErr: errors.New("looking up uid 1005: LDAP down"), want: statusIncomplete},
		{name: "a user unknown", extra: []logind.Session{unknown}, dropIns: &reconcile.Report{}, want: statusIncomplete},
		{name: "a process that reused an exited leader's PID is no violation", extra: []logind.Session{reused}, dropIns: &reconcile.Report{}, want: 0},
		{name: "a violation beats an unknown verdict", extra: []logind.Session{unknown, escaped}, dropIns: &reconcile.Report{}, want: statusViolation},
		{name: "a manager not running is left out", dropIns: &reconcile.Report{}, managerErr: fmt.Errorf("finding user manager of uid 1002: %w", units.ErrNotRunning), want: 0},
		{name: "a manager that could not be looked for is unknown", dropIns: &reconcile.Report{}, managerErr: errors.New("reading /sys/fs/cgroup/user.slice: permission denied"), want: statusIncomplete},
		{name: "namespaces that could not be listed are a warning, no unknown verdict", dropIns: &reconcile.Report{}, namesErr: errors.New("listing /run/netns: permission denied"), want: 0},
		{name: "the host's resolv.conf in the right namespace, or none known, is no violation or unknown verdict", dropIns: &reconcile.Report{}, hostResolvConf: true, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := statusFixture(t, "alice ns0\ncarol ns1\n", tt.dropIns, tt.dropInErr)
			// alice in ns0 and carol in ns1, as their managers are.
			sys := s.logind.(*policytest.System)
			sys.Sessions = append([]logind.Session{sys.Sessions[0], policytest.Session("9", "carol", 1002, 202, "user")}, tt.extra...)
			sys.Started[103] = policytest.SessionCreated + time.Minute
			if tt.managerErr != nil {
				s.managerPID = func(uid uint32) (int, error) {
					if uid == 1002 {
						return 0, tt.managerErr
					}
					return sys.ManagerPID(uid)
				}
			}
			if tt.namesErr != nil {
				s.names = func() (map[netns.ID]string, error) { return nil, tt.namesErr }
			}
			if tt.hostResolvConf {
				sys.GiveNS0ResolvConf()
				sys.ResolvConfs[101] = policytest.HostResolvConf
				sys.ResolvConfErrs[200] = syscall.EACCES
			}
			report, err := s.take(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tt.namesErr != nil && !slices.Contains(report.Warnings, "naming namespaces: "+tt.namesErr.Error()) {
				t.Errorf("warnings %q, want the failed listing among them", report.Warnings)
			}
			if got := report.exitStatus(); got != tt.want {
				var out bytes.Buffer
				report.writeText(&out)
				t.Errorf("exit status %d, want %d\n%s", got, tt.want, out.String())
			}
		})
	}
}
