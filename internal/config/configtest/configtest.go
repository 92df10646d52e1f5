// Package configtest owns the fake user database that the tests of every
// package share: a config.Directory of fixed users and groups, whose lookups
// can fail as a source that is down does (with config.ErrSourceUnavailable),
// are recorded, and can be held or failed by a hook; and the config files
// a test loads (WriteConfig). It is pure Go and imports nothing but config,
// so any package's tests can use it.
package configtest

import (
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/netns-session/netns-session/internal/config"
)

// Kind is what a lookup asks.
type Kind uint8

// The lookups of config.Directory.
const (
	UserByName  Kind = iota + 1 // LookupUser
	UserByUID                   // LookupUID
	GroupList                   // GroupIDs
	GroupByName                 // LookupGroup
)

// Lookup is one question asked of a Directory.
type Lookup struct {
	Kind Kind
	// Name is the user or group asked for, or for GroupList the user whose
	// groups are asked; empty for UserByUID.
	Name string
	UID  uint32 // for UserByUID
}

// String says what was asked: "user NAME", "uid UID", "groups of NAME" or
// "group NAME".
func (l Lookup) String() string {
	switch l.Kind {
	case UserByName:
		return "user " + l.Name
	case UserByUID:
		return "uid " + strconv.FormatUint(uint64(l.UID), 10)
	case GroupList:
		return "groups of " + l.Name
	}
	return "group " + l.Name
}

// key is what Asked lists for the lookup: the name, or the UID in decimal.
func (l Lookup) key() string {
	if l.Kind == UserByUID {
		return strconv.FormatUint(uint64(l.UID), 10)
	}
	return l.Name
}

// Directory is an in-memory user database. Build it with New and the Add
// methods; the exported fields choose failures and may be changed between
// lookups, not during them. Every lookup is recorded (Asked, Forget).
type Directory struct {
	// Down names users and groups whose source is down: a lookup of the
	// name fails with config.ErrSourceUnavailable, and a group list leaves
	// such a group out without a word, as glibc's getgrouplist does.
	Down map[string]bool
	// DownUIDs are UIDs whose lookup fails with config.ErrSourceUnavailable.
	// They are apart from Down so that a test can fail a name and keep its
	// UID answering, or the reverse.
	DownUIDs map[uint32]bool
	// DownGroupLists names users whose group list fails with
	// config.ErrSourceUnavailable.
	DownGroupLists map[string]bool
	// Hook, when set, runs before every lookup is answered, outside the
	// Directory's lock: it may block (a hung LDAP server), sleep (a slow
	// one), check the test's state, or fail the lookup by returning an
	// error, which the lookup then returns as it is.
	Hook func(Lookup) error

	mu         sync.Mutex
	users      map[string]*config.User // by every name that answers
	owners     map[uint32]string       // the name in users that owns each UID
	groupLists map[string][]uint32     // supplementary groups, by the user's own name
	groups     map[string]*config.Group
	asked      []Lookup
}

// New returns an empty Directory.
func New() *Directory {
	return &Directory{
		users:      map[string]*config.User{},
		owners:     map[uint32]string{},
		groupLists: map[string][]uint32{},
		groups:     map[string]*config.Group{},
	}
}

// Users returns a Directory of the users most tests name: root (UID 0),
// alice (1000, group 1000), carol (1002, group 100), and the group research
// (2000) whose member is alice. The names in down are down.
func Users(down ...string) *Directory {
	d := New()
	d.AddUser(config.User{Name: "root"})
	d.AddUser(config.User{Name: "alice", UID: 1000, GID: 1000})
	d.AddUser(config.User{Name: "carol", UID: 1002, GID: 100})
	d.AddGroup(config.Group{Name: "research", GID: 2000, Members: []string{"alice"}})
	d.Down = map[string]bool{}
	for _, name := range down {
		d.Down[name] = true
	}
	return d
}

// AliasUsers is Users that knows carol as Carol too (a case-insensitive
// source) and alice's UID under a second name, alias (useradd -o).
func AliasUsers(down ...string) *Directory {
	d := Users(down...)
	d.AddName("Carol", "carol")
	d.AddUser(config.User{Name: "alias", UID: 1000, GID: 1000})
	return d
}

// AddUser adds u under its own name, in the groups with the IDs groups
// besides its primary group. The first user added with a UID owns it: a
// lookup of the UID returns that user; later ones are second names of the
// UID (useradd -o), which answer only by name. It returns the stored user,
// which lookups of its names return.
func (d *Directory) AddUser(u config.User, groups ...uint32) *config.User {
	d.mu.Lock()
	defer d.mu.Unlock()
	stored := &u
	d.users[u.Name] = stored
	if _, ok := d.owners[u.UID]; !ok {
		d.owners[u.UID] = u.Name
	}
	d.groupLists[u.Name] = groups
	return stored
}

// AddName makes name answer for the user called user, as a case-insensitive
// source answers other spellings: a lookup of name returns that user, under
// its own name.
func (d *Directory) AddName(name, user string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.users[name] = d.users[user]
}

// RemoveUser deletes the user called name, as userdel does: its names stop
// answering, and its UID is free for the next user added with it.
func (d *Directory) RemoveUser(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.users[name]
	for n, other := range d.users {
		if other == u {
			delete(d.users, n)
		}
	}
	if u != nil && d.owners[u.UID] == name {
		delete(d.owners, u.UID)
	}
	delete(d.groupLists, name)
}

// AddGroup adds g.
func (d *Directory) AddGroup(g config.Group) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.groups[g.Name] = &g
}

// Asked returns what the lookups of kind asked, in order: the names, or for
// UserByUID the UIDs in decimal; nil when there were none.
func (d *Directory) Asked(kind Kind) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var keys []string
	for _, l := range d.asked {
		if l.Kind == kind {
			keys = append(keys, l.key())
		}
	}
	return keys
}

// Count returns how many lookups of the kinds were asked; of every kind
// when none is given.
func (d *Directory) Count(kinds ...Kind) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, l := range d.asked {
		if len(kinds) == 0 || slices.Contains(kinds, l.Kind) {
			n++
		}
	}
	return n
}

// Forget clears the record of lookups.
func (d *Directory) Forget() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.asked = d.asked[:0]
}

// ask records l and runs the hook.
func (d *Directory) ask(l Lookup) error {
	d.mu.Lock()
	d.asked = append(d.asked, l)
	hook := d.Hook
	d.mu.Unlock()
	if hook != nil {
		return hook(l)
	}
	return nil
}

// unavailable is the error of a lookup whose source is down, worded as
// userdb.NSS words it.
func unavailable(call, key string) error {
	return fmt.Errorf("%s %s: %w: no such file or directory (ENOENT)", call, key, config.ErrSourceUnavailable)
}

func (d *Directory) LookupUser(name string) (*config.User, error) {
	if err := d.ask(Lookup{Kind: UserByName, Name: name}); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Down[name] {
		return nil, unavailable("getpwnam_r", strconv.Quote(name))
	}
	if u, ok := d.users[name]; ok {
		return u, nil
	}
	return nil, fmt.Errorf("%w %q", config.ErrUnknownUser, name)
}

// LookupUID returns the owner of uid; it fails as a source that is down
// when uid is in DownUIDs.
func (d *Directory) LookupUID(uid uint32) (*config.User, error) {
	if err := d.ask(Lookup{Kind: UserByUID, UID: uid}); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.DownUIDs[uid] {
		return nil, unavailable("getpwuid_r", "with uid "+strconv.FormatUint(uint64(uid), 10))
	}
	name, ok := d.owners[uid]
	if !ok {
		return nil, fmt.Errorf("%w with uid %d", config.ErrUnknownUser, uid)
	}
	return d.users[name], nil
}

// GroupIDs returns u's primary group and the groups it was added to, but
// those in Down.
func (d *Directory) GroupIDs(u *config.User) ([]uint32, error) {
	if err := d.ask(Lookup{Kind: GroupList, Name: u.Name}); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.DownGroupLists[u.Name] {
		return nil, unavailable("getgrouplist", strconv.Quote(u.Name))
	}
	var ids []uint32
	for _, gid := range append([]uint32{u.GID}, d.groupLists[u.Name]...) {
		if !d.groupDown(gid) {
			ids = append(ids, gid)
		}
	}
	return ids, nil
}

func (d *Directory) groupDown(gid uint32) bool {
	if len(d.Down) == 0 {
		return false
	}
	for name, g := range d.groups {
		if g.GID == gid && d.Down[name] {
			return true
		}
	}
	return false
}

func (d *Directory) LookupGroup(name string) (*config.Group, error) {
	if err := d.ask(Lookup{Kind: GroupByName, Name: name}); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Down[name] {
		return nil, unavailable("getgrnam_r", strconv.Quote(name))
	}
	if g, ok := d.groups[name]; ok {
		return g, nil
	}
	return nil, fmt.Errorf("%w %q", config.ErrUnknownGroup, name)
}
