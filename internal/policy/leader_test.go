package policy

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/proc"
)

// fakeProcess is a pinned process of the fake system.
type fakeProcess struct {
	pid    int
	start  time.Duration // since boot
	cgroup string
	// fdid is the pidfs inode, when pidfs is set.
	fdid  uint64
	pidfs bool
	// exited makes the process exit once it has been read: Alive fails.
	exited    bool
	cgroupErr error
	uids      proc.UIDs
	// sandboxed: its network namespace is one of a user namespace of its
	// own, or sandboxErr says why that cannot be told.
	sandboxed  bool
	sandboxErr error
	closed     bool
	killed     bool
}

func (p *fakeProcess) PID() int                          { return p.pid }
func (p *fakeProcess) FDID() (uint64, bool, error)       { return p.fdid, p.pidfs, nil }
func (p *fakeProcess) StartTime() (time.Duration, error) { return p.start, nil }
func (p *fakeProcess) Cgroup() (string, error)           { return p.cgroup, p.cgroupErr }
func (p *fakeProcess) UIDs() (proc.UIDs, error)          { return p.uids, nil }
func (p *fakeProcess) SandboxedNetns() (bool, error)     { return p.sandboxed, p.sandboxErr }
func (p *fakeProcess) Close() error                      { p.closed = true; return nil }
func (p *fakeProcess) Kill() error                       { p.killed = true; return nil }

func (p *fakeProcess) Alive() error {
	if p.exited {
		return fmt.Errorf("checking that process %d still runs: %w", p.pid, syscall.ESRCH)
	}
	return nil
}

// fakeSleep is a system that slept an hour before the watcher recorded a
// sleep at fakeSleepRecorded (monotonic), and never since.
type fakeSleep struct{}

const (
	fakeSleepRecorded = 2 * time.Hour
	fakeSlept         = time.Hour
)

func (fakeSleep) SleptBy(mono time.Duration) time.Duration {
	if mono >= fakeSleepRecorded {
		return fakeSlept
	}
	return 0
}

func (fakeSleep) SleptSoFar() time.Duration { return fakeSlept }

func TestSessionJudgesOnlyAProvenLeader(t *testing.T) {
	const (
		scope   = "session-7.scope"
		inScope = "/user.slice/user-1005.slice/" + scope
	)
	created := 3 * time.Hour // monotonic; after the recorded sleep
	tests := []struct {
		name    string
		session func(*logind.Session)
		process fakeProcess
		want    Verdict
		reason  string // a part of the reason
	}{
		{name: "pidfd inode of the leader", want: Violation,
			session: func(s *logind.Session) { s.LeaderPIDFDID = 77 },
			process: fakeProcess{fdid: 77, pidfs: true, start: 10 * time.Hour, cgroup: "/system.slice/cron.service"}},
		{name: "pidfd inode of another process", want: Gone, reason: "has pidfd inode 78, not the leader's 77",
			session: func(s *logind.Session) { s.LeaderPIDFDID = 77 },
			process: fakeProcess{fdid: 78, pidfs: true, cgroup: inScope}},
		{name: "pidfd without an inode of its own falls back to the scope", want: Violation,
			session: func(s *logind.Session) { s.LeaderPIDFDID = 77 },
			process: fakeProcess{start: 10 * time.Hour, cgroup: inScope}},
		{name: "logind of systemd 257 or before falls back to the start time", want: Violation,
			process: fakeProcess{fdid: 78, pidfs: true, start: time.Hour, cgroup: "/system.slice/ssh.service"}},
		{name: "a child of the session that took the PID is the session's", want: Violation,
			process: fakeProcess{start: 10 * time.Hour, cgroup: inScope}},
		{name: "young session's leader, not yet in its scope", want: Violation,
			process: fakeProcess{start: created + fakeSlept, cgroup: "/system.slice/ssh.service"}},
		{name: "process started after the session, outside its scope", want: Gone, reason: "started 4h0m0.01s after boot, after the session was created",
			process: fakeProcess{start: created + fakeSlept + 10*time.Millisecond, cgroup: "/user.slice/user-0.slice/session-2.scope"}},
		{name: "a scope of the same name elsewhere proves nothing", want: Gone,
			process: fakeProcess{start: 10 * time.Hour, cgroup: "/user.slice/user-1005.slice/user@1005.service/app.slice/" + scope}},
		{name: "sleep unrecorded before the creation leaves it open", want: Unknown, reason: "the system's sleep leaves open",
			session: func(s *logind.Session) { s.TimestampMonotonic = uint64(time.Hour / time.Microsecond) },
			process: fakeProcess{start: 90 * time.Minute, cgroup: "/system.slice/ssh.service"}},
		{name: "no creation time and not in the scope", want: Unknown, reason: "logind does not say when the session was created",
			session: func(s *logind.Session) { s.TimestampMonotonic = 0 },
			process: fakeProcess{start: 0, cgroup: "/system.slice/ssh.service"}},
		{name: "no scope and started after", want: Gone,
			session: func(s *logind.Session) { s.Scope = "" },
			process: fakeProcess{start: 10 * time.Hour, cgroup: "/"}},
		{name: "unreadable cgroup proves nothing", want: Unknown, reason: "permission denied",
			session: func(s *logind.Session) { s.TimestampMonotonic = 0 },
			process: fakeProcess{cgroupErr: fmt.Errorf("reading the cgroup of process 100: %w", syscall.EACCES)}},
		{name: "exited while it was read", want: Gone, reason: "exited while it was looked at",
			process: fakeProcess{cgroup: inScope, exited: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := fakeJudge(t, "alice ns0\n")
			p := tt.process
			p.pid = pidInHost
			j.Pin = func(pid int) (Pinned, error) {
				if pid != pidInHost {
					t.Fatalf("pinned %d, want the leader %d", pid, pidInHost)
				}
				return &p, nil
			}
			f, leader := j.Session(sessionOfAlice("active", created, tt.session))
			if f.Verdict != tt.want || !strings.Contains(f.Reason, tt.reason) {
				t.Errorf("verdict %v (%s), want %v with %q", f.Verdict, f.Reason, tt.want, tt.reason)
			}
			// Only a process judged as the session is handed back, pinned.
			if judged := f.Verdict == Violation; (leader != nil) != judged || p.closed == judged {
				t.Errorf("leader handed back: %t, released: %t; want it handed back and pinned only when judged", leader != nil, p.closed)
			}
			if err := leader.Kill(); leader == nil && !errors.Is(err, errNoLeader) {
				t.Errorf("killing no leader: %v", err)
			}
			leader.Release()
			if !p.closed {
				t.Error("leader not released")
			}
		})
	}
}

// sessionOfAlice is session 7 of alice (uid 1005), led by pidInHost, in
// session-7.scope, created at created on the monotonic clock, changed by
// change unless it is nil.
func sessionOfAlice(state string, created time.Duration, change func(*logind.Session)) logind.Session {
	s := logind.Session{ID: "7", User: "alice", UID: 1005, Leader: pidInHost, Class: "user", State: state,
		Scope: "session-7.scope", TimestampMonotonic: uint64(created / time.Microsecond)}
	if change != nil {
		change(&s)
	}
	return s
}

func TestSessionLeaderThatCannotBePinned(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Verdict
	}{
		{"exited", fmt.Errorf("opening a pidfd of process 100: %w", syscall.ESRCH), Gone},
		{"no pidfds", errors.New("opening a pidfd of process 100: pidfds not supported by the kernel"), Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := fakeJudge(t, "alice ns0\n")
			j.Pin = func(int) (Pinned, error) { return nil, tt.err }
			f, leader := j.Session(logind.Session{ID: "7", User: "alice", UID: 1005, Leader: pidInHost, Class: "user", State: "active"})
			if f.Verdict != tt.want || leader != nil {
				t.Errorf("verdict %v (%s), leader %v; want %v and none", f.Verdict, f.Reason, leader, tt.want)
			}
		})
	}
}

func TestStartOrderWithoutSleepBounds(t *testing.T) {
	j := &Judge{}
	for _, tt := range []struct {
		start, created time.Duration
		want           order
	}{
		{time.Hour, time.Hour, startedBefore},
		{time.Hour + time.Millisecond, time.Hour, startedUnsure}, // it may have slept
	} {
		if got := j.startOrder(tt.start, tt.created); got != tt.want {
			t.Errorf("start %v, created %v: %d, want %d", tt.start, tt.created, got, tt.want)
		}
	}
}
