package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/etccheck"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/pamcheck"
	"github.com/netns-session/netns-session/internal/userdb"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "validate the config and show which network namespace each user gets",
		UsageText: "netns-session check [--config FILE] [--user NAME] [--quiet]",
		Description: `Reads ` + config.DefaultFile + ` and ` + config.DefaultDir + `/*.conf
(in lexical order) the way the PAM hook does, and prints every mapping: the
selector and namespace as written, the namespace file, whether that file is a
network namespace, what NSS knows of the user or group, and where the line is.
Then, for every namespace mapped to that has an /etc directory (/etc/netns/NAME,
which ip netns exec reads too), the files of /etc its sessions see replaced:
"/etc/F", with "(at TARGET)" when /etc/F leads elsewhere and "(via DIR)" when
a shadow of a directory under /run shows it (the resolv.conf of resolved,
NetworkManager or resolvconf), then the directories it hides ("hides
/run/nscd"). Then the policy for unmapped users and what the watcher does with
a session outside its namespace, then every problem, one per line.

The config has one mapping per line, "#" starts a comment:

   alice      ns0              # user alice -> /run/netns/ns0
   @research  lab              # members of group research -> /run/netns/lab
   bob        /srv/netns/bob   # an absolute path to a namespace file
   root       -                # the host namespace (PID 1's)
   *          guest            # everyone no other line matches
   unmapped = keep             # unmatched users keep the login's namespace
                               # (default: unmapped = host)
   enforce = warn              # the watcher only logs a misplaced session
                               # (default: enforce = terminate)

A user's own line wins, then the first @group line (in file order) of a group
the user is in, then "*". A user line selects a user by UID: any name NSS gives
that UID (another case, a second name) logs in under it, and the user is
resolved under the UID's own name (getent passwd UID), as logind and the
watcher know it; of two lines of one UID, the line of that name applies, else
the first. Group membership comes from NSS: the user's group list and the
group's member list, so LDAP, SSSD and userdb groups count.

Errors (exit status 1): a line that does not parse, a config file or directory
not owned by root or writable by group or others (with either, the PAM hook
refuses every login but root's), a namespace file that is missing or not a
network namespace (its users cannot log in), a user or group lookup that fails
because a source (LDAP, SSSD, a file) is unavailable (the logins that need the
line are denied), two user lines that select the same UID, and an /etc
directory of a namespace that cannot be applied (its users cannot log in).
Warnings (exit status 0): a user or group NSS does not know (the line matches
nobody), a user line spelled otherwise than NSS spells the user, a member of a
mapped group listed under a name that is not its UID's own (the line does not
map that user by the entry), a namespace file that cannot be inspected, an
entry of /etc/netns/NAME with no counterpart in /etc (sessions do not see it),
a namespace without a resolv.conf of its own while the host's names only
loopback resolvers, such as systemd-resolved's 127.0.0.53 (in the namespace
that address is its own loopback, where nothing answers), and, for a
namespace with its own resolv.conf, the host's resolvers that its sessions'
lookups still reach: systemd-resolved ("resolve" in the hosts line of
/etc/nsswitch.conf) or nscd with a hosts cache, when their sockets are not
hidden or the daemon is not running yet (a session opened before it starts
reaches it once it runs), and mdns, ldap or wins in the hosts line, whose
daemons look names up through the host's network.

Without --config and --user, check is the pre-flight of the whole system:
it also reads the PAM session stacks of sshd, login, su, su-l, sudo,
sudo-i, cron and atd (those installed) as Linux-PAM builds them from
/etc/pam.d, includes followed, and lists where each runs the hook. Errors,
each at the file and line: a stack without the hook line (pam_exec.so
running netns-session pam; the mapped users' sessions of that service stay
on the host network), the hook after pam_systemd.so (the user's manager
starts before the hook placed it), pam_env.so with user_readenv=1 before
the hook (a user's ~/.pam_environment reaches the hook, which runs as
root), a control that lets the session open when the hook fails (use
required), an include PAM cannot read, kernel.yama.ptrace_scope 3 and
SELinux enforcing (either refuses the join: mapped users cannot log in).

With --config FILE, check validates that file alone, as a draft, wherever
it lies (sshd -t -f, visudo -cf): every problem of every line, and, as a
warning, an owner or mode for which the PAM hook would refuse the file
where it lies. FILE being the live config (` + config.DefaultFile + `),
those are errors, as for the hook.

With --user NAME, shows how that user resolves instead: the rule, why it
matched, the namespace the session will join and what of /etc it overrides.

With --quiet, prints only the problems, and nothing when there are none;
the exit status is the same.`,
		Flags: []cli.Flag{
			configFlag("check"),
			&cli.StringFlag{Name: "user", Usage: "show how the user `NAME` resolves"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the problems, nothing when there are none"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				// check alice most likely means to ask about alice.
				return usageError(c, "check takes no arguments, got %q (to see how a user resolves: check --user NAME)", c.Args().Slice())
			}
			ck := &checker{out: c.App.Writer, problems: c.App.Writer, quiet: c.Bool("quiet"),
				users: userdb.System(), inspect: inspectNetns, etcView: netns.CheckedEtcView}
			if ck.quiet {
				ck.out = io.Discard
			}
			if name := c.String("user"); name != "" {
				return ck.user(c.String("config"), name)
			}
			if c.String("config") == "" {
				// The live system: a draft does not depend on its wiring.
				ck.pam = pamcheck.System{}.Check
			}
			return ck.all(c.String("config"))
		},
	}
}

// checker reports on a config and counts what it finds.
type checker struct {
	// out gets the report; problems (see finish) go to problems, which
	// is out unless --quiet sends the report to io.Discard.
	out, problems io.Writer
	// quiet prints only the problems, nothing when there are none.
	quiet bool
	users config.Directory
	// inspect checks that a path is a network namespace (inspectNetns).
	inspect func(path string) error
	// etcView plans the /etc overlay of the namespace called name and
	// checks its shadow directories (netns.CheckedEtcView); nil leaves the
	// namespaces' /etc directories unchecked.
	etcView func(name string) (*netns.Overlay, error)
	// host is the system whose resolver files are read with them.
	host etccheck.Host
	// pam reads the PAM wiring and the kernel settings of the join
	// (pamcheck.System.Check); nil leaves them unchecked.
	pam      func() pamcheck.Report
	errors   []string
	warnings []string
	// netnsStates caches, in a word for the table, what checking a namespace
	// file found: many rules share one.
	netnsStates map[string]string
	// userLines are the user lines seen, by the UID they select.
	userLines map[uint32]config.Rule
}

func (ck *checker) errorf(format string, args ...any) {
	ck.errors = append(ck.errors, fmt.Sprintf(format, args...))
}

func (ck *checker) warnf(format string, args ...any) {
	ck.warnings = append(ck.warnings, fmt.Sprintf(format, args...))
}

// load reads the config and records its problems. It returns nil when
// there is no config to show. A file given by path that is not the live
// config is a draft: read wherever it lies, its location's ownership and
// mode only warned of, since the hook, which refuses it, does not read it.
func (ck *checker) load(path string) *config.Config {
	var cfg *config.Config
	var err error
	if isLive(path) {
		cfg, err = config.Load(path)
	} else {
		var insecure config.ErrorList
		cfg, insecure, err = config.LoadDraft(path)
		for _, e := range insecure {
			ck.warnf("%s: %s: the PAM hook refuses a config there; install it owned by root, in a directory only root may write, not writable by group or others (install -o root -g root -m 0644 %s %s)", e.File, e.Msg, path, config.DefaultFile)
		}
	}
	var list config.ErrorList
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			ck.errorf("%v", e)
		}
	case err != nil:
		ck.errorf("%v", err)
	}
	return cfg
}

// all prints the effective mapping of the whole config and its problems.
func (ck *checker) all(path string) error {
	cfg := ck.load(path)
	if cfg != nil {
		rules := cfg.Rules()
		if len(rules) == 0 {
			fmt.Fprintln(ck.out, "no mappings")
		} else {
			tw := tabwriter.NewWriter(ck.out, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "SELECTOR\tNETNS\tPATH\tNETNS-FILE\tRESOLVES\tSOURCE")
			for _, r := range rules {
				state := ck.netns(r.Netns, r.Selector()+" at "+r.Source())
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Selector(), r.Netns.Spec, r.Netns.Path, state, ck.resolves(r), r.Source())
			}
			tw.Flush()
		}
		ck.etcDirs(rules)
		fmt.Fprintf(ck.out, "\nunmapped = %s: %s\n", cfg.Unmapped, describeUnmapped(cfg.Unmapped))
		fmt.Fprintf(ck.out, "enforce = %s: %s\n", cfg.Enforce, describeEnforce(cfg.Enforce))
	}
	reported := ck.pamWiring(cfg != nil)
	return ck.finish(cfg != nil || reported)
}

// pamWiring prints where the session stack of each installed PAM service
// runs the hook, set apart from a report printed before, and records what
// stands in the hook's way; it says whether it printed anything.
func (ck *checker) pamWiring(afterReport bool) bool {
	if ck.pam == nil {
		return false
	}
	r := ck.pam()
	if len(r.Stacks) > 0 {
		if afterReport {
			fmt.Fprintln(ck.out)
		}
		tw := tabwriter.NewWriter(ck.out, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "PAM SERVICE\tHOOK")
		for i, st := range r.Stacks {
			hook := "missing"
			if r.Hooks[i] >= 0 {
				hook = st.Entries[r.Hooks[i]].Position()
			}
			fmt.Fprintf(tw, "%s\t%s\n", st.Service, hook)
		}
		tw.Flush()
	}
	for _, f := range r.Findings {
		if f.Severity == pamcheck.Error {
			ck.errorf("%s", f)
		} else {
			ck.warnf("%s", f)
		}
	}
	return len(r.Stacks) > 0
}

// user prints how one user resolves.
func (ck *checker) user(path, name string) error {
	cfg := ck.load(path)
	if cfg == nil {
		return ck.finish(false)
	}
	broken := len(ck.errors) > 0
	if broken {
		fmt.Fprintln(ck.out, "the config has errors, so the PAM hook refuses every login but root's; the valid lines say:")
	}
	d, u, err := cfg.Resolve(name, ck.users)
	if err != nil {
		ck.errorf("%v", err)
		return ck.finish(broken)
	}
	tw := tabwriter.NewWriter(ck.out, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "user\t%s (uid %d, gid %d)\n", u.Name, u.UID, u.GID)
	if d.Mapped() {
		fmt.Fprintf(tw, "rule\t%s %s at %s\n", d.Rule.Selector(), d.Rule.Netns.Spec, d.Rule.Source())
	} else {
		fmt.Fprintf(tw, "rule\tnone\n")
	}
	fmt.Fprintf(tw, "why\t%s\n", d.Reason)
	if d.Keep {
		fmt.Fprintf(tw, "netns\tunchanged: %s\n", describeUnmapped(config.UnmappedKeep))
	} else {
		fmt.Fprintf(tw, "netns\t%s -> %s: %s\n", d.Netns.Spec, d.Netns.Path, ck.netns(d.Netns, u.Name))
		n, overrides, ok := ck.etcDir(d.Netns)
		if overrides != "" {
			fmt.Fprintf(tw, "etc\t%s\n", overrides)
		}
		if ok {
			ck.warnings = append(ck.warnings, ck.host.Warnings([]etccheck.Namespace{n})...)
		}
	}
	tw.Flush()
	return ck.finish(true)
}

// netns checks a namespace file once per path; the first user of the path,
// described by who, is named in the problem.
func (ck *checker) netns(n config.Netns, who string) string {
	if state, ok := ck.netnsStates[n.Path]; ok {
		return state
	}
	var state string
	switch err := ck.inspect(n.Path); {
	case err == nil:
		state = "ok"
	case errors.Is(err, fs.ErrNotExist):
		ck.errorf("netns %s for %s does not exist (create it with ip netns add %s)", n.Path, who, n.Spec)
		state = "missing"
	case errors.Is(err, netns.ErrNotNetNamespace):
		ck.errorf("netns %s for %s: %v", n.Path, who, err)
		state = "not a netns: another namespace type"
	case errors.Is(err, netns.ErrNotNamespace):
		ck.errorf("netns %s for %s: %v (a leftover of ip netns without its mount?)", n.Path, who, err)
		state = "not a netns: not a namespace file"
	default:
		ck.warnf("netns %s for %s cannot be inspected: %v", n.Path, who, err)
		state = "unchecked"
	}
	if ck.netnsStates == nil {
		ck.netnsStates = make(map[string]string)
	}
	ck.netnsStates[n.Path] = state
	return state
}

// etcDirs prints which files of /etc the sessions of each namespace that
// rules map users to see replaced, and records the problems of the
// namespaces' /etc directories and of their name lookups.
func (ck *checker) etcDirs(rules []config.Rule) {
	if ck.etcView == nil {
		return
	}
	var namespaces []etccheck.Namespace
	var rows []string
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.Netns.Spec] {
			continue
		}
		seen[r.Netns.Spec] = true
		n, overrides, ok := ck.etcDir(r.Netns)
		if overrides != "" {
			rows = append(rows, r.Netns.Spec+"\t"+overrides)
		}
		if ok {
			namespaces = append(namespaces, n)
		}
	}
	if len(rows) > 0 {
		fmt.Fprintln(ck.out)
		tw := tabwriter.NewWriter(ck.out, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "NETNS\tOVERRIDES FROM "+netns.EtcRoot+"/NETNS")
		for _, row := range rows {
			fmt.Fprintln(tw, row)
		}
		tw.Flush()
	}
	ck.warnings = append(ck.warnings, ck.host.Warnings(namespaces)...)
}

// etcDir plans the /etc overlay of namespace n, and says what it overrides
// ("" for none); ok is false for the host's namespace, which has none, and
// for an overlay that cannot be planned, an error.
func (ck *checker) etcDir(n config.Netns) (_ etccheck.Namespace, overrides string, ok bool) {
	if ck.etcView == nil || n.Host || n.Path == netns.HostPath {
		return etccheck.Namespace{}, "", false
	}
	ns := etccheck.Namespace{Spec: n.Spec}
	name := n.Name()
	if name == "" {
		return ns, "", true
	}
	o, err := ck.etcView(name)
	switch {
	case err != nil:
		ck.errorf("netns %s: its /etc directory %s cannot be applied, so the logins of the users it is mapped to are denied: %v", n.Spec, netns.EtcDir(name), err)
		return ns, "cannot be applied (see the errors)", false
	case o == nil:
		return ns, "", true
	}
	ns.Overlay = o
	return ns, ck.host.Overrides(o), true
}

// isLive reports whether path, as given to --config, is the config the PAM
// hook reads by default: "" or the same file as config.DefaultFile.
func isLive(path string) bool {
	if path == "" {
		return true
	}
	file, err := os.Stat(path)
	if err != nil {
		return filepath.Clean(path) == config.DefaultFile
	}
	live, err := os.Stat(config.DefaultFile)
	return err == nil && os.SameFile(file, live)
}

func inspectNetns(path string) error {
	_, err := netns.CheckNetns(path)
	return err
}

// resolves says what NSS knows of the selector of r.
func (ck *checker) resolves(r config.Rule) string {
	var err error
	var found string
	switch r.Kind {
	case config.SelectAll:
		return "everyone else"
	case config.SelectUser:
		var u *config.User
		if u, err = ck.users.LookupUser(r.Name); err == nil {
			found = fmt.Sprintf("uid %d", u.UID)
			ck.userLine(r, u)
		}
	case config.SelectGroup:
		var g *config.Group
		if g, err = ck.users.LookupGroup(r.Name); err == nil {
			found = fmt.Sprintf("gid %d", g.GID)
			ck.groupMembers(r, g)
		}
	}
	switch {
	case err == nil:
		return found
	case errors.Is(err, config.ErrUnknownUser):
		ck.warnf("%s: unknown user %q: the line matches nobody", r.Source(), r.Name)
		return "unknown user"
	case errors.Is(err, config.ErrUnknownGroup):
		ck.warnf("%s: unknown group %q: the line matches nobody", r.Source(), r.Name)
		return "unknown group"
	case errors.Is(err, config.ErrSourceUnavailable):
		ck.errorf("%s: %v: the logins this line may decide are denied until it resolves", r.Source(), err)
		return "source down"
	default:
		// Resolution fails the same way, which denies the login.
		ck.errorf("%s: %v", r.Source(), err)
		return "lookup failed"
	}
}

// userLine records the user u that user line r selects, and reports a
// spelling NSS does not use and a user that an earlier line selects too.
func (ck *checker) userLine(r config.Rule, u *config.User) {
	if u.Name != r.Name {
		ck.warnf("%s: user %q is %q (uid %d) to NSS: the line selects that user, whatever the spelling", r.Source(), r.Name, u.Name, u.UID)
	}
	if first, ok := ck.userLines[u.UID]; ok {
		ck.errorf("%s: user %q is uid %d, like %q at %s: two lines select one user; keep one", r.Source(), r.Name, u.UID, first.Name, first.Source())
		return
	}
	if ck.userLines == nil {
		ck.userLines = make(map[uint32]config.Rule)
	}
	ck.userLines[u.UID] = r
}

// groupMembers reports the members group line r's group g lists under a
// name that is not their UID's own (a second name, useradd -o; another
// spelling): the user is resolved under the UID's own name, which the member
// list must name, so the line does not map the user by that entry, although
// the kernel gives the user's sessions the group (initgroups of the name
// that logs in). A member the UID's own name is listed for too, or whose
// group list (getgrouplist) has the group, is mapped all the same.
func (ck *checker) groupMembers(r config.Rule, g *config.Group) {
	for _, member := range g.Members {
		u, err := ck.users.LookupUser(member)
		if err == nil {
			u, err = ck.users.LookupUID(u.UID)
		}
		switch {
		case errors.Is(err, config.ErrUnknownUser):
			continue // a member list may outlive its users
		case err != nil:
			ck.warnf("%s: group %q lists %q, who cannot be looked up: %v", r.Source(), g.Name, member, err)
			continue
		case u.Name == member || slices.Contains(g.Members, u.Name):
			continue
		}
		if gids, err := ck.users.GroupIDs(u); err == nil && slices.Contains(gids, g.GID) {
			continue
		}
		ck.warnf("%s: group %q lists %q, a name of uid %d, whose own name is %q: the line does not map uid %d by that entry, though its sessions get the group; list %q in the group",
			r.Source(), g.Name, member, u.UID, u.Name, u.UID, u.Name)
	}
}

// finish prints the problems and a summary, set apart from a report printed
// before, and fails if any problem is an error.
func (ck *checker) finish(afterReport bool) error {
	out := ck.problems
	if out == nil {
		out = ck.out
	}
	if afterReport && !ck.quiet && len(ck.errors)+len(ck.warnings) > 0 {
		fmt.Fprintln(out)
	}
	for _, e := range ck.errors {
		fmt.Fprintln(out, "error:", e)
	}
	for _, w := range ck.warnings {
		fmt.Fprintln(out, "warning:", w)
	}
	if !ck.quiet {
		fmt.Fprintf(out, "%s, %s\n", plural(len(ck.errors), "error"), plural(len(ck.warnings), "warning"))
	}
	if len(ck.errors) > 0 {
		return errCheckFailed
	}
	return nil
}

func describeUnmapped(p config.UnmappedPolicy) string {
	if p == config.UnmappedKeep {
		return "users no line matches stay in the namespace of the process they log in from"
	}
	return "users no line matches join the host network namespace"
}

func describeEnforce(p config.EnforcePolicy) string {
	if p == config.EnforceWarn {
		return "the watcher logs a session found outside its namespace"
	}
	return "the watcher ends a session found outside its namespace"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
