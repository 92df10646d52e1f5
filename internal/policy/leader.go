package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/proc"
)

// Pinned is a process pinned by a pidfd: a *proc.Process, or a fake in
// tests. See proc.Process for what each method tells.
type Pinned interface {
	PID() int
	FDID() (id uint64, ok bool, err error)
	StartTime() (time.Duration, error)
	Cgroup() (string, error)
	UIDs() (proc.UIDs, error)
	SandboxedNetns() (bool, error)
	Alive() error
	Kill() error
	Close() error
}

// PinProcess pins pid with proc.Pin.
func PinProcess(pid int) (Pinned, error) {
	p, err := proc.Pin(pid)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Leader is the leader a session was judged by, pinned: until Release its
// PID is its own, so Kill reaches the process judged or none.
type Leader struct{ p Pinned }

// Kill sends SIGKILL to the leader. It fails with an error matching
// syscall.ESRCH once the leader has exited.
func (l *Leader) Kill() error {
	if l == nil {
		return errNoLeader
	}
	return l.p.Kill()
}

// InScope reports whether the leader runs in session s's scope, as it does
// once logind's job has moved it there and answered its CreateSession; a
// leader that cannot be read counts as in it. Only a leader in its scope
// holds logind's end of the session and can have forked the user's
// processes.
func (l *Leader) InScope(s logind.Session) bool {
	if l == nil {
		return false
	}
	cgroup, err := l.p.Cgroup()
	return err != nil || cgroup == scopeCgroup(s)
}

// Release unpins the leader; a nil Leader is released already.
func (l *Leader) Release() {
	if l != nil {
		l.p.Close()
	}
}

var errNoLeader = errors.New("no leader was judged")

// proveLeader tells whether pinned process p is session s's; if it is not,
// also the verdict on s and why. The proofs, strongest first:
//
//  1. logind's LeaderPIDFDId (systemd after 257) is the pidfs inode of the
//     leader (Linux 6.9 and later), unique for the life of the system.
//     When both sides have one, it alone decides.
//  2. p runs in the session's scope: it is one of the session's processes,
//     the leader or a child that took its PID, judged as the session all the
//     same. A young session's leader is not there yet: logind moves it in
//     with a job that the leader's CreateSession call waits for.
//  3. p started no later than the session was created (see startOrder):
//     logind creates a session while its leader is alive, in the leader's
//     CreateSession call, so a process that took the PID of an exited leader
//     started after the session was created. This proves the leader of a
//     young session.
//
// A proof that cannot be made (a property logind lacks, a file that cannot
// be read) proves nothing: it never passes for a match. p's data is read
// here; the caller checks afterwards that p still holds its PID.
func (j *Judge) proveLeader(s logind.Session, p Pinned) (proven bool, v Verdict, reason string) {
	pid := p.PID()
	exited := fmt.Sprintf("leader %d exited before it was looked at", pid)
	if s.LeaderPIDFDID != 0 {
		id, ok, err := p.FDID()
		switch {
		case err != nil:
			return false, Unknown, fmt.Sprintf("proving process %d the leader of session %s: %v", pid, s.ID, err)
		case ok && id == s.LeaderPIDFDID:
			return true, 0, ""
		case ok:
			return false, Gone, fmt.Sprintf("leader exited: process %d, which holds its PID now, has pidfd inode %d, not the leader's %d", pid, id, s.LeaderPIDFDID)
		}
	}
	var doubts []string
	cgroup, err := p.Cgroup()
	switch {
	case proc.IsGone(err):
		return false, Gone, exited
	case err != nil:
		doubts = append(doubts, err.Error())
	case s.Scope != "" && cgroup == scopeCgroup(s):
		return true, 0, ""
	default:
		doubts = append(doubts, fmt.Sprintf("it runs in %s, not in the session's scope %q", cgroup, s.Scope))
	}
	if s.TimestampMonotonic == 0 {
		doubts = append(doubts, "logind does not say when the session was created")
	} else {
		created := time.Duration(s.TimestampMonotonic) * time.Microsecond
		start, err := p.StartTime()
		switch {
		case proc.IsGone(err):
			return false, Gone, exited
		case err != nil:
			doubts = append(doubts, err.Error())
		default:
			switch j.startOrder(start, created) {
			case startedBefore:
				return true, 0, ""
			case startedAfter:
				return false, Gone, fmt.Sprintf("leader exited: process %d, which holds its PID now, started %v after boot, after the session was created at %v", pid, start, created)
			}
			doubts = append(doubts, fmt.Sprintf("it started %v after boot, and the system's sleep leaves open whether that was before the session was created at %v (monotonic)", start, created))
		}
	}
	return false, Unknown, fmt.Sprintf("cannot prove process %d the leader of session %s: %s", pid, s.ID, strings.Join(doubts, "; "))
}

// scopeCgroup is the cgroup of session s's scope: logind puts a user's
// sessions in user-UID.slice, and systemd nests slices by the dashes in
// their names.
func scopeCgroup(s logind.Session) string {
	return fmt.Sprintf("/user.slice/user-%d.slice/%s", s.UID, s.Scope)
}

// order places a process's start against a session's creation.
type order uint8

const (
	startedUnsure order = iota
	startedBefore
	startedAfter
)

// SleepBounds bound how long the system had slept by monotonic instants:
// a *proc.SleepLog, or a fake in tests.
type SleepBounds interface {
	// SleptBy is a lower bound on the sleep by monotonic instant mono.
	SleptBy(mono time.Duration) time.Duration
	// SleptSoFar is an upper bound on the sleep by now, and so by any
	// instant past.
	SleptSoFar() time.Duration
}

// startOrder places a process that started at start (time since boot on
// CLOCK_BOOTTIME, truncated down to a proc.Tick: /proc/PID/stat) against
// a session created at created (time since boot on CLOCK_MONOTONIC:
// logind's TimestampMonotonic).
//
// Boot time is monotonic time plus the time slept by then, which only
// grows; so on the boot clock the creation lies between created +
// SleptBy(created) and created + SleptSoFar(), and
//
//   - start <= created + SleptBy(created): the process started no later
//     than the session was created, or within the tick the creation fell in,
//     which start's truncation hides. That tick is no opening: a process on
//     an exited leader's PID started after the leader exited, so after the
//     creation, and the kernel hands a PID out again only after cycling
//     through pid_max others (4194304 under systemd), far more than a tick
//     allows; only root can pick a PID (ns_last_pid, clone3's set_tid).
//   - start > created + SleptSoFar(): it started after the creation.
//   - in between, the sleep leaves it open: the system slept before the
//     process started, and no record of that sleep precedes the creation.
//
// Without sleep bounds, SleptBy is taken as 0, which is sound (boot time is
// never behind monotonic time) but proves nothing of a process started after
// the system first slept, and nothing is ever after.
func (j *Judge) startOrder(start, created time.Duration) order {
	if j.Sleep == nil {
		if start <= created {
			return startedBefore
		}
		return startedUnsure
	}
	switch {
	case start <= created+j.Sleep.SleptBy(created):
		return startedBefore
	case start > created+j.Sleep.SleptSoFar():
		return startedAfter
	}
	return startedUnsure
}
