package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/netns/netnstest"
	"github.com/netns-session/netns-session/internal/proc"
)

// TestSessionByAProcessOfItsScope judges sessions whose leader is gone by
// the processes left in their scope.
func TestSessionByAProcessOfItsScope(t *testing.T) {
	const (
		aliceUID = 1005 // of users
		scope    = "session-7.scope"
		inScope  = "/user.slice/user-1005.slice/" + scope
	)
	created := 3 * time.Hour // monotonic; after the recorded sleep
	// A process of alice's scope, started after the session.
	alice := func(start time.Duration, netns netns.ID) scopeFake {
		return scopeFake{fakeProcess{cgroup: inScope, uids: only(aliceUID), start: created + fakeSlept + start}, netns}
	}
	tests := []struct {
		name string
		// leader is the process on the leader's PID; none: it exited.
		leader    *scopeFake
		procs     map[int]scopeFake
		scope     []int // what the scope lists
		scopeErr  error
		want      Verdict
		judged    int    // the PID judged, 0 for none
		reason    string // a part of the reason
		listScope bool   // whether the scope is to be listed
		session   func(*logind.Session)
	}{
		{name: "leftover process on the host violates", want: Violation, judged: 601, listScope: true,
			reason: "leader 100 exited before it was looked at; judged by process 601 of its scope session-7.scope: process 601 runs in netns",
			procs:  map[int]scopeFake{601: alice(time.Minute, netnstest.Host)}, scope: []int{601}},
		{name: "leftover process in its namespace is compliant", want: Compliant, judged: 601, listScope: true,
			procs: map[int]scopeFake{601: alice(time.Minute, netnstest.NS0)}, scope: []int{601}},
		{name: "empty scope is gone", want: Gone, listScope: true, reason: "no process of alice is left in its scope session-7.scope"},
		{name: "scope that is gone is gone", want: Gone, listScope: true, reason: "its scope session-7.scope is gone",
			scopeErr: fmt.Errorf("listing the processes of cgroup %s: %w", inScope, fs.ErrNotExist)},
		{name: "scope that cannot be listed is unknown", want: Unknown, listScope: true, reason: "permission denied",
			scopeErr: fmt.Errorf("listing the processes of cgroup %s: %w", inScope, syscall.EACCES)},
		{name: "listed PID that another process holds now, outside the scope, is not judged", want: Gone, listScope: true,
			procs: map[int]scopeFake{602: {fakeProcess{cgroup: "/system.slice/cron.service", start: 10 * time.Hour}, netnstest.Host}}, scope: []int{602}},
		{name: "process moved out of the scope is not judged; one still in it is", want: Compliant, judged: 601, listScope: true,
			procs: map[int]scopeFake{
				602: {fakeProcess{cgroup: "/user.slice/user-1005.slice/session-9.scope", uids: only(aliceUID)}, netnstest.Host},
				601: alice(time.Minute, netnstest.NS0),
			}, scope: []int{602, 601}},
		{name: "another user's process in the scope (su, sudo) is not judged", want: Gone, listScope: true,
			procs: map[int]scopeFake{603: {fakeProcess{cgroup: inScope, uids: only(0)}, netnstest.Host}}, scope: []int{603}},
		{name: "su waiting for its command, with the user's real UID and root's effective one, is not judged", want: Gone, listScope: true,
			procs: map[int]scopeFake{609: {fakeProcess{cgroup: inScope, uids: proc.UIDs{Real: aliceUID}, start: created + fakeSlept}, netnstest.Host}}, scope: []int{609}},
		{name: "a process of the user's that runs for another too is passed over for the next", want: Compliant, judged: 611, listScope: true,
			procs: map[int]scopeFake{
				610: {fakeProcess{cgroup: inScope, uids: proc.UIDs{Real: aliceUID, Effective: aliceUID, Saved: 0, FS: aliceUID}, start: created + fakeSlept}, netnstest.Host},
				611: alice(time.Minute, netnstest.NS0),
			}, scope: []int{610, 611}},
		{name: "a process in a sandbox of the user's is passed over: gone when no other is left", want: Gone, listScope: true,
			reason: "but 1 in network namespaces of the user's own user namespaces",
			procs:  map[int]scopeFake{612: sandbox(alice(time.Minute, netnstest.Sandbox))}, scope: []int{612}},
		{name: "the oldest process, in a sandbox of the user's, is passed over for the next", want: Compliant, judged: 614, listScope: true,
			procs: map[int]scopeFake{613: sandbox(alice(time.Minute, netnstest.Sandbox)), 614: alice(time.Hour, netnstest.NS0)}, scope: []int{613, 614}},
		{name: "a process whose namespace's owner cannot be read is unknown", want: Unknown, listScope: true, reason: "no process of its scope session-7.scope could be judged",
			procs: map[int]scopeFake{615: func() scopeFake {
				p := alice(time.Minute, netnstest.Host)
				p.sandboxErr = fmt.Errorf("finding the owner of the network namespace of process 615: %w", syscall.EACCES)
				return p
			}()}, scope: []int{615}},
		{name: "a scope cut to its first processes, none of which stands for the session, is unknown", want: Unknown, listScope: true,
			reason: "its scope session-7.scope was cut to its first 4096 processes of 4097, and none of those stands for it",
			procs:  map[int]scopeFake{601: alice(time.Minute, netnstest.Host)}, scope: append(exitedPIDs(maxScopeProcesses), 601)},
		{name: "the oldest process stands for the session", want: Compliant, judged: 605, listScope: true,
			procs: map[int]scopeFake{604: alice(time.Hour, netnstest.Host), 605: alice(time.Minute, netnstest.NS0)}, scope: []int{604, 605}},
		{name: "process that exits while it is judged is not judged; the next is", want: Violation, judged: 607, listScope: true,
			procs: map[int]scopeFake{
				606: {fakeProcess{cgroup: inScope, uids: only(aliceUID), start: created, exited: true}, netnstest.NS0},
				607: alice(time.Hour, netnstest.NS1),
			}, scope: []int{607, 606}},
		{name: "process whose cgroup cannot be read is unknown", want: Unknown, listScope: true, reason: "no process of its scope session-7.scope could be judged",
			procs: map[int]scopeFake{608: {fakeProcess{cgroupErr: fmt.Errorf("reading the cgroup of process 608: %w", syscall.EACCES)}, netnstest.Host}}, scope: []int{608}},
		{name: "leader's PID held by a process started after the session", want: Violation, judged: 601, listScope: true,
			reason: "after the session was created at 3h0m0s; judged by process 601",
			leader: &scopeFake{fakeProcess{cgroup: "/user.slice/user-0.slice/session-2.scope", start: 10 * time.Hour}, netnstest.Host},
			procs:  map[int]scopeFake{601: alice(time.Minute, netnstest.Host)}, scope: []int{601}},
		{name: "a leader that cannot be proven or disproven leaves the scope alone", want: Unknown, listScope: false,
			session: func(s *logind.Session) { s.TimestampMonotonic = 0 },
			leader:  &scopeFake{fakeProcess{cgroupErr: fmt.Errorf("reading the cgroup of process 100: %w", syscall.EACCES)}, netnstest.Host},
			procs:   map[int]scopeFake{601: alice(time.Minute, netnstest.Host)}, scope: []int{601}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := fakeJudge(t, "alice ns0\n")
			procs := map[int]scopeFake{}
			for pid, p := range tt.procs {
				procs[pid] = p
			}
			if tt.leader != nil {
				procs[pidInHost] = *tt.leader
			}
			var pinned []*fakeProcess
			j.Pin = func(pid int) (Pinned, error) {
				p, ok := procs[pid]
				if !ok {
					return nil, fmt.Errorf("opening a pidfd of process %d: %w", pid, syscall.ESRCH)
				}
				pp := p.fakeProcess
				pp.pid = pid
				pinned = append(pinned, &pp)
				return &pp, nil
			}
			j.ProcessNetns = func(pid int) (netns.ID, error) {
				if p, ok := procs[pid]; ok {
					return p.netns, nil
				}
				return netns.ID{}, fmt.Errorf("stating /proc/%d/ns/net: %w", pid, fs.ErrNotExist)
			}
			listed := false
			j.CgroupProcs = func(cgroup string) ([]int, error) {
				listed = true
				if cgroup != inScope {
					t.Errorf("listed cgroup %s, want the session's scope %s", cgroup, inScope)
				}
				return tt.scope, tt.scopeErr
			}
			f, leader := j.Session(sessionOfAlice(logind.StateClosing, created, tt.session))
			if f.Verdict != tt.want || !strings.Contains(f.Reason, tt.reason) {
				t.Errorf("verdict %v (%s), want %v with %q", f.Verdict, f.Reason, tt.want, tt.reason)
			}
			if f.PID != tt.judged || f.FromScope != (tt.judged != 0) {
				t.Errorf("judged process %d (from the scope: %t), want %d", f.PID, f.FromScope, tt.judged)
			}
			if listed != tt.listScope {
				t.Errorf("scope listed: %t, want %t", listed, tt.listScope)
			}
			// A session judged by its scope is ended through logind only:
			// no process is handed back to be signalled, none is killed,
			// and every one pinned is released.
			if leader != nil {
				t.Errorf("a process handed back: %d", leader.p.PID())
				leader.Release()
			}
			if err := leader.Kill(); !errors.Is(err, errNoLeader) {
				t.Errorf("killing what was handed back: %v, want errNoLeader", err)
			}
			for _, p := range pinned {
				if p.killed || !p.closed {
					t.Errorf("process %d: killed %t, released %t; want it released, not killed", p.pid, p.killed, p.closed)
				}
			}
		})
	}
}

// exitedPIDs are n PIDs of processes that exited after their scope was
// listed.
func exitedPIDs(n int) []int {
	pids := make([]int, n)
	for i := range pids {
		pids[i] = 10000 + i
	}
	return pids
}

// sandbox puts p in a network namespace of a user namespace of its own.
func sandbox(p scopeFake) scopeFake {
	p.sandboxed = true
	return p
}

// only are the IDs of a process that runs for uid alone.
func only(uid uint32) proc.UIDs { return proc.UIDs{Real: uid, Effective: uid, Saved: uid, FS: uid} }

// scopeFake is a process of the fake system and its namespace.
type scopeFake struct {
	fakeProcess
	netns netns.ID
}
