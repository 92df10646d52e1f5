package policy

import (
	"errors"
	"fmt"
	"time"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/units"
)

// ManagerSettle is how long a user manager may be found outside its
// namespace before that counts: systemd's child shows in the manager's
// cgroup before it enters the namespace of NetworkNamespacePath= and execs
// the manager. The PAM hook waits that long for a manager that a concurrent
// login starts before it refuses the session, the watcher before it reports
// the manager.
const ManagerSettle = time.Second

// The rule "is this user's manager running in its namespace", which the PAM
// hook, the watcher and status all decide by: FindManager finds the
// manager, where none running is no error; Judge.Process (or
// Judge.ProcessIn, for a caller that resolved the user already) judges it;
// and a manager found outside only counts once Settled.

// FindManager returns the PID of the running manager of uid, which pidOf
// finds (units.Manager.UserManagerPID): 0, and no error, when none runs.
// Only units.ErrNotRunning says none runs: a PID of 0 without it (the
// cgroup lists a process of another PID namespace) is an error, never "no
// manager", so that no caller lets a session by a manager it cannot see.
func FindManager(pidOf func(uid uint32) (int, error), uid uint32) (int, error) {
	pid, err := pidOf(uid)
	switch {
	case errors.Is(err, units.ErrNotRunning):
		return 0, nil
	case err == nil && pid <= 0:
		return 0, fmt.Errorf("finding the user manager of uid %d: its cgroup lists PID %d (a process of another PID namespace?)", uid, pid)
	}
	return pid, err
}

// Settled reports whether a manager found outside its namespace since
// since, and still outside now, is there to stay: ManagerSettle has passed.
func Settled(since, now time.Time) bool {
	return now.Sub(since) >= ManagerSettle
}

// ProcessIn judges process pid of user, who belongs where decision says,
// as Process does but without resolving the user: for the PAM hook, which
// has just resolved the user and placed the session.
func (j *Judge) ProcessIn(decision config.Decision, user string, pid int) Finding {
	f := Finding{Expected: decision.Target()}
	if pid <= 0 {
		f.Verdict, f.Reason = Gone, "no process to look at"
		return f
	}
	return j.process(decision, f, user, pid)
}
