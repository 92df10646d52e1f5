// Package watch owns the watcher daemon's state machine (netns-session
// watch, the netns-session.service daemon): it follows logind's sessions
// and users, judges every session and user manager with policy.Judge and
// acts on the verdict (terminate or warn), keeps the drop-ins synced (at
// start, on reload, after a change of the lingering users, and again while
// a sync fails), reconnects when the bus or logind restarts, and keeps
// systemd's watchdog fed. What it touches of the system comes in through
// Config; the command line, the signals and the exit codes stay with the
// caller.
package watch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/godbus/dbus/v5"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/policy"
	"github.com/netns-session/netns-session/internal/reconcile"
	"github.com/netns-session/netns-session/internal/units"
)

const (
	// callTimeout bounds one exchange with logind, and syncTimeout one sync
	// of the drop-ins (locks, NSS lookups of every group member, a reload),
	// both well below the unit's WatchdogSec=30s: the loop pings the watchdog
	// before a sync and between the calls of a check.
	callTimeout = 10 * time.Second
	syncTimeout = 10 * time.Second
	// The wait before dialing the bus again grows from minRetry to maxRetry
	// while it stays unreachable.
	minRetry = 100 * time.Millisecond
	maxRetry = 5 * time.Second
	// A sync that failed (a directory down at boot, a drop-in it could not
	// write) is tried again after minSyncRetry, and after twice as long each
	// time it fails again, up to maxSyncRetry: starting the directory is all
	// it takes for the managers the boot-time sync held to come up.
	minSyncRetry = 5 * time.Second
	maxSyncRetry = time.Minute
	// lingerSettle is how long after a change of the lingering users (a
	// file of /var/lib/systemd/linger) the sync it calls for runs, so that
	// a burst of changes costs one sync.
	lingerSettle = time.Second
	// A user manager is looked for every managerPoll until managerStartWindow
	// has passed: logind announces a user before user@UID.service runs.
	managerPoll        = 200 * time.Millisecond
	managerStartWindow = 30 * time.Second
)

// Logger is what the watcher uses of the event log: records with
// structured fields (without their prefix; empty values are dropped) at
// four priorities, and debug lines. Alert is for a config refused on
// reload: the PAM hook reads the same files at every login, so it denies
// every login but root's until they are fixed.
type Logger interface {
	Info(msg string, fields map[string]string)
	Warning(msg string, fields map[string]string)
	Error(msg string, fields map[string]string)
	Alert(msg string, fields map[string]string)
	Debugf(format string, args ...any)
}

// Logind is what the watcher uses of logind; *logind.Conn implements it.
type Logind interface {
	ListSessionRefsContext(ctx context.Context) ([]logind.SessionRef, error)
	ListUsersContext(ctx context.Context) ([]logind.User, error)
	SessionContext(ctx context.Context, path dbus.ObjectPath) (logind.Session, error)
	TerminateSessionContext(ctx context.Context, id string) error
	KillAllOfSessionContext(ctx context.Context, id string, signal syscall.Signal) error
	SubscribeContext(ctx context.Context) (<-chan logind.Event, error)
	Close() error
}

// LingerWatch tells when the lingering users may have changed;
// *reconcile.LingerWatch implements it.
type LingerWatch interface {
	Changes() <-chan struct{}
	Err() error
	Close() error
}

// Config is everything a watcher needs of the outside world. Log, Judge,
// Load, Sync, LookupUID, ManagerPID and Dial are required; New fills in
// the rest.
type Config struct {
	Log Logger
	// Judge judges sessions and managers (and pins and kills leaders); the
	// watcher sets its Config to the config in force.
	Judge *policy.Judge
	// Load reads the config, at start and at every reload.
	Load func() (*config.Config, error)
	// Sync makes the drop-ins match cfg (reconcile.Sync).
	Sync       func(ctx context.Context, cfg *config.Config) (*reconcile.Report, error)
	LookupUID  func(uid uint32) (*config.User, error)
	ManagerPID func(uid uint32) (int, error)
	// RecordSleep notes how long the system has slept by now, which the
	// judge needs to compare a young session's leader with the session;
	// nil records nothing.
	RecordSleep func()
	Dial        func(ctx context.Context) (Logind, error)
	// WatchLinger starts watching the lingering users; nil when they are
	// not to be watched.
	WatchLinger func() (LingerWatch, error)
	// Notify tells systemd the daemon's state (sd_notify); nil tells no one.
	Notify func(state string)
	// Watchdog is how often to ping systemd's watchdog; 0 for never.
	Watchdog time.Duration
	// CallTimeout bounds one call to logind, SyncTimeout one sync; 0 for
	// the defaults (10s each).
	CallTimeout time.Duration
	SyncTimeout time.Duration
	// Now and After are the clock; nil for time.Now and time.AfterFunc.
	Now   func() time.Time
	After func(d time.Duration, f func())
}

// Reload asks a running watcher to read the config again.
type Reload struct {
	// Done, when not nil, gets the verdict: nil once the new config is in
	// force and a sync of the drop-ins for it has been tried, or why the
	// config was refused (the config in force stays). It needs room for one
	// value: the watcher never waits for whoever asked.
	Done chan<- error
}

// Watcher is the daemon. Everything is owned by the goroutine of Run.
type Watcher struct {
	c     Config        // with the defaults filled in
	judge *policy.Judge // c.Judge, or one for a pass; its Config is the config in force

	lastPing time.Time // of the watchdog

	conn   Logind              // nil while disconnected
	events <-chan logind.Event // nil while disconnected
	// managers are the user managers being looked for or judged, by UID.
	managers map[uint32]*managerWatch
	// managerDue receives the UIDs whose manager is to be looked for again.
	managerDue chan uint32
	// syncDue receives when a failed sync is to be tried again; syncRetry
	// is the wait before the next try, 0 while the last sync succeeded, and
	// syncScheduled says a try is on its way.
	syncDue       chan struct{}
	syncRetry     time.Duration
	syncScheduled bool
	// syncBusy holds a token while a sync runs, also one given up on: a sync
	// stuck in NSS is not joined by another at every retry.
	syncBusy chan struct{}
	// linger is the watch of the lingering users, nil while there is none:
	// it is started (c.WatchLinger), and started again after it ended,
	// before every sync.
	linger LingerWatch
	// lingerChanged receives when the lingering users may have changed,
	// nil when they are not watched; lingerDue when the sync that calls
	// for is to run, and lingerScheduled says it is on its way.
	lingerChanged   <-chan struct{}
	lingerDue       chan struct{}
	lingerScheduled bool
}

// managerWatch is what the watcher knows of one user's manager.
type managerWatch struct {
	// user is the user's name, for the records; "" while it could not be
	// looked up. The policy is resolved by UID.
	user     string
	deadline time.Time // looking for a manager that is not running ends then
	polling  bool      // a look is scheduled
	judged   int       // the PID last judged, 0 for none
	// suspect is a PID found outside its namespace, and since when, that
	// may still be on its way in.
	suspect      int
	suspectSince time.Time
	// unknownPID is the PID last reported unknown for want of a name.
	unknownPID int
}

// New returns a watcher of c, with the defaults for what c leaves unset.
func New(c Config) *Watcher {
	// What the watcher cannot do without: a nil one is the caller's bug,
	// which would otherwise surface mid-run, on the first event that needs it.
	for name, missing := range map[string]bool{
		"Log": c.Log == nil, "Judge": c.Judge == nil, "Load": c.Load == nil, "Sync": c.Sync == nil,
		"LookupUID": c.LookupUID == nil, "ManagerPID": c.ManagerPID == nil, "Dial": c.Dial == nil,
	} {
		if missing {
			panic("watch.New: Config." + name + " is nil")
		}
	}
	if c.RecordSleep == nil {
		c.RecordSleep = func() {}
	}
	if c.Notify == nil {
		c.Notify = func(string) {}
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = callTimeout
	}
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = syncTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	return &Watcher{
		c:          c,
		judge:      c.Judge,
		managers:   map[uint32]*managerWatch{},
		managerDue: make(chan uint32),
		syncDue:    make(chan struct{}),
		syncBusy:   make(chan struct{}, 1),
		lingerDue:  make(chan struct{}),
	}
}

// Run is the daemon's life: it returns when ctx ends, or at once, with an
// error wrapping ErrConfig, if the config cannot be loaded. Everything else
// it retries or logs: a watcher that exits watches nothing. Each value of
// reloads asks for a reload.
func (w *Watcher) Run(ctx context.Context, reloads <-chan Reload) error {
	cfg, err := w.c.Load()
	if err != nil {
		return fmt.Errorf("%w (netns-session check shows the problems):\n%w", ErrConfig, err)
	}
	w.judge.Config = cfg
	defer w.unwatchLinger()
	w.syncDropIns(ctx)
	defer w.disconnect()

	var ping <-chan time.Time
	if w.c.Watchdog > 0 {
		ticker := time.NewTicker(w.c.Watchdog)
		defer ticker.Stop()
		ping = ticker.C
	}
	retry := time.NewTimer(0)
	defer retry.Stop()
	wait, ready := minRetry, false
	for {
		// Noted before every wait, the sleep recorded precedes the sessions
		// announced next, unless the system sleeps during the wait: sessions
		// opened before the next turn after a resume have leaders whose
		// start time proves nothing (policy's startOrder). The watchdog's
		// ping bounds that time.
		w.c.RecordSleep()
		select {
		case <-ctx.Done():
			w.c.Notify(daemon.SdNotifyStopping)
			return nil
		case <-ping:
			w.ping()
		case r := <-reloads:
			w.reload(ctx, r)
		case <-retry.C:
			if err := w.connect(ctx); err != nil {
				w.c.Log.Warning(fmt.Sprintf("cannot watch logind, trying again in %v: %v", wait, err), map[string]string{"ACTION": "reconnect"})
				retry.Reset(wait)
				wait = min(2*wait, maxRetry)
				continue
			}
			wait = minRetry
			w.checkAll(ctx)
			if !ready {
				w.c.Notify(daemon.SdNotifyReady + "\n" + watchingStatus)
				ready = true
			}
		case ev, ok := <-w.events:
			switch {
			case !ok:
				w.c.Log.Warning("lost the connection to the system bus; reconnecting", map[string]string{"ACTION": "reconnect"})
			case ev.Kind == logind.LogindStarted:
				// Sessions may have come and gone unannounced meanwhile.
				w.c.Log.Info("logind (re)started; subscribing again and checking every session", map[string]string{"ACTION": "reconnect"})
			default:
				w.handle(ctx, ev)
				continue
			}
			w.disconnect()
			retry.Reset(0)
		case uid := <-w.managerDue:
			if m := w.managers[uid]; m != nil {
				m.polling = false
				w.checkManager(ctx, uid)
			}
		case <-w.syncDue:
			w.syncScheduled = false
			if w.syncRetry > 0 {
				w.syncDropIns(ctx)
			}
		case _, ok := <-w.lingerChanged:
			if !ok {
				w.lingerWatchEnded()
				continue
			}
			w.lingerChange(ctx)
		case <-w.lingerDue:
			w.lingerScheduled = false
			w.c.Log.Info("the lingering users changed; syncing drop-ins", map[string]string{"ACTION": "sync-linger"})
			w.syncDropIns(ctx)
		}
	}
}

// connect dials the bus and subscribes to logind's signals.
func (w *Watcher) connect(ctx context.Context) error {
	conn, err := w.c.Dial(ctx)
	if err != nil {
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, w.c.CallTimeout)
	defer cancel()
	events, err := conn.SubscribeContext(callCtx)
	if err != nil {
		conn.Close()
		return err
	}
	w.conn, w.events = conn, events
	return nil
}

func (w *Watcher) disconnect() {
	if w.conn != nil {
		w.conn.Close()
	}
	w.conn, w.events = nil, nil
}

// reload puts a new config in force, if it loads without errors, and
// tells r and systemd (STATUS=, which systemctl status shows) the verdict.
func (w *Watcher) reload(ctx context.Context, r Reload) {
	w.c.Notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
	cfg, err := w.c.Load()
	if err != nil {
		w.c.Log.Alert("reloading config: refused, the config in force stays; the PAM hook reads the files at every login and denies every login but root's until they are fixed: "+err.Error(),
			map[string]string{"ACTION": "reload-refused"})
		w.c.Notify(daemon.SdNotifyReady + "\nSTATUS=" + refusedStatus(err, w.c.Now()))
		answer(r, fmt.Errorf("%w: %w", ErrReloadRefused, err))
		return
	}
	defer w.c.Notify(daemon.SdNotifyReady)
	w.judge.Config = cfg
	w.c.Log.Info("config reloaded", map[string]string{"ACTION": "reload", "ENFORCE": cfg.Enforce.String()})
	w.syncDropIns(ctx)
	// The status before the answer: systemctl reload returns with it, and
	// systemd reads it before it sees whoever asked exit.
	w.c.Notify(watchingStatus)
	answer(r, nil)
	if w.conn != nil {
		w.checkAll(ctx)
	}
}

// watchingStatus is the daemon's status (STATUS=) while its config is the
// files as they are.
const watchingStatus = "STATUS=watching logind sessions"

// refusedStatus is the daemon's status after a reload refused at now for
// err: one line, the first problem and how many more.
func refusedStatus(err error, now time.Time) string {
	lines := strings.Split(err.Error(), "\n")
	status := fmt.Sprintf("watching logind sessions; reload refused at %s, the config loaded before stays in force: %s", now.Format(time.TimeOnly), lines[0])
	if len(lines) > 1 {
		status += fmt.Sprintf(" (and %d more problems)", len(lines)-1)
	}
	return status
}

// answer gives the verdict of a reload to whoever asked for it, if anyone
// did and still has room for it.
func answer(r Reload, err error) {
	if r.Done == nil {
		return
	}
	select {
	case r.Done <- err:
	default:
	}
}

// ping tells systemd's watchdog that the loop is alive.
func (w *Watcher) ping() {
	if w.c.Watchdog > 0 {
		w.c.Notify(daemon.SdNotifyWatchdog)
		w.lastPing = w.c.Now()
	}
}

// keepAlive pings the watchdog if a ping is due, between the steps of a
// turn of the loop that takes long: checking every session can, one quick
// call at a time.
func (w *Watcher) keepAlive() {
	if w.c.Watchdog > 0 && w.c.Now().Sub(w.lastPing) >= w.c.Watchdog {
		w.ping()
	}
}

// syncResult is what a sync returns.
type syncResult struct {
	report *reconcile.Report
	err    error
}

// syncDropIns makes the drop-ins match the config in force and, while that
// fails, tries again later (see minSyncRetry).
func (w *Watcher) syncDropIns(ctx context.Context) {
	// Watching first, the sync covers what changed while nothing watched.
	w.watchLingerers()
	if w.trySync(ctx) {
		w.syncRetry = 0
		return
	}
	if w.syncRetry == 0 {
		w.syncRetry = minSyncRetry
	} else {
		w.syncRetry = min(2*w.syncRetry, maxSyncRetry)
	}
	if w.syncScheduled {
		return
	}
	w.syncScheduled = true
	w.c.Log.Info(fmt.Sprintf("syncing drop-ins again in %v", w.syncRetry), map[string]string{"ACTION": "sync-retry"})
	w.c.After(w.syncRetry, func() {
		select {
		case w.syncDue <- struct{}{}:
		case <-ctx.Done():
		}
	})
}

// watchLingerers starts watching the lingering users unless they are
// watched already.
func (w *Watcher) watchLingerers() {
	if w.c.WatchLinger == nil || w.linger != nil {
		return
	}
	linger, err := w.c.WatchLinger()
	if err != nil {
		w.c.Log.Error("not watching the lingering users (run netns-session sync after loginctl enable-linger); trying again at the next sync: "+err.Error(),
			map[string]string{"ACTION": "watch-linger"})
		return
	}
	w.linger, w.lingerChanged = linger, linger.Changes()
}

// lingerWatchEnded reports a watch of the lingering users that ended on
// its own: until the next sync watches them again, a user who starts
// lingering gets no record that holds their manager at boot.
func (w *Watcher) lingerWatchEnded() {
	why := "the watch ended"
	if w.linger != nil {
		if err := w.linger.Err(); err != nil {
			why = err.Error()
		}
	}
	w.c.Log.Error("stopped watching the lingering users (run netns-session sync after loginctl enable-linger); watching them again at the next sync: "+why,
		map[string]string{"ACTION": "watch-linger"})
	w.unwatchLinger()
}

// unwatchLinger ends the watch of the lingering users, if any.
func (w *Watcher) unwatchLinger() {
	if w.linger != nil {
		w.linger.Close()
	}
	w.linger, w.lingerChanged = nil, nil
}

// lingerChange schedules a sync lingerSettle after the lingering users
// changed, unless one is scheduled: a user who starts lingering gets the
// record that holds their manager at boot, and their drop-in, without
// waiting for a reload.
func (w *Watcher) lingerChange(ctx context.Context) {
	if w.lingerScheduled {
		return
	}
	w.lingerScheduled = true
	w.c.After(lingerSettle, func() {
		select {
		case w.lingerDue <- struct{}{}:
		case <-ctx.Done():
		}
	})
}

// trySync syncs once, giving up after syncTimeout, and reports whether the
// sync succeeded. The context ends the sync's locks and reload then, but
// not an NSS lookup that hangs (a directory server that does not answer):
// that sync is left to finish on its own, and it changes nothing after its
// context has ended. No other sync starts until it has.
func (w *Watcher) trySync(ctx context.Context) bool {
	w.ping()
	select {
	case w.syncBusy <- struct{}{}:
	default:
		w.c.Log.Error("syncing drop-ins: the sync given up on before has not returned yet (an NSS lookup hangs?)",
			map[string]string{"ACTION": "sync"})
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, w.c.SyncTimeout)
	defer cancel()
	done := make(chan syncResult, 1)
	cfg := w.judge.Config
	go func() {
		defer func() { <-w.syncBusy }()
		report, err := w.c.Sync(ctx, cfg)
		done <- syncResult{report, err}
	}()
	var r syncResult
	select {
	case r = <-done:
	case <-ctx.Done():
		w.c.Log.Error(fmt.Sprintf("syncing drop-ins: gave up after %v: %v", w.c.SyncTimeout, ctx.Err()),
			map[string]string{"ACTION": "sync"})
		return false
	}
	if r.report != nil {
		for _, c := range r.report.Changes {
			what := fmt.Sprintf("drop-in of %s (uid %d) written for %s", c.User, c.UID, c.Netns)
			if c.Action == reconcile.Remove {
				what = fmt.Sprintf("drop-in of %s (uid %d) removed", c.User, c.UID)
			}
			w.c.Log.Info(what+": "+c.Reason,
				map[string]string{"ACTION": "sync-" + string(c.Action), "USER": c.User, "UID": strconv.FormatUint(uint64(c.UID), 10), "NETNS": c.Netns})
		}
		for _, uid := range r.report.Started {
			w.c.Log.Info(units.UserManagerUnit(uid)+" started: its drop-in no longer holds it, and the user lingers",
				map[string]string{"ACTION": "sync-start", "UID": strconv.FormatUint(uint64(uid), 10)})
		}
		for _, warning := range r.report.Warnings {
			w.c.Log.Warning("sync: "+warning, map[string]string{"ACTION": "sync"})
		}
	}
	if r.err != nil {
		w.c.Log.Error("syncing drop-ins: "+r.err.Error(), map[string]string{"ACTION": "sync"})
		return false
	}
	return true
}

// checkAll judges every session and every user manager, forgetting what was
// judged before: the config or logind may have changed since. Each call to
// logind has a time of its own, so one slow reply costs one session.
func (w *Watcher) checkAll(ctx context.Context) {
	endPass := w.pass()
	defer endPass()
	callCtx, cancel := context.WithTimeout(ctx, w.c.CallTimeout)
	refs, err := w.conn.ListSessionRefsContext(callCtx)
	cancel()
	if err != nil {
		w.c.Log.Error("checking sessions: "+err.Error(), nil)
	}
	for _, ref := range refs {
		w.keepAlive()
		s, err := w.readSession(ctx, ref.Path)
		switch {
		case errors.Is(err, logind.ErrNoSuchSession):
			w.c.Log.Debugf("session %s ended before it could be checked", ref.ID)
		case err != nil:
			w.c.Log.Error(fmt.Sprintf("checking session %s: %v", ref.ID, err), map[string]string{"SESSION_ID": ref.ID})
		default:
			w.judgeSession(ctx, s)
		}
	}
	w.keepAlive()
	callCtx, cancel = context.WithTimeout(ctx, w.c.CallTimeout)
	users, err := w.conn.ListUsersContext(callCtx)
	cancel()
	if err != nil {
		w.c.Log.Error("checking user managers: "+err.Error(), nil)
	}
	for _, m := range w.managers {
		m.judged = 0
	}
	for _, u := range users {
		w.keepAlive()
		w.watchManager(ctx, u.UID, u.Name)
	}
}

// pass makes w.judge one that looks each user up once (policy.Judge.Pass)
// until the returned func restores it: for one check of everything, or one
// event. The next pass sees users deleted meanwhile, whose UIDs may have
// gone to others.
func (w *Watcher) pass() (end func()) {
	judge := w.judge
	w.judge = judge.Pass()
	return func() { w.judge = judge }
}

// readSession reads the properties of the session at path.
func (w *Watcher) readSession(ctx context.Context, path dbus.ObjectPath) (logind.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, w.c.CallTimeout)
	defer cancel()
	return w.conn.SessionContext(ctx, path)
}

// handle acts on one event of the subscription.
func (w *Watcher) handle(ctx context.Context, ev logind.Event) {
	endPass := w.pass()
	defer endPass()
	switch ev.Kind {
	case logind.SessionNew:
		s, err := w.readSession(ctx, ev.Path)
		switch {
		case errors.Is(err, logind.ErrNoSuchSession):
			w.c.Log.Info(fmt.Sprintf("session %s ended before it could be checked", ev.SessionID),
				map[string]string{"SESSION_ID": ev.SessionID, "VERDICT": policy.Gone.String()})
		case err != nil:
			w.c.Log.Error(fmt.Sprintf("checking new session %s: %v", ev.SessionID, err), map[string]string{"SESSION_ID": ev.SessionID})
		default:
			w.judgeSession(ctx, s)
			// On systemd before 256 only the user's first session tells
			// that the manager starts.
			w.watchManager(ctx, s.UID, s.User)
		}
	case logind.UserNew:
		// A user whose name cannot be looked up now (the directory is down)
		// is watched all the same: checkManager looks again at every look
		// at the manager.
		name := ""
		if u, err := w.c.LookupUID(ev.UID); err != nil {
			w.c.Log.Error(fmt.Sprintf("checking the manager of new user %d: %v; looking the name up again", ev.UID, err),
				map[string]string{"UID": strconv.FormatUint(uint64(ev.UID), 10)})
		} else {
			name = u.Name
		}
		w.watchManager(ctx, ev.UID, name)
	case logind.UserRemoved:
		delete(w.managers, ev.UID)
	case logind.SessionRemoved:
		w.c.Log.Debugf("session %s ended", ev.SessionID)
	case logind.LogindStopped:
		w.c.Log.Warning("logind left the system bus", nil)
	}
}

// judgeSession judges a session and acts on the verdict.
func (w *Watcher) judgeSession(ctx context.Context, s logind.Session) {
	// The leader stays pinned until the verdict is acted on, so that a kill
	// reaches the process judged and never one that reused its PID. A
	// session judged by a process of its scope comes without one.
	f, leader := w.judge.Session(s)
	defer leader.Release()
	fields := f.Fields(map[string]string{
		"SESSION_ID": s.ID,
		"USER":       s.User,
		"UID":        strconv.FormatUint(uint64(s.UID), 10),
		"LEADER":     strconv.FormatUint(uint64(s.Leader), 10),
		"CLASS":      s.Class,
		"STATE":      s.State,
		"SERVICE":    s.Service,
		"TTY":        s.TTY,
		"RHOST":      s.RemoteHost,
	})
	what := fmt.Sprintf("session %s of %s (%s, leader %d)", s.ID, s.User, s.Service, s.Leader)
	switch {
	case f.Verdict == policy.Violation && w.judge.Config.Enforce == config.EnforceTerminate:
		w.terminate(ctx, s, leader, what, f, fields)
	case f.Verdict == policy.Violation:
		fields["ACTION"] = "warn"
		w.c.Log.Warning(what+" violates the policy: "+f.Reason, fields)
	case f.Verdict == policy.Unknown:
		w.c.Log.Error(what+" could not be checked: "+f.Reason, fields)
	default:
		w.c.Log.Info(what+": "+f.Verdict.String()+": "+f.Reason, fields)
	}
}

// terminate ends a session: it kills the leader, then has logind stop the
// session's scope with everything in it. TerminateSession alone is not
// enough for a session this young: until logind's job has moved the leader
// into the scope, stopping the scope leaves the leader running, and it goes
// on without a session (pam_systemd is optional) where nothing watches it.
// Killed first, the leader cannot fork past its pam_systemd call, which
// waits for that job.
//
// A closing session, and one judged by a process of its scope (leader is
// nil), is ended through logind alone: its leader has exited or closed the
// session, and what remains is in the scope; no PID is signalled for it.
// logind ignores TerminateSession for a session it is stopping already,
// which a closing session is, and which a session becomes once a leader
// that holds its end of the session dies - the kill above may have done
// that - so logind is also asked to kill every process of the scope
// (KillSession), which systemd does by the scope's cgroup: the shell such a
// leader forked must not outlive it on the wrong network. It is asked
// whatever TerminateSession answered, unless that the session no longer
// exists, and the session counts as terminated once KillSession has
// succeeded. A leader still outside its scope is blocked in CreateSession,
// has forked no one and holds no end of the session, so TerminateSession
// ends it; KillSession, which goes through a busy PID 1 during a login
// storm, is spared there. Its cgroup is read before the kill: the leader
// cannot be moved, answered and fork in the microseconds to the kill.
func (w *Watcher) terminate(ctx context.Context, s logind.Session, leader *policy.Leader, what string, f policy.Finding, fields map[string]string) {
	killScope := leader == nil || s.State == logind.StateClosing || leader.InScope(s)
	var killErr error
	if leader != nil && s.State != logind.StateClosing {
		killErr = leader.Kill()
		if errors.Is(killErr, syscall.ESRCH) {
			killErr = nil // it exited; the scope goes all the same
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, w.c.CallTimeout)
	terminateErr := w.conn.TerminateSessionContext(callCtx, s.ID)
	cancel()
	// A session logind no longer knows has ended, which is what was wanted.
	// Any other is killed whatever TerminateSession answered: one that timed
	// out or was refused may have left the scope running.
	var killAllErr error
	if killScope && !errors.Is(terminateErr, logind.ErrNoSuchSession) {
		callCtx, cancel := context.WithTimeout(ctx, w.c.CallTimeout)
		killAllErr = ignoreGone(w.conn.KillAllOfSessionContext(callCtx, s.ID, syscall.SIGKILL))
		cancel()
	}
	terminateErr = ignoreGone(terminateErr)
	if killErr != nil || killAllErr != nil {
		fields["ACTION"] = "terminate-failed"
		err := errors.Join(killErr, terminateErr, killAllErr)
		w.c.Log.Error(what+" violates the policy and was not terminated: "+err.Error()+"; "+f.Reason, fields)
		return
	}
	fields["ACTION"] = "terminate"
	if terminateErr != nil {
		w.c.Log.Warning(fmt.Sprintf("%s terminated by killing its scope (%v): %s", what, terminateErr, f.Reason), fields)
		return
	}
	w.c.Log.Warning(what+" terminated: "+f.Reason, fields)
}

// ignoreGone drops an error that says a session no longer exists.
func ignoreGone(err error) error {
	if errors.Is(err, logind.ErrNoSuchSession) {
		return nil
	}
	return err
}

// watchManager judges the manager of uid, now if it runs, or when it does
// within managerStartWindow.
func (w *Watcher) watchManager(ctx context.Context, uid uint32, user string) {
	m := w.managers[uid]
	if m == nil {
		m = &managerWatch{}
		w.managers[uid] = m
	}
	if user != "" {
		m.user = user
	}
	m.deadline = w.c.Now().Add(managerStartWindow)
	if !m.polling {
		w.checkManager(ctx, uid)
	}
}

// checkManager judges the manager of uid unless that process was judged
// already, and looks again later while it does not run, or while its user's
// name cannot be looked up.
func (w *Watcher) checkManager(ctx context.Context, uid uint32) {
	m := w.managers[uid]
	pid, err := policy.FindManager(w.c.ManagerPID, uid)
	switch {
	case err != nil:
		w.c.Log.Error(fmt.Sprintf("checking the user manager of %s: %v", m.userOr(uid), err), map[string]string{"USER": m.user, "UID": strconv.FormatUint(uint64(uid), 10)})
		return
	case pid == 0:
		if w.c.Now().Before(m.deadline) {
			w.lookAgain(ctx, uid, m)
		}
		return
	case pid == m.judged:
		return
	}
	if m.user == "" {
		u, err := w.c.LookupUID(uid)
		if err != nil {
			w.unknownUser(ctx, uid, m, pid, err)
			return
		}
		m.user = u.Name
	}
	f := w.judge.Process(uid, m.user, pid)
	if f.Verdict == policy.Violation && w.settling(ctx, uid, m, pid) {
		return
	}
	m.judged, m.suspect = pid, 0
	unit, fields := w.managerFields(f, uid, m, pid)
	what := fmt.Sprintf("user manager %s of %s (pid %d)", unit, m.user, pid)
	switch f.Verdict {
	case policy.Violation:
		// Only warned about, whatever enforce says: see the watch help.
		fields["ACTION"] = "warn"
		w.c.Log.Warning(fmt.Sprintf("%s violates the policy: %s; its user services run there until it restarts: stop it with `systemctl stop %s`", what, f.Reason, unit), fields)
	case policy.Unknown:
		w.c.Log.Error(what+" could not be checked: "+f.Reason, fields)
	default:
		w.c.Log.Info(what+": "+f.Verdict.String()+": "+f.Reason, fields)
	}
}

// unknownUser reports manager pid of uid, whose name cannot be looked up,
// as unknown, once per process, and looks again later while the manager is
// young: its records name the user, and the judge's lookup of the UID would
// fail alike.
func (w *Watcher) unknownUser(ctx context.Context, uid uint32, m *managerWatch, pid int, err error) {
	if m.unknownPID != pid {
		m.unknownPID = pid
		f := policy.Finding{Verdict: policy.Unknown, Reason: err.Error()}
		unit, fields := w.managerFields(f, uid, m, pid)
		w.c.Log.Error(fmt.Sprintf("user manager %s of uid %d (pid %d) could not be checked: %v; looking the name up again", unit, uid, pid, err), fields)
	}
	if w.c.Now().Before(m.deadline) {
		w.lookAgain(ctx, uid, m)
	}
}

// managerFields returns the unit of uid's manager and the journal fields of
// finding f on it.
func (w *Watcher) managerFields(f policy.Finding, uid uint32, m *managerWatch, pid int) (string, map[string]string) {
	unit := units.UserManagerUnit(uid)
	return unit, f.Fields(map[string]string{
		"USER":   m.user,
		"UID":    strconv.FormatUint(uint64(uid), 10),
		"UNIT":   unit,
		"LEADER": strconv.Itoa(pid),
	})
}

// userOr returns the user's name, or its UID while the name is unknown.
func (m *managerWatch) userOr(uid uint32) string {
	if m.user == "" {
		return fmt.Sprintf("uid %d", uid)
	}
	return m.user
}

// settling reports whether manager pid, found outside its namespace, may
// still be on its way in, and if so looks at it again later.
func (w *Watcher) settling(ctx context.Context, uid uint32, m *managerWatch, pid int) bool {
	if m.suspect != pid {
		m.suspect, m.suspectSince = pid, w.c.Now()
	}
	if policy.Settled(m.suspectSince, w.c.Now()) {
		return false
	}
	w.lookAgain(ctx, uid, m)
	return true
}

// lookAgain schedules a look at the manager of uid.
func (w *Watcher) lookAgain(ctx context.Context, uid uint32, m *managerWatch) {
	m.polling = true
	w.c.After(managerPoll, func() {
		select {
		case w.managerDue <- uid:
		case <-ctx.Done():
		}
	})
}
