package hook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/config/configtest"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/nsjoin"
	"github.com/netns-session/netns-session/internal/policy"
	"github.com/netns-session/netns-session/internal/units"
)

// failingGroupList is configtest.Users whose group list cannot be read, for a
// reason that is not config.ErrSourceUnavailable.
func failingGroupList() *configtest.Directory {
	users := configtest.Users()
	users.Hook = func(l configtest.Lookup) error {
		if l.Kind == configtest.GroupList {
			return errors.New("ldap server unreachable")
		}
		return nil
	}
	return users
}

// fakeJoiner is a Joiner that moves nothing: it answers err, and records
// the targets asked of it and what the drop-in at dropIn held at each.
type fakeJoiner struct {
	err          error
	dropIn       string
	targets      []string
	etcs         []*netns.Overlay
	dropInAtJoin []string
}

func (j *fakeJoiner) Join(_ context.Context, target string, etc *netns.Overlay) error {
	j.targets = append(j.targets, target)
	j.etcs = append(j.etcs, etc)
	data, err := os.ReadFile(j.dropIn)
	if err != nil {
		data = []byte(err.Error())
	}
	j.dropInAtJoin = append(j.dropInAtJoin, string(data))
	return j.err
}

var errNotJoined = errors.New("not joined in this test")

// noEtc is the EtcView of tests about namespaces without an /etc
// directory, which must not read the machine's /etc/netns.
func noEtc(string) (*netns.Overlay, error) { return nil, nil }

// notJoined is the joiner of tests that do not join: every join fails with
// errNotJoined.
func notJoined() *fakeJoiner { return &fakeJoiner{err: errNotJoined} }

type nopSystemd struct{}

func (nopSystemd) ReloadContext(context.Context) error { return nil }
func (nopSystemd) Close()                              {}
func (nopSystemd) StartUnitContext(context.Context, string, string, chan<- string) (int, error) {
	return 0, nil
}

// testUnits writes drop-ins and locks under temporary directories and
// reloads nothing.
func testUnits(t *testing.T) *units.Manager {
	return &units.Manager{
		SystemDir: t.TempDir(),
		LockDir:   t.TempDir(),
		Connect:   func(context.Context) (units.Systemd, error) { return nopSystemd{}, nil },
	}
}

// testLog is a Logger that notes each error record as "ACTION: message"
// when records is set, the fields Set attaches when fields is set, and
// drops everything else.
type testLog struct {
	records *[]string
	fields  map[string]string
}

func (l testLog) Error(msg string, fields map[string]string) {
	if l.records != nil {
		*l.records = append(*l.records, fields["ACTION"]+": "+msg)
	}
}
func (l testLog) Alert(msg string, fields map[string]string) {
	if l.records != nil {
		*l.records = append(*l.records, "ALERT "+fields["ACTION"]+": "+msg)
	}
}
func (testLog) Debugf(string, ...any) {}
func (l testLog) Set(key, value string) {
	if l.fields != nil {
		l.fields[key] = value
	}
}

// quietLog is a Logger that drops every record.
func quietLog() Logger { return testLog{} }

// actionLog is a Logger that notes each error record as "ACTION: message".
func actionLog() (Logger, *[]string) {
	var records []string
	return testLog{records: &records}, &records
}

// uidOf is the UID of name in configtest.Users.
func uidOf(t *testing.T, name string) uint32 {
	t.Helper()
	u, err := configtest.Users().LookupUser(name)
	if err != nil {
		t.Fatal(err)
	}
	return u.UID
}

// TestDeniedUnknownPolicyKeepsManagerOff denies sessions whose user's policy
// cannot be known and checks that the drop-in then keeps the user manager,
// which pam_systemd starts anyway, from starting at all.
func TestDeniedUnknownPolicyKeepsManagerOff(t *testing.T) {
	const unavailable = "the user database is unavailable, so the network namespace of carol is unknown"
	tests := []struct {
		name       string
		config     string
		users      config.Directory
		user       string
		wantDropIn bool
		wantReason string // a substring of the denial; any when ""
	}{
		{name: "broken config", config: "carol ns0 extra\n", users: configtest.Users(), user: "carol", wantDropIn: true},
		{name: "group source failing", config: "@research ns0\n", users: failingGroupList(), user: "carol", wantDropIn: true},
		{name: "unknown user", config: "carol ns0 extra\n", users: configtest.Users(), user: "mallory", wantDropIn: false},
		{name: "group source unavailable", config: "@research ns0\n", users: configtest.Users("research"),
			user: "carol", wantDropIn: true, wantReason: unavailable},
		{name: "source of another user line unavailable", config: "erin ns0\n", users: configtest.Users("erin"),
			user: "carol", wantDropIn: true, wantReason: unavailable},
		// No uid to write a drop-in for; pam_systemd finds no user either.
		{name: "user source unavailable", config: "carol ns0\n", users: configtest.Users("carol"),
			user: "carol", wantDropIn: false, wantReason: unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := configtest.WriteConfig(t, tt.config)
			m := testUnits(t)
			h := New(Config{EtcView: noEtc, Log: quietLog(), ConfigPath: path, Joiner: notJoined(), Units: m, Users: tt.users})

			_, err := h.Open(context.Background(), Request{Type: "open_session", User: tt.user, Service: "sshd"})
			if err == nil {
				t.Fatalf("session of %s opened, want it denied", tt.user)
			}
			if !strings.Contains(err.Error(), tt.wantReason) {
				t.Errorf("denied with %q, want %q", err, tt.wantReason)
			}
			dropIn, err := os.ReadFile(m.DropInPath(uidOf(t, "carol")))
			switch {
			case tt.wantDropIn && err != nil:
				t.Errorf("no drop-in for %s: %v", tt.user, err)
			case tt.wantDropIn && !strings.Contains(string(dropIn), "NetworkNamespacePath=/dev/null\n"):
				t.Errorf("drop-in for %s does not keep the manager off:\n%s", tt.user, dropIn)
			case !tt.wantDropIn && err == nil:
				t.Errorf("drop-in written although no user was found:\n%s", dropIn)
			}
		})
	}
}

// slowDirectory makes users answer a lookup of a user or group by name
// after delay, as a directory server that takes its time, but for the names
// inFiles, which /etc/passwd answers before the directory is asked.
func slowDirectory(users *configtest.Directory, delay time.Duration, inFiles ...string) *configtest.Directory {
	users.Hook = func(l configtest.Lookup) error {
		if (l.Kind == configtest.UserByName || l.Kind == configtest.GroupByName) && !slices.Contains(inFiles, l.Name) {
			time.Sleep(delay)
		}
		return nil
	}
	return users
}

// TestSlowDirectoryStillPlacesManager gives the hook a directory slower
// than its whole budget: the lookups cannot be cut short, and the time they
// take must not cost the drop-in that places the user manager, or keeps it
// off, which pam_systemd starts after a denial too.
func TestSlowDirectoryStillPlacesManager(t *testing.T) {
	tests := []struct {
		name   string
		config string
		users  *configtest.Directory
		want   string // the drop-in's NetworkNamespacePath
	}{
		{name: "mapped user", config: "carol ns0\n", users: configtest.Users(), want: "/run/netns/ns0"},
		{name: "group source unavailable", config: "@research ns0\n", users: configtest.Users("research"), want: units.NoNetns},
		{name: "broken config", config: "carol ns0 extra\n", users: configtest.Users(), want: units.NoNetns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := configtest.WriteConfig(t, tt.config)
			m := testUnits(t)
			h := New(Config{EtcView: noEtc, Log: quietLog(), ConfigPath: path, Joiner: notJoined(),
				Units: m, Users: slowDirectory(tt.users, 300*time.Millisecond), Budget: 250 * time.Millisecond})

			if _, err := h.Open(context.Background(), Request{Type: "open_session", User: "carol", Service: "sshd"}); err == nil {
				t.Fatal("session of carol opened without a join, want it denied")
			}
			dropIn, err := os.ReadFile(m.DropInPath(uidOf(t, "carol")))
			if err != nil {
				t.Fatalf("no drop-in after a slow lookup: %v", err)
			}
			if !strings.Contains(string(dropIn), "NetworkNamespacePath="+tt.want+"\n") {
				t.Errorf("drop-in after a slow lookup does not name %s:\n%s", tt.want, dropIn)
			}
		})
	}
}

// TestBadPAMLineDeniesAllButRoot runs the hook with the errors the PAM line
// parser gives for lines that would have printed help and exited 0, or read
// a path relative to the caller's working directory (cmd/netns-session's
// TestPAMLineNeverReachesTheCLI): a mapped user is denied as with a broken
// config, and root still gets in.
func TestBadPAMLineDeniesAllButRoot(t *testing.T) {
	path := configtest.WriteConfig(t, "carol ns0\n")
	// Stand-ins for what cmd's PAM line parser returns for these lines
	// (TestParsePAMArgs pins those): any ConfigErr must deny.
	for _, optsErr := range []error{
		errors.New(`unknown pam argument "-h" (want config=PATH, log=PATH or debug)`),
		errors.New(`unknown pam argument "--help" (want config=PATH, log=PATH or debug)`),
		errors.New(`unknown pam argument "--version" (want config=PATH, log=PATH or debug)`),
		errors.New(`pam argument config="netns-session.conf" is not an absolute path`),
		errors.New(`pam argument log="netns-session.log" is not an absolute path`),
	} {
		t.Run(optsErr.Error(), func(t *testing.T) {
			// The config itself is fine: the bad argument alone must deny.
			h := New(Config{EtcView: noEtc, Log: quietLog(), ConfigPath: path, ConfigErr: optsErr, Joiner: notJoined(), Units: testUnits(t), Users: configtest.Users()})

			_, err := h.Open(context.Background(), Request{Type: "open_session", User: "carol", Service: "sshd"})
			var d *Denial
			if !errors.As(err, &d) || !strings.Contains(d.Reason, "configuration is broken") || !errors.Is(err, optsErr) || !d.Everyone {
				t.Errorf("carol: %v (%+v), want a denial of everyone for a broken configuration caused by %v", err, d, optsErr)
			}
			placed, err := h.Open(context.Background(), Request{Type: "open_session", User: "root", Service: "sshd"})
			if err != nil || placed == nil || !strings.HasPrefix(placed.Action, "root-") {
				t.Errorf("root: %+v, %v; want let in", placed, err)
			}
		})
	}
}

// TestUnsafeEnvironmentDeniesAllButRoot opens sessions whose PAM environment
// sets a variable that steers the loader or NSS: every user is denied with
// the variable named, a mapped one also gets a drop-in that keeps the
// manager off, and root is let in.
func TestUnsafeEnvironmentDeniesAllButRoot(t *testing.T) {
	path := configtest.WriteConfig(t, "carol ns0\n")
	for _, tt := range []struct{ user, variable string }{
		{"carol", "LD_PRELOAD"},
		{"carol", "GCONV_PATH"},
		{"alice", "_SSS_LOOPS"},
	} {
		t.Run(tt.user+" with "+tt.variable, func(t *testing.T) {
			m := testUnits(t)
			h := New(Config{EtcView: noEtc, Log: quietLog(), ConfigPath: path, Joiner: notJoined(), Units: m, Users: configtest.Users()})
			_, err := h.Open(context.Background(), Request{Type: "open_session", User: tt.user, Service: "sshd", Unsafe: []string{tt.variable}})
			var d *Denial
			if !errors.As(err, &d) || !strings.Contains(d.Reason, "the PAM environment sets "+tt.variable) || d.Everyone {
				t.Fatalf("%s: %v (%+v), want a denial naming %s, not an alert: any user's ~/.pam_environment can set it", tt.user, err, d, tt.variable)
			}
			dropIn, err := os.ReadFile(m.DropInPath(uidOf(t, tt.user)))
			if err != nil || !strings.Contains(string(dropIn), "NetworkNamespacePath=/dev/null\n") {
				t.Errorf("drop-in of %s: %v\n%s; want one that keeps the manager off", tt.user, err, dropIn)
			}
			placed, err := h.Open(context.Background(), Request{Type: "open_session", User: "root", Service: "sshd", Unsafe: []string{tt.variable}})
			if err != nil || placed == nil || !strings.HasPrefix(placed.Action, "root-") {
				t.Errorf("root: %+v, %v; want let in", placed, err)
			}
		})
	}
}

// TestRootFallbackSaysWhatWentWrong lets root in when its policy cannot be
// known, and checks that the journal names the cause: a directory that is
// down is not a broken config, which denies everyone else and so is an
// alert.
func TestRootFallbackSaysWhatWentWrong(t *testing.T) {
	tests := []struct {
		name, config string
		users        config.Directory
		want         string // the record, with "ALERT " before an alert
	}{
		{name: "broken config", config: "carol ns0 extra\n", users: configtest.Users(), want: "ALERT root-fallback: config unusable"},
		{name: "root's source down", config: "carol ns0\n", users: configtest.Users("root"), want: "root-fallback: user database unavailable"},
		{name: "group source down", config: "@research ns0\n", users: configtest.Users("research"), want: "root-fallback: user database unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := configtest.WriteConfig(t, tt.config)
			log, records := actionLog()
			h := New(Config{EtcView: noEtc, Log: log, ConfigPath: path, Joiner: notJoined(), Units: testUnits(t), Users: tt.users})

			placed, err := h.Open(context.Background(), Request{Type: "open_session", User: "root", Service: "sshd"})
			problem := tt.want[strings.Index(tt.want, ": ")+2:]
			if err != nil || placed == nil || !strings.Contains(placed.Message, problem) {
				t.Errorf("root: %+v, %v; want let in, saying %q", placed, err, problem)
			}
			if !slices.ContainsFunc(*records, func(r string) bool { return strings.HasPrefix(r, tt.want+", ") }) {
				t.Errorf("journal records %q, want a root-fallback one saying %q", *records, tt.want)
			}
		})
	}
}

// TestSlowDirectoryNeverHoldsRootOut logs root in while the directory
// takes far longer than root's budget for every lookup: without a line of
// its own, root's lookups are given up on and root gets the host network,
// saying why, within the budget; with a "root -" line its resolution asks
// the directory nothing and is not given up on.
func TestSlowDirectoryNeverHoldsRootOut(t *testing.T) {
	const delay, rootBudget = 10 * time.Second, 100 * time.Millisecond
	tests := []struct {
		name, config string
		users        config.Directory
		fallback     bool
	}{
		{name: "no line of root's", config: "@research ns0\ncarol ns0\n", users: slowDirectory(configtest.Users(), delay), fallback: true},
		{name: "root's lookup itself slow", config: "root -\ncarol ns0\n", users: slowDirectory(configtest.Users(), delay), fallback: true},
		{name: "a root line", config: "@research ns0\ncarol ns0\nroot -\n", users: slowDirectory(configtest.Users(), delay, "root")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := configtest.WriteConfig(t, tt.config)
			log, records := actionLog()
			h := New(Config{EtcView: noEtc, Log: log, ConfigPath: path, Joiner: notJoined(),
				Units: testUnits(t), Users: tt.users, RootBudget: rootBudget})

			start := time.Now()
			placed, err := h.Open(context.Background(), Request{Type: "open_session", User: "root", Service: "sshd"})
			if took := time.Since(start); took > delay/2 {
				t.Fatalf("root's login took %v, with a budget of %v for its lookups", took, rootBudget)
			}
			fellBack := slices.ContainsFunc(*records, func(r string) bool { return strings.HasPrefix(r, "root-fallback: user database too slow, ") })
			switch {
			case tt.fallback && (err != nil || placed == nil || !strings.HasPrefix(placed.Action, "root-") || !fellBack):
				t.Errorf("root: %+v, %v, journal %q; want let in on the host network, saying the user database is too slow", placed, err, *records)
			case !tt.fallback && (fellBack || !errors.Is(err, errNotJoined)):
				// Resolved: on to the join, which this test cannot do.
				t.Errorf("root: %+v, %v, journal %q; want resolved without a fallback", placed, err, *records)
			}
		})
	}
}

// TestOpenPlacesMappedUser opens the session of a mapped user: the drop-in
// that places the user manager is written before the join, also when the
// join then fails, and the session is placed only when the join succeeds and
// no manager of the user runs in another namespace; each denial gives its
// reason.
func TestOpenPlacesMappedUser(t *testing.T) {
	// A file that exists and is not this process's network namespace: a
	// manager found in this process's namespace runs elsewhere.
	elsewhere := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(elsewhere, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const carol = 1002
	// self is this process, whose namespace the manager then runs in; gone
	// a PID above the kernel's limit (PID_MAX_LIMIT), which no process has.
	self, gone := strconv.Itoa(os.Getpid()), "4194305"
	tests := []struct {
		name     string
		target   string
		joinErr  error
		manager  string // the PID in carol's manager's cgroup, "" for none
		want     string
		wantDeny string
	}{
		{name: "placed", target: "/run/netns/ns0",
			want: "session of carol placed in /run/netns/ns0"},
		{name: "placed with its manager in its namespace", target: "/proc/self/ns/net", manager: self,
			want: "session of carol placed in /proc/self/ns/net"},
		{name: "namespace missing", target: "/run/netns/ns0",
			joinErr:  fmt.Errorf("opening /run/netns/ns0: %w", nsjoin.ErrTargetUnavailable),
			wantDeny: "network namespace /run/netns/ns0 is not available; ask an administrator"},
		{name: "join refused", target: "/run/netns/ns0",
			joinErr:  fmt.Errorf("attaching to process 42: %w", nsjoin.ErrPtraceRefused),
			wantDeny: "ptrace is refused on this host (kernel.yama.ptrace_scope=3 or a security module), so the session cannot be placed in its network namespace"},
		{name: "manager elsewhere", target: elsewhere, manager: self,
			wantDeny: "user@1002.service of carol already runs in another network namespace; end all of carol's sessions, or run `systemctl stop user@1002.service` as root, then log in again"},
		// Listed in its cgroup but gone at every look for ManagerSettle:
		// refused then, as one elsewhere, not after the whole budget.
		{name: "manager gone at every look", target: elsewhere, manager: gone,
			wantDeny: "user@1002.service of carol already runs in another network namespace; end all of carol's sessions, or run `systemctl stop user@1002.service` as root, then log in again"},
		// A PID of 0 is a process of another PID namespace, never no manager.
		{name: "manager of another PID namespace", target: elsewhere, manager: "0",
			wantDeny: "cannot check your running user manager"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := configtest.WriteConfig(t, "carol "+tt.target+"\n")
			m := testUnits(t)
			m.CgroupRoot, m.ProcRoot = t.TempDir(), "/proc"
			if tt.manager != "" {
				procs := filepath.Join(m.CgroupRoot, "user.slice/user-1002.slice/user@1002.service/init.scope/cgroup.procs")
				if err := os.MkdirAll(filepath.Dir(procs), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(procs, []byte(tt.manager+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			join := &fakeJoiner{err: tt.joinErr, dropIn: m.DropInPath(carol)}
			// A budget the settle time fits in, well short of the default, so
			// that a check that waits for the budget fails on its message.
			h := New(Config{EtcView: noEtc, Log: quietLog(), ConfigPath: path, Joiner: join, Units: m, Users: configtest.Users(),
				Budget: 3 * policy.ManagerSettle})

			placed, err := h.Open(context.Background(), Request{Type: "open_session", User: "carol", Service: "sshd"})
			var d *Denial
			switch {
			case tt.wantDeny == "" && (err != nil || placed == nil || placed.Action != "joined" || placed.Netns != tt.target || placed.Message != tt.want):
				t.Errorf("carol: %+v, %v; want joined to %s: %q", placed, err, tt.target, tt.want)
			case tt.wantDeny != "" && (!errors.As(err, &d) || d.Reason != tt.wantDeny || placed != nil):
				t.Errorf("carol: %+v, %v; want denied: %q", placed, err, tt.wantDeny)
			case tt.wantDeny != "" && d.Everyone:
				t.Errorf("carol's denial %q says it denies everyone: only a policy that cannot be used does", d.Reason)
			case tt.joinErr != nil && !errors.Is(err, tt.joinErr):
				t.Errorf("denial %v does not carry the join's error %v", err, tt.joinErr)
			}
			wantDropIn := "NetworkNamespacePath=" + tt.target + "\n"
			if !slices.Equal(join.targets, []string{tt.target}) {
				t.Fatalf("joined %q, want once to %s", join.targets, tt.target)
			}
			if !strings.Contains(join.dropInAtJoin[0], wantDropIn) {
				t.Errorf("drop-in at the join:\n%s\nwant one naming %s, written before the join", join.dropInAtJoin[0], tt.target)
			}
		})
	}
}

func TestDenyKeepsReasonAndDetail(t *testing.T) {
	cause := errors.New("checking /run/netns/ns0: no such file or directory")
	d := &Denial{Reason: "network namespace /run/netns/ns0 is not available", Err: cause}
	if !errors.Is(d, cause) {
		t.Errorf("denial does not unwrap to its cause")
	}
	if got, want := d.Error(), "network namespace /run/netns/ns0 is not available: checking /run/netns/ns0: no such file or directory"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestNewRefusesAMissingDependency: a Config without one of what the hook
// cannot do without is refused at New, naming the field, not on the path
// of the one login that needs it.
func TestNewRefusesAMissingDependency(t *testing.T) {
	tests := []struct {
		field string
		drop  func(*Config)
	}{
		{"Log", func(c *Config) { c.Log = nil }},
		{"Joiner", func(c *Config) { c.Joiner = nil }},
		{"Units", func(c *Config) { c.Units = nil }},
		{"Users", func(c *Config) { c.Users = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			c := Config{Log: quietLog(), Joiner: notJoined(), Units: testUnits(t), Users: configtest.Users()}
			tt.drop(&c)
			defer func() {
				if got, want := fmt.Sprint(recover()), "hook.New: Config."+tt.field+" is nil"; got != want {
					t.Errorf("New panicked with %q, want %q", got, want)
				}
			}()
			New(c)
		})
	}
}

// TestOpenGivesTheSessionItsNamespaceEtc opens sessions of carol, mapped to
// a namespace with an /etc directory: the join is asked for its view and the
// drop-in carries its mounts; each way the view can fail denies the session
// with its reason, and an /etc directory that cannot be read also keeps the
// manager off, since a drop-in without the mounts would start the user's
// services with the host's /etc. Namespaces without a name (a path) are not
// looked up.
func TestOpenGivesTheSessionItsNamespaceEtc(t *testing.T) {
	const carol = 1002
	ns0Etc := &netns.Overlay{
		Name:    "ns0",
		Skipped: []string{"gai.conf", "mailname"},
		Binds:   []netns.Mount{{Source: "/etc/netns/ns0/hosts", Target: "/etc/hosts"}},
		Shadows: []netns.Mount{{Source: "/run/netns-session/shadow/ns0/run/systemd/resolve", Target: "/run/systemd/resolve"}},
	}
	ns0Mounts := "NetworkNamespacePath=/run/netns/ns0\n" +
		"BindPaths=/etc/netns/ns0/hosts:/etc/hosts\n" +
		"BindReadOnlyPaths=/run/netns-session/shadow/ns0/run/systemd/resolve:/run/systemd/resolve\n"
	unreadable := errors.New("reading /etc/netns/ns0: input/output error")
	tests := []struct {
		name       string
		target     string
		etc        *netns.Overlay
		etcErr     error
		joinErr    error
		wantAsked  []string // the names EtcView was asked for
		wantJoined bool     // whether the join was tried, with etc
		wantDropIn string   // what the drop-in holds after Open
		wantDeny   string
		want       string
		wantFields map[string]string // fields attached to the session's records
	}{
		{name: "placed with its /etc", target: "ns0", etc: ns0Etc,
			wantAsked: []string{"ns0"}, wantJoined: true, wantDropIn: ns0Mounts,
			want:       "session of carol placed in /run/netns/ns0, with /etc/netns/ns0",
			wantFields: map[string]string{"ETC_DIR": "/etc/netns/ns0", "ETC_SKIPPED": "gai.conf mailname"}},
		{name: "namespace without an /etc directory", target: "ns0",
			wantAsked: []string{"ns0"}, wantJoined: true, wantDropIn: "NetworkNamespacePath=/run/netns/ns0\n",
			want: "session of carol placed in /run/netns/ns0"},
		{name: "namespace given by path", target: "/run/netns/ns0",
			wantJoined: true, wantDropIn: "NetworkNamespacePath=/run/netns/ns0\n",
			want: "session of carol placed in /run/netns/ns0"},
		{name: "/etc directory unreadable", target: "ns0", etcErr: unreadable,
			wantAsked: []string{"ns0"}, wantDropIn: "NetworkNamespacePath=" + units.NoNetns + "\n",
			wantDeny: "the /etc directory of network namespace ns0 cannot be applied; ask an administrator (netns-session check)"},
		{name: "view cannot be built", target: "ns0", etc: ns0Etc,
			joinErr:   fmt.Errorf("%w: mounting sysfs: %w", ErrEtcView, unix.EPERM),
			wantAsked: []string{"ns0"}, wantJoined: true, wantDropIn: ns0Mounts,
			wantDeny: "the /etc directory of network namespace ns0 cannot be applied; ask an administrator (netns-session check)"},
		{name: "login program with threads", target: "ns0", etc: ns0Etc,
			joinErr:   fmt.Errorf("joining caller 42: %w", nsjoin.ErrCallerThreaded),
			wantAsked: []string{"ns0"}, wantJoined: true, wantDropIn: ns0Mounts,
			wantDeny: "this login program runs several threads, so it cannot be given /etc/netns/ns0; ask an administrator"},
		{name: "login program in a removed directory", target: "ns0", etc: ns0Etc,
			joinErr:   fmt.Errorf("joining caller 42: %w", nsjoin.ErrUnnamedCwd),
			wantAsked: []string{"ns0"}, wantJoined: true, wantDropIn: ns0Mounts,
			wantDeny: "the working directory of this login program has no name (removed?), so it cannot be given /etc/netns/ns0; log in from another directory"},
		{name: "login program under chroot", target: "ns0", etc: ns0Etc,
			joinErr:   fmt.Errorf("%w: %w", ErrEtcView, netns.ErrChrooted),
			wantAsked: []string{"ns0"}, wantJoined: true, wantDropIn: ns0Mounts,
			wantDeny: "this login program runs under chroot, so it cannot be given /etc/netns/ns0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := configtest.WriteConfig(t, "carol "+tt.target+"\n")
			m := testUnits(t)
			m.CgroupRoot, m.ProcRoot = t.TempDir(), "/proc"
			join := &fakeJoiner{err: tt.joinErr, dropIn: m.DropInPath(carol)}
			var asked []string
			etcView := func(name string) (*netns.Overlay, error) {
				asked = append(asked, name)
				return tt.etc, tt.etcErr
			}
			fields := map[string]string{}
			h := New(Config{Log: testLog{fields: fields}, ConfigPath: path, Joiner: join, Units: m, Users: configtest.Users(), EtcView: etcView})

			placed, err := h.Open(context.Background(), Request{Type: "open_session", User: "carol", Service: "sshd"})
			var d *Denial
			switch {
			case tt.wantDeny == "" && (err != nil || placed == nil || placed.Message != tt.want):
				t.Errorf("carol: %+v, %v; want placed: %q", placed, err, tt.want)
			case tt.wantDeny != "" && (!errors.As(err, &d) || d.Reason != tt.wantDeny || placed != nil):
				t.Errorf("carol: %+v, %v; want denied: %q", placed, err, tt.wantDeny)
			}
			if !slices.Equal(asked, tt.wantAsked) {
				t.Errorf("EtcView asked for %q, want %q", asked, tt.wantAsked)
			}
			switch {
			case !tt.wantJoined && len(join.targets) > 0:
				t.Errorf("joined %q, want no join", join.targets)
			case tt.wantJoined && (len(join.etcs) != 1 || join.etcs[0] != tt.etc):
				t.Errorf("joined with /etc views %v, want once with %v", join.etcs, tt.etc)
			}
			for k, v := range tt.wantFields {
				if fields[k] != v {
					t.Errorf("field %s of the session's records = %q, want %q", k, fields[k], v)
				}
			}
			dropIn, err := os.ReadFile(m.DropInPath(carol))
			if _, rest, _ := strings.Cut(string(dropIn), "[Service]\n"); err != nil || rest != tt.wantDropIn {
				t.Errorf("drop-in after Open: %q, %v; want its settings to be\n%s", dropIn, err, tt.wantDropIn)
			}
		})
	}
}
