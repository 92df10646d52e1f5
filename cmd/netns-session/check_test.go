package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/config/configtest"
	"github.com/netns-session/netns-session/internal/etccheck"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/pamcheck"
)

// inspectForTest inspects namespace files like check does, but looks at its
// own network namespace for the host's: PID 1's is not always open to
// inspection in test environments.
func inspectForTest(path string) error {
	if path == netns.HostPath {
		path = "/proc/self/ns/net"
	}
	return inspectNetns(path)
}

func TestCheckAll(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		users   config.Directory // configtest.Users() when nil
		want    string           // CONF stands for the config file
		wantErr bool
	}{
		{
			name:   "healthy",
			config: "# lab\nalice /proc/self/ns/net\n@research -  # the host\n* /proc/self/ns/net\n",
			want: `SELECTOR   NETNS              PATH               NETNS-FILE  RESOLVES       SOURCE
alice      /proc/self/ns/net  /proc/self/ns/net  ok          uid 1000       CONF:2
@research  -                  /proc/1/ns/net     ok          gid 2000       CONF:3
*          /proc/self/ns/net  /proc/self/ns/net  ok          everyone else  CONF:4

unmapped = host: users no line matches join the host network namespace
enforce = terminate: the watcher ends a session found outside its namespace
0 errors, 0 warnings
`,
		},
		{
			name:   "problems",
			config: "unmapped = keep\nalice netns-session-test-missing\nbob /proc/self/ns/uts\n@staff /proc/self/status\nalice -\nbroken\n",
			want: `SELECTOR  NETNS                       PATH                                   NETNS-FILE                           RESOLVES       SOURCE
alice     netns-session-test-missing  /run/netns/netns-session-test-missing  missing                              uid 1000       CONF:2
bob       /proc/self/ns/uts           /proc/self/ns/uts                      not a netns: another namespace type  unknown user   CONF:3
@staff    /proc/self/status           /proc/self/status                      not a netns: not a namespace file    unknown group  CONF:4

unmapped = keep: users no line matches stay in the namespace of the process they log in from
enforce = terminate: the watcher ends a session found outside its namespace

error: CONF:5: duplicate selector "alice" (first at CONF:2)
error: CONF:6: missing namespace after "broken": want SELECTOR NETNS
error: netns /run/netns/netns-session-test-missing for alice at CONF:2 does not exist (create it with ip netns add netns-session-test-missing)
error: netns /proc/self/ns/uts for bob at CONF:3: /proc/self/ns/uts is not a network namespace (it is a uts namespace)
error: netns /proc/self/status for @staff at CONF:4: /proc/self/status is not a namespace (a leftover of ip netns without its mount?)
warning: CONF:3: unknown user "bob": the line matches nobody
warning: CONF:4: unknown group "staff": the line matches nobody
5 errors, 2 warnings
`,
			wantErr: true,
		},
		{
			name:   "user lines select users by uid",
			users:  configtest.AliasUsers(),
			config: "Carol -\nalice -\nalias -\n",
			want: `SELECTOR  NETNS  PATH            NETNS-FILE  RESOLVES  SOURCE
Carol     -      /proc/1/ns/net  ok          uid 1002  CONF:1
alice     -      /proc/1/ns/net  ok          uid 1000  CONF:2
alias     -      /proc/1/ns/net  ok          uid 1000  CONF:3

unmapped = host: users no line matches join the host network namespace
enforce = terminate: the watcher ends a session found outside its namespace

error: CONF:3: user "alias" is uid 1000, like "alice" at CONF:2: two lines select one user; keep one
warning: CONF:1: user "Carol" is "carol" (uid 1002) to NSS: the line selects that user, whatever the spelling
1 error, 1 warning
`,
			wantErr: true,
		},
		{
			// /etc/group lists alice's UID by its second name, carol by
			// another spelling: resolved under their UIDs' own names,
			// neither is mapped by those entries.
			name: "group members listed by another name of their uid",
			users: func() config.Directory {
				users := configtest.AliasUsers("erin")
				users.AddGroup(config.Group{Name: "lab", GID: 3000, Members: []string{"alias", "ghost", "Carol", "erin"}})
				users.AddGroup(config.Group{Name: "both", GID: 3001, Members: []string{"alias", "alice"}})
				users.AddGroup(config.Group{Name: "prim", GID: 100, Members: []string{"Carol"}}) // carol's primary group
				return users
			}(),
			config: "@lab -\n@both -\n@prim -\n",
			want: `SELECTOR  NETNS  PATH            NETNS-FILE  RESOLVES  SOURCE
@lab      -      /proc/1/ns/net  ok          gid 3000  CONF:1
@both     -      /proc/1/ns/net  ok          gid 3001  CONF:2
@prim     -      /proc/1/ns/net  ok          gid 100   CONF:3

unmapped = host: users no line matches join the host network namespace
enforce = terminate: the watcher ends a session found outside its namespace

warning: CONF:1: group "lab" lists "alias", a name of uid 1000, whose own name is "alice": the line does not map uid 1000 by that entry, though its sessions get the group; list "alice" in the group
warning: CONF:1: group "lab" lists "Carol", a name of uid 1002, whose own name is "carol": the line does not map uid 1002 by that entry, though its sessions get the group; list "carol" in the group
warning: CONF:1: group "lab" lists "erin", who cannot be looked up: getpwnam_r "erin": user database unavailable: no such file or directory (ENOENT)
0 errors, 3 warnings
`,
		},
		{
			name:   "sources down",
			users:  configtest.Users("research", "erin"),
			config: "@research -\nerin -\n",
			want: `SELECTOR   NETNS  PATH            NETNS-FILE  RESOLVES     SOURCE
@research  -      /proc/1/ns/net  ok          source down  CONF:1
erin       -      /proc/1/ns/net  ok          source down  CONF:2

unmapped = host: users no line matches join the host network namespace
enforce = terminate: the watcher ends a session found outside its namespace

error: CONF:1: getgrnam_r "research": user database unavailable: no such file or directory (ENOENT): the logins this line may decide are denied until it resolves
error: CONF:2: getpwnam_r "erin": user database unavailable: no such file or directory (ENOENT): the logins this line may decide are denied until it resolves
2 errors, 0 warnings
`,
			wantErr: true,
		},
		{
			name:   "nothing mapped",
			config: "# as shipped\n",
			want:   "no mappings\n\nunmapped = host: users no line matches join the host network namespace\nenforce = terminate: the watcher ends a session found outside its namespace\n0 errors, 0 warnings\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := configtest.WriteConfig(t, tt.config)
			var out bytes.Buffer
			users := tt.users
			if users == nil {
				users = configtest.Users()
			}
			err := (&checker{out: &out, users: users, inspect: inspectForTest}).all(path)
			if got, want := out.String(), strings.ReplaceAll(tt.want, "CONF", path); got != want {
				t.Errorf("output:\n%s\nwant:\n%s", got, want)
			}
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, errCheckFailed)) {
				t.Errorf("err = %v, want failure %v", err, tt.wantErr)
			}
		})
	}
}

func TestCheckUser(t *testing.T) {
	const cfg = "@research /proc/self/ns/net\nroot -\n"
	tests := []struct {
		name    string
		config  string
		users   config.Directory // configtest.Users() when nil
		user    string
		want    string
		wantErr bool
	}{
		{
			name: "second name of a uid with a line", config: "alice -\n", users: configtest.AliasUsers(), user: "alias",
			want: `user   alias (uid 1000, gid 1000)
rule   alice - at CONF:1
why    user line for alice (uid 1000)
netns  - -> /proc/1/ns/net: ok
0 errors, 0 warnings
`,
		},
		{
			name: "group source down", config: cfg, users: configtest.Users("research"), user: "carol", wantErr: true,
			want: "error: looking up group \"research\": getgrnam_r \"research\": user database unavailable: no such file or directory (ENOENT)\n1 error, 0 warnings\n",
		},
		{
			name: "user source down", config: cfg, users: configtest.Users("carol"), user: "carol", wantErr: true,
			want: "error: looking up user \"carol\": getpwnam_r \"carol\": user database unavailable: no such file or directory (ENOENT)\n1 error, 0 warnings\n",
		},
		{
			name: "via group", config: cfg, user: "alice",
			want: `user   alice (uid 1000, gid 1000)
rule   @research /proc/self/ns/net at CONF:1
why    alice is listed as a member of group research
netns  /proc/self/ns/net -> /proc/self/ns/net: ok
0 errors, 0 warnings
`,
		},
		{
			name: "own line to the host", config: cfg, user: "root",
			want: `user   root (uid 0, gid 0)
rule   root - at CONF:2
why    user line for root
netns  - -> /proc/1/ns/net: ok
0 errors, 0 warnings
`,
		},
		{
			name: "unmapped", config: cfg, user: "carol",
			want: `user   carol (uid 1002, gid 100)
rule   none
why    no line matches; unmapped = host
netns  - -> /proc/1/ns/net: ok
0 errors, 0 warnings
`,
		},
		{
			name: "unmapped keep", config: "unmapped = keep\n", user: "carol",
			want: `user   carol (uid 1002, gid 100)
rule   none
why    no line matches; unmapped = keep leaves the login namespace
netns  unchanged: users no line matches stay in the namespace of the process they log in from
0 errors, 0 warnings
`,
		},
		{
			name: "missing namespace", config: "alice netns-session-test-missing\n", user: "alice", wantErr: true,
			want: `user   alice (uid 1000, gid 1000)
rule   alice netns-session-test-missing at CONF:1
why    user line for alice
netns  netns-session-test-missing -> /run/netns/netns-session-test-missing: missing

error: netns /run/netns/netns-session-test-missing for alice does not exist (create it with ip netns add netns-session-test-missing)
1 error, 0 warnings
`,
		},
		{
			name: "unknown user", config: cfg, user: "mallory", wantErr: true,
			want: "error: looking up user \"mallory\": unknown user \"mallory\"\n1 error, 0 warnings\n",
		},
		{
			name: "broken config", config: "alice\n* -\n", user: "alice", wantErr: true,
			want: `the config has errors, so the PAM hook refuses every login but root's; the valid lines say:
user   alice (uid 1000, gid 1000)
rule   * - at CONF:2
why    no user or group line matches; * applies
netns  - -> /proc/1/ns/net: ok

error: CONF:1: missing namespace after "alice": want SELECTOR NETNS
1 error, 0 warnings
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := configtest.WriteConfig(t, tt.config)
			var out bytes.Buffer
			users := tt.users
			if users == nil {
				users = configtest.Users()
			}
			err := (&checker{out: &out, users: users, inspect: inspectForTest}).user(path, tt.user)
			if got, want := out.String(), strings.ReplaceAll(tt.want, "CONF", path); got != want {
				t.Errorf("output:\n%s\nwant:\n%s", got, want)
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want failure %v", err, tt.wantErr)
			}
		})
	}
}

// The command line reaches the checker: flags, exit status, and the real
// user database.
func TestCheckCommand(t *testing.T) {
	path := configtest.WriteConfig(t, "root /proc/self/ns/net\n")
	dir := filepath.Dir(path)
	draft := writeDraft(t, "broken\n", 0o755)
	tests := []struct {
		name     string
		args     []string
		wantOut  string
		wantFail bool
	}{
		{"whole config", []string{"check", "--config", path}, "root      /proc/self/ns/net  /proc/self/ns/net  ok          uid 0     " + path + ":1\n", false},
		{"one user", []string{"check", "--config", path, "--user", "root"}, "rule   root /proc/self/ns/net at " + path + ":1\n", false},
		{"missing config", []string{"check", "--config", filepath.Join(dir, "none.conf")}, "error: no config at " + filepath.Join(dir, "none.conf") + "\n1 error, 0 warnings\n", true},
		{"quiet, all well: nothing", []string{"check", "--config", path, "--quiet"}, "", false},
		{"quiet, one user", []string{"check", "-q", "--config", path, "--user", "root"}, "", false},
		{"quiet, a problem", []string{"check", "--quiet", "--config", draft}, "error: " + draft + ":1: missing namespace after \"broken\": want SELECTOR NETNS\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newApp()
			var out bytes.Buffer
			app.Writer = &out
			err := app.Run(append([]string{"netns-session"}, tt.args...))
			if quiet := slices.Contains(tt.args, "--quiet") || slices.Contains(tt.args, "-q"); quiet && out.String() != tt.wantOut ||
				!quiet && !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output does not contain %q:\n%s", tt.wantOut, out.String())
			}
			if (err != nil) != tt.wantFail {
				t.Errorf("err = %v, want failure %v", err, tt.wantFail)
			}
		})
	}
}

// etcHost lays out a host with systemd-resolved's stub as its resolver and
// nss-resolve in its hosts line, and ns0's /etc directory; etcView plans
// ns0's overlay there, finds none for lab, and cannot plan broken's.
func etcHost(t *testing.T) (etccheck.Host, func(name string) (*netns.Overlay, error)) {
	t.Helper()
	root := t.TempDir()
	for path, content := range map[string]string{
		"etc/netns/ns0/hosts":                  "10.200.0.1 gw\n",
		"etc/netns/ns0/resolv.conf":            "nameserver 10.200.0.1\n",
		"etc/netns/ns0/gai.conf":               "",
		"etc/hosts":                            "127.0.0.1 localhost\n",
		"etc/nsswitch.conf":                    "hosts: files resolve [!UNAVAIL=return] dns\n",
		"run/systemd/resolve/stub-resolv.conf": "nameserver 127.0.0.53\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf")); err != nil {
		t.Fatal(err)
	}
	etcView := func(name string) (*netns.Overlay, error) {
		switch name {
		case "ns0":
			return &netns.Overlay{Name: "ns0", OwnResolvConf: true, Skipped: []string{"gai.conf"},
				Binds:   []netns.Mount{{Source: root + "/etc/netns/ns0/hosts", Target: root + "/etc/hosts"}},
				Shadows: []netns.Mount{{Source: root + "/run/netns-session/shadow/ns0/run/systemd/resolve", Target: root + "/run/systemd/resolve"}},
				Overrides: []netns.Override{
					{Name: "hosts", Target: root + "/etc/hosts"},
					{Name: "resolv.conf", Target: root + "/run/systemd/resolve/stub-resolv.conf", Shadow: root + "/run/systemd/resolve"},
				},
			}, nil
		case "broken":
			return nil, fmt.Errorf("overlaying /etc/netns/broken/hosts on /etc/hosts: %w: /etc/netns/broken/hosts is a directory but /etc/hosts is a file", netns.ErrTypeMismatch)
		}
		return nil, nil
	}
	return etccheck.Host{Root: root}, etcView
}

// TestCheckEtcDirs lists what the sessions of each mapped namespace see of
// its /etc directory, and warns where their name lookups go wrong.
func TestCheckEtcDirs(t *testing.T) {
	const conf = "alice ns0\n@research lab\ncarol broken\ndave ns0\nroot -\n* /srv/netns/bob\n"
	const loopback = "and the host's /etc/resolv.conf names the loopback resolver 127.0.0.53: in %[1]s that is %[1]s's own loopback, " +
		"where no resolver answers unless one runs in %[1]s, so lookups that read resolv.conf themselves (dig, host) fail there, " +
		`while those through NSS reach the host's systemd-resolved (by nss-resolve, "resolve" in the hosts line of /etc/nsswitch.conf), which looks them up through the host's network`
	skipped := "warning: netns ns0: /etc/netns/ns0/gai.conf has no counterpart /etc/gai.conf, so sessions in ns0 do not see it (ip netns exec cannot bind it either)\n"
	broken := "error: netns broken: its /etc directory /etc/netns/broken cannot be applied, so the logins of the users it is mapped to are denied: " +
		"overlaying /etc/netns/broken/hosts on /etc/hosts: type mismatch: /etc/netns/broken/hosts is a directory but /etc/hosts is a file\n"
	labLoopback := "warning: netns lab: no resolv.conf of its own (/etc/netns/lab/resolv.conf), " + fmt.Sprintf(loopback, "lab") + "\n"
	tests := []struct {
		name   string
		config string // conf when ""
		// resolver replaces the host's resolv.conf unless it is "".
		resolver string
		user     string // "": the whole config
		want     string // CONF stands for the config file
		wantErr  bool
	}{
		{
			name: "no /etc directory, a resolver the namespace reaches: what check always said", config: "@research lab\n", resolver: "nameserver 192.0.2.53\n",
			want: `SELECTOR   NETNS  PATH            NETNS-FILE  RESOLVES  SOURCE
@research  lab    /run/netns/lab  ok          gid 2000  CONF:1

unmapped = host: users no line matches join the host network namespace
enforce = terminate: the watcher ends a session found outside its namespace
0 errors, 0 warnings
`,
		},
		{
			name: "the whole config",
			want: `SELECTOR   NETNS           PATH               NETNS-FILE  RESOLVES       SOURCE
alice      ns0             /run/netns/ns0     ok          uid 1000       CONF:1
@research  lab             /run/netns/lab     ok          gid 2000       CONF:2
carol      broken          /run/netns/broken  ok          uid 1002       CONF:3
dave       ns0             /run/netns/ns0     ok          uid 1003       CONF:4
root       -               /proc/1/ns/net     ok          uid 0          CONF:5
*          /srv/netns/bob  /srv/netns/bob     ok          everyone else  CONF:6

NETNS   OVERRIDES FROM /etc/netns/NETNS
ns0     /etc/hosts, /etc/resolv.conf (via /run/systemd/resolve)
broken  cannot be applied (see the errors)

unmapped = host: users no line matches join the host network namespace
enforce = terminate: the watcher ends a session found outside its namespace

` + broken + skipped + labLoopback +
				"warning: netns /srv/netns/bob: no resolv.conf of its own (a namespace given by path has no /etc/netns directory), " + fmt.Sprintf(loopback, "/srv/netns/bob") + "\n" +
				"1 error, 3 warnings\n",
			wantErr: true,
		},
		{
			name: "a user of a namespace with an /etc directory", user: "alice",
			want: `user   alice (uid 1000, gid 1000)
rule   alice ns0 at CONF:1
why    user line for alice
netns  ns0 -> /run/netns/ns0: ok
etc    /etc/hosts, /etc/resolv.conf (via /run/systemd/resolve)

` + skipped + "0 errors, 1 warning\n",
		},
		{
			name: "a user of a namespace without one", user: "carol",
			want: `user   carol (uid 1002, gid 100)
rule   carol broken at CONF:3
why    user line for carol
netns  broken -> /run/netns/broken: ok
etc    cannot be applied (see the errors)

` + broken + "1 error, 0 warnings\n",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.config
			if text == "" {
				text = conf
			}
			path := configtest.WriteConfig(t, text)
			host, etcView := etcHost(t)
			if tt.resolver != "" {
				resolvConf := filepath.Join(host.Root, "etc/resolv.conf")
				if err := os.Remove(resolvConf); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(resolvConf, []byte(tt.resolver), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			users := configtest.Users()
			users.AddUser(config.User{Name: "dave", UID: 1003, GID: 100})
			ck := &checker{out: &out, users: users, inspect: func(string) error { return nil }, etcView: etcView, host: host}
			var err error
			if tt.user == "" {
				err = ck.all(path)
			} else {
				err = ck.user(path, tt.user)
			}
			if got, want := out.String(), strings.ReplaceAll(tt.want, "CONF", path); got != want {
				t.Errorf("output:\n%s\nwant:\n%s", got, want)
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want failure %v", err, tt.wantErr)
			}
		})
	}
}

// writeDraft writes content as draft.conf in a new directory with mode
// dirMode, which may let anyone write it, as /tmp does.
func writeDraft(t *testing.T, content string, dirMode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "draft.conf")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		t.Fatal(err)
	}
	return path
}

// A draft is validated wherever it lies: check names every line error of
// it, and where it lies only as a warning; --quiet prints only problems.
func TestCheckDraftReportsEveryProblem(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: a file of another user is insecure wherever it lies")
	}
	const broken = "alice -\nbroken\nbob - extra\nalice /proc/self/ns/net\n"
	const where = "warning: DIR: writable by its group and writable by others: the PAM hook refuses a config there; install it owned by root, in a directory only root may write, not writable by group or others (install -o root -g root -m 0644 CONF /etc/security/netns-session.conf)\n"
	lineErrors := `error: CONF:2: missing namespace after "broken": want SELECTOR NETNS
error: CONF:3: 3 fields, want 2: SELECTOR NETNS (comments start with #)
error: CONF:4: duplicate selector "alice" (first at CONF:1)
`
	table := `SELECTOR  NETNS  PATH            NETNS-FILE  RESOLVES  SOURCE
alice     -      /proc/1/ns/net  ok          uid 1000  CONF:1

unmapped = host: users no line matches join the host network namespace
enforce = terminate: the watcher ends a session found outside its namespace
`
	tests := []struct {
		name    string
		config  string
		dirMode os.FileMode
		quiet   bool
		want    string
		wantErr bool
	}{
		{name: "line errors in /tmp", config: broken, dirMode: os.ModeSticky | 0o777, wantErr: true,
			want: table + "\n" + lineErrors + where + "3 errors, 1 warning\n"},
		{name: "line errors in /tmp, quiet", config: broken, dirMode: os.ModeSticky | 0o777, quiet: true, wantErr: true,
			want: lineErrors + where},
		{name: "a good draft in /tmp passes with the warning", config: "alice -\n", dirMode: os.ModeSticky | 0o777,
			want: table + "\n" + where + "0 errors, 1 warning\n"},
		{name: "a good draft where the hook would read it", config: "alice -\n", dirMode: 0o755,
			want: table + "0 errors, 0 warnings\n"},
		{name: "quiet says nothing when all is well", config: "alice -\n", dirMode: 0o755, quiet: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeDraft(t, tt.config, tt.dirMode)
			var out bytes.Buffer
			ck := &checker{out: &out, problems: &out, quiet: tt.quiet, users: configtest.Users(), inspect: inspectForTest}
			if tt.quiet {
				ck.out = io.Discard
			}
			err := ck.all(path)
			want := strings.NewReplacer("CONF", path, "DIR", filepath.Dir(path)).Replace(tt.want)
			if got := out.String(); got != want {
				t.Errorf("output:\n%s\nwant:\n%s", got, want)
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want failure %v", err, tt.wantErr)
			}
		})
	}
}

// The live config stays under the hook's rule: --config naming it is no
// draft, and its location's problems are errors.
func TestCheckLiveConfigIsNoDraft(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"", true},
		{config.DefaultFile, true},
		{"/etc/security/../security/netns-session.conf", true},
		{filepath.Join(t.TempDir(), "draft.conf"), false},
	} {
		if got := isLive(tt.path); got != tt.want {
			t.Errorf("isLive(%q) = %t, want %t", tt.path, got, tt.want)
		}
	}
}

// pamTree lays out a PAM configuration: sshd reads common-session, which
// runs the hook before pam_systemd.so; cron reads
// common-session-noninteractive, whose content is nonInteractive.
func pamTree(t *testing.T, nonInteractive string) pamcheck.System {
	t.Helper()
	root := t.TempDir()
	for path, content := range map[string]string{
		"etc/pam.d/sshd":                          "@include common-session\n",
		"etc/pam.d/cron":                          "@include common-session-noninteractive\n",
		"etc/pam.d/common-session":                "session required pam_unix.so\nsession required pam_exec.so seteuid /usr/sbin/netns-session pam\nsession optional pam_systemd.so\n",
		"etc/pam.d/common-session-noninteractive": nonInteractive,
		"proc/sys/kernel/yama/ptrace_scope":       "1\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return pamcheck.System{Root: root}
}

// check of the live system lists where each PAM service runs the hook and
// counts what pamcheck finds among the problems.
func TestCheckPAMWiring(t *testing.T) {
	const wired = "session required pam_unix.so\nsession required pam_exec.so seteuid /usr/sbin/netns-session pam\n"
	const conf = "alice -\n"
	table := `SELECTOR  NETNS  PATH            NETNS-FILE  RESOLVES  SOURCE
alice     -      /proc/1/ns/net  ok          uid 1000  CONF:1

unmapped = host: users no line matches join the host network namespace
enforce = terminate: the watcher ends a session found outside its namespace

PAM SERVICE  HOOK
sshd         /etc/pam.d/common-session:2
`
	missing := `error: /etc/pam.d/common-session-noninteractive:1: the session stack of cron has no netns-session hook: mapped users' sessions opened through it stay on the host network; add "session required pam_exec.so seteuid /usr/sbin/netns-session pam" after this line (Debian: pam-auth-update --enable netns-session)` + "\n"
	tests := []struct {
		name           string
		nonInteractive string
		quiet          bool
		want           string
		wantErr        bool
	}{
		{name: "wired", nonInteractive: wired,
			want: table + "cron         /etc/pam.d/common-session-noninteractive:2\n0 errors, 0 warnings\n"},
		{name: "wired, quiet", nonInteractive: wired, quiet: true},
		{name: "the hook missing from the non-interactive stack", nonInteractive: "session required pam_unix.so\n", wantErr: true,
			want: table + "cron         missing\n\n" + missing + "1 error, 0 warnings\n"},
		{name: "the hook missing, quiet", nonInteractive: "session required pam_unix.so\n", quiet: true, wantErr: true,
			want: missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := configtest.WriteConfig(t, conf)
			var out bytes.Buffer
			ck := &checker{out: &out, problems: &out, quiet: tt.quiet, users: configtest.Users(), inspect: inspectForTest, pam: pamTree(t, tt.nonInteractive).Check}
			if tt.quiet {
				ck.out = io.Discard
			}
			err := ck.all(path)
			if got, want := out.String(), strings.ReplaceAll(tt.want, "CONF", path); got != want {
				t.Errorf("output:\n%s\nwant:\n%s", got, want)
			}
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, errCheckFailed)) {
				t.Errorf("err = %v, want failure %v", err, tt.wantErr)
			}
		})
	}
}
