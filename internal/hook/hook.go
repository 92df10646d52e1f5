// Package hook owns the decision for one PAM session opening (netns-session
// pam): where the session goes under the config, placing the user manager
// with its drop-in, joining the process that opens the session (into the
// view of the namespace's /etc directory too, when it has one), and the
// fail-closed rules: a mapped user is denied whenever the namespace or its
// /etc view cannot be confirmed, the manager is kept off when the user's
// policy or its namespace's /etc directory cannot be known, root falls back
// to the host network rather than being locked out, and the budgets bound
// root's lookups and everything after the lookups.
// Reading the PAM line and environment, the exit status and what is
// printed stay with the caller.
package hook

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/nsjoin"
	"github.com/netns-session/netns-session/internal/policy"
	"github.com/netns-session/netns-session/internal/proc"
	"github.com/netns-session/netns-session/internal/units"
)

// placingBudget bounds what one session open does once its lookups are done:
// locks, the drop-in, a reload of a busy systemd (the slow part) and the
// join. Past it the login is denied rather than left hanging.
const placingBudget = 20 * time.Second

// Logger is what the hook uses of the event log: error records with
// structured fields (without their prefix; empty values are dropped),
// alerts (a policy that cannot be used denies every login but root's),
// debug lines, and Set, which attaches a field to every later record of
// the session (an empty value removes it).
type Logger interface {
	Error(msg string, fields map[string]string)
	Alert(msg string, fields map[string]string)
	Debugf(format string, args ...any)
	Set(key, value string)
}

// Joiner moves the process that opens the session into the network
// namespace at target and, when etc is not nil, into a mount namespace of
// its own that shows etc, the namespace's /etc directory; it needs ptrace
// and that process, so tests give the hook their own. A failure to build
// that mount namespace matches ErrEtcView.
type Joiner interface {
	Join(ctx context.Context, target string, etc *netns.Overlay) error
}

// Request is what pam_exec tells about the session being opened.
type Request struct {
	Type    string // PAM_TYPE: open_session, close_session, ...
	User    string // PAM_USER
	Service string // PAM_SERVICE: sshd, su, sudo, cron, systemd-user, ...
	TTY     string // PAM_TTY
	RHost   string // PAM_RHOST
	// Unsafe names the variables the PAM environment sets that must not
	// reach the hook (the loader's, libc's, NSS's, the Go runtime's), each
	// once, in the order they come. Any denies every user but root.
	Unsafe []string
}

// Config is everything a hook needs of the outside world. Log, Joiner,
// Units and Users are required; New fills in the budgets.
type Config struct {
	Log Logger
	// Joiner moves the process that opens the session into a namespace.
	Joiner Joiner
	Units  *units.Manager
	Users  config.Directory
	// EtcView returns the /etc directory of the namespace called name,
	// planned and with its shadow directories in place, or nil when it has
	// none; nil for the system's, netns.EtcView.
	EtcView func(name string) (*netns.Overlay, error)
	// ConfigPath is the config file to read, "" for the default files.
	// ConfigErr, when set, is why the config is not to be read (a bad
	// argument on the PAM line): it counts as a broken config.
	ConfigPath string
	ConfigErr  error
	// Budget bounds what follows the lookups, RootBudget root's
	// resolution; 0 for the defaults (20s and 5s).
	Budget, RootBudget time.Duration
}

// Hook opens one session: it decides where the session belongs, places
// the user manager, and joins the login process.
type Hook struct {
	c Config // with the defaults filled in
}

// New returns the hook of c.
func New(c Config) *Hook {
	// What the hook cannot do without: a nil one is the caller's bug, which
	// would otherwise surface only on the path of a login that needs it.
	switch {
	case c.Log == nil:
		panic("hook.New: Config.Log is nil")
	case c.Joiner == nil:
		panic("hook.New: Config.Joiner is nil")
	case c.Units == nil:
		panic("hook.New: Config.Units is nil")
	case c.Users == nil:
		panic("hook.New: Config.Users is nil")
	}
	if c.Budget <= 0 {
		c.Budget = placingBudget
	}
	if c.RootBudget <= 0 {
		c.RootBudget = rootResolveTimeout
	}
	if c.EtcView == nil {
		c.EtcView = netns.EtcView
	}
	return &Hook{c: c}
}

// Placement is what the hook did with a session that it let open.
type Placement struct {
	Action  string // joined, kept, root-fallback, root-unplaced
	Netns   string // the namespace file the session was placed in
	UID     string
	Message string
}

// Denial refuses a session: Reason is the one line the user is shown, Err
// the detail for the journal.
type Denial struct {
	Reason string
	Err    error
	// Everyone says the policy cannot be used at all (the config is broken
	// or insecure, or the environment unsafe): every login but root's is
	// denied alike until an administrator acts.
	Everyone bool
}

func (d *Denial) Error() string { return d.Reason + ": " + d.Err.Error() }
func (d *Denial) Unwrap() error { return d.Err }

// Open opens the session of req: a nil Placement and a nil error when there
// is nothing to do, a *Denial when the session must not open.
func (h *Hook) Open(ctx context.Context, req Request) (*Placement, error) {
	switch {
	case req.Type != "open_session":
		h.c.Log.Debugf("nothing to do for PAM_TYPE=%s", req.Type)
		return nil, nil
	case req.Service == "systemd-user":
		h.c.Log.Debugf("nothing to do for the user manager's own session: its drop-in places it")
		return nil, nil
	case req.User == "":
		return nil, &Denial{Reason: "no user in the PAM request", Err: errors.New("PAM_USER is empty")}
	case len(req.Unsafe) > 0:
		names := strings.Join(req.Unsafe, ", ")
		return h.rootFallback(ctx, req, unsafeEnvironment,
			fmt.Sprintf("the PAM environment sets %s, which must not reach netns-session; ask an administrator to put netns-session before the module that sets it", names),
			fmt.Errorf("pam_exec passed %s from the PAM environment", names))
	}

	cfg, err := h.loadConfig()
	if err != nil {
		return h.rootFallback(ctx, req, configUnusable, brokenConfigReason, err)
	}
	decision, user, err := h.resolve(cfg, req.User)
	ctx, cancel := h.placing(ctx)
	defer cancel()
	if err != nil {
		if req.User == "root" {
			problem := configUnusable
			switch {
			case errors.Is(err, errRootResolveTimeout):
				problem = userDatabaseSlow
			case errors.Is(err, config.ErrSourceUnavailable):
				problem = userDatabaseUnavailable
			}
			return h.rootFallback(ctx, req, problem, brokenConfigReason, err)
		}
		// A failing source leaves the user's policy unknown; user is nil
		// when the user could not be looked up at all.
		h.keepManagerOff(ctx, user)
		if errors.Is(err, config.ErrSourceUnavailable) {
			return nil, &Denial{Reason: fmt.Sprintf("the user database is unavailable, so the network namespace of %s is unknown; try again later", req.User), Err: err}
		}
		return nil, &Denial{Reason: fmt.Sprintf("cannot look up user %s", req.User), Err: err}
	}
	uid := strconv.FormatUint(uint64(user.UID), 10)
	h.c.Log.Set("UID", uid)
	h.c.Log.Debugf("%s resolves to %q: %s", req.User, decision.Netns.Spec, decision.Reason)

	target := decision.Target()
	var etc *netns.Overlay
	if name := decision.Netns.Name(); target != "" && name != "" {
		if etc, err = h.c.EtcView(name); err != nil {
			// A drop-in without the mounts would start the user's
			// services with the host's /etc.
			h.keepManagerOff(ctx, user)
			return nil, &Denial{Reason: etcUnusable(name), Err: err}
		}
		if etc != nil {
			h.c.Log.Set("ETC_DIR", netns.EtcDir(name))
			// Entries with nothing in /etc to cover: the session does
			// not see them (netns-session check warns too).
			h.c.Log.Set("ETC_SKIPPED", strings.Join(etc.Skipped, " "))
		}
	}
	systemd := h.c.Units.SystemdBooted()
	if systemd {
		// Held until the running manager has been checked, so that a
		// concurrent login cannot change the drop-in in between.
		lock, err := h.c.Units.Lock(ctx, user.UID)
		if err != nil {
			return nil, &Denial{Reason: "cannot place your user manager", Err: err}
		}
		defer lock.Unlock()
		// The drop-in is written before the join, also when the namespace
		// turns out to be missing: pam_systemd runs after a failed
		// "required" module too, and the manager it starts must fail
		// rather than run the user's services on the host network.
		if err := h.writeDropIn(ctx, lock, user, decision, etc); err != nil {
			return nil, err
		}
	} else {
		h.c.Log.Debugf("systemd is not running: no user manager to place")
	}
	if systemd && etc != nil && etc.OwnResolvConf {
		// Before the join: the hook then runs in the session's view,
		// where the host's resolv.conf cannot be told from another.
		if err := h.checkManagerEtc(user, etc); err != nil {
			return nil, err
		}
	}
	if target != "" {
		if err := h.join(ctx, target, etc); err != nil {
			return nil, err
		}
		if systemd {
			if err := h.checkUserManager(ctx, user, decision); err != nil {
				return nil, err
			}
		}
	}
	switch {
	case target == "":
		return &Placement{Action: "kept", UID: uid, Message: fmt.Sprintf("%s is unmapped: session left in its namespace", req.User)}, nil
	case etc != nil:
		return &Placement{Action: "joined", Netns: target, UID: uid, Message: fmt.Sprintf("session of %s placed in %s, with %s", req.User, target, netns.EtcDir(etc.Name))}, nil
	}
	return &Placement{Action: "joined", Netns: target, UID: uid, Message: fmt.Sprintf("session of %s placed in %s", req.User, target)}, nil
}

// etcUnusable is the reason a session is denied when its namespace's /etc
// directory cannot be applied.
func etcUnusable(name string) string {
	return fmt.Sprintf("the /etc directory of network namespace %s cannot be applied; ask an administrator (netns-session check)", name)
}

// rootResolveTimeout bounds root's resolution. Without a user line of its
// own, root is looked for in the group lines and, by name, in every other
// user line: NSS lookups that a slow directory can stretch without limit,
// and root must never be locked out. Past it root gets the host network, as
// when the directory is down. A "root -" line spares root every lookup but
// its own, which /etc/passwd answers.
const rootResolveTimeout = 5 * time.Second

// resolve resolves user under cfg; root's resolution within RootBudget,
// else it fails with errRootResolveTimeout. The lookups cannot be cut
// short: the goroutine that runs them is left to the process's exit, which
// follows root's fallback at once.
func (h *Hook) resolve(cfg *config.Config, user string) (config.Decision, *config.User, error) {
	if user != "root" {
		return cfg.Resolve(user, h.c.Users)
	}
	budget := h.c.RootBudget
	type resolution struct {
		decision config.Decision
		user     *config.User
		err      error
	}
	// Buffered: a resolution given up on is sent all the same, to no one.
	done := make(chan resolution, 1)
	go func() {
		d, u, err := cfg.Resolve(user, h.c.Users)
		done <- resolution{d, u, err}
	}()
	timer := time.NewTimer(budget)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.decision, r.user, r.err
	case <-timer.C:
		return config.Decision{}, nil, fmt.Errorf("resolving root: %w (more than %v); a \"root -\" line spares root the directory", errRootResolveTimeout, budget)
	}
}

// loadConfig reads the config at ConfigPath, unless ConfigErr says why not.
func (h *Hook) loadConfig() (*config.Config, error) {
	if h.c.ConfigErr != nil {
		return nil, h.c.ConfigErr
	}
	return config.Load(h.c.ConfigPath)
}

// The problems that leave a session without a usable policy, for rootFallback.
const (
	configUnusable          = "config unusable"
	userDatabaseUnavailable = "user database unavailable"
	userDatabaseSlow        = "user database too slow"
	unsafeEnvironment       = "unsafe PAM environment"
	brokenConfigReason      = "the netns-session configuration is broken; ask an administrator (journalctl -t netns-session)"
)

// deniesEveryone tells whether problem denies every login but root's, so
// that it is an alert: a config that cannot be used must be fixed now. A
// directory that is down or slow denies only the users whose policy rests
// on it; an unsafe PAM environment may come from one user's
// ~/.pam_environment as well as from /etc/environment, and an alert any
// user could raise at will would drown the ones that matter. Both are
// errors, logged as each login is denied.
func deniesEveryone(problem string) bool {
	return problem == configUnusable
}

// rootFallback handles a session whose policy cannot be used: the config,
// or the environment the hook was started with, is not fit to decide on.
// Everyone is denied, with reason, but root, who gets the host network so
// an administrator can always log in and repair it.
func (h *Hook) rootFallback(ctx context.Context, req Request, problem, reason string, cause error) (*Placement, error) {
	if req.User != "root" {
		if user, err := h.c.Users.LookupUser(req.User); err == nil {
			ctx, cancel := h.placing(ctx)
			defer cancel()
			h.keepManagerOff(ctx, user)
		}
		return nil, &Denial{Reason: reason, Err: cause, Everyone: deniesEveryone(problem)}
	}
	ctx, cancel := h.placing(ctx)
	defer cancel()
	logFallback := h.c.Log.Error
	if deniesEveryone(problem) {
		logFallback = h.c.Log.Alert
	}
	logFallback(problem+", letting root in on the host network: "+cause.Error(), map[string]string{"ACTION": "root-fallback"})
	if err := h.join(ctx, netns.HostPath, nil); err != nil {
		logFallback("joining root's session to the host network: "+err.Error(), map[string]string{"ACTION": "root-unplaced"})
		return &Placement{Action: "root-unplaced", UID: "0", Message: "session of root let in where it was opened: " + problem + ", and joining the host network failed"}, nil
	}
	return &Placement{Action: "root-fallback", Netns: netns.HostPath, UID: "0", Message: "session of root placed on the host network despite the " + problem}, nil
}

// placing returns ctx bounded by the budget of what follows the lookups.
// The lookups go through NSS, which takes no context and cannot be cut
// short: a budget started before them could be spent by a slow directory,
// and the drop-in that keeps a manager off the host network would then not
// be written.
func (h *Hook) placing(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.c.Budget)
}

// keepManagerOff is for a session denied because the policy of its user
// cannot be known: the config is unusable, or a lookup failed (of a group
// or of another user line's name). pam_systemd runs after a failed
// "required" module too, and without a drop-in would start the user's
// manager, and the services the user enabled, on the host network. A drop-in
// naming units.NoNetns makes it fail to start instead, until a login under a
// usable policy writes the right one. A manager already running is left
// alone. user is nil when the user could not be looked up: then there is no
// UID to write for, and pam_systemd, which looks the user up through the
// same NSS, finds no user to start a manager for either.
func (h *Hook) keepManagerOff(ctx context.Context, user *config.User) {
	if user == nil || !h.c.Units.SystemdBooted() {
		return
	}
	lock, err := h.c.Units.Lock(ctx, user.UID)
	if err == nil {
		defer lock.Unlock()
		_, err = lock.Ensure(ctx, user.Name, user.UID, units.NoNetns)
	}
	if err != nil {
		h.c.Log.Error(fmt.Sprintf("keeping %s of %s from starting: %v", units.UserManagerUnit(user.UID), user.Name, err), nil)
	}
}

// writeDropIn makes user@UID.service start in the user's namespace, with
// the view of etc, its /etc directory, if it has one.
func (h *Hook) writeDropIn(ctx context.Context, lock *units.Lock, user *config.User, decision config.Decision, etc *netns.Overlay) error {
	var changed bool
	var err error
	if decision.NeedsDropIn() {
		changed, err = lock.Ensure(ctx, user.Name, user.UID, decision.Target(), units.OverlayMounts(etc)...)
	} else {
		changed, err = lock.Remove(ctx, user.UID)
	}
	if err != nil {
		return &Denial{Reason: "cannot place your user manager in its network namespace", Err: err}
	}
	h.c.Log.Debugf("drop-in for %s: changed=%t", units.UserManagerUnit(user.UID), changed)
	return nil
}

// checkUserManager refuses the session when the user's manager already runs
// outside the namespace decision places the session in: the user's
// services would silently keep the wrong network. A manager that a
// concurrent login is starting may sit outside for a moment (see
// policy.ManagerSettle); only one still outside after that is refused. The
// user is resolved already and target was just joined: the judge looks
// nothing up and compares identities only.
func (h *Hook) checkUserManager(ctx context.Context, user *config.User, decision config.Decision) error {
	judge := policy.Judge{ProcessNetns: netns.ProcessNetnsID, NetnsFile: netns.PathID}
	start := time.Now()
	for {
		pid, err := policy.FindManager(h.c.Units.UserManagerPID, user.UID)
		switch {
		case err != nil:
			return &Denial{Reason: managerUncheckable, Err: err}
		case pid == 0:
			return nil
		}
		f := judge.ProcessIn(decision, user.Name, pid)
		switch {
		case f.Verdict == policy.Compliant:
			return nil
		case f.Verdict == policy.Unknown:
			return &Denial{Reason: managerUncheckable, Err: f.Err}
		case policy.Settled(start, time.Now()):
			// Outside, or gone at every look, for ManagerSettle.
			return &Denial{
				Reason: units.UserManagerUnit(user.UID) + " of " + user.Name + " already runs in another network namespace; " + stopManager(user),
				Err:    fmt.Errorf("user manager PID %d is not in %s after %v", pid, f.Expected, policy.ManagerSettle),
			}
		}
		// Outside or gone, for less than ManagerSettle: look again.
		select {
		case <-ctx.Done():
			return &Denial{Reason: managerUncheckable, Err: ctx.Err()}
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// managerUncheckable is the reason a session is refused when the user's
// running manager cannot be looked at.
const managerUncheckable = "cannot check your running user manager"

// stopManager tells the user how to get rid of a manager that runs where it
// must not.
func stopManager(user *config.User) string {
	unit := units.UserManagerUnit(user.UID)
	return fmt.Sprintf("end all of %s's sessions, or run `systemctl stop %s` as root, then log in again", user.Name, unit)
}

// checkManagerEtc refuses the session when the user's manager already runs
// and sees the host's resolv.conf where etc has its own: it started before
// its drop-in had etc's mounts (the administrator has just made the
// directory, or added the file), and the user's services would look names up
// through the host. A manager that sees another file (a version of etc's
// since replaced, where its view binds the file itself) is let be.
func (h *Hook) checkManagerEtc(user *config.User, etc *netns.Overlay) error {
	pid, err := policy.FindManager(h.c.Units.UserManagerPID, user.UID)
	switch {
	case err != nil:
		return &Denial{Reason: managerUncheckable, Err: err}
	case pid == 0:
		return nil
	}
	judge := policy.Judge{SeenFile: proc.SeenFile, StatFile: proc.StatFile}
	switch view, err := judge.ResolvConfSeen(etc.Name, pid); view {
	case policy.ResolvConfUnknown:
		return &Denial{Reason: managerUncheckable, Err: err}
	case policy.ResolvConfHost:
		return &Denial{
			Reason: units.UserManagerUnit(user.UID) + " of " + user.Name + " runs without the /etc directory of network namespace " + etc.Name + "; " + stopManager(user),
			Err:    fmt.Errorf("user manager PID %d sees the host's /etc/resolv.conf, not %s/resolv.conf", pid, netns.EtcDir(etc.Name)),
		}
	}
	return nil
}

// join moves the login process - our parent, waiting for us - into target,
// and into a view of etc when it is not nil.
func (h *Hook) join(ctx context.Context, target string, etc *netns.Overlay) error {
	err := h.c.Joiner.Join(ctx, target, etc)
	switch {
	case err == nil:
		return nil
	case etc != nil && errors.Is(err, nsjoin.ErrCallerThreaded):
		return &Denial{Reason: fmt.Sprintf("this login program runs several threads, so it cannot be given %s; ask an administrator", netns.EtcDir(etc.Name)), Err: err}
	case etc != nil && errors.Is(err, netns.ErrChrooted):
		return &Denial{Reason: fmt.Sprintf("this login program runs under chroot, so it cannot be given %s", netns.EtcDir(etc.Name)), Err: err}
	case etc != nil && errors.Is(err, ErrEtcView):
		return &Denial{Reason: etcUnusable(etc.Name), Err: err}
	case etc != nil && errors.Is(err, nsjoin.ErrUnnamedCwd):
		return &Denial{Reason: fmt.Sprintf("the working directory of this login program has no name (removed?), so it cannot be given %s; log in from another directory", netns.EtcDir(etc.Name)), Err: err}
	case errors.Is(err, nsjoin.ErrTargetUnavailable):
		return &Denial{Reason: fmt.Sprintf("network namespace %s is not available; ask an administrator", target), Err: err}
	case errors.Is(err, nsjoin.ErrPtraceRefused):
		return &Denial{Reason: "ptrace is refused on this host (kernel.yama.ptrace_scope=3 or a security module), so the session cannot be placed in its network namespace", Err: err}
	default:
		return &Denial{Reason: "cannot move the session into its network namespace", Err: err}
	}
}
