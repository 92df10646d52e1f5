package config

import (
	"errors"
	"fmt"
	"slices"
)

// User is a login user as the user database knows it.
type User struct {
	// Name is the name NSS returns, which may differ from the one asked for
	// (case, aliases).
	Name string
	UID  uint32
	GID  uint32
}

// Group is a group as the user database knows it.
type Group struct {
	Name    string
	GID     uint32
	Members []string
}

// Directory is the part of the user database resolution needs;
// userdb.System returns the system's. Lookups of names or UIDs that do not
// exist return errors wrapping ErrUnknownUser or ErrUnknownGroup; any other
// error is a failing source (NSS's wrap ErrSourceUnavailable), never read as
// "not found".
type Directory interface {
	LookupUser(name string) (*User, error)
	// LookupUID returns the user with uid under the name NSS gives the UID
	// (getpwuid), which logind, systemd and the watcher know the user by.
	LookupUID(uid uint32) (*User, error)
	// GroupIDs returns the IDs of all groups u is in, its primary group
	// included (getgrouplist). It is separate from LookupUser because most
	// logins resolve without it.
	GroupIDs(u *User) ([]uint32, error)
	LookupGroup(name string) (*Group, error)
}

// Decision is where a user's sessions belong.
type Decision struct {
	// Rule is the rule that matched; nil for an unmapped user.
	Rule *Rule
	// Netns is the namespace to join; zero when Keep is set.
	Netns Netns
	// Keep: leave the session in the namespace of the login process
	// (unmapped user under "unmapped = keep").
	Keep bool
	// Reason says in words why this decision was taken.
	Reason string
}

// Mapped reports whether a rule matched the user.
func (d Decision) Mapped() bool { return d.Rule != nil }

// Target is the namespace file the user's sessions must run in, or "" when
// the policy leaves them where they log in from.
func (d Decision) Target() string {
	if d.Keep {
		return ""
	}
	return d.Netns.Path
}

// NeedsDropIn reports whether user@UID.service needs a NetworkNamespacePath=
// drop-in. PID 1 starts the manager in the host namespace by itself, which is
// right for host-mapped users; under "unmapped = keep" nothing is expected.
func (d Decision) NeedsDropIn() bool { return !d.Keep && !d.Netns.Host }

// Resolve decides the namespace of user: the user line that selects the
// user; else the first group line, in file order, of a group the user is in
// (by the user's group list or by the group's member list, so sources whose
// group list is incomplete still count); else "*"; else the unmapped policy.
// It returns the user as looked up by name, whose IDs the caller needs
// anyway, also with an error once the user was found.
//
// The decision is one of the UID, not of the name it is asked for: the PAM
// hook resolves the name that logs in, the watcher and status the UID
// logind gives the session (ResolveUID), and a user@UID.service has one
// drop-in whatever name it was written for. So the
// user is resolved as its UID's owner: the user NSS returns for the UID,
// whose name is the one the user lines, the group list and the member lists
// are matched against.
//
// A user line selects a user by UID, not by spelling: a case-insensitive
// directory answers "Carol" and "carol" alike, and useradd -o gives one UID
// two names. The line spelled as the owner's name applies; else the first
// line, in file order, whose name NSS gives the UID. Only that second case
// looks names of user lines up (one NSS lookup each, until one has the UID;
// a line spelled as name or as NSS's name for it needs none), so a login
// whose UID's name has a line costs no lookup of other lines. Two lines of
// one UID are a config error that check reports; the rule still gives every
// name of the UID the same line.
//
// Errors are lookup failures, never "not found": a user, group or user line
// that does not exist is skipped. The owner of a UID that cannot be looked
// up, a user line whose name cannot be looked up before one matched, or a
// group line whose group cannot be before one matched, leaves the policy
// unknown. The group list (getgrouplist) cannot report a failing source,
// glibc skips it (see userdb.NSS.GroupIDs), so it only ever proves
// membership: before a user is found in none of the group lines' groups,
// every one of those groups has been looked up by name (getgrnam_r), which
// fails when its source is down. Not covered: a group found in one source
// whose memberships come, through getgrouplist only, from another source that
// is down.
//
// Resolve caches nothing: a Config may be kept for days, and a user deleted
// meanwhile may have left its UID to another. A caller that resolves many
// users in one pass gives it a directory made by CachedLookups for that
// pass.
func (c *Config) Resolve(name string, dir Directory) (Decision, *User, error) {
	u, err := dir.LookupUser(name)
	if err != nil {
		return Decision{}, nil, fmt.Errorf("looking up user %q: %w", name, err)
	}
	if !c.selectsByName() {
		// Only "*" and the unmapped policy: nothing to match a name against.
		return c.fallback(), u, nil
	}
	// Names known to have the UID without a lookup.
	spellings := []string{name}
	if u.Name != name {
		spellings = append(spellings, u.Name)
	}
	d, err := c.resolveUID(u.UID, spellings, dir)
	return d, u, err
}

// ResolveUID decides the namespace of the user with uid, by the rule of
// Resolve, for callers that know the user by UID: the watcher and status,
// which judge what logind reports by UID. Going through a name would cost a
// lookup more and follow a name that may have been renamed or given to
// another UID since. As Resolve looks the name up, it looks the UID's owner
// up also when the config needs none: a UID nobody has leaves the policy
// unknown.
func (c *Config) ResolveUID(uid uint32, dir Directory) (Decision, error) {
	return c.resolveUID(uid, nil, dir)
}

// resolveUID is the rule of Resolve for the user with uid. spellings are
// the names asked for, known to have the UID (the login's and NSS's for
// it), whose user lines need no lookup; none when asked by UID, which is
// then asked for by its owner's name.
func (c *Config) resolveUID(uid uint32, spellings []string, dir Directory) (Decision, error) {
	owner, err := dir.LookupUID(uid)
	if err != nil {
		return Decision{}, fmt.Errorf("looking up the owner of uid %d: %w", uid, err)
	}
	if len(spellings) == 0 {
		spellings = []string{owner.Name}
	}
	d, err := c.resolveUserLines(owner, spellings, dir)
	if d.Mapped() || err != nil {
		return d, err
	}
	d, err = c.resolveGroups(owner, dir)
	if d.Mapped() || err != nil {
		return d, err
	}
	return c.fallback(), nil
}

// selectsByName reports whether c has a user or group line.
func (c *Config) selectsByName() bool {
	for i := range c.rules {
		if c.rules[i].kind != SelectAll {
			return true
		}
	}
	return false
}

// fallback is the decision for a user no user or group line selects.
func (c *Config) fallback() Decision {
	if r := c.find(SelectAll, ""); r != nil {
		return c.decide(r, "no user or group line matches; * applies")
	}
	if c.Unmapped == UnmappedKeep {
		return Decision{Keep: true, Reason: "no line matches; unmapped = keep leaves the login namespace"}
	}
	return Decision{Netns: netnsFromSpec("-"), Reason: "no line matches; unmapped = host"}
}

// resolveUserLines returns the decision of the user line that selects
// owner, or a zero Decision: the line spelled as owner's name, else the
// first line whose name has owner's UID. spellings are the names asked for,
// known to have the UID, whose lines need no lookup.
func (c *Config) resolveUserLines(owner *User, spellings []string, dir Directory) (Decision, error) {
	// reason says how the line matched: by the name asked for, or by UID.
	reason := func(lineName string) string {
		if slices.Contains(spellings, lineName) {
			return "user line for " + lineName
		}
		return fmt.Sprintf("user line for %s (uid %d)", lineName, owner.UID)
	}
	if r := c.find(SelectUser, owner.Name); r != nil {
		return c.decide(r, reason(owner.Name)), nil
	}
	for i := range c.rules {
		r := &c.rules[i]
		if r.kind != SelectUser {
			continue
		}
		lineName := c.str(r, r.name)
		if slices.Contains(spellings, lineName) {
			return c.decide(r, reason(lineName)), nil
		}
		lineUser, err := dir.LookupUser(lineName)
		switch {
		case errors.Is(err, ErrUnknownUser):
		case err != nil:
			return Decision{}, fmt.Errorf("looking up user %q of the line at %s: %w", lineName, c.rule(r).Source(), err)
		case lineUser.UID == owner.UID:
			return c.decide(r, reason(lineName)), nil
		}
	}
	return Decision{}, nil
}

// resolveGroups returns the decision of the first group line of a group u
// is in, or a zero Decision.
func (c *Config) resolveGroups(u *User, dir Directory) (Decision, error) {
	var gids []uint32
	listed := false
	for i := range c.rules {
		r := &c.rules[i]
		if r.kind != SelectGroup {
			continue
		}
		if !listed {
			var err error
			if gids, err = dir.GroupIDs(u); err != nil {
				return Decision{}, fmt.Errorf("listing groups of %s: %w", u.Name, err)
			}
			// Sorted for binary search: users can be in thousands of groups.
			gids = slices.Clone(gids)
			slices.Sort(gids)
			listed = true
		}
		name := c.str(r, r.name)
		g, err := dir.LookupGroup(name)
		if errors.Is(err, ErrUnknownGroup) {
			continue
		}
		if err != nil {
			return Decision{}, fmt.Errorf("looking up group %q: %w", name, err)
		}
		if _, in := slices.BinarySearch(gids, g.GID); in {
			return c.decide(r, fmt.Sprintf("%s is in group %s (gid %d)", u.Name, g.Name, g.GID)), nil
		}
		if slices.Contains(g.Members, u.Name) {
			return c.decide(r, fmt.Sprintf("%s is listed as a member of group %s", u.Name, g.Name)), nil
		}
	}
	return Decision{}, nil
}

func (c *Config) decide(r *rule, reason string) Decision {
	matched := c.rule(r)
	return Decision{Rule: &matched, Netns: matched.Netns, Reason: reason}
}

// find returns the rule for selector kind and name, or nil; a linear scan is
// cheaper than indexing a config that is read once per login.
func (c *Config) find(kind SelectorKind, name string) *rule {
	for i := range c.rules {
		if r := &c.rules[i]; r.kind == kind && c.str(r, r.name) == name {
			return r
		}
	}
	return nil
}
