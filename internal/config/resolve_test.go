package config_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/config/configtest"
	"github.com/netns-session/netns-session/internal/netns"
)

// testDirectory knows alice (also as Alice, and her UID under the second
// name alias), bob and carol (also as Carol), and their groups.
func testDirectory() *configtest.Directory {
	dir := configtest.New()
	dir.AddUser(config.User{Name: "alice", UID: 1000, GID: 1000}, 2000, 2001)
	dir.AddName("Alice", "alice") // a case-insensitive source
	dir.AddUser(config.User{Name: "bob", UID: 1001, GID: 1001})
	dir.AddUser(config.User{Name: "carol", UID: 1002, GID: 100})
	dir.AddName("Carol", "carol")
	// A second name of alice's uid (useradd -o), which NSS returns as it
	// was asked for.
	dir.AddUser(config.User{Name: "alias", UID: 1000, GID: 1000}, 2000, 2001, 3002)
	dir.AddGroup(config.Group{Name: "research", GID: 2000})
	dir.AddGroup(config.Group{Name: "lab", GID: 2001})
	dir.AddGroup(config.Group{Name: "users", GID: 100})
	// bob is listed, but his source's group list misses it.
	dir.AddGroup(config.Group{Name: "ops", GID: 3000, Members: []string{"dave", "bob"}})
	dir.AddGroup(config.Group{Name: "empty", GID: 3001})
	// /etc/group lists the second name, not alice.
	dir.AddGroup(config.Group{Name: "aliases", GID: 3002, Members: []string{"alias"}})
	return dir
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name   string
		config string
		user   string
		// want is "SELECTOR SPEC" of the matching rule, "host" or "keep".
		want       string
		wantReason string
		// wantLookups are the groups looked up, in order.
		wantLookups []string
	}{
		{
			name:   "user line beats an earlier group line",
			config: "@research lab\nalice ns0\n",
			user:   "alice", want: "alice ns0", wantReason: "user line for alice",
		},
		{
			name:   "first matching group line in file order",
			config: "@empty e\n@lab lab\n@research res\n",
			user:   "alice", want: "@lab lab", wantReason: "alice is in group lab (gid 2001)",
			wantLookups: []string{"empty", "lab"},
		},
		{
			name:   "primary group counts",
			config: "@users u\n",
			user:   "carol", want: "@users u", wantReason: "carol is in group users (gid 100)",
			wantLookups: []string{"users"},
		},
		{
			name:   "member list counts when the group list misses it",
			config: "@research r\n@ops o\n",
			user:   "bob", want: "@ops o", wantReason: "bob is listed as a member of group ops",
			wantLookups: []string{"research", "ops"},
		},
		{
			name:   "wildcard is last even when written first",
			config: "* guest\n@research r\n",
			user:   "alice", want: "@research r", wantReason: "alice is in group research (gid 2000)",
			wantLookups: []string{"research"},
		},
		{
			name:   "wildcard when no user or group line matches",
			config: "* guest\n@research r\nalice ns0\n",
			user:   "carol", want: "* guest", wantReason: "no user or group line matches; * applies",
			wantLookups: []string{"research"},
		},
		{
			name:   "groups that do not exist are skipped",
			config: "@gone g\n@lab lab\n",
			user:   "alice", want: "@lab lab", wantReason: "alice is in group lab (gid 2001)",
			wantLookups: []string{"gone", "lab"},
		},
		{
			name:   "unmapped users get the host",
			config: "alice ns0\n@research r\n",
			user:   "carol", want: "host", wantReason: "no line matches; unmapped = host",
			wantLookups: []string{"research"},
		},
		{
			name:   "unmapped = keep",
			config: "unmapped = keep\nalice ns0\n",
			user:   "bob", want: "keep", wantReason: "no line matches; unmapped = keep leaves the login namespace",
		},
		{
			name:   "user line mapping to the host",
			config: "alice -\n* guest\n",
			user:   "alice", want: "alice -", wantReason: "user line for alice",
		},
		{
			name:   "canonical name from NSS matches the line",
			config: "alice ns0\n",
			user:   "Alice", want: "alice ns0", wantReason: "user line for alice",
		},
		{
			name:   "the line of the uid's name beats one spelled as the login",
			config: "Alice ns1\nalice ns0\n",
			user:   "Alice", want: "alice ns0", wantReason: "user line for alice",
		},
		{
			name:   "the line of the uid's name selects a second name",
			config: "alias ns1\nalice ns0\n",
			user:   "alias", want: "alice ns0", wantReason: "user line for alice (uid 1000)",
		},
		{
			name:   "without a line of the uid's name the first line of the uid wins",
			config: "bob ns2\nAlice ns0\nalias ns1\n",
			user:   "alias", want: "Alice ns0", wantReason: "user line for Alice (uid 1000)",
		},
		{
			name:   "a member list counts for the uid's name, not the login's",
			config: "@aliases g\n",
			user:   "alias", want: "host", wantReason: "no line matches; unmapped = host",
			wantLookups: []string{"aliases"},
		},
		{
			name:   "a second name of the uid is selected by the line",
			config: "alice ns0\n",
			user:   "alias", want: "alice ns0", wantReason: "user line for alice (uid 1000)",
		},
		{
			name:   "a line spelled unlike the login and NSS selects the user",
			config: "Carol ns0\n",
			user:   "carol", want: "Carol ns0", wantReason: "user line for Carol (uid 1002)",
		},
		{
			name:   "user line selecting by uid beats a group line",
			config: "@research lab\nbob ns1\nalice ns0\n",
			user:   "alias", want: "alice ns0", wantReason: "user line for alice (uid 1000)",
		},
		{
			name:   "a failing line after the one that selects is not looked up",
			config: "alice ns0\nErin ns1\n",
			user:   "alias", want: "alice ns0", wantReason: "user line for alice (uid 1000)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("t.conf", strings.NewReader(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			dir := testDirectory()
			dir.Down = map[string]bool{"Erin": true}
			d, u, err := cfg.Resolve(tt.user, dir)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if want, _ := dir.LookupUser(tt.user); u != want {
				t.Errorf("user = %+v, want the looked-up %+v", u, want)
			}
			var got string
			switch {
			case d.Keep:
				got = "keep"
			case !d.Mapped():
				got = "host"
				if !d.Netns.Host || d.Netns.Path != netns.HostPath {
					t.Errorf("unmapped netns = %+v, want the host", d.Netns)
				}
			default:
				got = d.Rule.Selector() + " " + d.Rule.Netns.Spec
				if d.Netns != d.Rule.Netns {
					t.Errorf("decision netns %+v differs from the rule's %+v", d.Netns, d.Rule.Netns)
				}
			}
			if got != tt.want {
				t.Errorf("decision = %s, want %s", got, tt.want)
			}
			if d.Reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", d.Reason, tt.wantReason)
			}
			if got := dir.Asked(configtest.GroupByName); !slices.Equal(got, tt.wantLookups) {
				t.Errorf("group lookups = %q, want %q", got, tt.wantLookups)
			}
			if want, got := min(len(tt.wantLookups), 1), dir.Count(configtest.GroupList); got != want {
				t.Errorf("group list read %d times, want %d", got, want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name   string
		config string
		user   string
		down   string
		// downUID is a UID whose lookup fails.
		downUID uint32
		want    string
		is      error
		// wantUser: the user was found, so the caller can keep its
		// manager off.
		wantUser bool
	}{
		{name: "unknown user", config: "* guest\n", user: "mallory",
			want: `looking up user "mallory": unknown user "mallory"`, is: config.ErrUnknownUser},
		{name: "user source down", config: "* guest\n", user: "carol", down: "carol",
			want: `looking up user "carol": getpwnam_r "carol": user database unavailable: no such file or directory (ENOENT)`, is: config.ErrSourceUnavailable},
		{name: "group source down", config: "@research r\n* guest\n", user: "carol", down: "research", wantUser: true,
			want: `looking up group "research": getgrnam_r "research": user database unavailable: no such file or directory (ENOENT)`, is: config.ErrSourceUnavailable},
		// getgrouplist leaves research out; getgrnam_r of the line catches it.
		{name: "group source down for a member", config: "@research r\n", user: "alice", down: "research", wantUser: true,
			want: `looking up group "research": getgrnam_r "research": user database unavailable: no such file or directory (ENOENT)`, is: config.ErrSourceUnavailable},
		{name: "group down before the matching group", config: "@research r\n@lab l\n", user: "alice", down: "research", wantUser: true,
			want: `looking up group "research": getgrnam_r "research": user database unavailable: no such file or directory (ENOENT)`, is: config.ErrSourceUnavailable},
		{name: "user line source down", config: "Erin ns0\n* guest\n", user: "carol", down: "Erin", wantUser: true,
			want: `looking up user "Erin" of the line at t.conf:1: getpwnam_r "Erin": user database unavailable: no such file or directory (ENOENT)`, is: config.ErrSourceUnavailable},
		{name: "user line down before the one that selects", config: "Erin ns1\nAlice ns0\n", user: "alias", down: "Erin", wantUser: true,
			want: `looking up user "Erin" of the line at t.conf:1: getpwnam_r "Erin": user database unavailable: no such file or directory (ENOENT)`, is: config.ErrSourceUnavailable},
		// alias is found, the name of its uid is not: no line can be chosen.
		{name: "owner of the uid down", config: "alias ns0\n", user: "alias", down: "alice", downUID: 1000, wantUser: true,
			want: `looking up the owner of uid 1000: getpwuid_r with uid 1000: user database unavailable: no such file or directory (ENOENT)`, is: config.ErrSourceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("t.conf", strings.NewReader(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			dir := testDirectory()
			dir.Down = map[string]bool{tt.down: true}
			dir.DownUIDs = map[uint32]bool{tt.downUID: tt.downUID != 0}
			d, u, err := cfg.Resolve(tt.user, dir)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("err does not match %v", tt.is)
			}
			if tt.is == config.ErrSourceUnavailable && (errors.Is(err, config.ErrUnknownUser) || errors.Is(err, config.ErrUnknownGroup)) {
				t.Errorf("err %v reads a source that is down as not found", err)
			}
			if d.Mapped() || d.Netns != (config.Netns{}) {
				t.Errorf("a failed resolution returned decision %+v", d)
			}
			if (u != nil) != tt.wantUser {
				t.Errorf("user = %+v, want one: %t", u, tt.wantUser)
			}
		})
	}
}

// TestResolveGivesEveryNameOfAUIDOneLine resolves a UID by each of its
// names, as the PAM hook resolves the name that logs in, and by the UID
// itself, as the watcher and status resolve the user of what logind reports,
// under configs with two lines that select the UID. All must get the same
// line: the one of the UID's name, else the first. A hook and a watcher that
// disagree end a correctly placed session.
func TestResolveGivesEveryNameOfAUIDOneLine(t *testing.T) {
	tests := []struct {
		config string
		want   string // "SELECTOR SPEC" of the line, or "host"
	}{
		{"alice ns0\nalias ns1\n", "alice ns0"},
		{"alias ns1\nalice ns0\n", "alice ns0"},
		{"alice ns0\nAlice ns1\n", "alice ns0"},
		{"Alice ns1\nalice ns0\n", "alice ns0"},
		{"Alice ns0\nalias ns1\n", "Alice ns0"},
		{"alias ns1\nAlice ns0\n", "alias ns1"},
		{"ghost ns2\nalias ns1\nAlice ns0\n", "alias ns1"},
		{"alias ns1\nAlice ns2\nalice ns0\n", "alice ns0"},
		{"@aliases ns1\n@research ns0\n", "@research ns0"},
		{"@aliases ns1\n", "host"},
	}
	// The owner first: the watcher's name.
	names := []string{"alice", "Alice", "alias"}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(strings.TrimSpace(tt.config), "\n", "; "), func(t *testing.T) {
			cfg, err := config.Parse("t.conf", strings.NewReader(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range names {
				d, _, err := cfg.Resolve(name, testDirectory())
				if err != nil {
					t.Fatalf("Resolve(%s): %v", name, err)
				}
				got := "host"
				if d.Mapped() {
					got = d.Rule.Selector() + " " + d.Rule.Netns.Spec
				}
				if got != tt.want {
					t.Errorf("Resolve(%s) = %s (%s), want %s", name, got, d.Reason, tt.want)
				}
			}
			d, err := cfg.ResolveUID(1000, testDirectory())
			if err != nil {
				t.Fatalf("ResolveUID(1000): %v", err)
			}
			got := "host"
			if d.Mapped() {
				got = d.Rule.Selector() + " " + d.Rule.Netns.Spec
			}
			if got != tt.want {
				t.Errorf("ResolveUID(1000) = %s (%s), want %s", got, d.Reason, tt.want)
			}
		})
	}
}

// TestResolveLooksUpUserLinesOnlyWhenTheUIDsNameHasNone counts the lookups
// a login pays: the login's name and its UID's owner, and the names of
// other user lines only when the owner's name has no line: then those
// before the first line of the UID, every one for an unmapped user, but
// none spelled as the login.
func TestResolveLooksUpUserLinesOnlyWhenTheUIDsNameHasNone(t *testing.T) {
	cfg, err := config.Parse("t.conf", strings.NewReader("alice ns0\nghost ns1\nCarol ns2\n@research r\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user string
		want []string
	}{
		{"alice", []string{"alice"}},                        // the owner's line
		{"Alice", []string{"Alice"}},                        // the owner's line, by another spelling
		{"alias", []string{"alias"}},                        // the owner's line, by a second name
		{"bob", []string{"bob", "alice", "ghost", "Carol"}}, // unmapped: every user line
		{"carol", []string{"carol", "alice", "ghost", "Carol"}},
		{"Carol", []string{"Carol", "alice", "ghost"}}, // spelled as the line
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			dir := testDirectory()
			if _, _, err := cfg.Resolve(tt.user, dir); err != nil {
				t.Fatal(err)
			}
			names, uids := dir.Asked(configtest.UserByName), dir.Asked(configtest.UserByUID)
			if !slices.Equal(names, tt.want) || len(uids) != 1 {
				t.Errorf("looked up %q and %d uids, want %q and 1", names, len(uids), tt.want)
			}
		})
	}
	// A config of "*" alone decides without the UID's owner.
	star, err := config.Parse("t.conf", strings.NewReader("* guest\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := testDirectory()
	if _, _, err := star.Resolve("alias", dir); err != nil || dir.Count(configtest.UserByUID) != 0 {
		t.Errorf("Resolve(alias) under \"* guest\": err %v, uid lookups %v; want none", err, dir.Asked(configtest.UserByUID))
	}
}

// TestResolveUIDLooksUpNoName counts the lookups a judgement of a UID pays:
// the UID's owner, and the names of other user lines only as Resolve looks
// them up, never the owner's name: no round trip from UID to name to UID.
func TestResolveUIDLooksUpNoName(t *testing.T) {
	cfg, err := config.Parse("t.conf", strings.NewReader("alice ns0\nghost ns1\nCarol ns2\n@research r\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		uid  uint32
		want []string
		line string // the line that selects uid, "" for none
	}{
		{1000, nil, "alice"}, // the owner's line
		{1001, []string{"alice", "ghost", "Carol"}, ""},
		{1002, []string{"alice", "ghost", "Carol"}, "Carol"},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatUint(uint64(tt.uid), 10), func(t *testing.T) {
			dir := testDirectory()
			d, err := cfg.ResolveUID(tt.uid, dir)
			if err != nil {
				t.Fatal(err)
			}
			line := ""
			if d.Rule != nil && d.Rule.Kind == config.SelectUser {
				line = d.Rule.Name
			}
			if line != tt.line {
				t.Errorf("ResolveUID(%d) chose the line of %q (%s), want %q", tt.uid, line, d.Reason, tt.line)
			}
			names, uids := dir.Asked(configtest.UserByName), dir.Asked(configtest.UserByUID)
			if !slices.Equal(names, tt.want) || !slices.Equal(uids, []string{strconv.FormatUint(uint64(tt.uid), 10)}) {
				t.Errorf("looked up %q and uids %v, want %q and %d", names, uids, tt.want, tt.uid)
			}
		})
	}
}

// TestResolveUIDErrors: a UID without an owner, also under "*" alone, or
// whose owner's source is down, leaves the policy unknown; the first is not
// found, the second is not "not found".
func TestResolveUIDErrors(t *testing.T) {
	dir := testDirectory()
	dir.DownUIDs = map[uint32]bool{1001: true}
	for _, tt := range []struct {
		config string
		uid    uint32
		want   string
		is     error
	}{
		{"alice ns0\n* guest\n", 1003, "looking up the owner of uid 1003: unknown user with uid 1003", config.ErrUnknownUser},
		{"alice ns0\n* guest\n", 1001, "looking up the owner of uid 1001: getpwuid_r with uid 1001: user database unavailable: no such file or directory (ENOENT)", config.ErrSourceUnavailable},
		// As Resolve looks a name up under "*" alone.
		{"* guest\n", 1003, "looking up the owner of uid 1003: unknown user with uid 1003", config.ErrUnknownUser},
	} {
		cfg, err := config.Parse("t.conf", strings.NewReader(tt.config))
		if err != nil {
			t.Fatal(err)
		}
		d, err := cfg.ResolveUID(tt.uid, dir)
		if err == nil || err.Error() != tt.want || !errors.Is(err, tt.is) || d.Mapped() {
			t.Errorf("ResolveUID(%d) = %+v, %v; want no decision and %s", tt.uid, d.Rule, err, tt.want)
		}
		if tt.is == config.ErrSourceUnavailable && errors.Is(err, config.ErrUnknownUser) {
			t.Errorf("ResolveUID(%d): %v reads a source that is down as not found", tt.uid, err)
		}
	}
}

// TestResolveSeesTheDirectoryAsItIsNow keeps one Config, as the watcher does
// until a reload, while a user line's user is deleted and its UID given to
// another user: the UID must no longer select the line.
func TestResolveSeesTheDirectoryAsItIsNow(t *testing.T) {
	cfg, err := config.Parse("t.conf", strings.NewReader("ghost ns1\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := testDirectory()
	dir.AddUser(config.User{Name: "ghost", UID: 1003, GID: 1003})
	if d, _, err := cfg.Resolve("bob", dir); err != nil || d.Mapped() {
		t.Fatalf("Resolve(bob) = %+v, %v; want unmapped", d.Rule, err)
	}

	dir.RemoveUser("ghost")
	dir.AddUser(config.User{Name: "newbie", UID: 1003, GID: 1003})
	if d, _, err := cfg.Resolve("newbie", dir); err != nil || d.Mapped() {
		t.Errorf("Resolve(newbie), who has the uid ghost had = %+v, %v; want unmapped", d.Rule, err)
	}
}

// TestCachedLookupsRemembersEveryAnswerForOnePass resolves in one pass, as
// a sync or a check of every session does: a name or UID is looked up once,
// whether it was found, not found (a line of a deleted user) or its source
// failed. A new pass asks everything again, and sees users created and
// sources come back meanwhile.
func TestCachedLookupsRemembersEveryAnswerForOnePass(t *testing.T) {
	cfg, err := config.Parse("t.conf", strings.NewReader("alice ns0\nghost ns1\nCarol ns2\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := testDirectory()
	pass := config.CachedLookups(dir)
	resolve := func(user string) ([]string, error) {
		t.Helper()
		dir.Forget()
		_, _, err := cfg.Resolve(user, pass)
		return dir.Asked(configtest.UserByName), err
	}
	steps := []struct {
		user    string
		want    []string
		uids    int
		wantErr error
	}{
		{"bob", []string{"bob", "alice", "ghost", "Carol"}, 1, nil},
		{"bob", nil, 0, nil}, // found and missing names remembered, and the uid
		{"carol", []string{"carol"}, 1, nil},
		{"mallory", []string{"mallory"}, 0, config.ErrUnknownUser},
		{"mallory", nil, 0, config.ErrUnknownUser},
	}
	for _, step := range steps {
		got, err := resolve(step.user)
		if !errors.Is(err, step.wantErr) || !slices.Equal(got, step.want) || dir.Count(configtest.UserByUID) != step.uids {
			t.Errorf("Resolve(%s): looked up %q and uids %v, err %v; want %q, %d uids and error %v", step.user, got, dir.Asked(configtest.UserByUID), err, step.want, step.uids, step.wantErr)
		}
	}

	// A failure is remembered for the pass: its users stay unknown.
	dir.Down = map[string]bool{"ghost": true}
	pass = config.CachedLookups(dir)
	for i, want := range [][]string{{"bob", "alice", "ghost"}, nil} {
		if got, err := resolve("bob"); !errors.Is(err, config.ErrSourceUnavailable) || !slices.Equal(got, want) {
			t.Errorf("Resolve(bob) #%d with ghost's source down: looked up %q, err %v; want %q and the failure", i+1, got, err, want)
		}
	}
	// A new pass asks again, and sees what changed.
	dir.Down = nil
	dir.AddUser(config.User{Name: "ghost", UID: 1003, GID: 1003})
	pass = config.CachedLookups(dir)
	if got, err := resolve("bob"); err != nil || !slices.Equal(got, []string{"bob", "alice", "ghost", "Carol"}) {
		t.Errorf("a new pass looked up %q, err %v; want every name again", got, err)
	}
	if d, _, err := cfg.Resolve("ghost", pass); err != nil || d.Rule == nil || d.Rule.Name != "ghost" {
		t.Errorf("Resolve(ghost) in a pass after ghost was created = %+v, %v; want the ghost line", d.Rule, err)
	}
}

// TestResolveConcurrently shares one Config between goroutines, as the
// watcher's sync and its judge do: resolving changes nothing in it. Run
// with -race.
func TestResolveConcurrently(t *testing.T) {
	cfg, err := config.Parse("t.conf", strings.NewReader("alice ns0\nCarol ns1\nghost ns2\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := testDirectory()
	want := map[string]string{"alias": "alice", "carol": "Carol", "bob": ""}
	var wg sync.WaitGroup
	for range 8 {
		for user, line := range want {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, _, err := cfg.Resolve(user, dir)
				switch {
				case err != nil:
					t.Errorf("Resolve(%s): %v", user, err)
				case line == "" && d.Mapped(), line != "" && (d.Rule == nil || d.Rule.Name != line):
					t.Errorf("Resolve(%s) = %+v, want line %q", user, d.Rule, line)
				}
			}()
		}
	}
	wg.Wait()
}

// benchConfig returns a config of n lines: user lines, every 100th a group
// line, then the wildcard.
func benchConfig(n int) []byte {
	var b strings.Builder
	for i := 1; i < n; i++ {
		if i%100 == 0 {
			fmt.Fprintf(&b, "@group%d lab%d # a group\n", i, i%7)
		} else {
			fmt.Fprintf(&b, "user%d ns%d\n", i, i%13)
		}
	}
	b.WriteString("* guest\n")
	return []byte(b.String())
}

// benchDirectory knows every group of the bench configs, and a user in 1000
// groups, none of them mapped.
func benchDirectory() *configtest.Directory {
	dir := configtest.New()
	for i := range 100_000 {
		if i >= 1000 && i%100 != 0 {
			continue
		}
		name := fmt.Sprintf("group%d", i)
		dir.AddGroup(config.Group{Name: name, GID: uint32(10_000 + i), Members: []string{"x", "y", "z"}})
	}
	var groups []uint32
	for i := range 1000 {
		groups = append(groups, uint32(200_000+i))
	}
	dir.AddUser(config.User{Name: "erin", UID: 5000, GID: 5000}, groups...)
	return dir
}

// BenchmarkResolve measures what a login pays: parsing the whole config and
// resolving a user who matches no user or group line, the worst case. The
// user lines of lines=N name users the directory does not know; those of
// userlines=N name users it knows. Either way each is looked up once, since
// no line is spelled as the user (the directory answers from memory: real
// NSS lookups cost far more, see userdb's BenchmarkNSSLookupUser).
func BenchmarkResolve(b *testing.B) {
	dir := benchDirectory()
	var groups strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&groups, "@group%d ns%d\n", i, i)
	}
	userLines := func(n int) []byte {
		var b strings.Builder
		for i := range n {
			name := fmt.Sprintf("known%d", i)
			dir.AddUser(config.User{Name: name, UID: uint32(10_000 + i), GID: 100})
			fmt.Fprintf(&b, "%s ns%d\n", name, i%13)
		}
		return []byte(b.String())
	}
	cases := []struct {
		name   string
		config []byte
	}{
		{"lines=1k", benchConfig(1000)},
		{"lines=10k", benchConfig(10_000)},
		{"lines=100k", benchConfig(100_000)},
		{"groups=1k", []byte(groups.String())},
		{"userlines=10", userLines(10)},
		{"userlines=100", userLines(100)},
		{"userlines=1k", userLines(1000)},
		{"userlines=10k", userLines(10_000)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dir.Forget()
				cfg, err := config.Parse("bench.conf", strings.NewReader(string(c.config)))
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := cfg.Resolve("erin", dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
