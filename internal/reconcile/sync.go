// Package reconcile owns `netns-session sync`: it makes the drop-ins
// /run/systemd/system/user@UID.service.d/50-netns-session.conf match the
// policy for every user it can name, with the mounts of their namespaces'
// /etc directories (whose shadow directories under /run it puts back, at
// boot too), and reloads systemd once if anything changed. The PAM hook places a user's manager at login; sync places the
// managers nobody logs in for (lingering users, which logind starts at boot)
// and takes drop-ins away from users the policy no longer maps.
//
// The users it can name: those of user lines, the members that NSS lists for
// the groups of group lines, lingering users (/var/lib/systemd/linger), users
// with a user@UID.service cgroup, and users with a drop-in. It cannot list
// everyone "*" maps, nor the users whose primary group is a mapped group
// (NSS lists only supplementary members, and enumerating every user is
// slow or impossible with LDAP); the PAM hook still places them when they
// log in, and sync finds them once they have a drop-in or linger.
//
// Each user gets what the PAM hook would give: config.Decision.NeedsDropIn
// and Target are the one rule. A drop-in is written even when its namespace
// file is missing: systemd then refuses to start the user manager instead of
// starting it on the host network, the same fail-closed answer the PAM hook
// gives the login. Sync warns about it. Users NSS does not know are skipped
// with a warning and their drop-ins left alone, since a directory that is
// briefly unreachable can look like one that lost the user.
//
// Sync fails closed like the PAM hook: a user whose policy cannot be known -
// the config did not load, or NSS fails for that user (a source that is down
// is never "not found") - and who has no drop-in gets one naming
// units.NoNetns, so that logind, which starts lingering users' managers right
// after the boot-time sync, cannot start them on the host network. A user
// who has a drop-in keeps it as it is: it was written under a policy known
// before, never names the host, and a directory that is down for a while
// must not take a correctly placed user's namespace away. Either way the
// sync fails naming the user. Root is the exception, as in the PAM hook,
// which lets root in on the host network to repair the config: its drop-in
// is left alone.
//
// The directory may be slow or down at boot, when logind starts lingering
// users' managers right after the boot-time sync. So every sync records the
// lingering users it resolved (DefaultLingerRecord), and HoldLingering,
// the first half of the boot-time sync, holds each recorded user's manager
// with units.NoNetns before anything asks NSS; Sync then replaces the holds
// it can. A later Sync that replaces the hold of a lingering user starts
// that user's manager, which logind will not retry. LingerWatch tells the
// watcher when the lingering users change, so that the record follows a
// user who starts lingering between syncs.
//
// A sync whose context has ended changes nothing: the watcher gives up on a
// sync stuck in NSS, and that sync must not write the old config's drop-ins
// when the lookup returns.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/units"
)

// DefaultLingerDir is where logind records lingering users, one file per
// user name.
const DefaultLingerDir = "/var/lib/systemd/linger"

// Options tunes Sync. The zero value syncs the running system.
type Options struct {
	// DryRun computes and reports the changes without making them.
	DryRun bool
	// Boot is the boot-time sync, after HoldLingering and before logind
	// starts the managers of lingering users: it starts none itself.
	Boot bool
	// LingerDir replaces DefaultLingerDir.
	LingerDir string
	// LingerRecord replaces DefaultLingerRecord.
	LingerRecord string
	// EtcView replaces netns.EtcView (netns.LoadOverlay on a dry run,
	// which writes nothing): the /etc directory of a namespace, whose
	// mounts go into the drop-ins of the users mapped there.
	EtcView func(name string) (*netns.Overlay, error)
}

func (o Options) lingerRecord() string {
	if o.LingerRecord == "" {
		return DefaultLingerRecord
	}
	return o.LingerRecord
}

// Action is what a change does to a drop-in.
type Action string

// The actions of a Change.
const (
	Write  Action = "write"
	Remove Action = "remove"
)

// Change is one drop-in that differed from the policy.
type Change struct {
	Action Action
	UID    uint32
	User   string
	// Netns is the namespace file the written drop-in names; "" for Remove.
	Netns string
	// Reason is why the policy places the user there.
	Reason string
}

// Report is what a sync found and did.
type Report struct {
	DryRun bool
	// Users is how many users had their drop-in compared with the policy.
	Users int
	// Changes are the drop-ins that differed when sync read them, by UID;
	// written or removed unless DryRun.
	Changes []Change
	// Reloaded says systemd reloaded.
	Reloaded bool
	// Started are the UIDs whose manager was started because the sync took
	// away the units.NoNetns drop-in that held it: the user lingers, and
	// logind, which starts lingering managers only at boot, gave up on it.
	Started []uint32
	// Warnings are problems that did not stop the sync: unknown users and
	// groups, missing namespaces, managers that keep their old namespace.
	Warnings []string
}

// Sync makes the drop-ins of every user it can name match cfg, with one
// reload for all of them, and reports what differed. cfg must be a config
// that loaded without errors, since a partial policy would take drop-ins
// away, or nil for a config that did not load: then no policy is known and
// every user sync can name but root gets the units.NoNetns drop-in unless it
// has one. A user for whom NSS fails is treated so too; users whose names
// disagree on the namespace are left alone. The errors are returned together after the
// others are synced, along with the report.
//
// Sync also keeps the record of lingering users that HoldLingering reads
// (see nextLingerRecord), and starts the manager of a lingering user whose
// units.NoNetns drop-in it replaced, unless opts.Boot. Once ctx is done it
// changes nothing: a sync its caller gave up on, stuck in an NSS lookup,
// must not write what an older config wanted when the lookup returns.
func Sync(ctx context.Context, cfg *config.Config, users config.Directory, m *units.Manager, opts Options) (*Report, error) {
	lookups := &lookupLog{Directory: users}
	s := &syncer{
		cfg: cfg,
		// A sync is one pass: each user name and UID is looked up once in
		// it, found or not, and again by the next sync.
		users:     config.CachedLookups(lookups),
		units:     m,
		lingerDir: opts.LingerDir,
		report:    &Report{DryRun: opts.DryRun},
	}
	if s.lingerDir == "" {
		s.lingerDir = DefaultLingerDir
	}
	switch {
	case opts.EtcView != nil:
		s.etcView = opts.EtcView
	case opts.DryRun:
		s.etcView = netns.LoadOverlay
	default:
		s.etcView = netns.EtcView
	}
	var c candidates
	if cfg != nil {
		s.fromRules(&c)
	}
	s.fromLinger(&c)
	s.fromRunningManagers(&c)
	s.fromDropIns(&c)

	policies := s.resolve(&c)
	var set units.Set
	for _, uid := range slices.Sorted(maps.Keys(policies)) {
		s.plan(policies[uid], &set)
	}
	s.report.Users = len(policies)
	if opts.DryRun {
		return s.report, errors.Join(s.errs...)
	}
	if err := ctx.Err(); err != nil {
		s.errs = append(s.errs, fmt.Errorf("changing nothing: %w", err))
		return s.report, errors.Join(s.errs...)
	}
	if !opts.Boot {
		for _, name := range s.lingering {
			if l := lookups.byName[name]; l.err == nil && l.user != nil {
				set.StartIfReleased(l.user.UID)
			}
		}
	}
	if len(set.UIDs()) > 0 {
		applied, err := m.Apply(ctx, &set)
		if err != nil {
			s.errs = append(s.errs, err)
		}
		s.report.Reloaded = len(applied.Reloaded) > 0
		s.report.Started = applied.Started
	}
	if s.lingerListed {
		s.recordLingering(ctx, opts.lingerRecord(), lookups.byName)
	}
	return s.report, errors.Join(s.errs...)
}

// recordLingering updates the record of lingering users, if it changed.
func (s *syncer) recordLingering(ctx context.Context, path string, lookups map[string]lookup) {
	old, err := readLingerRecord(path)
	if err != nil {
		// The lines that could not be read are lost either way; the
		// rewrite drops them.
		s.errs = append(s.errs, err)
	}
	next := nextLingerRecord(old, s.lingering, lookups)
	if err == nil && maps.Equal(old, next) {
		return
	}
	if err := writeLingerRecord(ctx, path, next); err != nil {
		s.errs = append(s.errs, err)
	}
}

// syncer holds the state of one Sync.
type syncer struct {
	cfg       *config.Config
	users     config.Directory
	units     *units.Manager
	lingerDir string
	// dropIns are the UIDs with a drop-in when the sync started.
	dropIns []uint32
	// lingering are the names in lingerDir, if lingerListed.
	lingering    []string
	lingerListed bool
	// netnsChecked are the namespace files already checked for existence.
	netnsChecked map[string]bool
	etcView      func(name string) (*netns.Overlay, error)
	// etcs are the /etc directories loaded so far, by namespace name.
	etcs   map[string]etcLoad
	report *Report
	errs   []error
}

func (s *syncer) warnf(format string, args ...any) {
	s.report.Warnings = append(s.report.Warnings, fmt.Sprintf(format, args...))
}

// policy is where the policy puts one user.
type policy struct {
	// name is the name that was resolved, as the user lines or NSS give it.
	name     string
	user     *config.User
	decision config.Decision
	// unknown, when set, says why the user's policy cannot be known;
	// decision is then zero.
	unknown string
}

// errNoConfig is why no policy is known when Sync has no config.
var errNoConfig = errors.New("the config did not load")

// resolve decides the policy of every candidate, by UID. A user known by
// several names (aliases sharing a UID) gets one answer for each, since
// config.Resolve decides by UID; should they still disagree (a directory
// that changed during the sync), the user is left alone. If the policy of
// any of the names cannot be known, the user's cannot.
func (s *syncer) resolve(c *candidates) map[uint32]policy {
	byUID := make(map[uint32][]policy)
	// failed holds the names whose lookup failed, so that a UID found
	// later under such a name gets no second report of the same error.
	failed := make(map[string]error)
	// add resolves name; known is the user when a lookup by UID found it.
	add := func(name string, known *config.User) {
		var d config.Decision
		var u *config.User
		err, seen := failed[name]
		if !seen {
			d, u, err = s.resolveName(name)
		}
		if u == nil {
			u = known
		}
		switch {
		case u == nil && errors.Is(err, config.ErrUnknownUser):
			s.warnf("skipping user %q: unknown to NSS", name)
		case errors.Is(err, errNoConfig):
			byUID[u.UID] = append(byUID[u.UID], policy{name: name, user: u, unknown: err.Error()})
		case err != nil:
			if !seen {
				failed[name] = err
				s.errs = append(s.errs, fmt.Errorf("resolving user %q: %w", name, err))
			}
			if u != nil {
				byUID[u.UID] = append(byUID[u.UID], policy{name: name, user: u, unknown: err.Error()})
			}
		default:
			byUID[u.UID] = append(byUID[u.UID], policy{name: name, user: u, decision: d})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.names)) {
		add(name, nil)
	}
	for _, uid := range slices.Sorted(maps.Keys(c.uids)) {
		if _, done := byUID[uid]; done {
			continue
		}
		u, err := s.users.LookupUID(uid)
		switch {
		case errors.Is(err, config.ErrUnknownUser):
			s.warnf("skipping uid %d: no user has it; its drop-in, if any, is left alone", uid)
		case err != nil:
			s.errs = append(s.errs, fmt.Errorf("looking up uid %d: %w", uid, err))
			// The drop-in's comment names the user; the UID is all there is.
			name := strconv.FormatUint(uint64(uid), 10)
			byUID[uid] = append(byUID[uid], policy{name: name, user: &config.User{Name: name, UID: uid}, unknown: err.Error()})
		default:
			add(u.Name, u)
		}
	}

	policies := make(map[uint32]policy, len(byUID))
	for uid, ps := range byUID {
		if i := slices.IndexFunc(ps, func(p policy) bool { return p.unknown != "" }); i >= 0 {
			if uid == 0 {
				s.warnf("root keeps its drop-in, if any: its policy is unknown (%s), and the PAM hook lets root in on the host network then", ps[i].unknown)
				continue
			}
			policies[uid] = ps[i]
			continue
		}
		if i := slices.IndexFunc(ps[1:], func(p policy) bool { return !samePlacement(ps[0].decision, p.decision) }); i >= 0 {
			s.warnf("skipping uid %d: its names %s and %s resolve to different namespaces (%s, %s); give them the same line",
				uid, ps[0].name, ps[i+1].name, describe(ps[0].decision), describe(ps[i+1].decision))
			continue
		}
		policies[uid] = ps[0]
	}
	return policies
}

// resolveName resolves one user name under the config; without one, it only
// looks the user up, and returns errNoConfig for a user it found.
func (s *syncer) resolveName(name string) (config.Decision, *config.User, error) {
	if s.cfg != nil {
		return s.cfg.Resolve(name, s.users)
	}
	u, err := s.users.LookupUser(name)
	if err != nil {
		return config.Decision{}, nil, fmt.Errorf("looking up user %q: %w", name, err)
	}
	return config.Decision{}, u, errNoConfig
}

// samePlacement reports whether a and b put the user manager in the same
// place.
func samePlacement(a, b config.Decision) bool {
	return a.NeedsDropIn() == b.NeedsDropIn() && (!a.NeedsDropIn() || a.Target() == b.Target())
}

func describe(d config.Decision) string {
	if d.NeedsDropIn() {
		return d.Target()
	}
	return "no drop-in"
}

// plan adds p's wanted drop-in to set and records it as a change when the
// disk differs. Every wanted drop-in goes into set, not only changed ones:
// Apply then also retries a reload that an interrupted login left pending.
func (s *syncer) plan(p policy, set *units.Set) {
	uid, d := p.user.UID, p.decision
	target, reason := "", d.Reason
	switch {
	case p.unknown != "":
		if _, has := slices.BinarySearch(s.dropIns, uid); has {
			// Written under a policy known before, and never the host:
			// a directory that is down must not change where the
			// manager starts. The PAM hook denies logins meanwhile.
			s.warnf("%s (uid %d) keeps its drop-in as it is: its policy is unknown (%s)", p.user.Name, uid, p.unknown)
			return
		}
		target, reason = units.NoNetns, "policy unknown, manager kept from starting: "+p.unknown
	case d.NeedsDropIn():
		target = d.Target()
		s.checkNetns(target, p.user.Name)
	}
	var mounts []units.Mount
	if name := d.Netns.Name(); target != "" && target != units.NoNetns && name != "" {
		etc, err := s.etc(name)
		if err != nil {
			// Without the mounts the manager would run the user's
			// services with the host's /etc: it is kept from starting.
			s.errs = append(s.errs, err)
			target, reason = units.NoNetns, fmt.Sprintf("manager kept from starting: %v", err)
		}
		mounts = units.OverlayMounts(etc)
	}
	var change Change
	if target != "" {
		set.Ensure(p.user.Name, uid, target, mounts...)
		same, err := s.units.DropInMatches(uid, p.user.Name, target, mounts...)
		if err != nil {
			s.errs = append(s.errs, err)
		}
		if same {
			return
		}
		change = Change{Action: Write, UID: uid, User: p.user.Name, Netns: target, Reason: reason}
	} else {
		if _, has := slices.BinarySearch(s.dropIns, uid); !has {
			return
		}
		set.Remove(uid)
		change = Change{Action: Remove, UID: uid, User: p.user.Name, Reason: d.Reason}
	}
	s.report.Changes = append(s.report.Changes, change)
	if pid, err := s.units.UserManagerPID(uid); err == nil {
		unit := units.UserManagerUnit(uid)
		s.warnf("%s of %s runs (PID %d) and keeps its namespace until it restarts (systemctl restart %s)",
			unit, p.user.Name, pid, unit)
	}
}

// etcLoad is what loading a namespace's /etc directory gave.
type etcLoad struct {
	overlay *netns.Overlay
	err     error
}

// etc returns the /etc directory of the namespace called name, loaded once
// per sync.
func (s *syncer) etc(name string) (*netns.Overlay, error) {
	if l, ok := s.etcs[name]; ok {
		return l.overlay, l.err
	}
	if s.etcs == nil {
		s.etcs = make(map[string]etcLoad)
	}
	o, err := s.etcView(name)
	if err != nil {
		err = fmt.Errorf("applying the /etc directory of namespace %s: %w", name, err)
	}
	s.etcs[name] = etcLoad{o, err}
	return o, err
}

// checkNetns warns, once per path, about a namespace file that a drop-in
// names but that is not a network namespace.
func (s *syncer) checkNetns(path, user string) {
	if s.netnsChecked[path] {
		return
	}
	if s.netnsChecked == nil {
		s.netnsChecked = make(map[string]bool)
	}
	s.netnsChecked[path] = true
	if _, err := netns.CheckNetns(path); err != nil {
		s.warnf("%v: the user manager of %s (and of every user mapped there) fails to start, and their logins are refused, until it is a network namespace", err, user)
	}
}
