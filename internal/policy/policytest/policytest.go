// Package policytest owns the fake system that a policy.Judge looks at,
// which the tests of the watcher and of status share: logind's sessions and
// users, the processes (their network namespace, start time, cgroup, UIDs
// and the resolv.conf they see), the user managers, and a Judge over them
// all. A pinned process can
// be killed, as the watcher does to a misplaced session's leader; what a
// watcher's logind connection does besides reading (terminating sessions,
// killing scopes, subscriptions) is the watcher's tests' own.
package policytest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/netns/netnstest"
	"github.com/netns-session/netns-session/internal/policy"
	"github.com/netns-session/netns-session/internal/proc"
	"github.com/netns-session/netns-session/internal/units"
)

// SessionCreated is when the fake logind created every session, on the
// monotonic clock of a system that never slept.
const SessionCreated = time.Hour

// System is logind, the processes and the user managers, as one Judge, or
// every connection of a watcher, sees them. Lock it to change it while a
// judge may be looking.
type System struct {
	sync.Mutex
	Sessions []logind.Session
	Users    []logind.User
	Netns    map[int]netns.ID // by PID; missing: exited
	// Started is when a process started, since boot; missing: at boot.
	// Sessions are created at SessionCreated.
	Started map[int]time.Duration
	// Cgroups and UIDs are where a process runs and for whom, by PID;
	// missing: outside any session, as root.
	Cgroups  map[int]string
	UIDs     map[int]uint32
	Managers map[uint32]int // manager PID by UID; missing: not running
	// ManagerStarts counts down the looks at a manager before it runs.
	ManagerStarts map[uint32]int
	// OnManagerLook runs, locked, at every look at a manager.
	OnManagerLook func(uid uint32)
	// ResolvConfs is the file each process sees at /etc/resolv.conf, by
	// PID; missing: none, unless ResolvConfErrs says why it cannot be
	// read.
	ResolvConfs    map[int]proc.FileID
	ResolvConfErrs map[int]error
	// Files are the files the judge sees, by path (HostResolvConf at
	// /etc/resolv.conf, NS0ResolvConf at /etc/netns/ns0/resolv.conf when
	// ns0 has one); missing: none.
	Files map[string]proc.FileID
	// KillErr is a pinned process's answer to SIGKILL.
	KillErr error
	// Trace lists what happened, in order: "kill PID" for each process
	// killed, and whatever a test records besides.
	Trace []string
}

// NewSystem returns a System with no sessions, processes or managers.
func NewSystem() *System {
	return &System{Netns: map[int]netns.ID{}, Started: map[int]time.Duration{}, Cgroups: map[int]string{}, UIDs: map[int]uint32{},
		Managers: map[uint32]int{}, ManagerStarts: map[uint32]int{}, ResolvConfs: map[int]proc.FileID{}, ResolvConfErrs: map[int]error{},
		Files: map[string]proc.FileID{}}
}

// Session is a session of the fake logind, created at SessionCreated.
func Session(id, user string, uid uint32, leader int, class string) logind.Session {
	return logind.Session{ID: id, Path: dbus.ObjectPath("/org/freedesktop/login1/session/" + id), User: user, UID: uid,
		Leader: uint32(leader), Class: class, State: "active", Scope: "session-" + id + ".scope",
		TimestampMonotonic: uint64(SessionCreated / time.Microsecond), Service: "sshd", TTY: "pts/0"}
}

// AddSession adds a session whose leader runs in namespace ns; none: the
// leader exited.
func (s *System) AddSession(id, user string, uid uint32, leader int, class string, ns netns.ID) logind.Session {
	s.Lock()
	defer s.Unlock()
	ls := Session(id, user, uid, leader, class)
	s.Sessions = append(s.Sessions, ls)
	if ns != (netns.ID{}) {
		s.Netns[leader] = ns
	}
	return ls
}

// Traced returns a copy of Trace.
func (s *System) Traced() []string {
	s.Lock()
	defer s.Unlock()
	return slices.Clone(s.Trace)
}

// Judge returns a judge of cfg that looks at s, and up users in users.
func (s *System) Judge(cfg *config.Config, users config.Directory) *policy.Judge {
	return &policy.Judge{Config: cfg, Users: users, ProcessNetns: s.ProcessNetns, NetnsFile: netnstest.File, Pin: s.Pin,
		CgroupProcs: s.CgroupProcs, Sleep: NoSleep{}, SeenFile: s.SeenFile, StatFile: s.StatFile}
}

// The resolv.conf files of the fake system, as stat gives them.
var (
	HostResolvConf = proc.FileID{Dev: 8, Ino: 1001}
	NS0ResolvConf  = proc.FileID{Dev: 8, Ino: 1002}
)

// GiveNS0ResolvConf gives ns0 a resolv.conf of its own next to the host's.
func (s *System) GiveNS0ResolvConf() {
	s.Lock()
	defer s.Unlock()
	s.Files["/etc/resolv.conf"] = HostResolvConf
	s.Files["/etc/netns/ns0/resolv.conf"] = NS0ResolvConf
}

// SeenFile returns the file a live process sees at /etc/resolv.conf, the
// one path the fake knows.
func (s *System) SeenFile(pid int, path string) (proc.FileID, error) {
	if _, err := s.ProcessNetns(pid); err != nil {
		return proc.FileID{}, err
	}
	s.Lock()
	defer s.Unlock()
	id, ok := s.ResolvConfs[pid]
	switch {
	case path != "/etc/resolv.conf":
		return proc.FileID{}, fmt.Errorf("looking up %s as process %d sees it: the fake knows /etc/resolv.conf only", path, pid)
	case s.ResolvConfErrs[pid] != nil:
		return proc.FileID{}, fmt.Errorf("looking up %s as process %d sees it: %w", path, pid, s.ResolvConfErrs[pid])
	case !ok:
		return proc.FileID{}, fmt.Errorf("looking up %s as process %d sees it: %w", path, pid, proc.ErrNoFile)
	}
	return id, nil
}

// StatFile returns a file of Files.
func (s *System) StatFile(path string) (proc.FileID, error) {
	s.Lock()
	defer s.Unlock()
	if id, ok := s.Files[path]; ok {
		return id, nil
	}
	return proc.FileID{}, fmt.Errorf("stating %s: %w", path, syscall.ENOENT)
}

// ListSessionsContext lists the sessions, as status reads them.
func (s *System) ListSessionsContext(context.Context) ([]logind.Session, error) {
	s.Lock()
	defer s.Unlock()
	return slices.Clone(s.Sessions), nil
}

// ListUsersContext lists the users logind knows.
func (s *System) ListUsersContext(context.Context) ([]logind.User, error) {
	s.Lock()
	defer s.Unlock()
	return slices.Clone(s.Users), nil
}

// ProcessNetns returns the namespace of a live process.
func (s *System) ProcessNetns(pid int) (netns.ID, error) {
	s.Lock()
	defer s.Unlock()
	if id, ok := s.Netns[pid]; ok {
		return id, nil
	}
	return netns.ID{}, fmt.Errorf("stating /proc/%d/ns/net: %w", pid, syscall.ENOENT)
}

// Pin pins a live process; killing it ends it.
func (s *System) Pin(pid int) (policy.Pinned, error) {
	if _, err := s.ProcessNetns(pid); err != nil {
		return nil, err
	}
	return Process{s, pid}, nil
}

// CgroupProcs lists the live processes of cgroup.
func (s *System) CgroupProcs(cgroup string) ([]int, error) {
	s.Lock()
	defer s.Unlock()
	var pids []int
	for pid, in := range s.Cgroups {
		if _, alive := s.Netns[pid]; alive && in == cgroup {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// ManagerPID returns the PID of the manager of uid, once ManagerStarts
// looks have passed.
func (s *System) ManagerPID(uid uint32) (int, error) {
	s.Lock()
	defer s.Unlock()
	if s.OnManagerLook != nil {
		s.OnManagerLook(uid)
	}
	if s.ManagerStarts[uid] > 0 {
		s.ManagerStarts[uid]--
		return 0, fmt.Errorf("finding user manager of uid %d: %w", uid, units.ErrNotRunning)
	}
	if pid, ok := s.Managers[uid]; ok {
		return pid, nil
	}
	return 0, fmt.Errorf("finding user manager of uid %d: %w", uid, units.ErrNotRunning)
}

// ScopeCgroup is the cgroup of the scope of session ls.
func ScopeCgroup(ls logind.Session) string {
	return "/user.slice/user-" + strconv.FormatUint(uint64(ls.UID), 10) + ".slice/" + ls.Scope
}

// Process is a pinned process of a System. Unless Cgroups says otherwise,
// it runs outside any session's scope, so a leader is proven by its start
// time alone.
type Process struct {
	sys *System
	pid int
}

func (p Process) PID() int                      { return p.pid }
func (p Process) FDID() (uint64, bool, error)   { return 0, false, nil }
func (p Process) Close() error                  { return nil }
func (p Process) SandboxedNetns() (bool, error) { return false, nil }

func (p Process) Cgroup() (string, error) {
	p.sys.Lock()
	defer p.sys.Unlock()
	if cgroup, ok := p.sys.Cgroups[p.pid]; ok {
		return cgroup, nil
	}
	return "/system.slice/ssh.service", nil
}

func (p Process) UIDs() (proc.UIDs, error) {
	p.sys.Lock()
	defer p.sys.Unlock()
	uid := p.sys.UIDs[p.pid]
	return proc.UIDs{Real: uid, Effective: uid, Saved: uid, FS: uid}, nil
}

func (p Process) StartTime() (time.Duration, error) {
	p.sys.Lock()
	defer p.sys.Unlock()
	return p.sys.Started[p.pid], nil
}

func (p Process) Alive() error {
	_, err := p.sys.ProcessNetns(p.pid)
	return err
}

// Kill ends the process, unless KillErr says otherwise, and records
// "kill PID".
func (p Process) Kill() error {
	p.sys.Lock()
	defer p.sys.Unlock()
	p.sys.Trace = append(p.sys.Trace, "kill "+strconv.Itoa(p.pid))
	if p.sys.KillErr != nil {
		return p.sys.KillErr
	}
	delete(p.sys.Netns, p.pid)
	// The death of a leader in its scope, which holds logind's end of the
	// session, closes the session, and logind ignores TerminateSession for
	// it: the worst case of a race the watcher cannot win.
	for i := range p.sys.Sessions {
		ls := &p.sys.Sessions[i]
		if ls.Leader == uint32(p.pid) && p.sys.Cgroups[p.pid] == ScopeCgroup(*ls) {
			ls.State = logind.StateClosing
		}
	}
	return nil
}

// NoSleep is a system that never slept.
type NoSleep struct{}

func (NoSleep) SleptBy(time.Duration) time.Duration { return 0 }
func (NoSleep) SleptSoFar() time.Duration           { return 0 }
