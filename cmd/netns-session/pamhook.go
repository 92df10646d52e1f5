package main

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
	"github.com/netns-session/netns-session/internal/units"
)

// pamHook opens one session: it decides where the session belongs, places
// the user manager, and joins the login process.
type pamHook struct {
	log     *eventLog
	opts    pamOptions
	optsErr error // a bad pam argument counts as a broken config
	// joiner moves the process that opens the session into a namespace.
	joiner joiner
	units  *units.Manager
	users  config.Directory
	// budget replaces pamBudget in tests, rootBudget rootResolveTimeout.
	budget, rootBudget time.Duration
}

// placement is what the hook did with a session that it let open.
type placement struct {
	action  string // joined, kept, root-fallback
	netns   string // the namespace file the session was placed in
	uid     string
	message string
}

func (h *pamHook) open(ctx context.Context, req pamRequest) (*placement, error) {
	switch {
	case req.Type != "open_session":
		h.log.Debugf("nothing to do for PAM_TYPE=%s", req.Type)
		return nil, nil
	case req.Service == "systemd-user":
		h.log.Debugf("nothing to do for the user manager's own session: its drop-in places it")
		return nil, nil
	case req.User == "":
		return nil, &denial{reason: "no user in the PAM request", err: errors.New("PAM_USER is empty")}
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
			return nil, &denial{reason: fmt.Sprintf("the user database is unavailable, so the network namespace of %s is unknown; try again later", req.User), err: err}
		}
		return nil, &denial{reason: fmt.Sprintf("cannot look up user %s", req.User), err: err}
	}
	uid := strconv.FormatUint(uint64(user.UID), 10)
	h.log.set("UID", uid)
	h.log.Debugf("%s resolves to %q: %s", req.User, decision.Netns.Spec, decision.Reason)

	target := decision.Target()
	systemd := h.units.SystemdBooted()
	if systemd {
		// Held until the running manager has been checked, so that a
		// concurrent login cannot change the drop-in in between.
		lock, err := h.units.Lock(ctx, user.UID)
		if err != nil {
			return nil, &denial{reason: "cannot place your user manager", err: err}
		}
		defer lock.Unlock()
		// The drop-in is written before the join, also when the namespace
		// turns out to be missing: pam_systemd runs after a failed
		// "required" module too, and the manager it starts must fail
		// rather than run the user's services on the host network.
		if err := h.writeDropIn(ctx, lock, user, decision); err != nil {
			return nil, err
		}
	} else {
		h.log.Debugf("systemd is not running: no user manager to place")
	}
	if target != "" {
		if err := h.join(ctx, target); err != nil {
			return nil, err
		}
		if systemd {
			if err := h.checkUserManager(ctx, user, decision); err != nil {
				return nil, err
			}
		}
	}
	if target == "" {
		return &placement{action: "kept", uid: uid, message: fmt.Sprintf("%s is unmapped: session left in its namespace", req.User)}, nil
	}
	return &placement{action: "joined", netns: target, uid: uid, message: fmt.Sprintf("session of %s placed in %s", req.User, target)}, nil
}

// rootResolveTimeout bounds root's resolution. Without a user line of its
// own, root is looked for in the group lines and, by name, in every other
// user line: NSS lookups that a slow directory can stretch without limit,
// and root must never be locked out. Past it root gets the host network, as
// when the directory is down. A "root -" line spares root every lookup but
// its own, which /etc/passwd answers.
const rootResolveTimeout = 5 * time.Second

// resolve resolves user under cfg; root's resolution within rootBudget,
// else it fails with errRootResolveTimeout. The lookups cannot be cut
// short: the goroutine that runs them is left to the process's exit, which
// follows root's fallback at once.
func (h *pamHook) resolve(cfg *config.Config, user string) (config.Decision, *config.User, error) {
	if user != "root" {
		return cfg.Resolve(user, h.users)
	}
	budget := h.rootBudget
	if budget <= 0 {
		budget = rootResolveTimeout
	}
	type resolution struct {
		decision config.Decision
		user     *config.User
		err      error
	}
	// Buffered: a resolution given up on is sent all the same, to no one.
	done := make(chan resolution, 1)
	go func() {
		d, u, err := cfg.Resolve(user, h.users)
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

// loadConfig reads the config named by the pam arguments.
func (h *pamHook) loadConfig() (*config.Config, error) {
	if h.optsErr != nil {
		return nil, h.optsErr
	}
	return config.Load(h.opts.configPath)
}

// The problems that leave a session without a usable policy, for rootFallback.
const (
	configUnusable          = "config unusable"
	userDatabaseUnavailable = "user database unavailable"
	userDatabaseSlow        = "user database too slow"
	unsafeEnvironment       = "unsafe PAM environment"
	brokenConfigReason      = "the netns-session configuration is broken; ask an administrator (journalctl -t netns-session)"
)

// rootFallback handles a session whose policy cannot be used: the config,
// or the environment the hook was started with, is not fit to decide on.
// Everyone is denied, with reason, but root, who gets the host network so
// an administrator can always log in and repair it.
func (h *pamHook) rootFallback(ctx context.Context, req pamRequest, problem, reason string, cause error) (*placement, error) {
	if req.User != "root" {
		if user, err := h.users.LookupUser(req.User); err == nil {
			ctx, cancel := h.placing(ctx)
			defer cancel()
			h.keepManagerOff(ctx, user)
		}
		return nil, &denial{reason: reason, err: cause}
	}
	ctx, cancel := h.placing(ctx)
	defer cancel()
	h.log.Error(problem+", letting root in on the host network: "+cause.Error(), map[string]string{"ACTION": "root-fallback"})
	if err := h.join(ctx, netns.HostPath); err != nil {
		h.log.Error("joining root's session to the host network: "+err.Error(), map[string]string{"ACTION": "root-unplaced"})
		return &placement{action: "root-unplaced", uid: "0", message: "session of root let in where it was opened: " + problem + ", and joining the host network failed"}, nil
	}
	return &placement{action: "root-fallback", netns: netns.HostPath, uid: "0", message: "session of root placed on the host network despite the " + problem}, nil
}

// placing returns ctx bounded by the budget of what follows the lookups.
// The lookups go through NSS, which takes no context and cannot be cut
// short: a budget started before them could be spent by a slow directory,
// and the drop-in that keeps a manager off the host network would then not
// be written.
func (h *pamHook) placing(ctx context.Context) (context.Context, context.CancelFunc) {
	budget := h.budget
	if budget <= 0 {
		budget = pamBudget
	}
	return context.WithTimeout(ctx, budget)
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
func (h *pamHook) keepManagerOff(ctx context.Context, user *config.User) {
	if user == nil || !h.units.SystemdBooted() {
		return
	}
	lock, err := h.units.Lock(ctx, user.UID)
	if err == nil {
		defer lock.Unlock()
		_, err = lock.Ensure(ctx, user.Name, user.UID, units.NoNetns)
	}
	if err != nil {
		h.log.Error(fmt.Sprintf("keeping %s of %s from starting: %v", units.UserManagerUnit(user.UID), user.Name, err), nil)
	}
}

// writeDropIn makes user@UID.service start in the user's namespace.
func (h *pamHook) writeDropIn(ctx context.Context, lock *units.Lock, user *config.User, decision config.Decision) error {
	var changed bool
	var err error
	if decision.NeedsDropIn() {
		changed, err = lock.Ensure(ctx, user.Name, user.UID, decision.Target())
	} else {
		changed, err = lock.Remove(ctx, user.UID)
	}
	if err != nil {
		return &denial{reason: "cannot place your user manager in its network namespace", err: err}
	}
	h.log.Debugf("drop-in for %s: changed=%t", units.UserManagerUnit(user.UID), changed)
	return nil
}

// checkUserManager refuses the session when the user's manager already runs
// outside the namespace decision places the session in: the user's
// services would silently keep the wrong network. A manager that a
// concurrent login is starting may sit outside for a moment (see
// policy.ManagerSettle); only one still outside after that is refused. The
// user is resolved already and target was just joined: the judge looks
// nothing up and compares identities only.
func (h *pamHook) checkUserManager(ctx context.Context, user *config.User, decision config.Decision) error {
	judge := policy.Judge{ProcessNetns: netns.ProcessNetnsID, NetnsFile: netns.PathID}
	start := time.Now()
	for {
		pid, err := policy.FindManager(h.units.UserManagerPID, user.UID)
		switch {
		case err != nil:
			return &denial{reason: "cannot check your running user manager", err: err}
		case pid == 0:
			return nil
		}
		f := judge.ProcessIn(decision, user.Name, pid)
		switch {
		case f.Verdict == policy.Compliant:
			return nil
		case f.Verdict == policy.Unknown:
			return &denial{reason: "cannot check your running user manager", err: f.Err}
		case policy.Settled(start, time.Now()):
			// Outside, or gone at every look, for ManagerSettle.
			unit := units.UserManagerUnit(user.UID)
			return &denial{
				reason: fmt.Sprintf("%s of %s already runs in another network namespace; end all of %s's sessions, or run `systemctl stop %s` as root, then log in again",
					unit, user.Name, user.Name, unit),
				err: fmt.Errorf("user manager PID %d is not in %s after %v", pid, f.Expected, policy.ManagerSettle),
			}
		}
		// Outside or gone, for less than ManagerSettle: look again.
		select {
		case <-ctx.Done():
			return &denial{reason: "cannot check your running user manager", err: ctx.Err()}
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// join moves the login process - our parent, waiting for us - into target.
func (h *pamHook) join(ctx context.Context, target string) error {
	err := h.joiner.Join(ctx, target)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nsjoin.ErrTargetUnavailable):
		return &denial{reason: fmt.Sprintf("network namespace %s is not available; ask an administrator", target), err: err}
	case errors.Is(err, nsjoin.ErrPtraceRefused):
		return &denial{reason: "ptrace is refused on this host (kernel.yama.ptrace_scope=3 or a security module), so the session cannot be placed in its network namespace", err: err}
	default:
		return &denial{reason: "cannot move the session into its network namespace", err: err}
	}
}
