package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/config/configtest"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/units"
)

// testUserList are the users of testUsers; bob and carol are in lab.
var testUserList = []config.User{
	{Name: "alice", UID: 1001, GID: 1001},
	{Name: "bob", UID: 1002, GID: 1002},
	{Name: "carol", UID: 1003, GID: 1003},
	{Name: "dave", UID: 1004, GID: 1004},
}

// testUsers is a user database of the users of testUserList and the group
// lab (gid 2000).
func testUsers() *configtest.Directory {
	users := configtest.New()
	lab := config.Group{Name: "lab", GID: 2000, Members: []string{"bob", "carol"}}
	users.AddGroup(lab)
	for _, u := range testUserList {
		if slices.Contains(lab.Members, u.Name) {
			users.AddUser(u, lab.GID)
		} else {
			users.AddUser(u)
		}
	}
	return users
}

// fakeSystemd counts reloads and records the units started.
type fakeSystemd struct {
	reloads int
	started []string
}

func (f *fakeSystemd) ReloadContext(context.Context) error { f.reloads++; return nil }
func (f *fakeSystemd) Close()                              {}

func (f *fakeSystemd) StartUnitContext(_ context.Context, name, _ string, _ chan<- string) (int, error) {
	f.started = append(f.started, name)
	return len(f.started), nil
}

// A namespace file that exists on every test host, and one that does not.
const (
	present = "/proc/self/ns/net"
	missing = "/run/netns/netns-session-test-missing"
)

// testSystem is a Manager, a linger directory and a record of lingering
// users in temporary directories.
type testSystem struct {
	m          *units.Manager
	sd         *fakeSystemd
	lingerDir  string
	recordPath string
}

// opts are the Options that sync s. Its namespaces have no /etc
// directory: the machine's /etc/netns is never read.
func (s *testSystem) opts() Options {
	return Options{LingerDir: s.lingerDir, LingerRecord: s.recordPath,
		EtcView: func(string) (*netns.Overlay, error) { return nil, nil }}
}

func newTestSystem(t *testing.T) *testSystem {
	t.Helper()
	root := t.TempDir()
	sd := &fakeSystemd{}
	s := &testSystem{
		m: &units.Manager{
			SystemDir:  filepath.Join(root, "systemd"),
			CgroupRoot: filepath.Join(root, "cgroup"),
			ProcRoot:   filepath.Join(root, "proc"),
			LockDir:    filepath.Join(root, "lock"),
			Connect:    func(context.Context) (units.Systemd, error) { return sd, nil },
		},
		sd:         sd,
		lingerDir:  filepath.Join(root, "linger"),
		recordPath: filepath.Join(root, "state", "lingering"),
	}
	for _, dir := range []string{s.m.SystemDir, s.lingerDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// writeDropIn writes the drop-in a login under an earlier policy left, and
// forgets the reload that took.
func (s *testSystem) writeDropIn(t *testing.T, user string, uid uint32, nsPath string) {
	t.Helper()
	l, err := s.m.Lock(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if _, err := l.Ensure(context.Background(), user, uid, nsPath); err != nil {
		t.Fatal(err)
	}
	s.sd.reloads = 0
}

func (s *testSystem) linger(t *testing.T, user string) {
	t.Helper()
	writeFile(t, filepath.Join(s.lingerDir, user), "")
}

// runManager makes uid's user manager look running as pid.
func (s *testSystem) runManager(t *testing.T, uid uint32, pid int) {
	t.Helper()
	service := fmt.Sprintf("user.slice/user-%d.slice/user@%d.service", uid, uid)
	writeFile(t, filepath.Join(s.m.CgroupRoot, service, "init.scope", "cgroup.procs"), fmt.Sprintf("%d\n", pid))
}

// dropIns returns the namespace each drop-in on disk names, by UID.
func (s *testSystem) dropIns(t *testing.T) map[uint32]string {
	t.Helper()
	uids, err := s.m.DropInUIDs()
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[uint32]string)
	for _, uid := range uids {
		data, err := os.ReadFile(s.m.DropInPath(uid))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			if v, ok := strings.CutPrefix(line, "NetworkNamespacePath="); ok {
				got[uid] = strings.TrimSpace(v)
			}
		}
	}
	return got
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func parseConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.conf", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// change is a Change reduced to what the tests compare.
type change struct {
	action Action
	uid    uint32
	netns  string
}

func TestSync(t *testing.T) {
	tests := []struct {
		name   string
		config string
		// noConfig syncs as after a config that did not load.
		noConfig bool
		setup    func(t *testing.T, s *testSystem, users *configtest.Directory)
		// want are the drop-ins after the sync, by UID.
		want        map[uint32]string
		wantChanges []change
		// wantWarnings are substrings of the warnings, one each, in order.
		wantWarnings []string
		wantErr      error
	}{
		{
			name:        "user line writes a drop-in",
			config:      "alice " + present + "\n",
			want:        map[uint32]string{1001: present},
			wantChanges: []change{{Write, 1001, present}},
		},
		{
			name:        "listed group members get the group's namespace",
			config:      "@lab " + present + "\n",
			want:        map[uint32]string{1002: present, 1003: present},
			wantChanges: []change{{Write, 1002, present}, {Write, 1003, present}},
		},
		{
			name:   "lingering user matched by * gets a drop-in, others are not named",
			config: "* " + present + "\n",
			setup: func(t *testing.T, s *testSystem, _ *configtest.Directory) {
				s.linger(t, "carol")
			},
			want:        map[uint32]string{1003: present},
			wantChanges: []change{{Write, 1003, present}},
		},
		{
			name:   "running manager of a newly mapped user: written, with a warning",
			config: "* " + present + "\n",
			setup: func(t *testing.T, s *testSystem, _ *configtest.Directory) {
				s.runManager(t, 1004, 4242)
			},
			want:         map[uint32]string{1004: present},
			wantChanges:  []change{{Write, 1004, present}},
			wantWarnings: []string{"user@1004.service of dave runs (PID 4242)"},
		},
		{
			name:   "drop-in of a user no line maps any more is removed",
			config: "alice " + present + "\n",
			setup: func(t *testing.T, s *testSystem, _ *configtest.Directory) {
				s.writeDropIn(t, "alice", 1001, present)
				s.writeDropIn(t, "dave", 1004, present)
			},
			want:        map[uint32]string{1001: present},
			wantChanges: []change{{Remove, 1004, ""}},
		},
		{
			name:   "host mapping removes the drop-in",
			config: "alice -\n",
			setup: func(t *testing.T, s *testSystem, _ *configtest.Directory) {
				s.writeDropIn(t, "alice", 1001, present)
			},
			want:        map[uint32]string{},
			wantChanges: []change{{Remove, 1001, ""}},
		},
		{
			name:   "unmapped = keep removes the drop-in",
			config: "unmapped = keep\nalice " + present + "\n",
			setup: func(t *testing.T, s *testSystem, _ *configtest.Directory) {
				s.writeDropIn(t, "bob", 1002, present)
			},
			want:        map[uint32]string{1001: present},
			wantChanges: []change{{Write, 1001, present}, {Remove, 1002, ""}},
		},
		{
			name:   "a drop-in naming another namespace is rewritten",
			config: "alice " + present + "\n",
			setup: func(t *testing.T, s *testSystem, _ *configtest.Directory) {
				s.writeDropIn(t, "alice", 1001, "/run/netns/old")
			},
			want:        map[uint32]string{1001: present},
			wantChanges: []change{{Write, 1001, present}},
		},
		{
			name:   "a drop-in written at a login under a second name of the uid changes nothing",
			config: "alice " + present + "\n",
			setup: func(t *testing.T, s *testSystem, users *configtest.Directory) {
				users.AddUser(config.User{Name: "alias2", UID: 1001, GID: 1001})
				s.writeDropIn(t, "alias2", 1001, present)
			},
			want: map[uint32]string{1001: present},
		},
		{
			name:   "drop-ins that match change nothing",
			config: "alice " + present + "\n@lab " + present + "\n",
			setup: func(t *testing.T, s *testSystem, _ *configtest.Directory) {
				for _, u := range testUserList[:3] {
					s.writeDropIn(t, u.Name, u.UID, present)
				}
			},
			want: map[uint32]string{1001: present, 1002: present, 1003: present},
		},
		{
			name:         "a missing namespace is still written, with a warning",
			config:       "alice " + missing + "\n",
			want:         map[uint32]string{1001: missing},
			wantChanges:  []change{{Write, 1001, missing}},
			wantWarnings: []string{missing},
		},
		{
			name:         "unknown users and groups are skipped with a warning",
			config:       "ghost " + present + "\n@nogroup " + present + "\nalice " + present + "\n",
			want:         map[uint32]string{1001: present},
			wantChanges:  []change{{Write, 1001, present}},
			wantWarnings: []string{`unknown group "nogroup"`, `skipping user "ghost"`},
		},
		{
			name:   "a drop-in of a uid no user has is left alone",
			config: "alice " + present + "\n",
			setup: func(t *testing.T, s *testSystem, _ *configtest.Directory) {
				s.writeDropIn(t, "gone", 4000, present)
				s.linger(t, "gone")
			},
			want:         map[uint32]string{1001: present, 4000: present},
			wantChanges:  []change{{Write, 1001, present}},
			wantWarnings: []string{`skipping user "gone"`, "skipping uid 4000"},
		},
		{
			// ali is a second name of alice's uid, which NSS names alice.
			name:   "two lines of one uid: the line of the uid's name applies to both names",
			config: "ali -\nalice " + present + "\n",
			setup: func(t *testing.T, s *testSystem, users *configtest.Directory) {
				users.AddUser(config.User{Name: "ali", UID: 1001, GID: 1001})
				s.writeDropIn(t, "alice", 1001, "/run/netns/old")
			},
			want:        map[uint32]string{1001: present},
			wantChanges: []change{{Write, 1001, present}},
		},
		{
			name:   "a failing lookup keeps the manager off, and the others are still synced",
			config: "alice " + present + "\nbob " + present + "\n",
			setup: func(t *testing.T, s *testSystem, users *configtest.Directory) {
				users.Down = map[string]bool{"bob": true}
				s.runManager(t, 1002, 4242)
			},
			want:         map[uint32]string{1001: present, 1002: units.NoNetns},
			wantChanges:  []change{{Write, 1001, present}, {Write, 1002, units.NoNetns}},
			wantWarnings: []string{"user@1002.service of bob runs (PID 4242)"},
			wantErr:      config.ErrSourceUnavailable,
		},
		{
			name:   "a failing lookup keeps the user's drop-in as it is",
			config: "alice " + present + "\nbob " + present + "\n",
			setup: func(t *testing.T, s *testSystem, users *configtest.Directory) {
				users.Down = map[string]bool{"bob": true}
				s.writeDropIn(t, "bob", 1002, "/run/netns/old")
			},
			want:         map[uint32]string{1001: present, 1002: "/run/netns/old"},
			wantChanges:  []change{{Write, 1001, present}},
			wantWarnings: []string{"bob (uid 1002) keeps its drop-in as it is: its policy is unknown"},
			wantErr:      config.ErrSourceUnavailable,
		},
		{
			name:   "a failing group lookup keeps the drop-in of a member as it is",
			config: "@lab " + present + "\n",
			setup: func(t *testing.T, s *testSystem, users *configtest.Directory) {
				users.DownGroupLists = map[string]bool{"bob": true}
				s.writeDropIn(t, "bob", 1002, present)
			},
			want:         map[uint32]string{1002: present, 1003: present},
			wantChanges:  []change{{Write, 1003, present}},
			wantWarnings: []string{"bob (uid 1002) keeps its drop-in as it is"},
			wantErr:      config.ErrSourceUnavailable,
		},
		{
			name:   "a failing group lookup keeps a lingering user's manager off",
			config: "@lab " + present + "\n",
			setup: func(t *testing.T, s *testSystem, users *configtest.Directory) {
				users.DownGroupLists = map[string]bool{"dave": true}
				s.linger(t, "dave")
			},
			want:        map[uint32]string{1002: present, 1003: present, 1004: units.NoNetns},
			wantChanges: []change{{Write, 1002, present}, {Write, 1003, present}, {Write, 1004, units.NoNetns}},
			wantErr:     config.ErrSourceUnavailable,
		},
		{
			name:   "a failing uid lookup keeps that manager off",
			config: "* " + present + "\n",
			setup: func(t *testing.T, s *testSystem, users *configtest.Directory) {
				users.DownUIDs = map[uint32]bool{1004: true}
				s.runManager(t, 1004, 4242)
			},
			want:         map[uint32]string{1004: units.NoNetns},
			wantChanges:  []change{{Write, 1004, units.NoNetns}},
			wantWarnings: []string{"user@1004.service of 1004 runs (PID 4242)"},
			wantErr:      config.ErrSourceUnavailable,
		},
		{
			name:     "without a config every user it can name but root is kept off",
			noConfig: true,
			setup: func(t *testing.T, s *testSystem, users *configtest.Directory) {
				users.AddUser(config.User{Name: "root"})
				s.linger(t, "alice")
				s.linger(t, "ghost")
				s.writeDropIn(t, "bob", 1002, present)
				s.writeDropIn(t, "root", 0, present)
				s.writeDropIn(t, "gone", 4000, present)
				s.runManager(t, 1003, 4242)
			},
			want: map[uint32]string{0: present, 1001: units.NoNetns, 1002: present, 1003: units.NoNetns, 4000: present},
			wantChanges: []change{
				{Write, 1001, units.NoNetns}, {Write, 1003, units.NoNetns},
			},
			wantWarnings: []string{
				`skipping user "ghost"`,
				"skipping uid 4000",
				"root keeps its drop-in",
				"bob (uid 1002) keeps its drop-in as it is",
				"user@1003.service of carol runs (PID 4242)",
			},
		},
		{
			name:     "without a config a user only known by uid gets the uid as name",
			noConfig: true,
			setup: func(t *testing.T, s *testSystem, users *configtest.Directory) {
				users.DownUIDs = map[uint32]bool{1002: true}
				s.runManager(t, 1002, 4242)
			},
			want:         map[uint32]string{1002: units.NoNetns},
			wantChanges:  []change{{Write, 1002, units.NoNetns}},
			wantWarnings: []string{"user@1002.service of 1002 runs (PID 4242)"},
			wantErr:      config.ErrSourceUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSystem(t)
			users := testUsers()
			if tt.setup != nil {
				tt.setup(t, s, users)
			}
			var cfg *config.Config
			if !tt.noConfig {
				cfg = parseConfig(t, tt.config)
			}
			report, err := Sync(context.Background(), cfg, users, s.m, s.opts())
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("Sync() error = %v, want %v", err, tt.wantErr)
			}
			if got := s.dropIns(t); !maps.Equal(got, tt.want) {
				t.Errorf("drop-ins = %v, want %v", got, tt.want)
			}
			var got []change
			for _, c := range report.Changes {
				got = append(got, change{c.Action, c.UID, c.Netns})
			}
			if !slices.Equal(got, tt.wantChanges) {
				t.Errorf("changes = %v, want %v", got, tt.wantChanges)
			}
			wantReloads := 0
			if len(tt.wantChanges) > 0 {
				wantReloads = 1
			}
			if s.sd.reloads != wantReloads || report.Reloaded != (wantReloads == 1) {
				t.Errorf("reloads = %d (Reloaded %v), want %d", s.sd.reloads, report.Reloaded, wantReloads)
			}
			checkWarnings(t, report.Warnings, tt.wantWarnings)

			// A second sync finds nothing to do.
			s.sd.reloads = 0
			again, _ := Sync(context.Background(), cfg, users, s.m, s.opts())
			if len(again.Changes) != 0 || s.sd.reloads != 0 {
				t.Errorf("second sync: changes %v, %d reloads; want none", again.Changes, s.sd.reloads)
			}
		})
	}
}

func TestSyncDryRunChangesNothing(t *testing.T) {
	s := newTestSystem(t)
	s.writeDropIn(t, "dave", 1004, present)
	cfg := parseConfig(t, "alice "+present+"\n")

	opts := s.opts()
	opts.DryRun = true
	report, err := Sync(context.Background(), cfg, testUsers(), s.m, opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := (map[uint32]string{1004: present}); !maps.Equal(s.dropIns(t), want) {
		t.Errorf("drop-ins after a dry run = %v, want them untouched (%v)", s.dropIns(t), want)
	}
	if s.sd.reloads != 0 || report.Reloaded {
		t.Errorf("dry run reloaded %d times", s.sd.reloads)
	}
	if !report.DryRun || len(report.Changes) != 2 || report.Changes[0].Action != Write || report.Changes[1].Action != Remove {
		t.Errorf("dry run report = %+v, want the write for alice and the removal for dave", report)
	}
	if report.Users != 2 {
		t.Errorf("Users = %d, want 2", report.Users)
	}
}

// TestSyncSeesAUIDGivenToAnotherUser syncs twice with one config, as the
// watcher does until a reload, while the user of a user line is deleted
// and its UID given to another user in between: the second sync must not
// hand the new owner the line's namespace.
func TestSyncSeesAUIDGivenToAnotherUser(t *testing.T) {
	s := newTestSystem(t)
	cfg := parseConfig(t, "ghost "+present+"\n")
	users := testUsers()
	users.AddUser(config.User{Name: "ghost", UID: 1005, GID: 1005})
	// alice resolves by UID, which looks the line's name up.
	s.linger(t, "alice")
	if _, err := Sync(context.Background(), cfg, users, s.m, s.opts()); err != nil {
		t.Fatal(err)
	}
	if want := (map[uint32]string{1005: present}); !maps.Equal(s.dropIns(t), want) {
		t.Fatalf("drop-ins = %v, want %v", s.dropIns(t), want)
	}

	users.RemoveUser("ghost")
	users.AddUser(config.User{Name: "newbie", UID: 1005, GID: 1005})
	report, err := Sync(context.Background(), cfg, users, s.m, s.opts())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.dropIns(t); len(got) != 0 {
		t.Errorf("drop-ins after ghost's uid went to newbie = %v, want none", got)
	}
	if len(report.Changes) != 1 || report.Changes[0].Action != Remove || report.Changes[0].User != "newbie" {
		t.Errorf("changes = %+v, want the removal of newbie's drop-in", report.Changes)
	}
}

func checkWarnings(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("warnings = %q, want %d matching %q", got, len(want), want)
		return
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("warning %d = %q, want it to contain %q", i, got[i], want[i])
		}
	}
}

// TestSyncWritesTheMountsOfANamespaceEtc syncs users of a namespace with an
// /etc directory, whose mounts go into their drop-ins, loaded once for all
// of them, and of one whose /etc directory cannot be applied: its users'
// managers are kept from starting and the sync fails, naming it.
func TestSyncWritesTheMountsOfANamespaceEtc(t *testing.T) {
	s := newTestSystem(t)
	cfg := parseConfig(t, "alice ns0\ndave ns0\ncarol ns1\nbob /run/netns/ns0\n")
	unreadable := errors.New("reading /etc/netns/ns1: input/output error")
	var asked []string
	opts := s.opts()
	opts.EtcView = func(name string) (*netns.Overlay, error) {
		asked = append(asked, name)
		if name == "ns1" {
			return nil, unreadable
		}
		return &netns.Overlay{Name: name, Binds: []netns.Mount{{Source: "/etc/netns/ns0/hosts", Target: "/etc/hosts"}}}, nil
	}
	_, err := Sync(context.Background(), cfg, testUsers(), s.m, opts)
	if !errors.Is(err, unreadable) || !strings.Contains(err.Error(), "namespace ns1") {
		t.Errorf("Sync() error = %v, want one naming ns1's /etc directory", err)
	}
	if want := []string{"ns0", "ns1"}; !slices.Equal(asked, want) {
		t.Errorf("/etc directories loaded: %q, want each once: %q", asked, want)
	}
	want := map[uint32]string{
		1001: "NetworkNamespacePath=/run/netns/ns0\nBindPaths=/etc/netns/ns0/hosts:/etc/hosts\n",
		1004: "NetworkNamespacePath=/run/netns/ns0\nBindPaths=/etc/netns/ns0/hosts:/etc/hosts\n",
		1003: "NetworkNamespacePath=" + units.NoNetns + "\n",
		// Given by path: no /etc directory.
		1002: "NetworkNamespacePath=/run/netns/ns0\n",
	}
	for uid, settings := range want {
		data, err := os.ReadFile(s.m.DropInPath(uid))
		if _, rest, _ := strings.Cut(string(data), "[Service]\n"); err != nil || rest != settings {
			t.Errorf("drop-in of uid %d: %q, %v; want its settings to be\n%s", uid, data, err, settings)
		}
	}
}
