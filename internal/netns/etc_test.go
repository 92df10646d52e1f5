package netns

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// tree describes files to create under a test root, by path relative to
// it: "dir", "file:CONTENT" or "link:DEST", where $R in DEST stands for
// the root (absolute links must stay inside it).
type tree map[string]string

// testRoot returns a fresh root, its symlinks resolved as the planner
// resolves every path, holding t's files.
func testRoot(t testing.TB, files tree) string {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addFiles(t, root, files)
	return root
}

func addFiles(t testing.TB, root string, files tree) {
	t.Helper()
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		kind, arg, _ := strings.Cut(files[rel], ":")
		var err error
		switch kind {
		case "dir":
			err = os.MkdirAll(path, 0o755)
		case "file":
			err = os.WriteFile(path, []byte(arg), 0o644)
		case "link":
			err = os.Symlink(strings.ReplaceAll(arg, "$R", root), path)
		default:
			t.Fatalf("bad tree entry %s: %q", rel, files[rel])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// shadowLinks flattens o's shadow trees: path under ShadowRoot/Name (as
// the mount's target) to the link's destination, "" for a directory.
func shadowLinks(o *Overlay, root string) map[string]string {
	links := map[string]string{}
	var walk func(path string, node *shadowNode)
	walk = func(path string, node *shadowNode) {
		links[path] = strings.ReplaceAll(node.link, root, "$R")
		for name, child := range node.children {
			walk(path+"/"+name, child)
		}
	}
	for i, m := range o.Shadows {
		walk(strings.TrimPrefix(m.Target, root), o.trees[i])
	}
	return links
}

// resolvedSetup is a host whose /etc/resolv.conf leads to resolved's stub.
var resolvedSetup = tree{
	"etc/resolv.conf":                        "link:../run/systemd/resolve/stub-resolv.conf",
	"run/systemd/resolve/stub-resolv.conf":   "file:nameserver 127.0.0.53",
	"run/systemd/resolve/resolv.conf":        "file:nameserver 192.0.2.1",
	"run/systemd/resolve/io.systemd.Resolve": "file:",
}

func with(base tree, more tree) tree {
	t := maps.Clone(base)
	maps.Copy(t, more)
	return t
}

func TestLoadOverlay(t *testing.T) {
	const ns = "etc/netns/ns0/"
	shadow := ShadowRoot + "/ns0"
	tests := []struct {
		name    string
		files   tree
		nsName  string // "ns0" unless set
		wantNil bool
		wantErr error // matched with errors.Is; fs.ErrNotExist and others
		// With $R for the root:
		binds, shadows []Mount
		skipped        []string
		ownResolvConf  bool
		links          map[string]string
	}{
		{name: "no directory, no overlay", files: tree{"etc/hosts": "file:"}, wantNil: true},
		{name: "no /etc/netns at all", files: tree{}, wantNil: true},
		{
			name: "a path is no plain name", nsName: "../x",
			files:   tree{"etc/x/hosts": "file:", "etc/hosts": "file:", "etc/netns": "dir"},
			wantNil: true,
		},
		{name: "dangling directory symlink", files: tree{"etc/netns/ns0": "link:nowhere"}, wantErr: fs.ErrNotExist},
		{name: "directory is a file", files: tree{"etc/netns/ns0": "file:"}, wantErr: errors.New("any")},
		{name: "directory is a symlink to a file", files: tree{"etc/netns/ns0": "link:../hosts", "etc/hosts": "file:"}, wantErr: errors.New("any")},
		{name: "/etc/netns is a file", files: tree{"etc/netns": "file:"}, wantErr: errors.New("any")},
		{name: "/etc/netns is a dangling symlink: no overlay", files: tree{"etc/netns": "link:nowhere"}, wantNil: true},
		{
			name:  "directory symlink is followed",
			files: tree{"etc/netns/ns0": "link:../../srv/ns0", "srv/ns0/hosts": "file:ns0", "etc/hosts": "file:host"},
			binds: []Mount{{"$R/" + ns + "hosts", "$R/etc/hosts"}},
		},
		{
			name:  "regular file",
			files: tree{"etc/hosts": "file:host", ns + "hosts": "file:ns0"},
			binds: []Mount{{"$R/" + ns + "hosts", "$R/etc/hosts"}},
		},
		{
			name:  "file symlinked elsewhere in /etc is bound at the link's end",
			files: tree{"etc/hosts": "link:alt/hosts", "etc/alt/hosts": "file:host", ns + "hosts": "file:ns0"},
			binds: []Mount{{"$R/" + ns + "hosts", "$R/etc/alt/hosts"}},
		},
		{
			name:  "entry that is a symlink is bound as given",
			files: tree{"etc/hosts": "file:host", ns + "hosts": "link:../../../srv/hosts", "srv/hosts": "file:ns0"},
			binds: []Mount{{"$R/" + ns + "hosts", "$R/etc/hosts"}},
		},
		{
			name:          "resolved's stub shadows its directory",
			files:         with(resolvedSetup, tree{ns + "resolv.conf": "file:nameserver 10.0.0.1"}),
			shadows:       []Mount{{"$R" + shadow + "/run/systemd/resolve", "$R/run/systemd/resolve"}},
			ownResolvConf: true,
			links: map[string]string{
				"/run/systemd/resolve":                  "",
				"/run/systemd/resolve/stub-resolv.conf": "$R/" + ns + "resolv.conf",
				"/run/systemd/resolve/resolv.conf":      "$R/" + ns + "resolv.conf",
			},
		},
		{
			name: "NetworkManager's file shadows its directory",
			files: tree{
				"etc/resolv.conf":                        "link:$R/run/NetworkManager/resolv.conf",
				"run/NetworkManager/resolv.conf":         "file:",
				"run/NetworkManager/no-stub-resolv.conf": "file:",
				ns + "resolv.conf":                       "file:",
			},
			shadows:       []Mount{{"$R" + shadow + "/run/NetworkManager", "$R/run/NetworkManager"}},
			ownResolvConf: true,
			links: map[string]string{
				"/run/NetworkManager":             "",
				"/run/NetworkManager/resolv.conf": "$R/" + ns + "resolv.conf",
			},
		},
		{
			name: "symlink chain through /etc into /run",
			files: tree{
				"etc/resolv.conf":            "link:resolv.conf.d/current",
				"etc/resolv.conf.d/current":  "link:../../run/resolvconf/resolv.conf",
				"run/resolvconf/resolv.conf": "file:",
				ns + "resolv.conf":           "file:",
			},
			shadows:       []Mount{{"$R" + shadow + "/run/resolvconf", "$R/run/resolvconf"}},
			ownResolvConf: true,
			links: map[string]string{
				"/run/resolvconf":             "",
				"/run/resolvconf/resolv.conf": "$R/" + ns + "resolv.conf",
			},
		},
		{
			name: "NetworkManager's file with resolved and nscd present",
			files: with(resolvedSetup, tree{
				"etc/resolv.conf":                "link:../run/NetworkManager/resolv.conf",
				"run/NetworkManager/resolv.conf": "file:",
				"run/nscd/socket":                "file:",
				ns + "resolv.conf":               "file:",
			}),
			shadows: []Mount{
				{"$R" + shadow + "/run/NetworkManager", "$R/run/NetworkManager"},
				{"$R" + shadow + "/run/nscd", "$R/run/nscd"},
				{"$R" + shadow + "/run/systemd/resolve", "$R/run/systemd/resolve"},
			},
			ownResolvConf: true,
			links: map[string]string{
				"/run/NetworkManager":                   "",
				"/run/NetworkManager/resolv.conf":       "$R/" + ns + "resolv.conf",
				"/run/nscd":                             "",
				"/run/systemd/resolve":                  "",
				"/run/systemd/resolve/stub-resolv.conf": "$R/" + ns + "resolv.conf",
				"/run/systemd/resolve/resolv.conf":      "$R/" + ns + "resolv.conf",
			},
		},
		{
			name:  "resolvers stay visible without an own resolv.conf",
			files: with(resolvedSetup, tree{"run/nscd/socket": "file:", "etc/hosts": "file:", ns + "hosts": "file:"}),
			binds: []Mount{{"$R/" + ns + "hosts", "$R/etc/hosts"}},
		},
		{
			name: "resolv.conf without a counterpart still hides the resolvers",
			files: tree{
				"run/systemd/resolve/io.systemd.Resolve": "file:",
				"run/nscd/socket":                        "file:",
				ns + "resolv.conf":                       "file:",
			},
			skipped:       []string{"resolv.conf"},
			ownResolvConf: true,
			shadows: []Mount{
				{"$R" + shadow + "/run/nscd", "$R/run/nscd"},
				{"$R" + shadow + "/run/systemd/resolve", "$R/run/systemd/resolve"},
			},
			links: map[string]string{
				"/run/nscd":                             "",
				"/run/systemd/resolve":                  "",
				"/run/systemd/resolve/stub-resolv.conf": "$R/" + ns + "resolv.conf",
				"/run/systemd/resolve/resolv.conf":      "$R/" + ns + "resolv.conf",
			},
		},
		{
			name:  "directory entry",
			files: tree{"etc/ssl/certs/a.pem": "file:", ns + "ssl/certs/b.pem": "file:"},
			binds: []Mount{{"$R/" + ns + "ssl", "$R/etc/ssl"}},
		},
		{
			name: "dot-files are skipped",
			files: tree{
				"etc/hosts": "file:", "etc/.hosts.swp": "file:", "etc/.git": "dir",
				ns + "hosts": "file:", ns + ".hosts.swp": "file:", ns + ".git": "dir", ns + ".resolv.conf": "file:",
			},
			binds: []Mount{{"$R/" + ns + "hosts", "$R/etc/hosts"}},
		},
		{
			name:    "missing counterpart is skipped",
			files:   tree{"etc/hosts": "file:", ns + "hosts": "file:", ns + "gai.conf": "file:", ns + "apt.conf.d": "dir"},
			binds:   []Mount{{"$R/" + ns + "hosts", "$R/etc/hosts"}},
			skipped: []string{"apt.conf.d", "gai.conf"},
		},
		{
			name:    "dangling counterpart denies",
			files:   tree{"etc/resolv.conf": "link:../run/systemd/resolve/stub-resolv.conf", ns + "resolv.conf": "file:"},
			wantErr: fs.ErrNotExist,
		},
		{
			name:    "dangling entry denies",
			files:   tree{"etc/hosts": "file:", ns + "hosts": "link:nowhere"},
			wantErr: fs.ErrNotExist,
		},
		{
			name:    "directory over a file denies",
			files:   tree{"etc/hosts": "file:", ns + "hosts/x": "file:"},
			wantErr: ErrTypeMismatch,
		},
		{
			name:    "file over a directory in /run denies",
			files:   tree{"etc/foo": "link:../run/foo/bar", "run/foo/bar/x": "file:", ns + "foo": "file:"},
			wantErr: ErrTypeMismatch,
		},
		{
			name:    "resolved's directory that is a file denies",
			files:   tree{"run/systemd/resolve": "file:", ns + "resolv.conf": "file:"},
			wantErr: ErrTypeMismatch,
		},
		{
			name:  "counterpart directly in /run is bound, not /run shadowed",
			files: tree{"etc/foo.conf": "link:../run/foo.conf", "run/foo.conf": "file:", ns + "foo.conf": "file:"},
			binds: []Mount{{"$R/" + ns + "foo.conf", "$R/run/foo.conf"}},
		},
		{
			name: "a shadow inside another is part of its tree",
			files: tree{
				"etc/a":       "link:../run/x/a",
				"etc/b":       "link:../run/x/y/z/b",
				"run/x/a":     "file:",
				"run/x/y/z/b": "file:",
				ns + "a":      "file:",
				ns + "b":      "file:",
			},
			shadows: []Mount{{"$R" + shadow + "/run/x", "$R/run/x"}},
			links: map[string]string{
				"/run/x":       "",
				"/run/x/a":     "$R/" + ns + "a",
				"/run/x/y":     "",
				"/run/x/y/z":   "",
				"/run/x/y/z/b": "$R/" + ns + "b",
			},
		},
		{
			name:    "two entries on one file deny",
			files:   tree{"etc/hosts": "file:", "etc/hosts2": "link:hosts", ns + "hosts": "file:", ns + "hosts2": "file:"},
			wantErr: ErrOverlap,
		},
		{
			name:    "a file bound inside a bound directory denies",
			files:   tree{"etc/ssl/x.pem": "file:", "etc/x.pem": "link:ssl/x.pem", ns + "ssl": "dir", ns + "x.pem": "file:"},
			wantErr: ErrOverlap,
		},
		{
			name: "a symlink of one shadow is the directory of another",
			files: tree{
				"etc/a": "link:../run/x/d", "run/x/d/f": "file:", ns + "a": "dir",
				"etc/b": "link:../run/x/d/f", ns + "b": "file:",
			},
			wantErr: ErrOverlap,
		},
		{
			name:    "one symlink to two entries denies",
			files:   with(resolvedSetup, tree{"etc/foo": "link:../run/systemd/resolve/resolv.conf", ns + "foo": "file:", ns + "resolv.conf": "file:"}),
			wantErr: ErrOverlap,
		},
		{
			name:    "a counterpart in systemd's runtime directory denies",
			files:   tree{"etc/foo": "link:../run/systemd/foo", "run/systemd/foo": "file:", ns + "foo": "file:"},
			wantErr: ErrSessionRunDir,
		},
		{
			name:    "a counterpart among journald's sockets denies",
			files:   tree{"etc/foo": "link:../run/systemd/journal/foo", "run/systemd/journal/foo": "file:", ns + "foo": "file:"},
			wantErr: ErrSessionRunDir,
		},
		{
			name:    "a counterpart in a user's runtime directory denies",
			files:   tree{"etc/foo": "link:../run/user/0/foo", "run/user/0/foo": "file:", ns + "foo": "file:"},
			wantErr: ErrSessionRunDir,
		},
		{
			name:    "a counterpart beside the system bus's socket denies",
			files:   tree{"etc/foo": "link:../run/dbus/foo", "run/dbus/foo": "file:", ns + "foo": "file:"},
			wantErr: ErrSessionRunDir,
		},
		{
			name:    "resolved's directory that leads to systemd's denies",
			files:   tree{"run/systemd/resolve": "link:.", "run/systemd/private": "file:", ns + "resolv.conf": "file:"},
			wantErr: ErrSessionRunDir,
		},
		{
			name:    "nscd's directory that leads to nslcd's denies",
			files:   tree{"run/nscd": "link:nslcd", "run/nslcd/socket": "file:", ns + "resolv.conf": "file:"},
			wantErr: ErrSessionRunDir,
		},
		{
			name:    "a counterpart in netns-session's state directory denies",
			files:   tree{"etc/foo": "link:../run/netns-session/foo", "run/netns-session/foo": "file:", ns + "foo": "file:"},
			wantErr: ErrSessionRunDir,
		},
		{
			name: "a counterpart below resolved's directory shadows it",
			files: with(resolvedSetup, tree{
				"etc/foo": "link:../run/systemd/resolve/sub/foo", "run/systemd/resolve/sub/foo": "file:", ns + "foo": "file:",
			}),
			shadows: []Mount{{"$R" + shadow + "/run/systemd/resolve/sub", "$R/run/systemd/resolve/sub"}},
			links:   map[string]string{"/run/systemd/resolve/sub": "", "/run/systemd/resolve/sub/foo": "$R/" + ns + "foo"},
		},
		{
			name:    "a counterpart in a directory named like systemd's shadows it",
			files:   tree{"etc/foo": "link:../run/systemd-x/foo", "run/systemd-x/foo": "file:", ns + "foo": "file:"},
			shadows: []Mount{{"$R" + shadow + "/run/systemd-x", "$R/run/systemd-x"}},
			links:   map[string]string{"/run/systemd-x": "", "/run/systemd-x/foo": "$R/" + ns + "foo"},
		},
		{
			name:    "counterpart in the shadows denies",
			files:   tree{"etc/foo": "link:../run/netns-session/shadow/ns0/foo", "run/netns-session/shadow/ns0/foo": "file:", ns + "foo": "file:"},
			wantErr: ErrOverlap,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := testRoot(t, tt.files)
			name := tt.nsName
			if name == "" {
				name = "ns0"
			}
			o, err := layout{root}.loadOverlay(name)
			switch {
			case tt.wantErr != nil && err == nil:
				t.Fatalf("loadOverlay() = %+v, want an error", o)
			case tt.wantErr != nil:
				if tt.wantErr.Error() != "any" && !errors.Is(err, tt.wantErr) {
					t.Fatalf("loadOverlay() = %v, want %v", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			case tt.wantNil:
				if o != nil {
					t.Fatalf("loadOverlay() = %+v, want none", o)
				}
				return
			case o == nil:
				t.Fatal("loadOverlay() = nil, want an overlay")
			}
			unroot := func(ms []Mount) []Mount {
				var out []Mount
				for _, m := range ms {
					out = append(out, Mount{strings.ReplaceAll(m.Source, root, "$R"), strings.ReplaceAll(m.Target, root, "$R")})
				}
				return out
			}
			if got := unroot(o.Binds); !reflect.DeepEqual(got, tt.binds) {
				t.Errorf("Binds = %v, want %v", got, tt.binds)
			}
			if got := unroot(o.Shadows); !reflect.DeepEqual(got, tt.shadows) {
				t.Errorf("Shadows = %v, want %v", got, tt.shadows)
			}
			if !slices.Equal(o.Skipped, tt.skipped) {
				t.Errorf("Skipped = %q, want %q", o.Skipped, tt.skipped)
			}
			if o.OwnResolvConf != tt.ownResolvConf {
				t.Errorf("OwnResolvConf = %v, want %v", o.OwnResolvConf, tt.ownResolvConf)
			}
			want := tt.links
			if want == nil {
				want = map[string]string{}
			}
			if got := shadowLinks(o, root); !maps.Equal(got, want) {
				t.Errorf("shadow trees = %v, want %v", got, want)
			}
			again, err := layout{root}.loadOverlay(name)
			if err != nil || !reflect.DeepEqual(again, o) {
				t.Errorf("a second load gave %+v, %v; want the same plan", again, err)
			}
		})
	}
}

// TestLoadOverlayOverrides: an overlay says, of each entry sessions see,
// where they see it and which shadow, if any, shows it.
func TestLoadOverlayOverrides(t *testing.T) {
	const ns = "etc/netns/ns0/"
	tests := []struct {
		name  string
		files tree
		want  []Override // with $R for the root
	}{
		{
			name:  "a bound file",
			files: tree{"etc/hosts": "file:", ns + "hosts": "file:"},
			want:  []Override{{"hosts", "$R/etc/hosts", ""}},
		},
		{
			name:  "a file bound at its counterpart's end",
			files: tree{"etc/hosts": "link:alt/hosts", "etc/alt/hosts": "file:", ns + "hosts": "file:"},
			want:  []Override{{"hosts", "$R/etc/alt/hosts", ""}},
		},
		{
			name:  "resolv.conf through resolved's shadow",
			files: with(resolvedSetup, tree{ns + "resolv.conf": "file:"}),
			want:  []Override{{"resolv.conf", "$R/run/systemd/resolve/stub-resolv.conf", "$R/run/systemd/resolve"}},
		},
		{
			name: "through the shadow that holds its directory",
			files: tree{
				"etc/a": "link:../run/x/a", "run/x/a": "file:", ns + "a": "file:",
				"etc/b": "link:../run/x/y/z/b", "run/x/y/z/b": "file:", ns + "b": "file:",
			},
			want: []Override{{"a", "$R/run/x/a", "$R/run/x"}, {"b", "$R/run/x/y/z/b", "$R/run/x"}},
		},
		{
			name:  "a bound resolv.conf shows through none of the resolvers' shadows",
			files: with(resolvedSetup, tree{"etc/resolv.conf": "file:", "run/nscd/socket": "file:", ns + "resolv.conf": "file:"}),
			want:  []Override{{"resolv.conf", "$R/etc/resolv.conf", ""}},
		},
		{
			name:  "skipped entries and dot-files are none",
			files: tree{"etc/hosts": "file:", "etc/.x": "file:", ns + "hosts": "file:", ns + "gai.conf": "file:", ns + ".x": "file:"},
			want:  []Override{{"hosts", "$R/etc/hosts", ""}},
		},
		{name: "an empty directory", files: tree{ns: "dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := testRoot(t, tt.files)
			var got []Override
			for _, o := range loadTestOverlay(t, root).Overrides {
				got = append(got, Override{o.Name, strings.ReplaceAll(o.Target, root, "$R"), strings.ReplaceAll(o.Shadow, root, "$R")})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Overrides = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRefuseSessionRunDir: a shadow may cover a directory under /run
// unless it is, contains or lies in one that sessions need, resolved's
// excepted.
func TestRefuseSessionRunDir(t *testing.T) {
	tests := []struct {
		dir     string
		refused bool
	}{
		{"/run", true},
		{"/run/systemd", true},
		{"/run/systemd/journal", true},
		{"/run/systemd/journal/sub", true},
		{"/run/systemd/userdb", true},
		{"/run/systemd/sessions", true},
		{"/run/user", true},
		{"/run/user/1000", true},
		{"/run/dbus", true},
		{"/run/nslcd", true},
		{"/run/netns", true},
		{"/run/netns-session", true},
		{ResolvedRuntimeDir, false},
		{ResolvedRuntimeDir + "/sub", false},
		{NscdRuntimeDir, false},
		{"/run/NetworkManager", false},
		{"/run/resolvconf", false},
		{"/run/systemd-x", false},
		{"/run/users", false},
		{"/run/dbus2/sub", false},
	}
	for _, root := range []string{"", "/tmp/root"} {
		for _, tt := range tests {
			t.Run(root+tt.dir, func(t *testing.T) {
				err := layout{root}.refuseSessionRunDir(root + tt.dir)
				if refused := errors.Is(err, ErrSessionRunDir); refused != tt.refused || !refused && err != nil {
					t.Errorf("refuseSessionRunDir(%s) = %v, want refused %v", root+tt.dir, err, tt.refused)
				}
			})
		}
	}
}

func TestEtcDir(t *testing.T) {
	if got := EtcDir("ns0"); got != "/etc/netns/ns0" {
		t.Errorf("EtcDir(ns0) = %q", got)
	}
}

func TestLoadOverlayOfPathNamedNamespace(t *testing.T) {
	for _, name := range []string{"/run/netns/ns0", "/proc/1/ns/net", "", ".."} {
		if o, err := LoadOverlay(name); o != nil || err != nil {
			t.Errorf("LoadOverlay(%q) = %+v, %v; want nil, nil", name, o, err)
		}
	}
}
