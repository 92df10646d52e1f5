package logind

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/godbus/dbus/v5"
)

// bus is what Conn uses of a D-Bus connection; godbusConn adapts a
// *dbus.Conn, tests fake it.
type bus interface {
	// call calls method on the object at path of dest and stores the reply
	// in out.
	call(ctx context.Context, dest string, path dbus.ObjectPath, method string, args []any, out ...any) error
	addMatch(ctx context.Context, rule ...dbus.MatchOption) error
	// signal registers ch for every signal the connection receives; ch is
	// closed when the connection closes.
	signal(ch chan<- *dbus.Signal)
	// done is closed once the connection is closed.
	done() <-chan struct{}
	close() error
}

// Conn is a private connection to the system bus, talking to logind.
type Conn struct {
	bus bus
}

// Dial opens a private connection to the system bus. The connection closes
// when ctx ends or Close is called, whichever comes first; a subscription on
// it ends with it.
func Dial(ctx context.Context) (*Conn, error) {
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("connecting to the system bus: %w", err)
	}
	return &Conn{bus: godbusConn{conn}}, nil
}

// Close closes the connection and ends its subscription.
func (c *Conn) Close() error {
	return c.bus.close()
}

// callManager calls a method of logind's manager object.
func (c *Conn) callManager(ctx context.Context, method string, args []any, out ...any) error {
	return c.bus.call(ctx, BusName, ManagerPath, ManagerInterface+"."+method, args, out...)
}

// sessionEntry is one element of ListSessions' a(susso).
type sessionEntry struct {
	ID   string
	UID  uint32
	User string
	Seat string
	Path dbus.ObjectPath
}

// ListSessionsContext returns every session with its properties, all read
// within ctx. Sessions that end while it reads them are left out.
func (c *Conn) ListSessionsContext(ctx context.Context) ([]Session, error) {
	refs, err := c.ListSessionRefsContext(ctx)
	if err != nil {
		return nil, err
	}
	sessions := make([]Session, 0, len(refs))
	for _, ref := range refs {
		s, err := c.SessionContext(ctx, ref.Path)
		if errors.Is(err, ErrNoSuchSession) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sessions = append(sessions, s)
	}
	return sessions, nil
}

// ListSessionRefsContext returns the ID and object path of every session,
// for a caller that reads each with SessionContext in a time of its own.
func (c *Conn) ListSessionRefsContext(ctx context.Context) ([]SessionRef, error) {
	var entries []sessionEntry
	if err := c.callManager(ctx, "ListSessions", nil, &entries); err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	refs := make([]SessionRef, len(entries))
	for i, e := range entries {
		refs[i] = SessionRef{ID: e.ID, Path: e.Path}
	}
	return refs, nil
}

// SessionContext returns the properties of the session at path; an error
// matching ErrNoSuchSession when it has ended.
func (c *Conn) SessionContext(ctx context.Context, path dbus.ObjectPath) (Session, error) {
	if !path.IsValid() {
		return Session{}, fmt.Errorf("reading session %q: invalid object path", path)
	}
	var props map[string]dbus.Variant
	err := c.bus.call(ctx, BusName, path, "org.freedesktop.DBus.Properties.GetAll", []any{SessionInterface}, &props)
	if err != nil {
		return Session{}, fmt.Errorf("reading session %s: %w", path, sessionError(err))
	}
	s, err := sessionFromProperties(props)
	if err != nil {
		return Session{}, fmt.Errorf("reading session %s: %w", path, err)
	}
	s.Path = path
	return s, nil
}

// sessionFromProperties reads the properties of a session. Those the policy
// rests on are required; those that only describe the session are read if
// logind has them with the type expected, so that a property a later systemd
// drops or retypes leaves sessions judged. So are the three that each prove
// a process the leader: the policy needs one proof, and the absence of one
// only takes that proof away (LeaderPIDFDId is newer than systemd 257).
func sessionFromProperties(props map[string]dbus.Variant) (Session, error) {
	p := propertyReader{props: props}
	s := Session{
		ID:                 required[string](&p, "Id"),
		User:               required[string](&p, "Name"),
		Leader:             required[uint32](&p, "Leader"),
		Class:              required[string](&p, "Class"),
		State:              required[string](&p, "State"),
		Scope:              optional[string](props, "Scope"),
		TimestampMonotonic: optional[uint64](props, "TimestampMonotonic"),
		LeaderPIDFDID:      optional[uint64](props, "LeaderPIDFDId"),
		Type:               optional[string](props, "Type"),
		Service:            optional[string](props, "Service"),
		TTY:                optional[string](props, "TTY"),
		RemoteHost:         optional[string](props, "RemoteHost"),
	}
	// User is (uo): the UID and the user's object path.
	if user, ok := p.props["User"].Value().([]any); !ok {
		p.fail("User", "missing or not a struct")
	} else if s.UID, _, ok = bodyOf2[uint32, dbus.ObjectPath](user); !ok {
		p.fail("User", "is not (uo)")
	}
	return s, p.err
}

// propertyReader collects the first problem of a series of property reads.
type propertyReader struct {
	props map[string]dbus.Variant
	err   error
}

func (p *propertyReader) fail(name, why string) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: property %s %s", ErrBadReply, name, why)
	}
}

// required returns the property name of type T, or T's zero value after
// recording a problem in p.
func required[T any](p *propertyReader, name string) T {
	var value T
	v, ok := p.props[name]
	if !ok {
		p.fail(name, "missing")
		return value
	}
	value, ok = v.Value().(T)
	if !ok {
		p.fail(name, fmt.Sprintf("has signature %s, want %s", v.Signature(), dbus.SignatureOf(value)))
	}
	return value
}

// optional returns the property name if it is there with type T, else T's
// zero value.
func optional[T any](props map[string]dbus.Variant, name string) T {
	value, _ := props[name].Value().(T)
	return value
}

// ListUsersContext returns the users logind tracks.
func (c *Conn) ListUsersContext(ctx context.Context) ([]User, error) {
	var users []User
	if err := c.callManager(ctx, "ListUsers", nil, &users); err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return users, nil
}

// TerminateSessionContext makes logind end session id: it stops the
// session's scope, killing every process in it. An error matching
// ErrNoSuchSession means the session had already ended.
func (c *Conn) TerminateSessionContext(ctx context.Context, id string) error {
	if err := c.callManager(ctx, "TerminateSession", []any{id}); err != nil {
		return fmt.Errorf("terminating session %s: %w", id, sessionError(err))
	}
	return nil
}

// KillAllOfSessionContext has logind signal every process of session id:
// systemd signals the processes of the session's scope, by its cgroup. It
// ends a session that TerminateSessionContext cannot: logind does nothing
// for a session it is already stopping (a closing session, whose leader has
// exited while processes remain, KillUserProcesses=no). An error matching
// ErrNoSuchSession means the session, or its scope, had already ended.
func (c *Conn) KillAllOfSessionContext(ctx context.Context, id string, signal syscall.Signal) error {
	err := c.callManager(ctx, "KillSession", []any{id, "all", int32(signal)})
	switch {
	case err == nil:
		return nil
	case slices.Contains(scopeGoneErrors, errorName(err)):
		return fmt.Errorf("killing the processes of session %s: %w: %w", id, ErrNoSuchSession, err)
	}
	return fmt.Errorf("killing the processes of session %s: %w", id, sessionError(err))
}

// sessionError makes the D-Bus errors for a session that has ended match
// ErrNoSuchSession too.
func sessionError(err error) error {
	if slices.Contains(noSuchSessionErrors, errorName(err)) {
		return fmt.Errorf("%w: %w", ErrNoSuchSession, err)
	}
	return err
}

// errorName returns the name of the D-Bus error err carries, or "". godbus
// returns replies' errors as dbus.Error values, and dbus.NewError makes
// pointers.
func errorName(err error) string {
	var value dbus.Error
	if errors.As(err, &value) {
		return value.Name
	}
	var pointer *dbus.Error
	if errors.As(err, &pointer) {
		return pointer.Name
	}
	return ""
}

// godbusConn adapts a *dbus.Conn to bus.
type godbusConn struct{ conn *dbus.Conn }

func (g godbusConn) call(ctx context.Context, dest string, path dbus.ObjectPath, method string, args []any, out ...any) error {
	return g.conn.Object(dest, path).CallWithContext(ctx, method, 0, args...).Store(out...)
}

func (g godbusConn) addMatch(ctx context.Context, rule ...dbus.MatchOption) error {
	return g.conn.AddMatchSignalContext(ctx, rule...)
}

func (g godbusConn) signal(ch chan<- *dbus.Signal) { g.conn.Signal(ch) }

func (g godbusConn) done() <-chan struct{} { return g.conn.Context().Done() }

func (g godbusConn) close() error { return g.conn.Close() }
