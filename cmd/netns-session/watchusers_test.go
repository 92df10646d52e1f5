package main

import (
	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/config/configtest"
)

// The user databases watch_test.go names, kept under their old names over
// testUsers and aliasUsers until the watch tests move to internal/watch and
// take a configtest.Directory themselves; then this file goes.

// checkUsers is testUsers().
type checkUsers struct{}

func (checkUsers) LookupUser(name string) (*config.User, error) { return testUsers().LookupUser(name) }
func (checkUsers) LookupUID(uid uint32) (*config.User, error)   { return testUsers().LookupUID(uid) }
func (checkUsers) GroupIDs(u *config.User) ([]uint32, error)    { return testUsers().GroupIDs(u) }
func (checkUsers) LookupGroup(name string) (*config.Group, error) {
	return testUsers().LookupGroup(name)
}

// moreUsers is aliasUsers, whose names are aliases.names, with the names
// down down.
type moreUsers struct {
	names map[string]*config.User
	down  map[string]bool
}

// aliases is aliasUsers().
var aliases = moreUsers{names: map[string]*config.User{"Carol": checkUserTable["carol"], "alias": {Name: "alias", UID: 1000, GID: 1000}}}

func (m moreUsers) users() *configtest.Directory {
	users := aliasUsers()
	users.Down = m.down
	return users
}

func (m moreUsers) LookupUser(name string) (*config.User, error) { return m.users().LookupUser(name) }
func (m moreUsers) LookupUID(uid uint32) (*config.User, error)   { return m.users().LookupUID(uid) }
func (m moreUsers) GroupIDs(u *config.User) ([]uint32, error)    { return m.users().GroupIDs(u) }
func (m moreUsers) LookupGroup(name string) (*config.Group, error) {
	return m.users().LookupGroup(name)
}
