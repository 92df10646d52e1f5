package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseAccepts(t *testing.T) {
	netns := func(spec string) Netns {
		switch {
		case spec == "-":
			return Netns{Host: true, Path: "/proc/1/ns/net", Spec: "-"}
		case strings.HasPrefix(spec, "/"):
			return Netns{Path: spec, Spec: spec}
		}
		return Netns{Path: "/run/netns/" + spec, Spec: spec}
	}
	user := func(line int, name, spec string) Rule {
		return Rule{File: "t.conf", Line: line, Kind: SelectUser, Name: name, Netns: netns(spec)}
	}
	group := func(line int, name, spec string) Rule {
		return Rule{File: "t.conf", Line: line, Kind: SelectGroup, Name: name, Netns: netns(spec)}
	}
	all := func(line int, spec string) Rule {
		return Rule{File: "t.conf", Line: line, Kind: SelectAll, Netns: netns(spec)}
	}
	tests := []struct {
		name     string
		in       string
		rules    []Rule
		unmapped UnmappedPolicy
		enforce  EnforcePolicy
	}{
		{name: "empty", in: ""},
		{name: "legacy line without newline", in: "test ns0", rules: []Rule{user(1, "test", "ns0")}},
		{
			name:  "comments and blank lines",
			in:    "# header\n\n   \t\nalice ns0 # lab bench\nbob\tns1#tight\n  # indented comment\n",
			rules: []Rule{user(4, "alice", "ns0"), user(5, "bob", "ns1")},
		},
		{
			name:  "every selector and netns form",
			in:    "@research lab\n*  -\ncarol /srv/netns/carol\nHOST$ -\nsvc.a-b_c ns.1-x_y\n",
			rules: []Rule{group(1, "research", "lab"), all(2, "-"), user(3, "carol", "/srv/netns/carol"), user(4, "HOST$", "-"), user(5, "svc.a-b_c", "ns.1-x_y")},
		},
		{name: "CRLF line endings", in: "alice ns0\r\nbob ns1\r\n", rules: []Rule{user(1, "alice", "ns0"), user(2, "bob", "ns1")}},
		{name: "same name as user and group", in: "staff a\n@staff b\n", rules: []Rule{user(1, "staff", "a"), group(2, "staff", "b")}},
		{name: "directive with spaces", in: "unmapped = keep\n", unmapped: UnmappedKeep},
		{name: "directive without spaces", in: "unmapped=keep # trailing comment\n", unmapped: UnmappedKeep},
		{name: "directive space before =", in: "unmapped =keep\n", unmapped: UnmappedKeep},
		{name: "directive space after =", in: "\tunmapped=\thost\n", unmapped: UnmappedHost},
		{name: "default policy is host", in: "alice ns0\n", rules: []Rule{user(1, "alice", "ns0")}, unmapped: UnmappedHost},
		{name: "enforce warn", in: "enforce = warn\n", enforce: EnforceWarn},
		{name: "enforce terminate", in: "enforce=terminate\n", enforce: EnforceTerminate},
		{name: "default enforcement terminates", in: "alice ns0\n", rules: []Rule{user(1, "alice", "ns0")}, enforce: EnforceTerminate},
		{name: "both directives", in: "enforce = warn\nunmapped = keep\n", unmapped: UnmappedKeep, enforce: EnforceWarn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("t.conf", strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			rules := cfg.Rules()
			if len(rules) == 0 {
				rules = nil
			}
			if !reflect.DeepEqual(rules, tt.rules) {
				t.Errorf("rules:\n got %+v\nwant %+v", rules, tt.rules)
			}
			if cfg.Unmapped != tt.unmapped {
				t.Errorf("unmapped = %v, want %v", cfg.Unmapped, tt.unmapped)
			}
			if cfg.Enforce != tt.enforce {
				t.Errorf("enforce = %v, want %v", cfg.Enforce, tt.enforce)
			}
			if !reflect.DeepEqual(cfg.Files, []string{"t.conf"}) {
				t.Errorf("files = %q", cfg.Files)
			}
		})
	}
}

func TestParseNetnsPaths(t *testing.T) {
	tests := []struct {
		spec string
		want Netns
	}{
		{"ns0", Netns{Path: "/run/netns/ns0", Spec: "ns0"}},
		{"/srv/ns/a", Netns{Path: "/srv/ns/a", Spec: "/srv/ns/a"}},
		{"-", Netns{Host: true, Path: "/proc/1/ns/net", Spec: "-"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			cfg, err := Parse("t.conf", strings.NewReader("alice "+tt.spec))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Rules()[0].Netns; got != tt.want {
				t.Errorf("netns = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The pam_netns config this project replaces must keep working unchanged.
func TestParseLegacyPamNetnsFile(t *testing.T) {
	f, err := os.Open("testdata/pam_netns.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := Parse("/etc/security/pam_netns.conf", f)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []Rule{{File: "/etc/security/pam_netns.conf", Line: 1, Kind: SelectUser, Name: "test", Netns: Netns{Path: "/run/netns/ns0", Spec: "ns0"}}}
	if !reflect.DeepEqual(cfg.Rules(), want) {
		t.Errorf("rules = %+v, want %+v", cfg.Rules(), want)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		// want is the whole error, one problem per line.
		want string
	}{
		{"selector only", "alice\n", `t.conf:1: missing namespace after "alice": want SELECTOR NETNS`},
		{"three fields", "alice ns0 lab\n", `t.conf:1: 3 fields, want 2: SELECTOR NETNS (comments start with #)`},
		{"duplicate user", "alice a\nbob b\nalice c\n", `t.conf:3: duplicate selector "alice" (first at t.conf:1)`},
		{"duplicate group", "@g a\n@g b\n", `t.conf:2: duplicate selector "@g" (first at t.conf:1)`},
		{"duplicate wildcard", "* a\n* -\n", `t.conf:2: duplicate selector "*" (first at t.conf:1)`},
		{"slash in user", "al/ice ns0\n", `t.conf:1: invalid user name "al/ice": '/' not allowed (use A-Z a-z 0-9 _ . - and a trailing $)`},
		{"dot-dot user", ".. ns0\n", `t.conf:1: invalid user name "..": not a name`},
		{"leading dash", "-x ns0\n", `t.conf:1: invalid user name "-x": must not start with "-"`},
		{"numeric user", "1000 ns0\n", `t.conf:1: invalid user name "1000": all digits: give the name, not the numeric ID`},
		{"dollar inside user", "a$b ns0\n", `t.conf:1: invalid user name "a$b": '$' not allowed (use A-Z a-z 0-9 _ . - and a trailing $)`},
		{"dollar alone", "$ ns0\n", `t.conf:1: invalid user name "$": '$' not allowed (use A-Z a-z 0-9 _ . - and a trailing $)`},
		{"non-ASCII user", "jos\xc3\xa9 ns0\n", `t.conf:1: invalid user name "josé": 'é' not allowed (use A-Z a-z 0-9 _ . - and a trailing $)`},
		{"too long user", strings.Repeat("a", 257) + " ns0\n", `t.conf:1: invalid user name "` + strings.Repeat("a", 257) + `": longer than 256 bytes`},
		{"invalid UTF-8 in group", "@g\xff ns0\n", `t.conf:1: invalid group name "g\xff": byte 0xff not allowed (use A-Z a-z 0-9 _ . -)`},
		{"empty group", "@ ns0\n", `t.conf:1: invalid group name "": empty name`},
		{"dollar in group", "@pcs$ ns0\n", `t.conf:1: invalid group name "pcs$": '$' not allowed (use A-Z a-z 0-9 _ . -)`},
		{"double at", "@@g ns0\n", `t.conf:1: invalid group name "@g": '@' not allowed (use A-Z a-z 0-9 _ . -)`},
		{"netns dot", "alice .\n", `t.conf:1: invalid netns ".": not a name`},
		{"netns dot-dot", "alice ..\n", `t.conf:1: invalid netns "..": not a name`},
		{"netns leading dash", "alice -ns0\n", `t.conf:1: invalid netns "-ns0": name starts with "-"`},
		{"netns relative path", "alice a/b\n", `t.conf:1: invalid netns "a/b": neither a name under /run/netns nor an absolute path`},
		{"netns bad char", "alice ns:0\n", `t.conf:1: invalid netns "ns:0": ':' not allowed in a name (use A-Z a-z 0-9 _ . -)`},
		{"netns too long", "alice " + strings.Repeat("n", 256) + "\n", `t.conf:1: invalid netns "` + strings.Repeat("n", 256) + `": name longer than 255 bytes`},
		{"unclean path", "alice /run/netns/../x\n", `t.conf:1: invalid netns "/run/netns/../x": path is not clean (write "/run/x")`},
		{"trailing slash", "alice /srv/ns/\n", `t.conf:1: invalid netns "/srv/ns/": path is not clean (write "/srv/ns")`},
		{"unknown directive", "enforcing = warn\n", `t.conf:1: unknown directive "enforcing" (known: unmapped, enforce)`},
		{"bad enforce value", "enforce = kill\n", `t.conf:1: bad value "kill" for enforce: want terminate or warn`},
		{"duplicate enforce", "enforce = warn\nenforce = terminate\n", `t.conf:2: duplicate directive enforce (first set at t.conf:1)`},
		{"bad directive value", "unmapped = drop\n", `t.conf:1: bad value "drop" for unmapped: want host or keep`},
		{"duplicate directive", "unmapped = keep\nunmapped = keep\n", `t.conf:2: duplicate directive unmapped (first set at t.conf:1)`},
		{"directive without value", "unmapped =\n", `t.conf:1: malformed directive: want NAME = VALUE`},
		{"directive with two values", "unmapped = host keep\n", `t.conf:1: malformed directive: want NAME = VALUE`},
		{"directive without name", "= host\n", `t.conf:1: malformed directive: want NAME = VALUE`},
		{"NUL byte", "alice\x00 ns0\n", `t.conf:1: control character 0x00 in column 6`},
		{"escape in comment", "alice ns0 # \x1b[31m\n", `t.conf:1: control character 0x1b in column 13`},
		{"DEL", "alice ns0\x7f\n", `t.conf:1: control character 0x7f in column 10`},
		{"lone CR", "alice\rns0\n", `t.conf:1: control character 0x0d in column 6`},
		{"very long line", "# " + strings.Repeat("x", 5000) + "\n", `t.conf:1: line too long (5002 bytes, the limit is 4096)`},
		{
			name: "every error reported, valid lines kept",
			in:   "alice ns0\nbad\n@g /x/./y\nalice ns1\nunmapped = nope\n",
			want: strings.Join([]string{
				`t.conf:2: missing namespace after "bad": want SELECTOR NETNS`,
				`t.conf:3: invalid netns "/x/./y": path is not clean (write "/x/y")`,
				`t.conf:4: duplicate selector "alice" (first at t.conf:1)`,
				`t.conf:5: bad value "nope" for unmapped: want host or keep`,
			}, "\n"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.conf", strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %q\nwant %q", err.Error(), tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) != strings.Count(tt.want, "\n")+1 {
				t.Errorf("want an ErrorList with one entry per problem, got %#v", err)
			}
		})
	}
}

func TestParseKeepsValidRulesBesideErrors(t *testing.T) {
	cfg, err := Parse("t.conf", strings.NewReader("alice ns0\nbad line here\n@g lab\n"))
	if err == nil {
		t.Fatal("Parse succeeded on a bad line")
	}
	var got []string
	for _, r := range cfg.Rules() {
		got = append(got, r.Selector()+" "+r.Netns.Spec+" "+r.Source())
	}
	want := []string{"alice ns0 t.conf:1", "@g lab t.conf:3"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
}

func TestParseRefusesHugeInput(t *testing.T) {
	_, err := Parse("big.conf", strings.NewReader(strings.Repeat("# filler\n", maxFileBytes/9+1)))
	if err == nil || err.Error() != "big.conf: larger than 64 MiB: not a config file" {
		t.Errorf("err = %v, want the size limit", err)
	}
}

// Duplicates must be found across files, also after the selector table has
// grown past the size the first file suggested.
func TestParseDuplicatesAcrossGrowingFiles(t *testing.T) {
	p := newParser()
	p.parseFile("a.conf", "alice a\n@g b\n* c\n")
	var big strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&big, "user%d ns\n@group%d ns\n", i, i)
	}
	big.WriteString("alice x\n@g y\n* z\nuser42 again\n@group4999 again\n")
	p.parseFile("b.conf", big.String())
	cfg, err := p.finish()
	want := strings.Join([]string{
		`b.conf:10001: duplicate selector "alice" (first at a.conf:1)`,
		`b.conf:10002: duplicate selector "@g" (first at a.conf:2)`,
		`b.conf:10003: duplicate selector "*" (first at a.conf:3)`,
		`b.conf:10004: duplicate selector "user42" (first at b.conf:85)`,
		`b.conf:10005: duplicate selector "@group4999" (first at b.conf:10000)`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n got %v\nwant %s", err, want)
	}
	if got := len(cfg.Rules()); got != 3+10000 {
		t.Errorf("%d rules, want %d", got, 3+10000)
	}
}
