package watch

import (
	"fmt"

	"github.com/netns-session/netns-session/internal/config"
)

// A copy of the fake user database of cmd/netns-session's check_test.go,
// for the watcher's tests.

// checkUsers is a fixed user database.
type checkUsers struct{}

var (
	checkUserTable  = map[string]*config.User{"root": {Name: "root"}, "alice": {Name: "alice", UID: 1000, GID: 1000}, "carol": {Name: "carol", UID: 1002, GID: 100}}
	checkGroupTable = map[string]*config.Group{"research": {Name: "research", GID: 2000, Members: []string{"alice"}}}
)

func (checkUsers) LookupUser(name string) (*config.User, error) {
	if u, ok := checkUserTable[name]; ok {
		return u, nil
	}
	return nil, fmt.Errorf("%w %q", config.ErrUnknownUser, name)
}

func (checkUsers) LookupUID(uid uint32) (*config.User, error) {
	for _, u := range checkUserTable {
		if u.UID == uid {
			return u, nil
		}
	}
	return nil, fmt.Errorf("%w with uid %d", config.ErrUnknownUser, uid)
}

func (checkUsers) GroupIDs(u *config.User) ([]uint32, error) { return []uint32{u.GID}, nil }

func (checkUsers) LookupGroup(name string) (*config.Group, error) {
	if g, ok := checkGroupTable[name]; ok {
		return g, nil
	}
	return nil, fmt.Errorf("%w %q", config.ErrUnknownGroup, name)
}

// moreUsers is checkUsers with more names - second names of its users -
// and with the source of some users and groups down, as NSS reports it.
type moreUsers struct {
	names map[string]*config.User
	down  map[string]bool
}

func (m moreUsers) LookupUser(name string) (*config.User, error) {
	if m.down[name] {
		return nil, fmt.Errorf("getpwnam_r %q: %w: no such file or directory (ENOENT)", name, config.ErrSourceUnavailable)
	}
	if u, ok := m.names[name]; ok {
		return u, nil
	}
	return checkUsers{}.LookupUser(name)
}

// LookupUID finds the owners of checkUsers: the second names are not.
func (moreUsers) LookupUID(uid uint32) (*config.User, error) { return checkUsers{}.LookupUID(uid) }

func (moreUsers) GroupIDs(u *config.User) ([]uint32, error) { return checkUsers{}.GroupIDs(u) }

func (m moreUsers) LookupGroup(name string) (*config.Group, error) {
	if m.down[name] {
		return nil, fmt.Errorf("getgrnam_r %q: %w: no such file or directory (ENOENT)", name, config.ErrSourceUnavailable)
	}
	return checkUsers{}.LookupGroup(name)
}

// aliases knows alice's uid under a second name (useradd -o).
var aliases = moreUsers{names: map[string]*config.User{
	"alias": {Name: "alias", UID: 1000, GID: 1000},
}}
