package policy

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/proc"
)

// maxScopeProcesses bounds the processes of a scope that byScope looks at,
// and so its time, in a scope that a fork bomb fills.
const maxScopeProcesses = 4096

// scopeProcess is a process of a session's scope, and when it started.
type scopeProcess struct {
	pid   int
	start time.Duration
}

// byScope judges session s, whose leader is gone (leaderGone says how), by
// a process of its scope: the oldest one there that runs for the session's
// user alone, outside a sandbox of the user's (see ofScope). Every process of
// a session inherits the leader's namespace; the oldest is the likeliest to
// have kept it (a younger one may have made a namespace of its own), and
// processes of other users came into the scope through su or sudo, which the
// PAM hook places for their target user.
//
// A PID the scope lists may belong to another process by the time it is
// pinned, and a process may move to another cgroup. So each process is
// pinned, its cgroup, user and namespace's owner read and checked, then its
// namespace, and it is judged only if it is still alive afterwards: what was
// read was the pinned process's, and the process was in the scope after it
// was pinned. The verdict is Gone when no such process is left in the scope,
// Unknown when none could be judged and one could not be read, or was not
// read: the scope held more than maxScopeProcesses.
func (j *Judge) byScope(s logind.Session, decision config.Decision, f Finding, leaderGone string) Finding {
	cgroup := scopeCgroup(s)
	pids, err := j.CgroupProcs(cgroup)
	switch {
	case proc.IsGone(err):
		f.Verdict, f.Reason = Gone, fmt.Sprintf("%s, and its scope %s is gone", leaderGone, s.Scope)
		return f
	case err != nil:
		f.Verdict, f.Reason = Unknown, fmt.Sprintf("%s; %v", leaderGone, err)
		return f
	}
	candidates, sandboxed, doubts := j.scopeProcesses(s, cgroup, pids)
	for _, c := range candidates {
		g, judged, err := j.judgeScopeProcess(s, decision, f, cgroup, c.pid)
		switch {
		case err != nil:
			doubts = append(doubts, err)
		case judged:
			g.PID, g.FromScope = c.pid, true
			g.Reason = fmt.Sprintf("%s; judged by process %d of its scope %s: %s", leaderGone, c.pid, s.Scope, g.Reason)
			return g
		}
	}
	if len(doubts) > 0 {
		f.Verdict, f.Reason = Unknown, fmt.Sprintf("%s; no process of its scope %s could be judged: %v", leaderGone, s.Scope, doubts[0])
		if len(doubts) > 1 {
			f.Reason += fmt.Sprintf(" (and %d more)", len(doubts)-1)
		}
		return f
	}
	if len(pids) > maxScopeProcesses {
		f.Verdict, f.Reason = Unknown, fmt.Sprintf("%s; its scope %s was cut to its first %d processes of %d, and none of those stands for it",
			leaderGone, s.Scope, maxScopeProcesses, len(pids))
		return f
	}
	f.Verdict, f.Reason = Gone, fmt.Sprintf("%s, and no process of %s is left in its scope %s", leaderGone, s.User, s.Scope)
	if sandboxed > 0 {
		f.Reason += fmt.Sprintf(" but %d in network namespaces of the user's own user namespaces, which cannot reach the host's", sandboxed)
	}
	return f
}

// scopeProcesses returns the processes of pids that stand for session s
// (see ofScope), oldest first; how many were passed over in a sandbox of the
// user's; and what could not be read.
func (j *Judge) scopeProcesses(s logind.Session, cgroup string, pids []int) (found []scopeProcess, sandboxed int, doubts []error) {
	for _, pid := range pids[:min(len(pids), maxScopeProcesses)] {
		p, err := j.Pin(pid)
		if err != nil {
			if !proc.IsGone(err) {
				doubts = append(doubts, fmt.Errorf("pinning process %d: %w", pid, err))
			}
			continue
		}
		m, err := ofScope(p, s, cgroup)
		var start time.Duration
		if err == nil && m == standsForSession {
			start, err = p.StartTime()
		}
		p.Close()
		switch {
		case proc.IsGone(err):
		case err != nil:
			doubts = append(doubts, err)
		case m == inSandbox:
			sandboxed++
		case m == standsForSession:
			found = append(found, scopeProcess{pid: pid, start: start})
		}
	}
	slices.SortFunc(found, func(a, b scopeProcess) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.pid, b.pid)) })
	return found, sandboxed, doubts
}

// judgeScopeProcess pins pid, proves it a process of s's user in scope
// cgroup, and judges it; judged is false when it is not (any more) such a
// process, or exited before it was judged.
func (j *Judge) judgeScopeProcess(s logind.Session, decision config.Decision, f Finding, cgroup string, pid int) (_ Finding, judged bool, _ error) {
	p, err := j.Pin(pid)
	switch {
	case proc.IsGone(err):
		return f, false, nil
	case err != nil:
		return f, false, fmt.Errorf("pinning process %d: %w", pid, err)
	}
	defer p.Close()
	m, err := ofScope(p, s, cgroup)
	switch {
	case proc.IsGone(err) || err == nil && m != standsForSession:
		return f, false, nil
	case err != nil:
		return f, false, err
	}
	f = j.process(decision, f, s.User, pid)
	if err := p.Alive(); err != nil {
		if proc.IsGone(err) {
			return f, false, nil
		}
		return f, false, err
	}
	return f, f.Verdict != Gone, nil
}

// membership is what a process of a scope is to its session.
type membership uint8

const (
	// notOfSession: it runs in another cgroup, or not for the session's
	// user alone.
	notOfSession membership = iota
	// inSandbox: a process of the user's in a network namespace that a user
	// namespace of the user's owns (proc.Process.SandboxedNetns). It made
	// that namespace itself and cannot leave it for the host's, so it tells
	// nothing of where the session was placed.
	inSandbox
	// standsForSession: a process of the user's that may be judged as the
	// session.
	standsForSession
)

// ofScope tells what pinned process p is to session s, whose scope is
// cgroup. It stands for the session only if it runs there for s's user
// and no one else: su and sudo wait for the command they ran with their
// caller's real UID and root's effective one, and the PAM hook placed them
// for the target user; so its real, effective, saved and filesystem UIDs
// must all be the user's.
func ofScope(p Pinned, s logind.Session, cgroup string) (membership, error) {
	in, err := p.Cgroup()
	if err != nil || in != cgroup {
		return notOfSession, err
	}
	uids, err := p.UIDs()
	if err != nil || !uids.Only(s.UID) {
		return notOfSession, err
	}
	sandboxed, err := p.SandboxedNetns()
	switch {
	case err != nil:
		return notOfSession, err
	case sandboxed:
		return inSandbox, nil
	}
	return standsForSession, nil
}
