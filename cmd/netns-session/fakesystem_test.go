package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/config/configtest"
	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/netns/netnstest"
	"github.com/netns-session/netns-session/internal/policy"
	"github.com/netns-session/netns-session/internal/proc"
	"github.com/netns-session/netns-session/internal/units"
)

// The fake system status judges: the part of internal/watch's fake system
// (watch_test.go) that status reads.

// fakeSystem is logind, the processes and the user managers status sees.
type fakeSystem struct {
	mu       sync.Mutex
	sessions []logind.Session
	users    []logind.User
	netns    map[int]netns.ID // by PID; missing: exited
	// started is when a process started, since boot; missing: at boot.
	// Sessions are created at sessionCreated.
	started map[int]time.Duration
	// cgroups and uids are where a process runs and for whom, by PID;
	// missing: outside any session, as root.
	cgroups  map[int]string
	uids     map[int]uint32
	managers map[uint32]int // manager PID by UID; missing: not running
}

func newFakeSystem() *fakeSystem {
	return &fakeSystem{netns: map[int]netns.ID{}, started: map[int]time.Duration{}, cgroups: map[int]string{}, uids: map[int]uint32{},
		managers: map[uint32]int{}}
}

// sessionCreated is when the fake logind created every session, on the
// monotonic clock of a system that never slept.
const sessionCreated = time.Hour

// fakeSession is a session of the fake logind, created at sessionCreated.
func fakeSession(id, user string, uid uint32, leader int, class string) logind.Session {
	return logind.Session{ID: id, Path: dbus.ObjectPath("/org/freedesktop/login1/session/" + id), User: user, UID: uid,
		Leader: uint32(leader), Class: class, State: "active", Scope: "session-" + id + ".scope",
		TimestampMonotonic: uint64(sessionCreated / time.Microsecond), Service: "sshd", TTY: "pts/0"}
}

// addSession adds a session whose leader runs in namespace ns.
func (s *fakeSystem) addSession(id, user string, uid uint32, leader int, class string, ns netns.ID) logind.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := fakeSession(id, user, uid, leader, class)
	s.sessions = append(s.sessions, ls)
	if ns != (netns.ID{}) {
		s.netns[leader] = ns
	}
	return ls
}

func (s *fakeSystem) processNetns(pid int) (netns.ID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.netns[pid]; ok {
		return id, nil
	}
	return netns.ID{}, fmt.Errorf("stating /proc/%d/ns/net: %w", pid, syscall.ENOENT)
}

// pin pins a live process.
func (s *fakeSystem) pin(pid int) (policy.Pinned, error) {
	if _, err := s.processNetns(pid); err != nil {
		return nil, err
	}
	return fakeProcess{s, pid}, nil
}

// cgroupProcs lists the live processes of cgroup.
func (s *fakeSystem) cgroupProcs(cgroup string) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pids []int
	for pid, in := range s.cgroups {
		if _, alive := s.netns[pid]; alive && in == cgroup {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// fakeProcess is a pinned process of a fakeSystem. Unless cgroups says
// otherwise, it runs outside any session's scope, so a leader is proven by
// its start time alone.
type fakeProcess struct {
	sys *fakeSystem
	pid int
}

func (p fakeProcess) PID() int                      { return p.pid }
func (p fakeProcess) FDID() (uint64, bool, error)   { return 0, false, nil }
func (p fakeProcess) Close() error                  { return nil }
func (p fakeProcess) SandboxedNetns() (bool, error) { return false, nil }

// Kill is never called: status only looks.
func (p fakeProcess) Kill() error { return fmt.Errorf("status killed process %d", p.pid) }

func (p fakeProcess) Cgroup() (string, error) {
	p.sys.mu.Lock()
	defer p.sys.mu.Unlock()
	if cgroup, ok := p.sys.cgroups[p.pid]; ok {
		return cgroup, nil
	}
	return "/system.slice/ssh.service", nil
}

func (p fakeProcess) UIDs() (proc.UIDs, error) {
	p.sys.mu.Lock()
	defer p.sys.mu.Unlock()
	uid := p.sys.uids[p.pid]
	return proc.UIDs{Real: uid, Effective: uid, Saved: uid, FS: uid}, nil
}

func (p fakeProcess) StartTime() (time.Duration, error) {
	p.sys.mu.Lock()
	defer p.sys.mu.Unlock()
	return p.sys.started[p.pid], nil
}

func (p fakeProcess) Alive() error {
	_, err := p.sys.processNetns(p.pid)
	return err
}

// noSleep is a system that never slept.
type noSleep struct{}

func (noSleep) SleptBy(time.Duration) time.Duration { return 0 }
func (noSleep) SleptSoFar() time.Duration           { return 0 }

// fakeJudge judges processes of sys.
func fakeJudge(sys *fakeSystem, cfg *config.Config) *policy.Judge {
	return &policy.Judge{Config: cfg, Users: configtest.Users(), ProcessNetns: sys.processNetns, NetnsFile: netnstest.File, Pin: sys.pin,
		CgroupProcs: sys.cgroupProcs, Sleep: noSleep{}}
}

func (s *fakeSystem) managerPID(uid uint32) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pid, ok := s.managers[uid]; ok {
		return pid, nil
	}
	return 0, fmt.Errorf("finding user manager of uid %d: %w", uid, units.ErrNotRunning)
}

// fakeConn is one connection to the fake logind.
type fakeConn struct{ sys *fakeSystem }

func (c fakeConn) ListSessionsContext(context.Context) ([]logind.Session, error) {
	c.sys.mu.Lock()
	defer c.sys.mu.Unlock()
	return slices.Clone(c.sys.sessions), nil
}

func (c fakeConn) ListUsersContext(context.Context) ([]logind.User, error) {
	c.sys.mu.Lock()
	defer c.sys.mu.Unlock()
	return slices.Clone(c.sys.users), nil
}

const aliceInNs0 = "alice ns0\n"
