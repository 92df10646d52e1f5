package logind

import (
	"context"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// EventKind says what an Event announces.
type EventKind uint8

// The events of a subscription.
const (
	// SessionNew: a session was created (SessionID, Path).
	SessionNew EventKind = iota + 1
	// SessionRemoved: a session ended (SessionID, Path).
	SessionRemoved
	// UserNew: logind started tracking a user (UID, Path).
	UserNew
	// UserRemoved: logind stopped tracking a user (UID, Path).
	UserRemoved
	// LogindStarted: logind took its bus name, having started or restarted.
	// Whatever happened while it was away was never signalled.
	LogindStarted
	// LogindStopped: logind left the bus.
	LogindStopped
)

var eventKindNames = [...]string{
	SessionNew:     "SessionNew",
	SessionRemoved: "SessionRemoved",
	UserNew:        "UserNew",
	UserRemoved:    "UserRemoved",
	LogindStarted:  "LogindStarted",
	LogindStopped:  "LogindStopped",
}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one thing a subscription announces.
type Event struct {
	Kind      EventKind
	SessionID string
	UID       uint32
	Path      dbus.ObjectPath
}

// managerSignals are the members of logind's manager signals subscribed to,
// by the event they announce.
var managerSignals = map[EventKind]string{
	SessionNew:     "SessionNew",
	SessionRemoved: "SessionRemoved",
	UserNew:        "UserNew",
	UserRemoved:    "UserRemoved",
}

// subscriptionBuffer is how many signals wait for the reader before godbus
// starts queueing them in goroutines of its own, which can reorder them.
const subscriptionBuffer = 256

// SubscribeContext asks the bus for logind's SessionNew, SessionRemoved,
// UserNew and UserRemoved signals and for the changes of owner of logind's
// bus name, and returns the channel their events arrive on, in order. Only
// signals from the current owner of logind's name are passed on, so a client
// that sends look-alike signals to this connection is not believed.
//
// Subscribe before listing what exists, so nothing created in between is
// missed. The channel is closed when the connection closes, for whatever
// reason: dial again then, subscribe, and list again. Subscribe once per
// Conn; after an error, close the Conn.
func (c *Conn) SubscribeContext(ctx context.Context) (<-chan Event, error) {
	signals := make(chan *dbus.Signal, subscriptionBuffer)
	// Registered before the matches exist, so no matched signal can arrive
	// unregistered.
	c.bus.signal(signals)
	for kind := SessionNew; kind <= UserRemoved; kind++ {
		member := managerSignals[kind]
		err := c.bus.addMatch(ctx,
			dbus.WithMatchSender(BusName),
			dbus.WithMatchObjectPath(ManagerPath),
			dbus.WithMatchInterface(ManagerInterface),
			dbus.WithMatchMember(member))
		if err != nil {
			return nil, fmt.Errorf("subscribing to logind's %s signals: %w", member, err)
		}
	}
	err := c.bus.addMatch(ctx,
		dbus.WithMatchSender(busDaemonName),
		dbus.WithMatchObjectPath(busDaemonPath),
		dbus.WithMatchInterface(busDaemonInterface),
		dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, BusName))
	if err != nil {
		return nil, fmt.Errorf("subscribing to owner changes of %s: %w", BusName, err)
	}
	// Asked after the match is in place: a change from here on is queued
	// behind this answer, so the owner the events end with is current.
	owner, err := c.nameOwner(ctx)
	if err != nil {
		return nil, err
	}
	events := make(chan Event, subscriptionBuffer)
	go translate(signals, events, owner, c.bus.done())
	return events, nil
}

// nameOwner returns the unique name that owns logind's name, "" if none.
func (c *Conn) nameOwner(ctx context.Context) (string, error) {
	var owner string
	err := c.bus.call(ctx, busDaemonName, busDaemonPath, busDaemonInterface+".GetNameOwner", []any{BusName}, &owner)
	if errorName(err) == "org.freedesktop.DBus.Error.NameHasNoOwner" {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("asking for the owner of %s: %w", BusName, err)
	}
	return owner, nil
}

// translate passes the signals on as events until signals is closed, or the
// connection is and nobody reads events any more.
func translate(signals <-chan *dbus.Signal, events chan<- Event, owner string, closed <-chan struct{}) {
	defer close(events)
	for sig := range signals {
		ev, ok := toEvent(sig, &owner)
		if !ok {
			continue
		}
		select {
		case events <- ev:
		case <-closed:
			return
		}
	}
}

// toEvent returns the event sig announces, if it is one of ours and
// well-formed, updating owner as logind's name changes hands.
func toEvent(sig *dbus.Signal, owner *string) (Event, bool) {
	if sig.Name == busDaemonInterface+".NameOwnerChanged" {
		name, _, newOwner, ok := bodyOf3[string, string, string](sig.Body)
		if !ok || sig.Sender != busDaemonName || name != BusName {
			return Event{}, false
		}
		*owner = newOwner
		if newOwner == "" {
			return Event{Kind: LogindStopped}, true
		}
		return Event{Kind: LogindStarted}, true
	}
	member, ok := strings.CutPrefix(sig.Name, ManagerInterface+".")
	if !ok || *owner == "" || sig.Sender != *owner || sig.Path != ManagerPath {
		return Event{}, false
	}
	ev := Event{}
	for kind, name := range managerSignals {
		if name == member {
			ev.Kind = kind
		}
	}
	switch ev.Kind {
	case SessionNew, SessionRemoved:
		ev.SessionID, ev.Path, ok = bodyOf2[string, dbus.ObjectPath](sig.Body)
	case UserNew, UserRemoved:
		ev.UID, ev.Path, ok = bodyOf2[uint32, dbus.ObjectPath](sig.Body)
	default:
		ok = false
	}
	return ev, ok
}

// bodyOf2 returns the two values of a body or struct if it has exactly these
// types; godbus's Store would convert some others.
func bodyOf2[A, B any](body []any) (a A, b B, ok bool) {
	if len(body) != 2 {
		return a, b, false
	}
	a, okA := body[0].(A)
	b, okB := body[1].(B)
	return a, b, okA && okB
}

func bodyOf3[A, B, C any](body []any) (a A, b B, c C, ok bool) {
	if len(body) != 3 {
		return a, b, c, false
	}
	a, b, ok = bodyOf2[A, B](body[:2])
	c, okC := body[2].(C)
	return a, b, c, ok && okC
}
