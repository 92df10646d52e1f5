package logind

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// fakeBus answers method calls from handlers, records match rules and hands
// the registered signal channel to the test. Bodies have the shapes godbus
// decodes from the wire: structs as []any, a(susso) as [][]any.
type fakeBus struct {
	// handlers answer "PATH METHOD" calls; a call without one fails as the
	// bus fails a call to an object that does not exist.
	handlers map[string]func(args []any) ([]any, error)
	// failMatch makes the addMatch whose rule contains it fail.
	failMatch string
	matches   []string
	signals   chan<- *dbus.Signal
	closed    chan struct{}
}

func newFakeBus() *fakeBus {
	return &fakeBus{handlers: map[string]func([]any) ([]any, error){}, closed: make(chan struct{})}
}

func (f *fakeBus) handle(path dbus.ObjectPath, method string, h func(args []any) ([]any, error)) {
	f.handlers[string(path)+" "+method] = h
}

func (f *fakeBus) call(_ context.Context, dest string, path dbus.ObjectPath, method string, args []any, out ...any) error {
	h, ok := f.handlers[string(path)+" "+method]
	if !ok {
		return dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownObject", Body: []any{fmt.Sprintf("Unknown object '%s'.", path)}}
	}
	body, err := h(args)
	if err != nil {
		return err
	}
	return dbus.Store(body, out...)
}

func (f *fakeBus) addMatch(_ context.Context, rule ...dbus.MatchOption) error {
	var parts []string
	for _, o := range rule {
		parts = append(parts, fmt.Sprint(o))
	}
	text := strings.Join(parts, ",")
	if f.failMatch != "" && strings.Contains(text, f.failMatch) {
		return dbus.Error{Name: "org.freedesktop.DBus.Error.LimitsExceeded", Body: []any{"too many matches"}}
	}
	f.matches = append(f.matches, text)
	return nil
}

func (f *fakeBus) signal(ch chan<- *dbus.Signal) { f.signals = ch }
func (f *fakeBus) done() <-chan struct{}         { return f.closed }
func (f *fakeBus) close() error                  { close(f.closed); return nil }

func sessionProps(id, user string, uid, leader uint32, class string) map[string]dbus.Variant {
	return map[string]dbus.Variant{
		"Id":         dbus.MakeVariant(id),
		"Name":       dbus.MakeVariant(user),
		"User":       dbus.MakeVariant([]any{uid, dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/login1/user/_%d", uid))}),
		"Leader":     dbus.MakeVariant(leader),
		"Class":      dbus.MakeVariant(class),
		"State":      dbus.MakeVariant("active"),
		"Type":       dbus.MakeVariant("tty"),
		"Service":    dbus.MakeVariant("sshd"),
		"TTY":        dbus.MakeVariant("pts/0"),
		"RemoteHost": dbus.MakeVariant("192.0.2.7"),
		// The proofs of the leader.
		"Scope":              dbus.MakeVariant("session-" + id + ".scope"),
		"TimestampMonotonic": dbus.MakeVariant(uint64(5_000_000)),
		"LeaderPIDFDId":      dbus.MakeVariant(uint64(leader) + 1<<32),
	}
}

// proven is session 3 of alice as sessionProps describes it, with its
// proofs of the leader.
func proven(s Session) Session {
	s.State, s.Scope, s.TimestampMonotonic, s.LeaderPIDFDID = "active", "session-"+s.ID+".scope", 5_000_000, uint64(s.Leader)+1<<32
	return s
}

func sessionPath(id string) dbus.ObjectPath {
	return dbus.ObjectPath("/org/freedesktop/login1/session/" + id)
}

func replyWith(body ...any) func([]any) ([]any, error) {
	return func([]any) ([]any, error) { return body, nil }
}

func TestListSessions(t *testing.T) {
	b := newFakeBus()
	b.handle(ManagerPath, ManagerInterface+".ListSessions", replyWith([][]any{
		{"3", uint32(1001), "alice", "", sessionPath("3")},
		{"c9", uint32(1002), "bob", "", sessionPath("c9")}, // ends before it is read
		{"4", uint32(0), "root", "seat0", sessionPath("4")},
	}))
	b.handle(sessionPath("3"), "org.freedesktop.DBus.Properties.GetAll", replyWith(sessionProps("3", "alice", 1001, 4242, "user")))
	b.handle(sessionPath("4"), "org.freedesktop.DBus.Properties.GetAll", replyWith(sessionProps("4", "root", 0, 77, "background")))
	c := &Conn{bus: b}

	got, err := c.ListSessionsContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Session{
		proven(Session{ID: "3", Path: sessionPath("3"), User: "alice", UID: 1001, Leader: 4242, Class: "user", Type: "tty", Service: "sshd",
			TTY: "pts/0", RemoteHost: "192.0.2.7"}),
		proven(Session{ID: "4", Path: sessionPath("4"), User: "root", UID: 0, Leader: 77, Class: "background", Type: "tty", Service: "sshd",
			TTY: "pts/0", RemoteHost: "192.0.2.7"}),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sessions:\n got %+v\nwant %+v", got, want)
	}
}

func TestListSessionRefs(t *testing.T) {
	// No session object answers: the list alone is read.
	b := newFakeBus()
	b.handle(ManagerPath, ManagerInterface+".ListSessions", replyWith([][]any{
		{"3", uint32(1001), "alice", "", sessionPath("3")},
		{"4", uint32(0), "root", "seat0", sessionPath("4")},
	}))
	got, err := (&Conn{bus: b}).ListSessionRefsContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []SessionRef{{ID: "3", Path: sessionPath("3")}, {ID: "4", Path: sessionPath("4")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("refs %+v, want %+v", got, want)
	}
}

func TestSessionOptionalProperties(t *testing.T) {
	tests := []struct {
		name  string
		props func(map[string]dbus.Variant)
		want  Session
	}{
		{
			name: "descriptive properties missing",
			props: func(p map[string]dbus.Variant) {
				delete(p, "Type")
				delete(p, "Service")
				delete(p, "TTY")
				delete(p, "RemoteHost")
			},
			want: proven(Session{ID: "3", Path: sessionPath("3"), User: "alice", UID: 1001, Leader: 4242, Class: "user"}),
		},
		{
			name:  "descriptive property of another type",
			props: func(p map[string]dbus.Variant) { p["TTY"] = dbus.MakeVariant(uint32(0)) },
			want: proven(Session{ID: "3", Path: sessionPath("3"), User: "alice", UID: 1001, Leader: 4242, Class: "user",
				Type: "tty", Service: "sshd", RemoteHost: "192.0.2.7"}),
		},
		{
			// Each takes one proof of the leader away; the policy finds
			// another or does not judge the session.
			name: "proofs of the leader missing",
			props: func(p map[string]dbus.Variant) {
				delete(p, "Scope")
				delete(p, "TimestampMonotonic")
				delete(p, "LeaderPIDFDId") // systemd 257 and before
			},
			want: Session{ID: "3", Path: sessionPath("3"), User: "alice", UID: 1001, Leader: 4242, Class: "user", State: "active",
				Type: "tty", Service: "sshd", TTY: "pts/0", RemoteHost: "192.0.2.7"},
		},
		{
			name:  "proof of the leader of another type",
			props: func(p map[string]dbus.Variant) { p["LeaderPIDFDId"] = dbus.MakeVariant(uint32(4242)) },
			want: Session{ID: "3", Path: sessionPath("3"), User: "alice", UID: 1001, Leader: 4242, Class: "user", State: "active",
				Scope: "session-3.scope", TimestampMonotonic: 5_000_000, Type: "tty", Service: "sshd", TTY: "pts/0", RemoteHost: "192.0.2.7"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBus()
			props := sessionProps("3", "alice", 1001, 4242, "user")
			tt.props(props)
			b.handle(sessionPath("3"), "org.freedesktop.DBus.Properties.GetAll", replyWith(props))
			got, err := (&Conn{bus: b}).SessionContext(t.Context(), sessionPath("3"))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("session %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSessionErrors(t *testing.T) {
	tests := []struct {
		name   string
		props  func(map[string]dbus.Variant)
		reply  error
		want   string
		wantIs error
	}{
		{
			name:  "missing property",
			props: func(p map[string]dbus.Variant) { delete(p, "Leader") },
			want:  "reading session /org/freedesktop/login1/session/3: unexpected reply from logind: property Leader missing", wantIs: ErrBadReply,
		},
		{
			name:  "property of another type",
			props: func(p map[string]dbus.Variant) { p["Class"] = dbus.MakeVariant(uint32(1)) },
			want:  "reading session /org/freedesktop/login1/session/3: unexpected reply from logind: property Class has signature u, want s", wantIs: ErrBadReply,
		},
		{
			// Whether the session is closing decides whether its leader may
			// be killed.
			name:  "missing state",
			props: func(p map[string]dbus.Variant) { delete(p, "State") },
			want:  "unexpected reply from logind: property State missing", wantIs: ErrBadReply,
		},
		{
			name:  "malformed user",
			props: func(p map[string]dbus.Variant) { p["User"] = dbus.MakeVariant("alice") },
			want:  "property User", wantIs: ErrBadReply,
		},
		{
			name:  "session gone",
			reply: dbus.Error{Name: "org.freedesktop.login1.NoSuchSession", Body: []any{"No session '3' known"}},
			want:  "reading session /org/freedesktop/login1/session/3: no such session: No session '3' known", wantIs: ErrNoSuchSession,
		},
		{
			name:  "access denied is not a gone session",
			reply: dbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied", Body: []any{"denied"}},
			want:  "reading session /org/freedesktop/login1/session/3: denied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBus()
			props := sessionProps("3", "alice", 1001, 4242, "user")
			if tt.props != nil {
				tt.props(props)
			}
			b.handle(sessionPath("3"), "org.freedesktop.DBus.Properties.GetAll", func([]any) ([]any, error) {
				return []any{props}, tt.reply
			})
			_, err := (&Conn{bus: b}).SessionContext(t.Context(), sessionPath("3"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err does not match %v", tt.wantIs)
			}
			if tt.wantIs == nil && (errors.Is(err, ErrNoSuchSession) || errors.Is(err, ErrBadReply)) {
				t.Errorf("err %v matches a sentinel it should not", err)
			}
		})
	}
}

func TestListUsers(t *testing.T) {
	b := newFakeBus()
	b.handle(ManagerPath, ManagerInterface+".ListUsers", replyWith([][]any{
		{uint32(1001), "alice", dbus.ObjectPath("/org/freedesktop/login1/user/_1001")},
	}))
	got, err := (&Conn{bus: b}).ListUsersContext(t.Context())
	want := []User{{UID: 1001, Name: "alice", Path: "/org/freedesktop/login1/user/_1001"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ListUsers = %+v, %v; want %+v", got, err, want)
	}

	b.handle(ManagerPath, ManagerInterface+".ListUsers", replyWith([][]any{{"alice", uint32(1001)}}))
	if _, err := (&Conn{bus: b}).ListUsersContext(t.Context()); err == nil {
		t.Error("a malformed ListUsers reply was accepted")
	}
}

func TestTerminateSession(t *testing.T) {
	tests := []struct {
		name   string
		reply  error
		wantIs error
		ok     bool
	}{
		{name: "terminated", ok: true},
		{name: "already gone", reply: dbus.Error{Name: "org.freedesktop.login1.NoSuchSession", Body: []any{"gone"}}, wantIs: ErrNoSuchSession},
		{name: "refused", reply: dbus.NewError("org.freedesktop.DBus.Error.AccessDenied", []any{"denied"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBus()
			var got []any
			b.handle(ManagerPath, ManagerInterface+".TerminateSession", func(args []any) ([]any, error) {
				got = args
				return nil, tt.reply
			})
			err := (&Conn{bus: b}).TerminateSessionContext(t.Context(), "7")
			if !reflect.DeepEqual(got, []any{"7"}) {
				t.Errorf("TerminateSession called with %v, want [7]", got)
			}
			switch {
			case tt.ok && err != nil:
				t.Errorf("err = %v", err)
			case !tt.ok && err == nil:
				t.Error("the error was lost")
			case !tt.ok && !strings.HasPrefix(err.Error(), "terminating session 7: "):
				t.Errorf("err = %v, want the session named", err)
			case tt.wantIs != nil && !errors.Is(err, tt.wantIs):
				t.Errorf("err = %v, want it to match %v", err, tt.wantIs)
			case tt.wantIs == nil && errors.Is(err, ErrNoSuchSession):
				t.Errorf("a refusal reads as a gone session: %v", err)
			}
		})
	}
}

func TestKillAllOfSession(t *testing.T) {
	b := newFakeBus()
	var got []any
	b.handle(ManagerPath, ManagerInterface+".KillSession", func(args []any) ([]any, error) {
		got = args
		return nil, nil
	})
	if err := (&Conn{bus: b}).KillAllOfSessionContext(t.Context(), "7", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// who "all": every process of the scope, not only the leader.
	if want := []any{"7", "all", int32(9)}; !reflect.DeepEqual(got, want) {
		t.Errorf("KillSession called with %#v, want %#v", got, want)
	}
	b.handle(ManagerPath, ManagerInterface+".KillSession", func([]any) ([]any, error) {
		return nil, dbus.Error{Name: "org.freedesktop.login1.NoSuchSession", Body: []any{"gone"}}
	})
	if err := (&Conn{bus: b}).KillAllOfSessionContext(t.Context(), "7", syscall.SIGKILL); !errors.Is(err, ErrNoSuchSession) {
		t.Errorf("a gone session: %v, want ErrNoSuchSession", err)
	}
	// Right after TerminateSession logind still lists the session, but its
	// scope is gone: what systemd 257 and 252 answer then (both seen under
	// the watcher storm).
	for _, gone := range []dbus.Error{
		{Name: "org.freedesktop.systemd1.NoSuchUnit", Body: []any{"Unit session-c354.scope not loaded."}},
		{Name: "org.freedesktop.DBus.Error.FileNotFound", Body: []any{"No such file or directory"}},
	} {
		b.handle(ManagerPath, ManagerInterface+".KillSession", func([]any) ([]any, error) { return nil, gone })
		if err := (&Conn{bus: b}).KillAllOfSessionContext(t.Context(), "7", syscall.SIGKILL); !errors.Is(err, ErrNoSuchSession) {
			t.Errorf("a session whose scope is gone (%s): %v, want ErrNoSuchSession", gone.Name, err)
		}
	}
	b.handle(ManagerPath, ManagerInterface+".KillSession", func([]any) ([]any, error) {
		return nil, dbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied", Body: []any{"no"}}
	})
	if err := (&Conn{bus: b}).KillAllOfSessionContext(t.Context(), "7", syscall.SIGKILL); err == nil || errors.Is(err, ErrNoSuchSession) {
		t.Errorf("a refused kill: %v, want an error other than ErrNoSuchSession", err)
	}
}

const logindOwner = ":1.4"

// subscribed returns a fake bus with logind owned by owner ("" for none) and
// a subscription on it.
func subscribed(t *testing.T, owner string) (*fakeBus, <-chan Event) {
	t.Helper()
	b := newFakeBus()
	b.handle(busDaemonPath, busDaemonInterface+".GetNameOwner", func([]any) ([]any, error) {
		if owner == "" {
			return nil, dbus.Error{Name: "org.freedesktop.DBus.Error.NameHasNoOwner", Body: []any{"no owner"}}
		}
		return []any{owner}, nil
	})
	events, err := (&Conn{bus: b}).SubscribeContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-b.closed:
		default:
			b.close()
		}
	})
	return b, events
}

func managerSignal(sender, member string, body ...any) *dbus.Signal {
	return &dbus.Signal{Sender: sender, Path: ManagerPath, Name: ManagerInterface + "." + member, Body: body}
}

func ownerChanged(sender, oldOwner, newOwner string) *dbus.Signal {
	return &dbus.Signal{Sender: sender, Path: busDaemonPath, Name: busDaemonInterface + ".NameOwnerChanged", Body: []any{BusName, oldOwner, newOwner}}
}

func TestSubscribeMatches(t *testing.T) {
	b, _ := subscribed(t, logindOwner)
	want := []string{
		"{sender org.freedesktop.login1},{path /org/freedesktop/login1},{interface org.freedesktop.login1.Manager},{member SessionNew}",
		"{sender org.freedesktop.login1},{path /org/freedesktop/login1},{interface org.freedesktop.login1.Manager},{member SessionRemoved}",
		"{sender org.freedesktop.login1},{path /org/freedesktop/login1},{interface org.freedesktop.login1.Manager},{member UserNew}",
		"{sender org.freedesktop.login1},{path /org/freedesktop/login1},{interface org.freedesktop.login1.Manager},{member UserRemoved}",
		"{sender org.freedesktop.DBus},{path /org/freedesktop/DBus},{interface org.freedesktop.DBus},{member NameOwnerChanged},{arg0 org.freedesktop.login1}",
	}
	if !reflect.DeepEqual(b.matches, want) {
		t.Errorf("match rules:\n got %q\nwant %q", b.matches, want)
	}
}

func TestSubscribeFailures(t *testing.T) {
	tests := []struct {
		name      string
		failMatch string
		ownerErr  error
		want      string
	}{
		{name: "AddMatch refused", failMatch: "member SessionRemoved",
			want: "subscribing to logind's SessionRemoved signals: too many matches"},
		{name: "AddMatch for the owner refused", failMatch: "NameOwnerChanged",
			want: "subscribing to owner changes of org.freedesktop.login1: too many matches"},
		{name: "owner unknown", ownerErr: dbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied", Body: []any{"denied"}},
			want: "asking for the owner of org.freedesktop.login1: denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBus()
			b.failMatch = tt.failMatch
			b.handle(busDaemonPath, busDaemonInterface+".GetNameOwner", func([]any) ([]any, error) {
				return []any{logindOwner}, tt.ownerErr
			})
			events, err := (&Conn{bus: b}).SubscribeContext(t.Context())
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
			if events != nil {
				t.Error("a failed subscription returned a channel")
			}
		})
	}
}

// next returns the next event, failing the test if none comes.
func next(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	panic("unreachable")
}

func TestSubscriptionEvents(t *testing.T) {
	b, events := subscribed(t, logindOwner)
	const intruder = ":1.99"
	for _, sig := range []*dbus.Signal{
		managerSignal(logindOwner, "SessionNew", "3", sessionPath("3")),
		managerSignal(intruder, "SessionNew", "4", sessionPath("4")),                     // not logind
		managerSignal(logindOwner, "SessionNew", uint32(4), sessionPath("4")),            // malformed
		managerSignal(logindOwner, "PrepareForShutdown", true),                           // not subscribed
		{Sender: logindOwner, Path: "/elsewhere", Name: ManagerInterface + ".UserNew"},   // wrong object
		ownerChanged(intruder, logindOwner, intruder),                                    // not the bus
		managerSignal(logindOwner, "UserNew", uint32(1001), dbus.ObjectPath("/u/_1001")), //
		managerSignal(logindOwner, "SessionRemoved", "3", sessionPath("3")),
		managerSignal(logindOwner, "UserRemoved", uint32(1001), dbus.ObjectPath("/u/_1001")),
		ownerChanged(busDaemonName, logindOwner, ""),
		managerSignal(logindOwner, "SessionNew", "5", sessionPath("5")), // the old owner, gone
		ownerChanged(busDaemonName, "", ":1.50"),
		managerSignal(":1.50", "SessionNew", "6", sessionPath("6")),
	} {
		b.signals <- sig
	}
	want := []Event{
		{Kind: SessionNew, SessionID: "3", Path: sessionPath("3")},
		{Kind: UserNew, UID: 1001, Path: "/u/_1001"},
		{Kind: SessionRemoved, SessionID: "3", Path: sessionPath("3")},
		{Kind: UserRemoved, UID: 1001, Path: "/u/_1001"},
		{Kind: LogindStopped},
		{Kind: LogindStarted},
		{Kind: SessionNew, SessionID: "6", Path: sessionPath("6")},
	}
	for i, w := range want {
		if got := next(t, events); got != w {
			t.Errorf("event %d = %+v, want %+v", i, got, w)
		}
	}

	close(b.signals) // what godbus does when the connection closes
	select {
	case ev, ok := <-events:
		if ok {
			t.Errorf("unexpected event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("events not closed with the connection")
	}
}

func TestSubscriptionWithoutLogind(t *testing.T) {
	b, events := subscribed(t, "")
	b.signals <- managerSignal(logindOwner, "SessionNew", "1", sessionPath("1"))
	b.signals <- ownerChanged(busDaemonName, "", logindOwner)
	b.signals <- managerSignal(logindOwner, "SessionNew", "2", sessionPath("2"))
	if ev := next(t, events); ev.Kind != LogindStarted {
		t.Errorf("first event = %+v, want LogindStarted: signals before logind owns its name are not logind's", ev)
	}
	if ev := next(t, events); ev.SessionID != "2" {
		t.Errorf("second event = %+v, want session 2", ev)
	}
}

// TestSubscriptionUnreadAfterClose checks that nobody reading the events of a
// closed connection does not keep the subscription's goroutine.
func TestSubscriptionUnreadAfterClose(t *testing.T) {
	b := newFakeBus()
	b.handle(busDaemonPath, busDaemonInterface+".GetNameOwner", replyWith(logindOwner))
	c := &Conn{bus: b}
	signals := make(chan *dbus.Signal, 1)
	events := make(chan Event) // unbuffered and never read
	finished := make(chan struct{})
	go func() {
		translate(signals, events, logindOwner, b.closed)
		close(finished)
	}()
	signals <- managerSignal(logindOwner, "SessionNew", "1", sessionPath("1"))
	c.Close()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("translate still blocked after the connection closed")
	}
}

func TestEventKindString(t *testing.T) {
	if got := LogindStarted.String(); got != "LogindStarted" {
		t.Errorf("LogindStarted.String() = %q", got)
	}
	if got := EventKind(42).String(); got != "EventKind(42)" {
		t.Errorf("EventKind(42).String() = %q", got)
	}
}
