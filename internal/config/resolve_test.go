package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// fakeDirectory is an in-memory user database that records group lookups.
type fakeDirectory struct {
	users    map[string]*User    // by the name asked for
	groupIDs map[string][]uint32 // by canonical user name, primary included
	groups   map[string]*Group
	failing  string // a group whose lookup fails as a broken source would

	groupLookups []string
	listed       int
}

func (d *fakeDirectory) LookupUser(name string) (*User, error) {
	if u, ok := d.users[name]; ok {
		return u, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownUser, name)
}

func (d *fakeDirectory) GroupIDs(u *User) ([]uint32, error) {
	d.listed++
	return d.groupIDs[u.Name], nil
}

func (d *fakeDirectory) LookupGroup(name string) (*Group, error) {
	d.groupLookups = append(d.groupLookups, name)
	if name == d.failing {
		return nil, errors.New("connection to LDAP server lost")
	}
	if g, ok := d.groups[name]; ok {
		return g, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownGroup, name)
}

func testDirectory() *fakeDirectory {
	alice := &User{Name: "alice", UID: 1000, GID: 1000}
	return &fakeDirectory{
		users: map[string]*User{
			"alice": alice,
			"Alice": alice, // a case-insensitive source
			"bob":   {Name: "bob", UID: 1001, GID: 1001},
			"carol": {Name: "carol", UID: 1002, GID: 100},
		},
		groupIDs: map[string][]uint32{
			"alice": {1000, 2000, 2001},
			"bob":   {1001},
			"carol": {100},
		},
		groups: map[string]*Group{
			"research": {Name: "research", GID: 2000},
			"lab":      {Name: "lab", GID: 2001},
			"users":    {Name: "users", GID: 100},
			// bob is listed, but his source's group list misses it.
			"ops":   {Name: "ops", GID: 3000, Members: []string{"dave", "bob"}},
			"empty": {Name: "empty", GID: 3001},
		},
	}
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
			name:   "name as asked for matches before the canonical one",
			config: "alice ns0\nAlice ns1\n",
			user:   "Alice", want: "Alice ns1", wantReason: "user line for Alice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("t.conf", strings.NewReader(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			dir := testDirectory()
			d, u, err := cfg.Resolve(tt.user, dir)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if u != dir.users[tt.user] {
				t.Errorf("user = %+v, want the looked-up %+v", u, dir.users[tt.user])
			}
			var got string
			switch {
			case d.Keep:
				got = "keep"
			case !d.Mapped():
				got = "host"
				if !d.Netns.Host || d.Netns.Path != HostNetnsPath {
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
			if !slices.Equal(dir.groupLookups, tt.wantLookups) {
				t.Errorf("group lookups = %q, want %q", dir.groupLookups, tt.wantLookups)
			}
			if want := min(len(tt.wantLookups), 1); dir.listed != want {
				t.Errorf("group list read %d times, want %d", dir.listed, want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		user    string
		failing string
		want    string
		is      error
	}{
		{"unknown user", "* guest\n", "mallory", "", `looking up user "mallory": unknown user "mallory"`, ErrUnknownUser},
		{"failing group source", "@research r\n* guest\n", "carol", "research", `looking up group "research": connection to LDAP server lost`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("t.conf", strings.NewReader(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			dir := testDirectory()
			dir.failing = tt.failing
			d, _, err := cfg.Resolve(tt.user, dir)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err does not match %v", tt.is)
			}
			if d.Mapped() || d.Netns != (Netns{}) {
				t.Errorf("a failed resolution returned decision %+v", d)
			}
		})
	}
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
func benchDirectory() *fakeDirectory {
	dir := &fakeDirectory{
		users:    map[string]*User{"erin": {Name: "erin", UID: 5000, GID: 5000}},
		groupIDs: map[string][]uint32{},
		groups:   map[string]*Group{},
	}
	for i := range 100_000 {
		if i >= 1000 && i%100 != 0 {
			continue
		}
		name := fmt.Sprintf("group%d", i)
		dir.groups[name] = &Group{Name: name, GID: uint32(10_000 + i), Members: []string{"x", "y", "z"}}
	}
	for i := range 1000 {
		dir.groupIDs["erin"] = append(dir.groupIDs["erin"], uint32(200_000+i))
	}
	return dir
}

// BenchmarkResolve measures what a login pays: parsing the whole config and
// resolving a user who matches no user or group line, the worst case.
func BenchmarkResolve(b *testing.B) {
	dir := benchDirectory()
	var groups strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&groups, "@group%d ns%d\n", i, i)
	}
	cases := []struct {
		name   string
		config []byte
	}{
		{"lines=1k", benchConfig(1000)},
		{"lines=10k", benchConfig(10_000)},
		{"lines=100k", benchConfig(100_000)},
		{"groups=1k", []byte(groups.String())},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dir.groupLookups = dir.groupLookups[:0]
				cfg, err := Parse("bench.conf", strings.NewReader(string(c.config)))
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

func TestDecisionTargetAndDropIn(t *testing.T) {
	tests := []struct {
		name       string
		decision   Decision
		wantTarget string
		wantDropIn bool
	}{
		{name: "named netns", decision: Decision{Netns: netnsFromSpec("ns0")}, wantTarget: "/run/netns/ns0", wantDropIn: true},
		{name: "path", decision: Decision{Netns: netnsFromSpec("/srv/netns/bob")}, wantTarget: "/srv/netns/bob", wantDropIn: true},
		{name: "host", decision: Decision{Netns: netnsFromSpec("-")}, wantTarget: HostNetnsPath, wantDropIn: false},
		{name: "keep", decision: Decision{Keep: true}, wantTarget: "", wantDropIn: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.decision.Target(); got != tt.wantTarget {
				t.Errorf("Target() = %q, want %q", got, tt.wantTarget)
			}
			if got := tt.decision.NeedsDropIn(); got != tt.wantDropIn {
				t.Errorf("NeedsDropIn() = %t, want %t", got, tt.wantDropIn)
			}
		})
	}
}
