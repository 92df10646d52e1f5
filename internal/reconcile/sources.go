package reconcile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/netns-session/netns-session/internal/config"
)

// candidates are the users a sync can name, by name or, where only the UID
// is known, by UID.
type candidates struct {
	names map[string]struct{}
	uids  map[uint32]struct{}
}

func (c *candidates) addName(name string) {
	if c.names == nil {
		c.names = make(map[string]struct{})
	}
	c.names[name] = struct{}{}
}

func (c *candidates) addUID(uid uint32) {
	if c.uids == nil {
		c.uids = make(map[uint32]struct{})
	}
	c.uids[uid] = struct{}{}
}

// fromRules adds the users of user lines and the listed members of the groups
// of group lines. Members whose primary group is the mapped group are not
// listed by NSS, and "*" stands for users nobody can list; both are placed at
// login and found here only through the other sources.
func (s *syncer) fromRules(c *candidates) {
	for _, r := range s.cfg.Rules() {
		switch r.Kind {
		case config.SelectUser:
			c.addName(r.Name)
		case config.SelectGroup:
			g, err := s.users.LookupGroup(r.Name)
			switch {
			case errors.Is(err, config.ErrUnknownGroup):
				s.warnf("%s: unknown group %q: the line matches nobody", r.Source(), r.Name)
			case err != nil:
				s.errs = append(s.errs, fmt.Errorf("listing members of @%s (%s): %w", r.Name, r.Source(), err))
			default:
				for _, m := range g.Members {
					c.addName(m)
				}
			}
		}
	}
}

// fromLinger adds the users logind starts a manager for at boot: one file
// per user name in lingerDir.
func (s *syncer) fromLinger(c *candidates) {
	entries, err := os.ReadDir(s.lingerDir)
	if errors.Is(err, fs.ErrNotExist) {
		s.lingerListed = true
		return
	}
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("listing lingering users: %w", err))
		return
	}
	s.lingerListed = true
	for _, e := range entries {
		s.lingering = append(s.lingering, e.Name())
		c.addName(e.Name())
	}
}

// fromRunningManagers adds the UIDs whose user manager runs.
func (s *syncer) fromRunningManagers(c *candidates) {
	uids, err := s.units.RunningManagerUIDs()
	if err != nil {
		s.errs = append(s.errs, err)
	}
	for _, uid := range uids {
		c.addUID(uid)
	}
}

// fromDropIns adds the UIDs that have a drop-in, so that those no longer
// mapped lose it.
func (s *syncer) fromDropIns(c *candidates) {
	uids, err := s.units.DropInUIDs()
	if err != nil {
		s.errs = append(s.errs, err)
	}
	s.dropIns = uids
	for _, uid := range uids {
		c.addUID(uid)
	}
}
