package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/policy"
	"github.com/netns-session/netns-session/internal/proc"
	"github.com/netns-session/netns-session/internal/reconcile"
	"github.com/netns-session/netns-session/internal/units"
	"github.com/netns-session/netns-session/internal/userdb"
)

// The exit statuses of status.
const (
	statusViolation  = 1
	statusIncomplete = 2
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the network namespace of every session and user manager, and whether it is the right one",
		UsageText: "netns-session status [--json] [--config FILE]",
		Description: `Lists every logind session and every running user manager (user@UID.service)
with the namespace the config wants for its user (EXPECTED) and the one its
process really runs in (ACTUAL), compared by device and inode, and the drop-ins
that do not match the config (what "netns-session sync" would change). Run it
as root: other users' namespaces are readable only to root.

A session is judged by its leader, the process that opened it, once proven
the session's, and once the leader is gone by the oldest process of the
session's user in its scope (as the watcher does, see "netns-session watch
--help"). PID is the process judged, "-" for none; the JSON says which
("judged": "leader" or "scope").
Namespaces are shown by name: a name under /run/netns, "host" for PID 1's,
else DEV:INODE. The verdicts:

   ok             runs in the namespace its user is mapped to
   violation      runs elsewhere, or its user's namespace does not exist
   unconstrained  "unmapped = keep": any namespace is right
   exempt         greeter, lock-screen and the user manager's own session
                  (its manager is listed below the sessions)
   gone           the process exited before it could be looked at, or the
                  leader's PID belongs to another process now
   unknown        the user or the namespace could not be looked up, or the
                  leader could not be proven the session's

When a session's or manager's namespace has a resolv.conf of its own
(/etc/netns/NAME/resolv.conf), a column RESOLV.CONF says which file the
process judged sees at /etc/resolv.conf, compared by device and inode:
"namespace" (its namespace's), "host" (the host's), "other" (another file,
none, or a version of the namespace's file that was replaced since the
session opened) or "unknown" (could not be read: a warning says why); "-"
for the others, and no column when no process has one. It is reported,
never judged: it changes no verdict and no exit status. The JSON has it as
"resolv_conf", "" when not looked at.

Exit status: 0 when nothing violates the policy, 1 when something does (a
session, a user manager or a drop-in), 2 when it could not tell: the config
has errors, logind cannot be reached, or a verdict is unknown. So monitoring
can run, say:

   netns-session status >/dev/null || alert "netns-session: policy violated"

With --json, the same as one JSON object: "sessions", "managers", "drop_ins",
"warnings", and the counts "violations" and "unknown".`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of tables"},
			configFlag("read"),
		},
		Action: runStatus,
	}
}

func runStatus(c *cli.Context) error {
	if err := noArguments(c, "status"); err != nil {
		return err
	}
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("netns-session: loading config (see netns-session check):\n%v", err), statusIncomplete)
	}
	conn, err := logind.Dial(c.Context)
	if err != nil {
		return cli.Exit("netns-session: "+err.Error(), statusIncomplete)
	}
	defer conn.Close()
	users, manager := userdb.System(), units.New()
	s := &statusTaker{
		logind:     conn,
		judge:      policy.NewJudge(cfg, users, &proc.SleepLog{}).Pass(),
		managerPID: manager.UserManagerPID,
		dropIns: func(ctx context.Context) (*reconcile.Report, error) {
			return reconcile.Sync(ctx, cfg, users, manager, reconcile.Options{DryRun: true})
		},
		names: hostNetnsNames,
	}
	report, err := s.take(c.Context)
	if err != nil {
		return cli.Exit("netns-session: "+err.Error(), statusIncomplete)
	}
	if c.Bool("json") {
		err = report.writeJSON(c.App.Writer)
	} else {
		err = report.writeText(c.App.Writer)
	}
	if err != nil {
		return err
	}
	if code := report.exitStatus(); code != 0 {
		return cli.Exit("", code)
	}
	return nil
}

// exitStatus is 0, statusViolation or statusIncomplete: a violation counts
// more than a verdict that could not be reached.
func (r *statusReport) exitStatus() int {
	switch {
	case r.Violations > 0:
		return statusViolation
	case r.Unknown > 0:
		return statusIncomplete
	}
	return 0
}

// sessionLister is what status uses of logind; *logind.Conn implements it.
type sessionLister interface {
	ListSessionsContext(ctx context.Context) ([]logind.Session, error)
	ListUsersContext(ctx context.Context) ([]logind.User, error)
}

// statusTaker gathers a statusReport.
type statusTaker struct {
	logind     sessionLister
	judge      *policy.Judge
	managerPID func(uid uint32) (int, error)
	// dropIns returns what a sync would change, without changing it.
	dropIns func(ctx context.Context) (*reconcile.Report, error)
	// names returns a name for each namespace it knows, by identity; on
	// error, those it could name.
	names func() (map[netns.ID]string, error)
}

// statusReport is what status prints.
type statusReport struct {
	Sessions   []sessionStatus `json:"sessions"`
	Managers   []managerStatus `json:"managers"`
	DropIns    []dropInStatus  `json:"drop_ins"`
	Warnings   []string        `json:"warnings"`
	Violations int             `json:"violations"`
	Unknown    int             `json:"unknown"`
}

// netnsStatus is a verdict and the namespaces it compares.
type netnsStatus struct {
	// Expected is the namespace file the policy wants, "" for any.
	Expected string `json:"expected"`
	// ExpectedID and ActualID are DEV:INODE, "" when unknown.
	ExpectedID string `json:"expected_id"`
	ActualID   string `json:"actual_id"`
	// ActualName is the name of the namespace the process runs in (see
	// status --help), "" when unknown.
	ActualName string         `json:"actual_name"`
	Verdict    policy.Verdict `json:"verdict"`
	Reason     string         `json:"reason"`
	// ResolvConf is which resolv.conf the process sees, when its namespace
	// has one of its own.
	ResolvConf policy.ResolvConfView `json:"resolv_conf"`
}

type sessionStatus struct {
	ID         string `json:"id"`
	User       string `json:"user"`
	UID        uint32 `json:"uid"`
	Class      string `json:"class"`
	Type       string `json:"type"`
	Service    string `json:"service"`
	TTY        string `json:"tty"`
	RemoteHost string `json:"remote_host"`
	Leader     uint32 `json:"leader"`
	// PID is the process judged, 0 for none; Judged is "leader" or "scope"
	// for a process of the session's scope, "" for none.
	PID    int    `json:"pid"`
	Judged string `json:"judged"`
	netnsStatus
}

// dropInStatus is a drop-in that does not match the config.
type dropInStatus struct {
	UID  uint32 `json:"uid"`
	User string `json:"user"`
	// Action is what sync would do: "write" or "remove".
	Action reconcile.Action `json:"action"`
	// Netns is the namespace file the drop-in should name, "" for none.
	Netns  string `json:"netns"`
	Reason string `json:"reason"`
}

type managerStatus struct {
	Unit string `json:"unit"`
	User string `json:"user"`
	UID  uint32 `json:"uid"`
	PID  int    `json:"pid"`
	netnsStatus
}

func (s *statusTaker) take(ctx context.Context) (*statusReport, error) {
	sessions, err := s.logind.ListSessionsContext(ctx)
	if err != nil {
		return nil, err
	}
	users, err := s.logind.ListUsersContext(ctx)
	if err != nil {
		return nil, err
	}
	r := &statusReport{Sessions: []sessionStatus{}, Managers: []managerStatus{}, DropIns: []dropInStatus{}, Warnings: []string{}}
	// Names only label the ACTUAL column, no verdict rests on them: a
	// listing that failed is a warning, not an unknown verdict.
	names, err := s.names()
	if err != nil {
		r.Warnings = append(r.Warnings, "naming namespaces: "+err.Error())
	}
	for _, ls := range sessions {
		f, leader := s.judge.Session(ls)
		leader.Release()
		st := sessionStatus{
			ID: ls.ID, User: ls.User, UID: ls.UID, Class: ls.Class, Type: ls.Type, Service: ls.Service,
			TTY: ls.TTY, RemoteHost: ls.RemoteHost, Leader: ls.Leader, PID: f.PID,
			Judged: f.Judged(), netnsStatus: r.count(f, names, "session "+ls.ID+" of "+ls.User),
		}
		r.Sessions = append(r.Sessions, st)
	}
	for _, u := range users {
		unit := units.UserManagerUnit(u.UID)
		pid, err := policy.FindManager(s.managerPID, u.UID)
		switch {
		case err != nil:
			r.Managers = append(r.Managers, managerStatus{Unit: unit, User: u.Name, UID: u.UID,
				netnsStatus: r.count(policy.Finding{Verdict: policy.Unknown, Reason: err.Error()}, names, "")})
			continue
		case pid == 0:
			// The user has only sessions that do without one.
			continue
		}
		r.Managers = append(r.Managers, managerStatus{
			Unit: unit, User: u.Name, UID: u.UID, PID: pid,
			netnsStatus: r.count(s.judge.Process(u.UID, u.Name, pid), names, unit+" of "+u.Name),
		})
	}
	sync, err := s.dropIns(ctx)
	if sync != nil {
		for _, c := range sync.Changes {
			r.DropIns = append(r.DropIns, dropInStatus{UID: c.UID, User: c.User, Action: c.Action, Netns: c.Netns, Reason: c.Reason})
		}
		r.Violations += len(sync.Changes)
		r.Warnings = append(r.Warnings, sync.Warnings...)
	}
	if err != nil {
		r.Warnings = append(r.Warnings, "checking drop-ins: "+err.Error())
		r.Unknown++
	}
	return r, nil
}

// count tallies a finding and turns it into its status; a resolv.conf it
// could not look at is a warning about what, which no verdict rests on.
func (r *statusReport) count(f policy.Finding, names map[netns.ID]string, what string) netnsStatus {
	switch f.Verdict {
	case policy.Violation:
		r.Violations++
	case policy.Unknown:
		r.Unknown++
	}
	if f.ResolvConfErr != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s: which resolv.conf it sees is unknown: %v", what, f.ResolvConfErr))
	}
	st := netnsStatus{Expected: f.Expected, Verdict: f.Verdict, Reason: f.Reason, ResolvConf: f.ResolvConf}
	st.ExpectedID, st.ActualID = f.IDs()
	if st.ActualID != "" {
		st.ActualName = names[f.Actual]
		if st.ActualName == "" && f.Actual == f.ExpectedID {
			st.ActualName = f.Expected
		}
		if st.ActualName == "" {
			st.ActualName = st.ActualID
		}
	}
	return st
}

// hostNetnsNames names the host's namespace and those of the system
// registry; a file there that is no network namespace names none.
func hostNetnsNames() (map[netns.ID]string, error) {
	names := map[netns.ID]string{}
	entries, err := netns.System().List()
	for _, e := range entries {
		if e.Err == nil {
			names[e.ID] = e.Name
		}
	}
	if id, err := netns.PathID(netns.HostPath); err == nil {
		names[id] = "host"
	}
	return names, err
}

func (r *statusReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText prints tables aligned like loginctl's, then the reasons of
// every verdict that needs attention.
func (r *statusReport) writeText(w io.Writer) error {
	resolvConf := r.resolvConfColumn()
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tUSER\tUID\tCLASS\tSERVICE\tTTY\tREMOTE\tLEADER\tPID\tEXPECTED\tACTUAL\t"+resolvConf.header()+"VERDICT")
	for _, s := range r.Sessions {
		pid := "-"
		if s.PID != 0 {
			pid = strconv.Itoa(s.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s%s\n", s.ID, s.User, s.UID, s.Class, s.Service,
			orDash(s.TTY), orDash(s.RemoteHost), s.Leader, pid, expectedName(s.Expected, s.Verdict), orDash(s.ActualName),
			resolvConf.cell(s.ResolvConf), s.Verdict)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "USER MANAGER\tUSER\tUID\tPID\tEXPECTED\tACTUAL\t"+resolvConf.header()+"VERDICT")
	for _, m := range r.Managers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s%s\n", m.Unit, m.User, m.UID, m.PID,
			expectedName(m.Expected, m.Verdict), orDash(m.ActualName), resolvConf.cell(m.ResolvConf), m.Verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.DropIns) > 0 {
		fmt.Fprintln(w, "\ndrop-ins that do not match the config (netns-session sync fixes them):")
		for _, c := range r.DropIns {
			switch c.Action {
			case reconcile.Remove:
				fmt.Fprintf(w, "  %s of %s: has a drop-in it should not have: %s\n", units.UserManagerUnit(c.UID), c.User, c.Reason)
			default:
				fmt.Fprintf(w, "  %s of %s: wants a drop-in for %s: %s\n", units.UserManagerUnit(c.UID), c.User, c.Netns, c.Reason)
			}
		}
	}
	var attention []string
	for _, s := range r.Sessions {
		if s.Verdict == policy.Violation || s.Verdict == policy.Unknown {
			attention = append(attention, fmt.Sprintf("session %s of %s: %s: %s", s.ID, s.User, s.Verdict, s.Reason))
		}
	}
	for _, m := range r.Managers {
		if m.Verdict == policy.Violation || m.Verdict == policy.Unknown {
			attention = append(attention, fmt.Sprintf("%s of %s: %s: %s", m.Unit, m.User, m.Verdict, m.Reason))
		}
	}
	if len(attention) > 0 {
		fmt.Fprintln(w)
		for _, line := range attention {
			fmt.Fprintln(w, line)
		}
	}
	for _, warning := range r.Warnings {
		fmt.Fprintln(w, "warning:", warning)
	}
	_, err := fmt.Fprintf(w, "\n%s, %s: %s, %s\n", plural(len(r.Sessions), "session"), plural(len(r.Managers), "user manager"),
		plural(r.Violations, "violation"), plural(r.Unknown, "unknown verdict"))
	return err
}

// resolvConfColumn is whether the tables show RESOLV.CONF: only when a
// process was looked at, so that a system without namespaces' resolv.conf
// files sees the tables it always saw.
type resolvConfColumn bool

func (r *statusReport) resolvConfColumn() resolvConfColumn {
	for _, s := range r.Sessions {
		if s.ResolvConf != policy.ResolvConfNotLooked {
			return true
		}
	}
	for _, m := range r.Managers {
		if m.ResolvConf != policy.ResolvConfNotLooked {
			return true
		}
	}
	return false
}

func (c resolvConfColumn) header() string {
	if !c {
		return ""
	}
	return "RESOLV.CONF\t"
}

func (c resolvConfColumn) cell(v policy.ResolvConfView) string {
	if !c {
		return ""
	}
	return orDash(v.String()) + "\t"
}

// expectedName shows the namespace the policy wants as its name: the name
// under netns.Dir, "host", "any" when it wants none, "-" when the
// verdict came before the policy was known.
func expectedName(path string, v policy.Verdict) string {
	switch {
	case path == netns.HostPath:
		return "host"
	case path == "" && (v == policy.Unconstrained):
		return "any"
	case path == "":
		return "-"
	}
	if name, ok := strings.CutPrefix(path, netns.Dir+"/"); ok {
		return name
	}
	return path
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
