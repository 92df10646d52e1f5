package policy

import (
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/config/configtest"
	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/netns/netnstest"
)

var userUIDs = map[string]uint32{"alice": 1005, "bob": 1002, "carol": 1003}

const (
	ldapDownUID = 1666
	unknownUID  = 1999
)

// testUsers knows alice, bob and carol; a lookup of "ldap-down", or of its
// UID, fails as a broken source does.
func testUsers() *configtest.Directory {
	users := configtest.New()
	for name, uid := range userUIDs {
		users.AddUser(config.User{Name: name, UID: uid, GID: 100})
	}
	users.Down = map[string]bool{"ldap-down": true}
	users.DownUIDs = map[uint32]bool{ldapDownUID: true}
	return users
}

// The processes of the fake system, by PID.
const (
	pidInHost     = 100
	pidInNs0      = 200
	pidInNs1      = 300
	pidExited     = 400
	pidExiting    = 401 // its /proc entry is still there, its namespaces are not
	pidUnreadable = 500
)

func fakeJudge(t *testing.T, conf string) *Judge {
	t.Helper()
	cfg, err := config.Parse("t.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	return &Judge{
		Config: cfg,
		Users:  testUsers(),
		ProcessNetns: func(pid int) (netns.ID, error) {
			switch pid {
			case pidInHost:
				return netnstest.Host, nil
			case pidInNs0:
				return netnstest.NS0, nil
			case pidInNs1:
				return netnstest.NS1, nil
			case pidExited:
				return netns.ID{}, fmt.Errorf("stating /proc/%d/ns/net: %w", pid, fs.ErrNotExist)
			case pidExiting:
				return netns.ID{}, fmt.Errorf("stating /proc/%d/ns/net: %w", pid, syscall.ESRCH)
			}
			return netns.ID{}, fmt.Errorf("stating /proc/%d/ns/net: %w", pid, syscall.EACCES)
		},
		Pin: func(pid int) (Pinned, error) {
			if pid == pidExited {
				return nil, fmt.Errorf("opening a pidfd of process %d: %w", pid, syscall.ESRCH)
			}
			return &fakeProcess{pid: pid, cgroup: "/system.slice/ssh.service"}, nil
		},
		// Every scope is empty.
		CgroupProcs: func(string) ([]int, error) { return nil, nil },
		Sleep:       fakeSleep{},
		NetnsFile: func(path string) (netns.ID, error) {
			switch path {
			case "/run/netns/notns":
				return netns.ID{}, fmt.Errorf("%s is %w", path, netns.ErrNotNamespace)
			case "/run/netns/locked":
				return netns.ID{}, fmt.Errorf("opening namespace %s: %w", path, syscall.EACCES)
			}
			return netnstest.File(path)
		},
	}
}

func TestProcess(t *testing.T) {
	tests := []struct {
		name     string
		config   string
		user     string
		pid      int
		want     Verdict
		expected string
		actual   netns.ID
		reason   string // a part of the reason
	}{
		{name: "mapped user in its namespace", config: "alice ns0\n", user: "alice", pid: pidInNs0,
			want: Compliant, expected: "/run/netns/ns0", actual: netnstest.NS0, reason: "user line for alice"},
		{name: "mapped user on the host", config: "alice ns0\n", user: "alice", pid: pidInHost,
			want: Violation, expected: "/run/netns/ns0", actual: netnstest.Host, reason: "process 100 runs in netns 4:4026531840, not in /run/netns/ns0 (4:4026532100)"},
		{name: "mapped user in another user's namespace", config: "alice ns0\nbob ns1\n", user: "alice", pid: pidInNs1,
			want: Violation, expected: "/run/netns/ns0", actual: netnstest.NS1},
		{name: "unmapped user on the host", config: "alice ns0\n", user: "bob", pid: pidInHost,
			want: Compliant, expected: netns.HostPath, actual: netnstest.Host, reason: "unmapped = host"},
		{name: "unmapped user inside a namespace", config: "alice ns0\n", user: "bob", pid: pidInNs0,
			want: Violation, expected: netns.HostPath, actual: netnstest.NS0},
		{name: "user mapped to the host with -", config: "carol -\n* ns0\n", user: "carol", pid: pidInHost,
			want: Compliant, expected: netns.HostPath, actual: netnstest.Host},
		{name: "unmapped = keep allows any namespace", config: "unmapped = keep\nalice ns0\n", user: "bob", pid: pidInNs1,
			want: Unconstrained, actual: netnstest.NS1, reason: "unmapped = keep"},
		{name: "wildcard applies", config: "* ns1\n", user: "carol", pid: pidInNs1,
			want: Compliant, expected: "/run/netns/ns1", actual: netnstest.NS1},
		{name: "missing namespace is a violation", config: "alice gone\n", user: "alice", pid: pidInHost,
			want: Violation, expected: "/run/netns/gone", actual: netnstest.Host, reason: "alice wants /run/netns/gone, which is not available"},
		{name: "a file that is no namespace is a violation", config: "alice notns\n", user: "alice", pid: pidInNs0,
			want: Violation, expected: "/run/netns/notns", actual: netnstest.NS0},
		{name: "namespace that cannot be checked", config: "alice locked\n", user: "alice", pid: pidInNs0,
			want: Unknown, expected: "/run/netns/locked", actual: netnstest.NS0, reason: "checking /run/netns/locked"},
		{name: "leader exited", config: "alice ns0\n", user: "alice", pid: pidExited,
			want: Gone, expected: "/run/netns/ns0", reason: "process 400 exited"},
		{name: "leader exiting", config: "alice ns0\n", user: "alice", pid: pidExiting,
			want: Gone, expected: "/run/netns/ns0"},
		{name: "no leader", config: "alice ns0\n", user: "alice", pid: 0,
			want: Gone, expected: "/run/netns/ns0"},
		{name: "leader unreadable", config: "alice ns0\n", user: "alice", pid: pidUnreadable,
			want: Unknown, expected: "/run/netns/ns0", reason: "reading the namespace of process 500"},
		{name: "unknown user", config: "alice ns0\n* ns0\n", user: "mallory", pid: pidInNs0,
			want: Unknown, reason: "unknown user with uid 1999"},
		{name: "failing user source", config: "alice ns0\n* ns0\n", user: "ldap-down", pid: pidInNs0,
			want: Unknown, reason: "user database unavailable"},
		{name: "unknown user under * alone", config: "* ns0\n", user: "mallory", pid: pidInNs0,
			want: Unknown, reason: "unknown user with uid 1999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid, ok := userUIDs[tt.user]
			switch {
			case tt.user == "ldap-down":
				uid = ldapDownUID
			case !ok:
				uid = unknownUID
			}
			f := fakeJudge(t, tt.config).Process(uid, tt.user, tt.pid)
			if f.Verdict != tt.want {
				t.Errorf("verdict = %v, want %v (reason: %s)", f.Verdict, tt.want, f.Reason)
			}
			if f.Expected != tt.expected {
				t.Errorf("expected = %q, want %q", f.Expected, tt.expected)
			}
			if f.Actual != tt.actual {
				t.Errorf("actual = %v, want %v", f.Actual, tt.actual)
			}
			if !strings.Contains(f.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", f.Reason, tt.reason)
			}
			if f.Verdict == Compliant && f.ExpectedID != f.Actual {
				t.Errorf("compliant, but expected %v != actual %v", f.ExpectedID, f.Actual)
			}
		})
	}
}

func TestSessionClasses(t *testing.T) {
	tests := []struct {
		class string
		want  Verdict
	}{
		{"user", Violation},
		{"user-early", Violation},
		{"user-incomplete", Violation},
		{"background", Violation},
		{"background-light", Violation},
		{"some-future-class", Violation},
		{logind.ClassGreeter, Exempt},
		{logind.ClassLockScreen, Exempt},
		{logind.ClassManager, Exempt},
		{logind.ClassManagerEarly, Exempt},
	}
	j := fakeJudge(t, "alice ns0\n")
	for _, tt := range tests {
		t.Run(tt.class, func(t *testing.T) {
			f, leader := j.Session(logind.Session{ID: "1", User: "alice", UID: userUIDs["alice"], Leader: pidInHost, Class: tt.class,
				State: "active", TimestampMonotonic: uint64(time.Hour / time.Microsecond)})
			leader.Release()
			if f.Verdict != tt.want {
				t.Errorf("verdict = %v, want %v (reason: %s)", f.Verdict, tt.want, f.Reason)
			}
		})
	}
}

// TestPassLooksEachUserUpOnce judges in one pass, as the watcher's check of
// every session does: a user is looked up once however many processes it
// has, and the judge the pass came from, and the next pass, look it up
// again, so a user deleted between passes is not remembered.
func TestPassLooksEachUserUpOnce(t *testing.T) {
	j := fakeJudge(t, "alice ns0\n")
	dir := testUsers()
	j.Users = dir
	pass := j.Pass()
	alice := userUIDs["alice"]
	for range 3 {
		if f := pass.Process(alice, "alice", pidInNs0); f.Verdict != Compliant {
			t.Fatalf("verdict %s: %s", f.Verdict, f.Reason)
		}
	}
	if dir.Count(configtest.UserByName, configtest.UserByUID) != 1 {
		t.Errorf("a pass of 3 judgements looked up %d times, want 1 (the uid)", dir.Count(configtest.UserByName, configtest.UserByUID))
	}
	for _, judge := range []*Judge{j, j.Pass()} {
		dir.Forget()
		judge.Process(alice, "alice", pidInNs0)
		if dir.Count(configtest.UserByName, configtest.UserByUID) != 1 {
			t.Errorf("after the pass: %d lookups, want 1", dir.Count(configtest.UserByName, configtest.UserByUID))
		}
	}
}

// TestSessionIsJudgedByUIDNotName judges sessions whose name, as logind
// reported it, now belongs to another user, or to none (renamed, or
// reassigned): the verdict follows the UID's line, never the name's.
func TestSessionIsJudgedByUIDNotName(t *testing.T) {
	tests := []struct {
		name, user string
		uid        uint32
		leader     int
		want       Verdict
	}{
		// alice's name, bob's UID: bob is unmapped, so ns0 is wrong for him.
		{name: "name of a mapped user, uid of an unmapped one", user: "alice", uid: userUIDs["bob"], leader: pidInNs0, want: Violation},
		{name: "name of an unmapped user, uid of a mapped one", user: "bob", uid: userUIDs["alice"], leader: pidInNs0, want: Compliant},
		{name: "name nobody has now", user: "alice-old", uid: userUIDs["alice"], leader: pidInNs0, want: Compliant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := fakeJudge(t, "alice ns0\n")
			f, leader := j.Session(logind.Session{ID: "1", User: tt.user, UID: tt.uid, Leader: uint32(tt.leader), Class: "user",
				State: "active", TimestampMonotonic: uint64(time.Hour / time.Microsecond)})
			leader.Release()
			if f.Verdict != tt.want {
				t.Errorf("session of %s (uid %d): verdict %v (%s), want %v", tt.user, tt.uid, f.Verdict, f.Reason, tt.want)
			}
		})
	}
}

func TestVerdictText(t *testing.T) {
	for v, want := range map[Verdict]string{Compliant: "ok", Violation: "violation", Unconstrained: "unconstrained", Exempt: "exempt", Gone: "gone", Unknown: "unknown", 9: "Verdict(9)"} {
		text, err := v.MarshalText()
		if v.String() != want || string(text) != want || err != nil {
			t.Errorf("verdict %d: String %q, MarshalText %q %v; want %q", uint8(v), v.String(), text, err, want)
		}
	}
}
