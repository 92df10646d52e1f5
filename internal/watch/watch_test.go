package watch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/godbus/dbus/v5"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/config/configtest"
	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/netns/netnstest"
	"github.com/netns-session/netns-session/internal/policy"
	"github.com/netns-session/netns-session/internal/policy/policytest"
	"github.com/netns-session/netns-session/internal/reconcile"
)

// fakeSystem is the fake system of policytest as the watcher sees it,
// shared by every connection the watcher dials: its connections also
// terminate sessions, kill their scopes and subscribe to logind's signals.
type fakeSystem struct {
	*policytest.System
	// subscribeErrs fail the next subscriptions, one each.
	subscribeErrs []error
	// hungSession is the ID of a session whose properties never come: a
	// read of it lasts until its context ends.
	hungSession  string
	terminateErr error
	// killAllErr is KillSession's answer; a leader's to SIGKILL is KillErr.
	killAllErr error
	terminated []string
	events     chan logind.Event // of the live subscription
}

func newFakeSystem() *fakeSystem {
	return &fakeSystem{System: policytest.NewSystem()}
}

// record adds what to the trace: dial, subscribe, list, sync, ...; the
// system is locked.
func (s *fakeSystem) record(what string) {
	s.Trace = append(s.Trace, what)
}

// send delivers an event on the live subscription.
func (s *fakeSystem) send(t *testing.T, ev logind.Event) {
	t.Helper()
	s.Lock()
	events := s.events
	s.Unlock()
	if events == nil {
		t.Fatal("no subscription")
	}
	events <- ev
}

func (s *fakeSystem) terminatedSessions() []string {
	s.Lock()
	defer s.Unlock()
	return slices.Clone(s.terminated)
}

// fakeConn is one connection to the fake logind.
type fakeConn struct{ sys *fakeSystem }

func (c fakeConn) ListSessionRefsContext(context.Context) ([]logind.SessionRef, error) {
	c.sys.Lock()
	defer c.sys.Unlock()
	c.sys.record("list")
	refs := make([]logind.SessionRef, len(c.sys.Sessions))
	for i, s := range c.sys.Sessions {
		refs[i] = logind.SessionRef{ID: s.ID, Path: s.Path}
	}
	return refs, nil
}

func (c fakeConn) ListUsersContext(ctx context.Context) ([]logind.User, error) {
	return c.sys.ListUsersContext(ctx)
}

func (c fakeConn) SessionContext(ctx context.Context, path dbus.ObjectPath) (logind.Session, error) {
	c.sys.Lock()
	hung := c.sys.hungSession != "" && path == dbus.ObjectPath("/org/freedesktop/login1/session/"+c.sys.hungSession)
	c.sys.Unlock()
	if hung {
		<-ctx.Done()
		return logind.Session{}, fmt.Errorf("reading session %s: %w", path, ctx.Err())
	}
	c.sys.Lock()
	defer c.sys.Unlock()
	for _, s := range c.sys.Sessions {
		if s.Path == path {
			return s, nil
		}
	}
	return logind.Session{}, fmt.Errorf("reading session %s: %w", path, logind.ErrNoSuchSession)
}

// TerminateSessionContext ends a session as logind does: not at all when
// logind is stopping it already (closing).
func (c fakeConn) TerminateSessionContext(_ context.Context, id string) error {
	c.sys.Lock()
	defer c.sys.Unlock()
	c.sys.record("terminate " + id)
	if c.sys.terminateErr != nil {
		return c.sys.terminateErr
	}
	i := slices.IndexFunc(c.sys.Sessions, func(s logind.Session) bool { return s.ID == id })
	switch {
	case i < 0:
		return fmt.Errorf("terminating session %s: %w", id, logind.ErrNoSuchSession)
	case c.sys.Sessions[i].State == logind.StateClosing:
		return nil
	}
	c.sys.Sessions = slices.Delete(c.sys.Sessions, i, i+1)
	c.sys.terminated = append(c.sys.terminated, id)
	return nil
}

// KillAllOfSessionContext kills the processes of a session's scope, which
// ends the session.
func (c fakeConn) KillAllOfSessionContext(_ context.Context, id string, signal syscall.Signal) error {
	c.sys.Lock()
	defer c.sys.Unlock()
	c.sys.record(fmt.Sprintf("kill-session %s %d", id, signal))
	if c.sys.killAllErr != nil {
		return c.sys.killAllErr
	}
	i := slices.IndexFunc(c.sys.Sessions, func(s logind.Session) bool { return s.ID == id })
	if i < 0 {
		return fmt.Errorf("killing the processes of session %s: %w", id, logind.ErrNoSuchSession)
	}
	for pid, cgroup := range c.sys.Cgroups {
		if cgroup == policytest.ScopeCgroup(c.sys.Sessions[i]) {
			delete(c.sys.Netns, pid)
		}
	}
	c.sys.Sessions = slices.Delete(c.sys.Sessions, i, i+1)
	c.sys.terminated = append(c.sys.terminated, id)
	return nil
}

func (c fakeConn) SubscribeContext(context.Context) (<-chan logind.Event, error) {
	c.sys.Lock()
	defer c.sys.Unlock()
	c.sys.record("subscribe")
	if len(c.sys.subscribeErrs) > 0 {
		err := c.sys.subscribeErrs[0]
		c.sys.subscribeErrs = c.sys.subscribeErrs[1:]
		return nil, err
	}
	c.sys.events = make(chan logind.Event, 16)
	return c.sys.events, nil
}

func (c fakeConn) Close() error {
	c.sys.Lock()
	defer c.sys.Unlock()
	c.sys.record("close")
	return nil
}

// logRecord is one record the watcher logged.
type logRecord struct {
	prio   journal.Priority
	msg    string
	fields map[string]string
}

func (r logRecord) field(name string) string { return r.fields[name] }

// recordLog is a Logger that hands every record to the test at the
// priority the journal would get, without its empty fields, as eventLog
// writes them.
type recordLog struct{ records chan<- logRecord }

func (l recordLog) Info(msg string, fields map[string]string) { l.add(journal.PriInfo, msg, fields) }
func (l recordLog) Warning(msg string, fields map[string]string) {
	l.add(journal.PriWarning, msg, fields)
}
func (l recordLog) Error(msg string, fields map[string]string) { l.add(journal.PriErr, msg, fields) }
func (l recordLog) Alert(msg string, fields map[string]string) { l.add(journal.PriAlert, msg, fields) }
func (l recordLog) Debugf(format string, args ...any) {
	l.add(journal.PriDebug, fmt.Sprintf(format, args...), nil)
}

func (l recordLog) add(prio journal.Priority, msg string, fields map[string]string) {
	kept := map[string]string{}
	for k, v := range fields {
		if v != "" {
			kept[k] = v
		}
	}
	l.records <- logRecord{prio: prio, msg: msg, fields: kept}
}

// watchRun is a watcher running against a fake system.
type watchRun struct {
	sys     *fakeSystem
	records chan logRecord
	notes   chan string
	reloads chan Reload
	done    chan error

	mu      sync.Mutex
	config  string                 // what load reads
	enforce []config.EnforcePolicy // of each sync's config
}

func (r *watchRun) setConfig(text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.config = text
}

func (r *watchRun) syncs() []config.EnforcePolicy {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.enforce)
}

// startWatch runs a watcher with config, changed by opts, until the test
// ends.
func startWatch(t *testing.T, sys *fakeSystem, conf string, opts ...func(*Config)) *watchRun {
	t.Helper()
	r := &watchRun{
		sys:     sys,
		records: make(chan logRecord, 1000),
		notes:   make(chan string, 1000),
		reloads: make(chan Reload, 1),
		done:    make(chan error, 1),
		config:  conf,
	}
	c := Config{Log: recordLog{r.records}, Judge: sys.Judge(nil, configtest.Users())}
	c.Load = func() (*config.Config, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return config.Parse("test.conf", strings.NewReader(r.config))
	}
	c.Sync = func(_ context.Context, cfg *config.Config) (*reconcile.Report, error) {
		r.mu.Lock()
		r.enforce = append(r.enforce, cfg.Enforce)
		r.mu.Unlock()
		sys.Lock()
		sys.record("sync")
		sys.Unlock()
		return &reconcile.Report{Changes: []reconcile.Change{{Action: reconcile.Write, UID: 1000, User: "alice", Netns: "/run/netns/ns0", Reason: "user line"}}}, nil
	}
	c.LookupUID = configtest.Users().LookupUID
	c.ManagerPID = sys.ManagerPID
	c.Dial = func(context.Context) (Logind, error) {
		sys.Lock()
		defer sys.Unlock()
		sys.record("dial")
		return fakeConn{sys}, nil
	}
	c.Notify = func(state string) {
		sys.Lock()
		sys.record(strings.SplitN(state, "\n", 2)[0])
		sys.Unlock()
		r.notes <- state
	}
	// Time passes as fast as the watcher waits.
	var clockMu sync.Mutex
	clock := time.Now()
	c.Now = func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return clock
	}
	c.After = func(d time.Duration, f func()) {
		clockMu.Lock()
		clock = clock.Add(d)
		clockMu.Unlock()
		time.AfterFunc(time.Millisecond, f)
	}
	for _, opt := range opts {
		opt(&c)
	}
	w := New(c)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- w.Run(ctx, r.reloads) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("watcher did not stop")
		}
	})
	return r
}

// waitNote waits for the watcher to notify systemd of state and returns
// the whole notification.
func (r *watchRun) waitNote(t *testing.T, state string) string {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case note := <-r.notes:
			if strings.HasPrefix(note, state) {
				return note
			}
		case err := <-r.done:
			t.Fatalf("watcher ended before %s: %v", state, err)
		case <-timeout:
			t.Fatalf("no %s from the watcher", state)
		}
	}
}

// waitRecord returns the first record with all of fields, skipping others.
func (r *watchRun) waitRecord(t *testing.T, fields map[string]string) logRecord {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case rec := <-r.records:
			if matches(rec, fields) {
				return rec
			}
		case <-timeout:
			t.Fatalf("no record with %v", fields)
		}
	}
}

// verdictRecords waits for the records of n sessions and managers, and
// returns the last of each session by its ID and of a manager as "manager".
func (r *watchRun) verdictRecords(t *testing.T, n int) map[string]logRecord {
	t.Helper()
	got := map[string]logRecord{}
	for len(got) < n {
		rec := r.waitRecord(t, nil)
		switch {
		case rec.field("SESSION_ID") != "":
			got[rec.field("SESSION_ID")] = rec
		case rec.field("UNIT") != "":
			got["manager"] = rec
		}
	}
	return got
}

func matches(rec logRecord, fields map[string]string) bool {
	for k, v := range fields {
		if rec.field(k) != v {
			return false
		}
	}
	return true
}

// isSubsequence reports whether want appears in trace in order.
func isSubsequence(trace, want []string) bool {
	i := 0
	for _, step := range trace {
		if i < len(want) && step == want[i] {
			i++
		}
	}
	return i == len(want)
}

const aliceInNs0 = "alice ns0\n"

func TestWatchChecksEverythingOnStart(t *testing.T) {
	sys := newFakeSystem()
	sys.AddSession("1", "alice", 1000, 101, "user", netnstest.NS0)
	sys.AddSession("2", "alice", 1000, 102, "background", netnstest.Host)
	sys.AddSession("3", "carol", 1002, 103, "user", netnstest.Host)
	sys.AddSession("4", "alice", 1000, 104, logind.ClassGreeter, netnstest.Host)
	sys.AddSession("5", "alice", 1000, 105, "user", netns.ID{}) // leader exited
	sys.Users = []logind.User{{UID: 1000, Name: "alice"}}
	sys.Managers[1000] = 200
	sys.Netns[200] = netnstest.NS0
	r := startWatch(t, sys, aliceInNs0)
	r.waitNote(t, "READY=1")

	if got := sys.terminatedSessions(); !slices.Equal(got, []string{"2"}) {
		t.Errorf("terminated %v, want only session 2, whose leader runs on the host", got)
	}
	if trace := sys.Traced(); !isSubsequence(trace, []string{"sync", "dial", "subscribe", "list", "kill 102", "terminate 2", "READY=1"}) {
		t.Errorf("order of events %v: want the sync, then the subscription, then the check, then READY", trace)
	}
	want := map[string]map[string]string{
		"1": {"VERDICT": "ok", "ACTUAL_NETNS_ID": netnstest.NS0.String(), "EXPECTED_NETNS": "/run/netns/ns0"},
		"2": {"VERDICT": "violation", "ACTION": "terminate", "ACTUAL_NETNS_ID": netnstest.Host.String(), "EXPECTED_NETNS_ID": netnstest.NS0.String(), "LEADER": "102"},
		"3": {"VERDICT": "ok", "EXPECTED_NETNS": netns.HostPath},
		"4": {"VERDICT": "exempt", "CLASS": "greeter"},
		"5": {"VERDICT": "gone"},
	}
	got := r.verdictRecords(t, len(want)+1)
	for id, fields := range want {
		if !matches(got[id], fields) {
			t.Errorf("session %s: record %q %v, want fields %v", id, got[id].msg, got[id].fields, fields)
		}
	}
	if !matches(got["manager"], map[string]string{"UNIT": "user@1000.service", "VERDICT": "ok", "LEADER": "200"}) {
		t.Errorf("manager record %q %v", got["manager"].msg, got["manager"].fields)
	}
	if got["2"].prio != journal.PriWarning {
		t.Errorf("termination logged at priority %d, want warning", got["2"].prio)
	}
}

// TestWatchRecordsTheResolvConfSessionsSee: with ns0's own resolv.conf,
// each record of a session or manager in ns0 says which one its process
// sees; seeing the host's is recorded, not acted on.
func TestWatchRecordsTheResolvConfSessionsSee(t *testing.T) {
	sys := newFakeSystem()
	sys.GiveNS0ResolvConf()
	sys.AddSession("1", "alice", 1000, 101, "user", netnstest.NS0)
	sys.AddSession("2", "alice", 1000, 102, "user", netnstest.NS0)
	sys.AddSession("3", "carol", 1002, 103, "user", netnstest.Host)
	sys.ResolvConfs[101] = policytest.NS0ResolvConf
	sys.ResolvConfs[102] = policytest.HostResolvConf // opened before ns0 had it
	sys.ResolvConfs[103] = policytest.HostResolvConf
	sys.Users = []logind.User{{UID: 1000, Name: "alice"}}
	sys.Managers[1000], sys.Netns[200] = 200, netnstest.NS0
	sys.ResolvConfErrs[200] = syscall.EACCES
	r := startWatch(t, sys, aliceInNs0)
	r.waitNote(t, "READY=1")

	want := map[string]map[string]string{
		"1":       {"VERDICT": "ok", "RESOLV_CONF": "namespace"},
		"2":       {"VERDICT": "ok", "RESOLV_CONF": "host"},
		"3":       {"VERDICT": "ok", "RESOLV_CONF": ""}, // carol is on the host: not looked at
		"manager": {"VERDICT": "ok", "RESOLV_CONF": "unknown", "RESOLV_CONF_ERROR": "looking up /etc/resolv.conf as process 200 sees it: permission denied"},
	}
	got := r.verdictRecords(t, len(want))
	for id, fields := range want {
		if !matches(got[id], fields) || got[id].prio != journal.PriInfo {
			t.Errorf("%s: record %q %v at priority %d, want fields %v at info", id, got[id].msg, got[id].fields, got[id].prio, fields)
		}
	}
	if terminated := sys.terminatedSessions(); len(terminated) > 0 {
		t.Errorf("terminated %v, want none", terminated)
	}
}

func TestWatchNewSessions(t *testing.T) {
	tests := []struct {
		name   string
		config string
		// session is added before its SessionNew, unless gone is set.
		user      string
		uid       uint32
		class     string
		netns     netns.ID
		gone      bool
		terminate error // TerminateSession's answer
		killAll   error // KillSession's answer
		kill      error // the answer to killing the leader
		// state is the session's, "active" if empty.
		state string
		// started is when the process on the leader's PID started since
		// boot; the session was created at policytest.SessionCreated.
		started time.Duration
		want    map[string]string
		prio    journal.Priority
		// terminated says whether the session must be gone afterwards.
		terminated bool
		// inScope puts the leader in its session's scope, as logind does
		// once the session is set up; otherwise it runs outside, as a young
		// session's leader does.
		inScope bool
	}{
		{name: "escaped session is terminated", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host,
			want: map[string]string{"VERDICT": "violation", "ACTION": "terminate", "ACTUAL_NETNS_ID": netnstest.Host.String()}, prio: journal.PriWarning, terminated: true},
		{name: "established session is terminated and its scope killed", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host, inScope: true,
			want: map[string]string{"VERDICT": "violation", "ACTION": "terminate"}, prio: journal.PriWarning, terminated: true},
		// The fake leaders run outside the session's scope, as a young
		// session's leader does: their start time proves them.
		{name: "young session whose leader is proven by its start time is killed and terminated", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host,
			started: policytest.SessionCreated - time.Millisecond,
			want:    map[string]string{"VERDICT": "violation", "ACTION": "terminate", "STATE": "active"}, prio: journal.PriWarning, terminated: true},
		{name: "process that reused the PID of an exited leader is not killed", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host,
			started: policytest.SessionCreated + time.Minute,
			want:    map[string]string{"VERDICT": "gone", "ACTION": "", "ACTUAL_NETNS_ID": ""}, prio: journal.PriInfo},
		{name: "closing session is ended through logind, never through its leader", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host,
			state: logind.StateClosing,
			want:  map[string]string{"VERDICT": "violation", "ACTION": "terminate", "STATE": "closing"}, prio: journal.PriWarning, terminated: true},
		{name: "process that reused the PID of a closing session's leader is not killed", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host,
			state: logind.StateClosing, started: policytest.SessionCreated + time.Minute,
			want: map[string]string{"VERDICT": "gone", "ACTION": ""}, prio: journal.PriInfo},
		{name: "escaped background session is terminated", config: aliceInNs0, user: "alice", uid: 1000, class: "background", netns: netnstest.NS1,
			want: map[string]string{"VERDICT": "violation", "ACTION": "terminate", "ACTUAL_NETNS_ID": netnstest.NS1.String()}, prio: journal.PriWarning, terminated: true},
		{name: "escaped session with enforce = warn is only logged", config: "enforce = warn\n" + aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host,
			want: map[string]string{"VERDICT": "violation", "ACTION": "warn"}, prio: journal.PriWarning},
		{name: "compliant session is left alone", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.NS0,
			want: map[string]string{"VERDICT": "ok", "ACTION": ""}, prio: journal.PriInfo},
		{name: "unmapped user on the host is compliant", config: aliceInNs0, user: "carol", uid: 1002, class: "user", netns: netnstest.Host,
			want: map[string]string{"VERDICT": "ok"}, prio: journal.PriInfo},
		{name: "unmapped user in a namespace is terminated", config: aliceInNs0, user: "carol", uid: 1002, class: "user", netns: netnstest.NS0,
			want: map[string]string{"VERDICT": "violation", "ACTION": "terminate"}, prio: journal.PriWarning, terminated: true},
		{name: "lock screen is exempt", config: aliceInNs0, user: "alice", uid: 1000, class: logind.ClassLockScreen, netns: netnstest.Host,
			want: map[string]string{"VERDICT": "exempt"}, prio: journal.PriInfo},
		{name: "manager session is exempt", config: aliceInNs0, user: "alice", uid: 1000, class: logind.ClassManager, netns: netnstest.Host,
			want: map[string]string{"VERDICT": "exempt"}, prio: journal.PriInfo},
		{name: "session ended before it was read", config: aliceInNs0, user: "alice", uid: 1000, gone: true,
			want: map[string]string{"VERDICT": "gone"}, prio: journal.PriInfo},
		{name: "leader exited before it was looked at", config: aliceInNs0, user: "alice", uid: 1000, class: "user",
			want: map[string]string{"VERDICT": "gone"}, prio: journal.PriInfo},
		{name: "session that ended meanwhile counts as terminated", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host,
			terminate: fmt.Errorf("terminating session 9: %w", logind.ErrNoSuchSession),
			want:      map[string]string{"VERDICT": "violation", "ACTION": "terminate"}, prio: journal.PriWarning},
		{name: "leader that cannot be killed is an error", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host,
			kill: fmt.Errorf("killing leader 900: %w", syscall.EPERM),
			want: map[string]string{"VERDICT": "violation", "ACTION": "terminate-failed"}, prio: journal.PriErr, terminated: true},
		{name: "leader that exited meanwhile is fine", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host,
			kill: syscall.ESRCH,
			want: map[string]string{"VERDICT": "violation", "ACTION": "terminate"}, prio: journal.PriWarning, terminated: true},
		{name: "session whose termination timed out is ended by killing its scope", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host, inScope: true,
			terminate: fmt.Errorf("terminating session 9: %w", context.DeadlineExceeded),
			want:      map[string]string{"VERDICT": "violation", "ACTION": "terminate"}, prio: journal.PriWarning, terminated: true},
		{name: "refused termination and kill of the scope is an error", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host, inScope: true,
			terminate: errors.New("terminating session 9: access denied"), killAll: errors.New("killing the processes of session 9: access denied"),
			want: map[string]string{"VERDICT": "violation", "ACTION": "terminate-failed"}, prio: journal.PriErr},
		{name: "refused kill of the scope is an error", config: aliceInNs0, user: "alice", uid: 1000, class: "user", netns: netnstest.Host, inScope: true,
			killAll: errors.New("killing the processes of session 9: access denied"),
			want:    map[string]string{"VERDICT": "violation", "ACTION": "terminate-failed"}, prio: journal.PriErr},
		{name: "unknown user is not acted on", config: "* ns0\n", user: "mallory", uid: 1666, class: "user", netns: netnstest.Host,
			want: map[string]string{"VERDICT": "unknown"}, prio: journal.PriErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := newFakeSystem()
			sys.terminateErr, sys.killAllErr, sys.KillErr = tt.terminate, tt.killAll, tt.kill
			r := startWatch(t, sys, tt.config)
			r.waitNote(t, "READY=1")

			path := dbus.ObjectPath("/org/freedesktop/login1/session/9")
			if !tt.gone {
				path = sys.AddSession("9", tt.user, tt.uid, 900, tt.class, tt.netns).Path
				sys.Lock()
				sys.Started[900] = tt.started
				if tt.inScope {
					sys.Cgroups[900] = fmt.Sprintf("/user.slice/user-%d.slice/session-9.scope", tt.uid)
				}
				if tt.state != "" {
					sys.Sessions[len(sys.Sessions)-1].State = tt.state
				}
				sys.Unlock()
			}
			sys.send(t, logind.Event{Kind: logind.SessionNew, SessionID: "9", Path: path})
			rec := r.waitRecord(t, map[string]string{"SESSION_ID": "9"})
			if !matches(rec, tt.want) {
				t.Errorf("record %q %v, want fields %v", rec.msg, rec.fields, tt.want)
			}
			if rec.prio != tt.prio {
				t.Errorf("priority %d, want %d", rec.prio, tt.prio)
			}
			if got := slices.Contains(sys.terminatedSessions(), "9"); got != tt.terminated {
				t.Errorf("session terminated: %t, want %t", got, tt.terminated)
			}
			// The leader dies first, so that it cannot go on outside the
			// session whose scope is stopped; a closing session's leader is
			// never killed.
			trace := sys.Traced()
			switch {
			case tt.state == logind.StateClosing && slices.Contains(trace, "kill 900"):
				t.Errorf("trace %v: the leader of a closing session killed", trace)
			case tt.state == logind.StateClosing:
			case tt.want["ACTION"] == "terminate" || tt.want["ACTION"] == "terminate-failed":
				// The scope of a leader in it is killed whatever
				// TerminateSession answered, unless that the session no
				// longer exists; a young session's is spared the call.
				want := []string{"kill 900", "terminate 9"}
				killScope := tt.inScope && !errors.Is(tt.terminate, logind.ErrNoSuchSession)
				if killScope {
					want = append(want, "kill-session 9 9")
				} else if slices.Contains(trace, "kill-session 9 9") {
					t.Errorf("trace %v: the scope killed, of a young session or one that no longer exists", trace)
				}
				if !isSubsequence(trace, want) {
					t.Errorf("trace %v: want %v: the leader killed, then the session terminated (and its scope killed)", trace, want)
				}
			case slices.Contains(trace, "kill 900"):
				t.Errorf("leader killed with action %q", tt.want["ACTION"])
			}
			if tt.want["ACTION"] == "" && slices.Contains(trace, "terminate 9") {
				t.Errorf("trace %v: session terminated without an action logged", trace)
			}
		})
	}
}

// TestWatchEndsASessionJudgedByItsScopeThroughLogind: a session whose
// leader is gone is judged by the process it left in its scope; on a
// violation it is ended through logind's TerminateSession, and no process
// is signalled: not the one judged, not the one on the leader's PID.
func TestWatchEndsASessionJudgedByItsScopeThroughLogind(t *testing.T) {
	const scope = "/user.slice/user-1000.slice/session-9.scope"
	tests := []struct {
		name  string
		state string
		// squatter is a process of root on the host on the leader's PID,
		// started after the session; none: the PID is free.
		squatter bool
		// leftover is where the process left in the scope runs.
		leftover netns.ID
		want     map[string]string
	}{
		{name: "closing session on the host", state: logind.StateClosing, leftover: netnstest.Host,
			want: map[string]string{"VERDICT": "violation", "ACTION": "terminate", "JUDGED": "scope", "JUDGED_PID": "901"}},
		{name: "root's process on the leader's PID is not the session", state: logind.StateClosing, squatter: true, leftover: netnstest.Host,
			want: map[string]string{"VERDICT": "violation", "ACTION": "terminate", "JUDGED": "scope", "JUDGED_PID": "901"}},
		{name: "active session whose leader exited", state: "active", leftover: netnstest.Host,
			want: map[string]string{"VERDICT": "violation", "ACTION": "terminate", "JUDGED": "scope", "JUDGED_PID": "901"}},
		{name: "leftover process in its namespace", state: logind.StateClosing, squatter: true, leftover: netnstest.NS0,
			want: map[string]string{"VERDICT": "ok", "ACTION": "", "JUDGED": "scope", "JUDGED_PID": "901"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := newFakeSystem()
			r := startWatch(t, sys, aliceInNs0)
			r.waitNote(t, "READY=1")
			ls := sys.AddSession("9", "alice", 1000, 900, "user", netns.ID{})
			sys.Lock()
			sys.Sessions[len(sys.Sessions)-1].State = tt.state
			if tt.squatter {
				sys.Netns[900], sys.Started[900] = netnstest.Host, policytest.SessionCreated+time.Minute
			}
			sys.Netns[901], sys.Cgroups[901], sys.UIDs[901] = tt.leftover, scope, 1000
			sys.Unlock()

			sys.send(t, logind.Event{Kind: logind.SessionNew, SessionID: "9", Path: ls.Path})
			rec := r.waitRecord(t, map[string]string{"SESSION_ID": "9"})
			if !matches(rec, tt.want) {
				t.Errorf("record %q %v, want fields %v", rec.msg, rec.fields, tt.want)
			}
			terminated := tt.want["ACTION"] == "terminate"
			if got := slices.Contains(sys.terminatedSessions(), "9"); got != terminated {
				t.Errorf("session terminated: %t, want %t", got, terminated)
			}
			trace := sys.Traced()
			for _, step := range trace {
				if strings.HasPrefix(step, "kill ") {
					t.Errorf("trace %v: a process was signalled; want the session ended through logind only", trace)
				}
			}
			// logind ignores TerminateSession for a closing session; its
			// KillSession kills the scope's processes by their cgroup.
			if terminated && !isSubsequence(trace, []string{"terminate 9", "kill-session 9 9"}) {
				t.Errorf("trace %v: want TerminateSession, then KillSession with SIGKILL", trace)
			}
		})
	}
}

func TestWatchResubscribesWhenLogindRestarts(t *testing.T) {
	sys := newFakeSystem()
	r := startWatch(t, sys, aliceInNs0)
	r.waitNote(t, "READY=1")

	// Opened while logind restarted: never announced.
	sys.AddSession("7", "alice", 1000, 700, "user", netnstest.Host)
	sys.send(t, logind.Event{Kind: logind.LogindStopped})
	sys.send(t, logind.Event{Kind: logind.LogindStarted})
	r.waitRecord(t, map[string]string{"SESSION_ID": "7", "ACTION": "terminate"})

	trace := sys.Traced()
	if !isSubsequence(trace, []string{"dial", "subscribe", "list", "close", "dial", "subscribe", "list", "terminate 7"}) {
		t.Errorf("trace %v: want a new subscription and a new check after logind restarted", trace)
	}
	// The new subscription is live.
	sys.AddSession("8", "alice", 1000, 800, "user", netnstest.Host)
	sys.send(t, logind.Event{Kind: logind.SessionNew, SessionID: "8", Path: "/org/freedesktop/login1/session/8"})
	r.waitRecord(t, map[string]string{"SESSION_ID": "8", "ACTION": "terminate"})
}

func TestWatchReconnectsWhenTheBusCloses(t *testing.T) {
	sys := newFakeSystem()
	r := startWatch(t, sys, aliceInNs0)
	r.waitNote(t, "READY=1")
	sys.Lock()
	close(sys.events) // what a subscription does when its connection drops
	sys.events = nil
	sys.Unlock()
	r.waitRecord(t, map[string]string{"ACTION": "reconnect"})

	deadline := time.Now().Add(5 * time.Second)
	for sys.Traced()[len(sys.Traced())-1] != "list" {
		if time.Now().After(deadline) {
			t.Fatalf("no new subscription and check: %v", sys.Traced())
		}
		time.Sleep(time.Millisecond)
	}
	sys.AddSession("8", "alice", 1000, 800, "user", netnstest.Host)
	sys.send(t, logind.Event{Kind: logind.SessionNew, SessionID: "8", Path: "/org/freedesktop/login1/session/8"})
	r.waitRecord(t, map[string]string{"SESSION_ID": "8", "ACTION": "terminate"})
}

func TestWatchRetriesFailedSubscription(t *testing.T) {
	sys := newFakeSystem()
	addMatch := errors.New("subscribing to logind's SessionNew signals: org.freedesktop.DBus.Error.LimitsExceeded")
	sys.subscribeErrs = []error{addMatch, addMatch}
	r := startWatch(t, sys, aliceInNs0)

	rec := r.waitRecord(t, map[string]string{"ACTION": "reconnect"})
	if !strings.Contains(rec.msg, addMatch.Error()) {
		t.Errorf("warning %q does not give the error", rec.msg)
	}
	r.waitNote(t, "READY=1")
	trace := sys.Traced()
	if !isSubsequence(trace, []string{"subscribe", "close", "subscribe", "close", "subscribe", "list", "READY=1"}) {
		t.Errorf("trace %v: want READY only after a subscription succeeded", trace)
	}
}

func TestWatchReload(t *testing.T) {
	sys := newFakeSystem()
	sys.AddSession("3", "carol", 1002, 300, "user", netnstest.Host)
	verdict := make(chan error, 1)
	// Whether the verdict had been given when the status was told:
	// systemctl reload returns with the verdict, and must find the status.
	verdictBeforeStatus := make(chan bool, 1)
	r := startWatch(t, sys, aliceInNs0, func(c *Config) {
		notify := c.Notify
		c.Notify = func(state string) {
			if state == "STATUS=watching logind sessions" {
				verdictBeforeStatus <- len(verdict) > 0
			}
			notify(state)
		}
	})
	r.waitNote(t, "READY=1")
	r.waitRecord(t, map[string]string{"SESSION_ID": "3", "VERDICT": "ok"})

	// carol is mapped now, with warn: her session violates and stays.
	r.setConfig("enforce = warn\ncarol ns1\n")
	r.reloads <- Reload{Done: verdict}
	r.waitNote(t, "RELOADING=1")
	r.waitRecord(t, map[string]string{"ACTION": "reload", "ENFORCE": "warn"})
	r.waitNote(t, "STATUS=watching logind sessions")
	if <-verdictBeforeStatus {
		t.Error("the verdict was given before the status was told")
	}
	if err := waitVerdict(t, verdict); err != nil {
		t.Errorf("verdict on a good config: %v, want nil", err)
	}
	r.waitRecord(t, map[string]string{"SESSION_ID": "3", "VERDICT": "violation", "ACTION": "warn"})
	r.waitNote(t, "READY=1")
	if got := r.syncs(); !slices.Equal(got, []config.EnforcePolicy{config.EnforceTerminate, config.EnforceWarn}) {
		t.Errorf("syncs with enforce %v: want one at start and one with the new config", got)
	}

	// A broken config is refused; the one in force stays.
	// The verdict is the load's error, and systemd's status says it.
	r.setConfig("carol ns1 extra\n")
	r.reloads <- Reload{Done: verdict}
	rec := r.waitRecord(t, map[string]string{"ACTION": "reload-refused"})
	if rec.prio != journal.PriAlert || !strings.Contains(rec.msg, "test.conf:1") {
		t.Errorf("refusal %q at priority %d: want an alert naming the line", rec.msg, rec.prio)
	}
	if err := waitVerdict(t, verdict); !errors.Is(err, ErrReloadRefused) || !strings.Contains(err.Error(), "test.conf:1: 3 fields") {
		t.Errorf("verdict on a broken config: %v, want ErrReloadRefused naming the line", err)
	}
	note := r.waitNote(t, "READY=1\nSTATUS=watching logind sessions; reload refused at ")
	if !strings.HasSuffix(note, "the config loaded before stays in force: test.conf:1: 3 fields, want 2: SELECTOR NETNS (comments start with #)") {
		t.Errorf("status after the refusal: %q, want it to name the problem", note)
	}
	sys.AddSession("4", "carol", 1002, 400, "user", netnstest.Host)
	sys.send(t, logind.Event{Kind: logind.SessionNew, SessionID: "4", Path: "/org/freedesktop/login1/session/4"})
	r.waitRecord(t, map[string]string{"SESSION_ID": "4", "VERDICT": "violation", "ACTION": "warn"})
	if got := len(r.syncs()); got != 2 {
		t.Errorf("%d syncs, want none for a refused config", got)
	}
	if got := sys.terminatedSessions(); len(got) != 0 {
		t.Errorf("terminated %v under enforce = warn", got)
	}
}

// waitVerdict returns the verdict of a reload.
func waitVerdict(t *testing.T, verdict <-chan error) error {
	t.Helper()
	select {
	case err := <-verdict:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no verdict on the reload")
		return nil
	}
}

// TestWatchReloadStatusNamesTheFirstProblem: systemctl status shows one
// line, so the status names the first problem of a config and counts the
// others.
func TestWatchReloadStatusNamesTheFirstProblem(t *testing.T) {
	now := time.Date(2026, 11, 3, 14, 5, 6, 0, time.UTC)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "one problem", err: errors.New("a.conf:1: bad"),
			want: "watching logind sessions; reload refused at 14:05:06, the config loaded before stays in force: a.conf:1: bad"},
		{name: "three problems", err: errors.New("a.conf:1: bad\na.conf:2: worse\nb.conf:7: worst"),
			want: "watching logind sessions; reload refused at 14:05:06, the config loaded before stays in force: a.conf:1: bad (and 2 more problems)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refusedStatus(tt.err, now); got != tt.want {
				t.Errorf("status %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWatchUserManagers(t *testing.T) {
	sys := newFakeSystem()
	sys.ManagerStarts[1000] = 3 // not running for the first three looks
	sys.Managers[1000] = 500
	sys.Netns[500] = netnstest.Host
	r := startWatch(t, sys, aliceInNs0)
	r.waitNote(t, "READY=1")

	sys.send(t, logind.Event{Kind: logind.UserNew, UID: 1000, Path: "/org/freedesktop/login1/user/_1000"})
	rec := r.waitRecord(t, map[string]string{"UNIT": "user@1000.service"})
	if !matches(rec, map[string]string{"VERDICT": "violation", "ACTION": "warn", "LEADER": "500", "USER": "alice"}) {
		t.Errorf("manager record %q %v", rec.msg, rec.fields)
	}
	if !strings.Contains(rec.msg, "systemctl stop user@1000.service") {
		t.Errorf("warning %q does not say how to fix it", rec.msg)
	}

	// A session of the same user does not judge the same manager again, and
	// a misplaced manager is never stopped by terminating sessions.
	sys.AddSession("5", "alice", 1000, 501, "user", netnstest.NS0)
	sys.send(t, logind.Event{Kind: logind.SessionNew, SessionID: "5", Path: "/org/freedesktop/login1/session/5"})
	r.waitRecord(t, map[string]string{"SESSION_ID": "5", "VERDICT": "ok"})
	sys.send(t, logind.Event{Kind: logind.SessionRemoved, SessionID: "5"}) // a marker: handled after any manager check
	time.Sleep(20 * time.Millisecond)
	for len(r.records) > 0 {
		if rec := <-r.records; rec.field("UNIT") != "" {
			t.Errorf("manager judged twice: %q", rec.msg)
		}
	}
	if got := sys.terminatedSessions(); len(got) != 0 {
		t.Errorf("terminated %v", got)
	}
}

// TestWatchJudgesAManagerByItsUID judges a manager whose user the watcher
// knows by a name that is no longer its UID's (renamed, or given to another
// UID, while the watcher kept it): the verdict follows the UID, the name is
// only printed.
func TestWatchJudgesAManagerByItsUID(t *testing.T) {
	sys := newFakeSystem()
	// carol's UID, under alice's old name; alice's line wants ns0, carol's
	// policy the host.
	sys.Users = []logind.User{{UID: 1002, Name: "alice"}}
	sys.Managers[1002] = 500
	sys.Netns[500] = netnstest.NS0
	r := startWatch(t, sys, aliceInNs0)
	r.waitNote(t, "READY=1")
	rec := r.waitRecord(t, map[string]string{"UNIT": "user@1002.service"})
	if !matches(rec, map[string]string{"VERDICT": "violation", "EXPECTED_NETNS": netns.HostPath, "LEADER": "500"}) {
		t.Errorf("manager record %q %v: want uid 1002 judged by its own policy, the host", rec.msg, rec.fields)
	}
}

// TestWatchManagerOnItsWayIn starts a manager whose process is still in the
// host's namespace when it is first seen, as systemd's child is before it
// enters the namespace of NetworkNamespacePath= and execs the manager.
func TestWatchManagerOnItsWayIn(t *testing.T) {
	sys := newFakeSystem()
	sys.Managers[1000] = 500
	sys.Netns[500] = netnstest.Host
	looks := 0
	sys.OnManagerLook = func(uint32) {
		if looks++; looks == 3 {
			sys.Netns[500] = netnstest.NS0
		}
	}
	r := startWatch(t, sys, aliceInNs0)
	r.waitNote(t, "READY=1")
	sys.send(t, logind.Event{Kind: logind.UserNew, UID: 1000, Path: "/org/freedesktop/login1/user/_1000"})
	rec := r.waitRecord(t, map[string]string{"UNIT": "user@1000.service"})
	if !matches(rec, map[string]string{"VERDICT": "ok", "ACTUAL_NETNS_ID": netnstest.NS0.String()}) {
		t.Errorf("manager record %q %v: want it judged once in its namespace", rec.msg, rec.fields)
	}
}

// TestWatchManagerOfAUserNotYetLookedUp: the lookup of a new user's name
// fails (the directory is down) when logind announces the user; the manager
// is watched by UID all the same, reported unknown while the name cannot be
// looked up, and judged once it can.
func TestWatchManagerOfAUserNotYetLookedUp(t *testing.T) {
	sys := newFakeSystem()
	sys.Managers[1000] = 500
	sys.Netns[500] = netnstest.Host
	var mu sync.Mutex
	failures := 3
	r := startWatch(t, sys, aliceInNs0, func(c *Config) {
		lookup := c.LookupUID
		c.LookupUID = func(uid uint32) (*config.User, error) {
			mu.Lock()
			defer mu.Unlock()
			if failures > 0 {
				failures--
				return nil, fmt.Errorf("looking up uid %d: %w", uid, errors.New("connection to LDAP server lost"))
			}
			return lookup(uid)
		}
	})
	r.waitNote(t, "READY=1")
	sys.send(t, logind.Event{Kind: logind.UserNew, UID: 1000, Path: "/org/freedesktop/login1/user/_1000"})
	rec := r.waitRecord(t, map[string]string{"UNIT": "user@1000.service"})
	if !matches(rec, map[string]string{"VERDICT": "unknown", "ACTION": "", "LEADER": "500"}) || rec.prio != journal.PriErr {
		t.Errorf("first manager record %q %v at priority %d: want an unknown verdict, logged as an error, not acted on", rec.msg, rec.fields, rec.prio)
	}
	rec = r.waitRecord(t, map[string]string{"UNIT": "user@1000.service"})
	if !matches(rec, map[string]string{"VERDICT": "violation", "ACTION": "warn", "USER": "alice", "LEADER": "500"}) {
		t.Errorf("manager record once the name was found: %q %v, want alice's manager judged a violation", rec.msg, rec.fields)
	}
}

func TestWatchRefusesBrokenConfigAtStart(t *testing.T) {
	sys := newFakeSystem()
	r := startWatch(t, sys, "alice\n")
	select {
	case err := <-r.done:
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "test.conf:1") {
			t.Errorf("err = %v, want ErrConfig naming the line", err)
		}
		r.done <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("watcher runs with a broken config")
	}
	if trace := sys.Traced(); len(trace) != 0 {
		t.Errorf("a watcher with a broken config did %v", trace)
	}
}

func TestWatchPingsTheWatchdog(t *testing.T) {
	r := startWatch(t, newFakeSystem(), aliceInNs0, func(c *Config) { c.Watchdog = time.Millisecond })
	r.waitNote(t, "READY=1")
	r.waitNote(t, "WATCHDOG=1")
}

func TestWatchGivesUpASyncThatHangs(t *testing.T) {
	sys := newFakeSystem()
	sys.AddSession("2", "alice", 1000, 102, "user", netnstest.Host)
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	deadlines := make(chan bool, 1)
	r := startWatch(t, sys, aliceInNs0, func(c *Config) {
		c.SyncTimeout = 20 * time.Millisecond
		// An NSS lookup that does not answer, whatever the context says.
		c.Sync = func(ctx context.Context, _ *config.Config) (*reconcile.Report, error) {
			_, ok := ctx.Deadline()
			deadlines <- ok
			<-hung
			return nil, ctx.Err()
		}
	})
	if rec := r.waitRecord(t, map[string]string{"ACTION": "sync"}); !strings.Contains(rec.msg, "gave up after 20ms") {
		t.Errorf("sync record %q, want it to say the sync was given up", rec.msg)
	}
	if !<-deadlines {
		t.Error("the sync's context has no deadline")
	}
	r.waitNote(t, "READY=1")
	if got := sys.terminatedSessions(); !slices.Equal(got, []string{"2"}) {
		t.Errorf("terminated %v after the hung sync, want [2]", got)
	}
}

func TestWatchGivesEachLogindCallItsOwnTime(t *testing.T) {
	sys := newFakeSystem()
	sys.AddSession("1", "alice", 1000, 101, "user", netnstest.Host)
	sys.AddSession("2", "alice", 1000, 102, "user", netnstest.Host)
	sys.AddSession("3", "alice", 1000, 103, "user", netnstest.Host)
	sys.hungSession = "1"
	r := startWatch(t, sys, aliceInNs0, func(c *Config) { c.CallTimeout = 50 * time.Millisecond })
	rec := r.waitRecord(t, map[string]string{"SESSION_ID": "1"})
	if rec.prio != journal.PriErr || !strings.Contains(rec.msg, "checking session 1: ") {
		t.Errorf("record of the hung session: %d %q, want an error checking it", rec.prio, rec.msg)
	}
	r.waitNote(t, "READY=1")
	// The sessions read after the hung one had time of their own.
	if got := sys.terminatedSessions(); !slices.Equal(got, []string{"2", "3"}) {
		t.Errorf("terminated %v, want [2 3]", got)
	}
}

func TestWatchPingsBetweenTheStepsOfACheck(t *testing.T) {
	sys := newFakeSystem()
	sys.Users = []logind.User{{UID: 1000, Name: "alice"}, {UID: 1002, Name: "carol"}}
	sys.Managers[1000], sys.Netns[200] = 200, netnstest.NS0
	sys.Managers[1002], sys.Netns[202] = 202, netnstest.Host
	var clockMu sync.Mutex
	clock := time.Now()
	// Each look at a manager takes an hour: longer than the interval.
	sys.OnManagerLook = func(uint32) {
		clockMu.Lock()
		clock = clock.Add(time.Hour)
		clockMu.Unlock()
	}
	r := startWatch(t, sys, aliceInNs0, func(c *Config) {
		c.Watchdog = time.Hour // the ticker does not fire during the test
		c.Now = func() time.Time {
			clockMu.Lock()
			defer clockMu.Unlock()
			return clock
		}
	})
	r.waitNote(t, "READY=1")
	trace := sys.Traced()
	if !isSubsequence(trace, []string{"WATCHDOG=1", "list", "WATCHDOG=1", "READY=1"}) {
		t.Errorf("trace %v: want a ping before the sync and one between the looks at the managers", trace)
	}
}

// TestWatchNeverTerminatesOnUnknownVerdict judges sessions, placed while the
// user database answered, after a source went down: the verdict is unknown
// and nothing is killed or terminated, at start, for a new session and after
// a reload.
func TestWatchNeverTerminatesOnUnknownVerdict(t *testing.T) {
	tests := []struct {
		name   string
		config string
		user   string // uid 1000
		down   string
	}{
		// alice is in research by its member list; getgrnam_r fails.
		{name: "group source down", config: "@research ns0\n", user: "alice", down: "research"},
		// alias is alice's uid, and alice has no line: the line before
		// alias's cannot be looked up.
		{name: "source of an earlier user line down", config: "erin ns1\nalias ns0\n", user: "alice", down: "erin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := newFakeSystem()
			user := tt.user
			sys.AddSession("1", user, 1000, 101, "user", netnstest.NS0)
			sys.Users = []logind.User{{UID: 1000, Name: user}}
			sys.Managers[1000], sys.Netns[200] = 200, netnstest.NS0
			users := configtest.AliasUsers(tt.down)
			r := startWatch(t, sys, tt.config, func(c *Config) { c.Judge.Users = users })
			r.waitNote(t, "READY=1")
			unknown := map[string]string{"SESSION_ID": "1", "VERDICT": "unknown"}
			if rec := r.waitRecord(t, unknown); rec.prio != journal.PriErr || rec.field("ACTION") != "" {
				t.Errorf("record %q %v: want an error and no action", rec.msg, rec.fields)
			}
			r.waitRecord(t, map[string]string{"UNIT": "user@1000.service", "VERDICT": "unknown"})

			sys.AddSession("2", user, 1000, 102, "user", netnstest.Host)
			sys.send(t, logind.Event{Kind: logind.SessionNew, SessionID: "2", Path: "/org/freedesktop/login1/session/2"})
			r.waitRecord(t, map[string]string{"SESSION_ID": "2", "VERDICT": "unknown"})

			r.reloads <- Reload{}
			r.waitNote(t, "RELOADING=1")
			r.waitRecord(t, unknown)
			r.waitNote(t, "READY=1")
			if got := sys.terminatedSessions(); len(got) != 0 {
				t.Errorf("terminated %v on an unknown verdict", got)
			}
			for _, step := range sys.Traced() {
				if strings.HasPrefix(step, "kill ") {
					t.Errorf("trace %v: a leader was killed on an unknown verdict", sys.Traced())
					break
				}
			}
		})
	}
}

// TestNewRefusesAMissingDependency: a Config without one of the functions
// the watcher cannot do without is refused at New, naming the field, not
// on the first event that needs it.
func TestNewRefusesAMissingDependency(t *testing.T) {
	complete := func() Config {
		return Config{
			Log: recordLog{}, Judge: &policy.Judge{},
			Load:       func() (*config.Config, error) { return nil, nil },
			Sync:       func(context.Context, *config.Config) (*reconcile.Report, error) { return nil, nil },
			LookupUID:  func(uint32) (*config.User, error) { return nil, nil },
			ManagerPID: func(uint32) (int, error) { return 0, nil },
			Dial:       func(context.Context) (Logind, error) { return nil, nil },
		}
	}
	tests := []struct {
		field string
		drop  func(*Config)
	}{
		{"Log", func(c *Config) { c.Log = nil }},
		{"Judge", func(c *Config) { c.Judge = nil }},
		{"Load", func(c *Config) { c.Load = nil }},
		{"Sync", func(c *Config) { c.Sync = nil }},
		{"LookupUID", func(c *Config) { c.LookupUID = nil }},
		{"ManagerPID", func(c *Config) { c.ManagerPID = nil }},
		{"Dial", func(c *Config) { c.Dial = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			c := complete()
			tt.drop(&c)
			defer func() {
				if got, want := fmt.Sprint(recover()), "watch.New: Config."+tt.field+" is nil"; got != want {
					t.Errorf("New panicked with %q, want %q", got, want)
				}
			}()
			New(c)
		})
	}
	New(complete()) // and one with everything does not panic
}
