// Package policy owns the verdict on a running process: does it run in the
// network namespace the config wants for its user? The watcher acts on the
// verdicts and status reports them; both judge sessions (by their leader)
// and user managers here, so they never disagree.
//
// Where a user belongs is config.Decision.Target, the rule the PAM hook and
// sync follow too. Namespaces are compared by identity (device and inode of
// the nsfs file), never by name.
//
// It also owns the rule that a session's leader is judged only once proven
// the session's: logind keeps naming a leader that has exited, and its PID
// may belong to any process by then; and the rule that a session whose
// leader is gone is judged by a process proven of its scope; the rule by
// which the PAM hook, the watcher and status decide whether a user's
// manager runs in its namespace (FindManager, ManagerSettle); how a
// finding is shown (Finding.Fields, Finding.IDs); and, shown beside the
// verdict but no part of it, which resolv.conf the process sees when its
// namespace has one of its own (ResolvConfView).
package policy

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/proc"
)

// Verdict is the outcome of judging one process.
type Verdict uint8

// The verdicts. Only Violation breaks the policy.
const (
	// Compliant: the process runs in the namespace its user is mapped to.
	Compliant Verdict = iota
	// Violation: it runs elsewhere, or its user's namespace does not exist.
	Violation
	// Unconstrained: the policy leaves the user where they log in from
	// ("unmapped = keep"), so any namespace is right.
	Unconstrained
	// Exempt: a session class the policy does not cover (greeters, lock
	// screens, and the session of the user manager, which is judged as a
	// manager).
	Exempt
	// Gone: the process exited before it could be looked at; for a
	// session, also a leader whose PID another process holds now.
	Gone
	// Unknown: the verdict could not be reached: the user or the namespace
	// could not be looked up, or a session's leader could not be proven the
	// session's.
	Unknown
)

var verdictNames = [...]string{
	Compliant:     "ok",
	Violation:     "violation",
	Unconstrained: "unconstrained",
	Exempt:        "exempt",
	Gone:          "gone",
	Unknown:       "unknown",
}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// MarshalText writes the verdict as String does, for JSON.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Finding is a verdict and what it rests on.
type Finding struct {
	Verdict Verdict
	// Expected is the namespace file the policy wants; "" when it wants
	// none in particular.
	Expected string
	// ExpectedID is the identity of Expected, zero when unknown.
	ExpectedID netns.ID
	// Actual is the identity of the process's namespace, zero when unknown.
	Actual netns.ID
	// Reason says in words why.
	Reason string
	// Err is the error a Gone or Unknown verdict rests on, nil for none,
	// for a caller that reports the cause itself.
	Err error
	// PID is the process the verdict rests on, 0 for none: a session's
	// leader or, with FromScope, a process of the session's scope (see
	// Judge.Session).
	PID       int
	FromScope bool
	// ResolvConf is which resolv.conf the process sees, looked at when its
	// verdict is Compliant or Violation; ResolvConfErr says why it is
	// ResolvConfUnknown.
	ResolvConf    ResolvConfView
	ResolvConfErr error
}

// Judge judges processes against one config.
type Judge struct {
	Config *config.Config
	Users  config.Directory
	// ProcessNetns returns the namespace of a process: netns.ProcessNetnsID,
	// or a fake in tests.
	ProcessNetns func(pid int) (netns.ID, error)
	// NetnsFile checks that a file is a network namespace and returns its
	// identity: netns.CheckNetns, or a fake in tests.
	NetnsFile func(path string) (netns.ID, error)
	// Pin pins a session's leader, or a process of its scope: PinProcess,
	// or a fake in tests.
	Pin func(pid int) (Pinned, error)
	// CgroupProcs lists the processes of a cgroup, as Pinned.Cgroup names
	// it: proc.CgroupProcs, or a fake in tests.
	CgroupProcs func(cgroup string) ([]int, error)
	// Sleep bounds the system's sleep, to compare a leader's start with its
	// session's creation (see startOrder); nil proves less.
	Sleep SleepBounds
	// SeenFile returns the file a process sees at a path, in its own mount
	// namespace: proc.SeenFile, or a fake in tests. Nil looks at no
	// process's resolv.conf: the PAM hook's path stays as short as it was.
	SeenFile func(pid int, path string) (proc.FileID, error)
	// StatFile returns the file at a path as the judge sees it:
	// proc.StatFile, or a fake in tests. Needed with SeenFile.
	StatFile func(path string) (proc.FileID, error)
}

// NewJudge returns a Judge of cfg that looks at the running system, with
// sleep bounds of the caller's: the watcher records the sleep as it runs,
// a one-shot status has only what a new proc.SleepLog knows.
func NewJudge(cfg *config.Config, users config.Directory, sleep SleepBounds) *Judge {
	return &Judge{Config: cfg, Users: users, ProcessNetns: netns.ProcessNetnsID, NetnsFile: netns.CheckNetns, Pin: PinProcess,
		CgroupProcs: proc.CgroupProcs, Sleep: sleep, SeenFile: proc.SeenFile, StatFile: proc.StatFile}
}

// Pass returns a judge of j's config for one pass over many processes -
// one check of every session, one status - that looks each user name and
// UID up once, found or not (config.CachedLookups). Drop it after the pass: a user deleted
// meanwhile may have left its UID to another.
func (j *Judge) Pass() *Judge {
	pass := *j
	pass.Users = config.CachedLookups(j.Users)
	return &pass
}

// exemptClasses are the session classes not judged: greeters and lock
// screens run as system users before or between logins, and the manager
// classes are the sessions user@UID.service opens for itself (systemd 256
// and later), judged as user managers.
var exemptClasses = []string{logind.ClassGreeter, logind.ClassLockScreen, logind.ClassManager, logind.ClassManagerEarly}

// Session judges a session by its leader, the process that opened it, whose
// namespace every process of the session inherits. Every class but the
// exempt ones is judged, so classes systemd adds later are too.
//
// The leader is pinned and proven the session's (see proveLeader) before it
// is judged; one that cannot be is not judged as the session. When the
// leader is gone (it exited, and its PID may be another process's now), the
// session is judged by a process of its scope instead (see byScope): what
// a closing session leaves running (KillUserProcesses=no) must follow the
// policy too. The verdict is Unknown when nothing tells whether the process
// on the leader's PID is the leader.
//
// A session judged by its leader returns the leader pinned, so that acting
// on the verdict reaches the process judged; nil when the verdict rests on
// no leader, and always when it rests on a process of the scope: such a
// session is ended through logind only, never by a signal to a process.
// The caller releases it.
func (j *Judge) Session(s logind.Session) (Finding, *Leader) {
	for _, class := range exemptClasses {
		if s.Class == class {
			return Finding{Verdict: Exempt, Reason: fmt.Sprintf("sessions of class %s are not judged", class)}, nil
		}
	}
	decision, f, ok := j.resolve(s.UID)
	if !ok {
		return f, nil
	}
	byLeader, leader := j.byLeader(s, decision, f)
	if byLeader.Verdict != Gone || s.Scope == "" {
		return byLeader, leader
	}
	return j.byScope(s, decision, f, byLeader.Reason), nil
}

// byLeader judges session s, whose user belongs where decision says, by its
// leader, proven the session's.
func (j *Judge) byLeader(s logind.Session, decision config.Decision, f Finding) (Finding, *Leader) {
	pid := int(s.Leader)
	if pid <= 0 {
		f.Verdict, f.Reason = Gone, "no process to look at"
		return f, nil
	}
	p, err := j.Pin(pid)
	switch {
	case proc.IsGone(err):
		f.Verdict, f.Reason = Gone, fmt.Sprintf("leader %d exited before it was looked at", pid)
		return f, nil
	case err != nil:
		f.Verdict, f.Reason = Unknown, fmt.Sprintf("pinning leader %d: %v", pid, err)
		return f, nil
	}
	leader := &Leader{p: p}
	if proven, verdict, reason := j.proveLeader(s, p); !proven {
		leader.Release()
		f.Verdict, f.Reason = verdict, reason
		return f, nil
	}
	f = j.process(decision, f, s.User, pid)
	// What was read of /proc/PID above was read of the pinned process only
	// if its PID is still its own now.
	if err := p.Alive(); err != nil {
		leader.Release()
		f = Finding{Expected: f.Expected, Verdict: Unknown, Reason: fmt.Sprintf("leader %d: %v", pid, err)}
		if proc.IsGone(err) {
			f.Verdict, f.Reason = Gone, fmt.Sprintf("leader %d exited while it was looked at", pid)
		}
		return f, nil
	}
	if f.Verdict == Gone {
		leader.Release()
		return f, nil
	}
	f.PID = pid
	return f, leader
}

// Process judges process pid, which runs for the user with uid; user is its
// name, for the reasons given.
func (j *Judge) Process(uid uint32, user string, pid int) Finding {
	decision, f, ok := j.resolve(uid)
	if !ok {
		return f
	}
	return j.ProcessIn(decision, user, pid)
}

// resolve finds where the user with uid belongs: a Finding that expects it,
// or one whose verdict is Unknown and ok false. By UID, as logind reports
// the process's user: a name would cost a lookup more, and a name renamed
// or given to another UID since would judge the process by another user's
// line.
func (j *Judge) resolve(uid uint32) (decision config.Decision, f Finding, ok bool) {
	decision, err := j.Config.ResolveUID(uid, j.Users)
	if err != nil {
		return decision, Finding{Verdict: Unknown, Reason: err.Error(), Err: err}, false
	}
	return decision, Finding{Expected: decision.Target()}, true
}

// process judges process pid of user, who belongs where decision says.
func (j *Judge) process(decision config.Decision, f Finding, user string, pid int) Finding {
	var err error
	f.Actual, err = j.ProcessNetns(pid)
	switch {
	case proc.IsGone(err):
		f.Verdict, f.Reason, f.Err = Gone, fmt.Sprintf("process %d exited before it was looked at", pid), err
		return f
	case err != nil:
		f.Verdict, f.Reason, f.Err = Unknown, fmt.Sprintf("reading the namespace of process %d: %v", pid, err), err
		return f
	case f.Expected == "":
		f.Verdict, f.Reason = Unconstrained, decision.Reason
		return f
	}
	f.ExpectedID, err = j.NetnsFile(f.Expected)
	switch {
	case Unavailable(err):
		f.Verdict, f.Reason = Violation, fmt.Sprintf("%s wants %s, which is not available: %v", user, f.Expected, err)
	case err != nil:
		f.Verdict, f.Reason, f.Err = Unknown, fmt.Sprintf("checking %s: %v", f.Expected, err), err
	case f.Actual == f.ExpectedID:
		f.Verdict, f.Reason = Compliant, decision.Reason
	default:
		f.Verdict, f.Reason = Violation, fmt.Sprintf("process %d runs in netns %s, not in %s (%s): %s", pid, f.Actual, f.Expected, f.ExpectedID, decision.Reason)
	}
	if f.Verdict == Compliant || f.Verdict == Violation {
		f.ResolvConf, f.ResolvConfErr = j.ResolvConfSeen(decision.Netns.Name(), pid)
	}
	return f
}

// Unavailable tells a namespace file that is missing or not a network
// namespace, which no process can be in (an administrator's fix), from one
// that could not be checked or joined.
func Unavailable(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, netns.ErrNotNamespace) || errors.Is(err, netns.ErrNotNetNamespace)
}
