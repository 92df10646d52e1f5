package etccheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netns-session/netns-session/internal/netns"
)

// layOut makes a tree under a new root: a path ending in "/" is a
// directory, a content starting with "-> " a symlink, anything else a file.
func layOut(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for path, content := range files {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch target, isLink := strings.CutPrefix(content, "-> "); {
		case strings.HasSuffix(path, "/"):
			err = os.MkdirAll(full, 0o755)
		case isLink:
			err = os.Symlink(target, full)
		default:
			err = os.WriteFile(full, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// A Debian host with systemd-resolved: /etc/resolv.conf leads to its stub,
// nss-resolve is in the hosts line, and /var/run is /run.
var debianWithResolved = map[string]string{
	"etc/resolv.conf":                      "-> ../run/systemd/resolve/stub-resolv.conf",
	"run/systemd/resolve/stub-resolv.conf": "# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
	"etc/nsswitch.conf":                    "passwd: files systemd\nhosts:          files resolve [!UNAVAIL=return] dns myhostname # Debian's\n",
	"var/run":                              "-> ../run",
	"etc/hosts":                            "127.0.0.1 localhost\n",
	"etc/netns/ns0/resolv.conf":            "nameserver 10.200.0.1\n",
	"etc/netns/ns0/hosts":                  "10.200.0.1 gw\n",
	"etc/netns/ns0/.resolv.conf.swp":       "",
	"usr/sbin/nscd":                        "",
}

// removed, as the content of a change, removes the path.
const removed = "\x00removed"

// with returns base with changes.
func with(base map[string]string, changes map[string]string) map[string]string {
	files := map[string]string{}
	for path, content := range base {
		files[path] = content
	}
	for path, content := range changes {
		if content == removed {
			delete(files, path)
			continue
		}
		files[path] = content
	}
	return files
}

// ns0 is the overlay netns plans for ns0 under root: its hosts bound, the
// shadows of the directories given, and its resolv.conf through the shadow
// of resolved's directory when that is among them, bound otherwise.
func ns0(root string, shadowed ...string) *netns.Overlay {
	o := &netns.Overlay{Name: "ns0", OwnResolvConf: true,
		Binds:     []netns.Mount{{Source: root + "/etc/netns/ns0/hosts", Target: root + "/etc/hosts"}},
		Overrides: []netns.Override{{Name: "hosts", Target: root + "/etc/hosts"}}}
	for _, dir := range shadowed {
		o.Shadows = append(o.Shadows, netns.Mount{Source: root + netns.ShadowRoot + "/ns0" + dir, Target: root + dir})
	}
	resolved := root + netns.ResolvedRuntimeDir
	if slices.Contains(shadowed, netns.ResolvedRuntimeDir) {
		o.Overrides = append(o.Overrides, netns.Override{Name: "resolv.conf", Target: resolved + "/stub-resolv.conf", Shadow: resolved})
	} else {
		o.Binds = append(o.Binds, netns.Mount{Source: root + "/etc/netns/ns0/resolv.conf", Target: root + "/etc/resolv.conf"})
		o.Overrides = append(o.Overrides, netns.Override{Name: "resolv.conf", Target: root + "/etc/resolv.conf"})
	}
	return o
}

func TestWarnings(t *testing.T) {
	resolved := "/run/systemd/resolve"
	tests := []struct {
		name  string
		files map[string]string
		// namespaces: the overlay of ns0 (nil: none) and further
		// namespaces without one.
		ns0    func(root string) *netns.Overlay
		others []string
		want   []string // the warnings; ROOT stands for the root
	}{
		{
			name:  "Debian with resolved: ns0 has its resolv.conf, resolved's socket is hidden",
			files: debianWithResolved,
			ns0:   func(root string) *netns.Overlay { return ns0(root, resolved) },
		},
		{
			name:   "a namespace without a resolv.conf while the host names resolved's stub",
			files:  debianWithResolved,
			others: []string{"lab"},
			want: []string{`netns lab: no resolv.conf of its own (/etc/netns/lab/resolv.conf), and the host's /etc/resolv.conf names the loopback resolver 127.0.0.53: ` +
				`in lab that is lab's own loopback, where no resolver answers unless one runs in lab, so lookups that read resolv.conf themselves (dig, host) fail there, ` +
				`while those through NSS reach the host's systemd-resolved (by nss-resolve, "resolve" in the hosts line of /etc/nsswitch.conf), which looks them up through the host's network`},
		},
		{
			name:   "a namespace given by path, without nss-resolve",
			files:  with(debianWithResolved, map[string]string{"etc/nsswitch.conf": "hosts: files dns\n"}),
			others: []string{"/srv/netns/bob"},
			want: []string{`netns /srv/netns/bob: no resolv.conf of its own (a namespace given by path has no /etc/netns directory), and the host's /etc/resolv.conf names the loopback resolver 127.0.0.53: ` +
				`in /srv/netns/bob that is /srv/netns/bob's own loopback, where no resolver answers unless one runs in /srv/netns/bob, so its DNS lookups fail`},
		},
		{
			name: "nscd's hosts cache answers a namespace without a resolv.conf",
			files: with(debianWithResolved, map[string]string{"etc/nsswitch.conf": "hosts: files dns\n",
				"etc/nscd.conf": "\tenable-cache\t\thosts\t\tyes\n", "run/nscd/socket": ""}),
			others: []string{"lab"},
			want: []string{`netns lab: no resolv.conf of its own (/etc/netns/lab/resolv.conf), and the host's /etc/resolv.conf names the loopback resolver 127.0.0.53: ` +
				`in lab that is lab's own loopback, where no resolver answers unless one runs in lab, so lookups that read resolv.conf themselves (dig, host) fail there, ` +
				`while those through NSS reach the host's nscd (its hosts cache), which looks them up through the host's network`},
		},
		{
			name:   "the host names a resolver another namespace can reach",
			files:  with(debianWithResolved, map[string]string{"etc/resolv.conf": "nameserver 192.0.2.53\n"}),
			others: []string{"lab"},
		},
		{
			name:   "a loopback resolver among others",
			files:  with(debianWithResolved, map[string]string{"etc/resolv.conf": "nameserver 127.0.0.53\nnameserver 2001:db8::53\n"}),
			others: []string{"lab"},
		},
		{
			name:   "only loopback resolvers among the three glibc reads",
			files:  with(debianWithResolved, map[string]string{"etc/resolv.conf": "nameserver 127.0.0.1\nnameserver ::1\nnameserver ::ffff:127.0.0.2\nnameserver 192.0.2.53\n"}),
			others: []string{"lab"},
			want:   []string{"netns lab: no resolv.conf of its own (/etc/netns/lab/resolv.conf), and the host's /etc/resolv.conf names only the loopback resolvers 127.0.0.1, ::1, ::ffff:127.0.0.2: in lab"},
		},
		{
			name:   "no nameserver line",
			files:  with(debianWithResolved, map[string]string{"etc/resolv.conf": "search example.org\n"}),
			others: []string{"lab"},
			want:   []string{"netns lab: no resolv.conf of its own (/etc/netns/lab/resolv.conf), and the host's /etc/resolv.conf names no nameserver, so glibc asks 127.0.0.1: in lab"},
		},
		{
			name:   "no resolv.conf",
			files:  with(debianWithResolved, map[string]string{"etc/resolv.conf": removed}),
			others: []string{"lab"},
			want:   []string{"netns lab: no resolv.conf of its own (/etc/netns/lab/resolv.conf), and the host has no /etc/resolv.conf, so glibc asks 127.0.0.1: in lab"},
		},
		{
			name:  "resolved not running with nss-resolve configured",
			files: with(debianWithResolved, map[string]string{"etc/resolv.conf": "nameserver 192.0.2.53\n", "run/systemd/resolve/stub-resolv.conf": removed}),
			ns0:   func(root string) *netns.Overlay { return ns0(root) },
			want: []string{`netns ns0: systemd-resolved does not run (no /run/systemd/resolve), so a login into ns0 cannot hide it: once it starts, nss-resolve ("resolve" in the hosts line of /etc/nsswitch.conf) ` +
				`hands it the lookups of the sessions opened in ns0 before, and it looks them up through the host's network`},
		},
		{
			name:  "nss-resolve without dns after it",
			files: with(debianWithResolved, map[string]string{"etc/nsswitch.conf": "hosts: files resolve myhostname\n"}),
			ns0:   func(root string) *netns.Overlay { return ns0(root, resolved) },
			want: []string{`netns ns0: the hosts line of /etc/nsswitch.conf has "resolve" but not "dns": in ns0, where the host's systemd-resolved is hidden, ` +
				`no source reads ns0's resolv.conf, so only programs that read it themselves (dig, host) resolve names there`},
		},
		{
			name:  "nscd running, its directory hidden",
			files: with(debianWithResolved, map[string]string{"etc/nscd.conf": "enable-cache hosts yes\n", "run/nscd/socket": ""}),
			ns0:   func(root string) *netns.Overlay { return ns0(root, "/run/nscd", resolved) },
		},
		{
			name: "nscd's socket outside /run",
			files: with(debianWithResolved, map[string]string{"etc/nscd.conf": "enable-cache hosts yes\n", "var/run": removed, "var/run/nscd/socket": "",
				"run/nscd/": ""}),
			ns0: func(root string) *netns.Overlay { return ns0(root, "/run/nscd", resolved) },
			want: []string{"netns ns0: nscd's socket is in /var/run/nscd, which a login into ns0 does not hide (only /run/nscd is hidden): " +
				"its sessions ask the host's nscd, whose hosts cache looks names up through the host's network"},
		},
		{
			name:  "nscd started after the overlay was planned",
			files: with(debianWithResolved, map[string]string{"etc/nscd.conf": "enable-cache hosts yes\n", "run/nscd/socket": ""}),
			ns0:   func(root string) *netns.Overlay { return ns0(root, resolved) },
			want:  []string{"netns ns0: /run/nscd is not hidden from its sessions, so they ask the host's nscd, whose hosts cache looks names up through the host's network"},
		},
		{
			name:  "nscd installed, not running",
			files: with(debianWithResolved, map[string]string{"etc/nscd.conf": "enable-cache hosts no\nenable-cache hosts yes\n"}),
			ns0:   func(root string) *netns.Overlay { return ns0(root, resolved) },
			want: []string{`netns ns0: nscd does not run (no /run/nscd), so a login into ns0 cannot hide it: once it starts, the sessions opened in ns0 before ask it, ` +
				`and its hosts cache looks names up through the host's network ("enable-cache hosts no" in /etc/nscd.conf avoids it)`},
		},
		{
			name:  "nscd without a hosts cache",
			files: with(debianWithResolved, map[string]string{"etc/nscd.conf": "enable-cache passwd yes\nenable-cache hosts no # DNS stays out\n", "run/nscd/socket": ""}),
			ns0:   func(root string) *netns.Overlay { return ns0(root, resolved) },
		},
		{
			name:  "mDNS, LDAP and WINS in the hosts line",
			files: with(debianWithResolved, map[string]string{"etc/nsswitch.conf": "hosts: files mdns4_minimal [NOTFOUND=return] ldap [ NOTFOUND = return ] wins dns\n"}),
			ns0:   func(root string) *netns.Overlay { return ns0(root, resolved) },
			want: []string{
				`netns ns0: "mdns4_minimal" in the hosts line of /etc/nsswitch.conf asks the host's avahi-daemon, which resolves names under .local by multicast on the host's networks, not the namespace's`,
				`netns ns0: "ldap" in the hosts line of /etc/nsswitch.conf asks the host's nslcd, which looks names up in LDAP through the host's network`,
				`netns ns0: "wins" in the hosts line of /etc/nsswitch.conf asks the host's winbindd, which looks names up through the host's network`,
			},
		},
		{
			name:  "entries without a counterpart",
			files: debianWithResolved,
			ns0: func(root string) *netns.Overlay {
				o := ns0(root, resolved)
				o.Skipped = []string{"gai.conf"}
				return o
			},
			want: []string{"netns ns0: /etc/netns/ns0/gai.conf has no counterpart /etc/gai.conf, so sessions in ns0 do not see it (ip netns exec cannot bind it either)"},
		},
		{
			name:  "a resolv.conf without a counterpart: that warning alone",
			files: with(debianWithResolved, map[string]string{"etc/resolv.conf": removed}),
			ns0: func(root string) *netns.Overlay {
				o := ns0(root, resolved)
				o.Skipped = []string{"resolv.conf"}
				return o
			},
			want: []string{"netns ns0: /etc/netns/ns0/resolv.conf has no counterpart /etc/resolv.conf, so sessions in ns0 do not see it (ip netns exec cannot bind it either)"},
		},
		{
			name:   "unreadable host files",
			files:  with(debianWithResolved, map[string]string{"etc/nsswitch.conf": removed, "etc/nsswitch.conf/": "", "etc/resolv.conf": removed, "etc/resolv.conf/": ""}),
			others: []string{"lab"},
			want: []string{
				"reading /etc/nsswitch.conf: read ROOT/etc/nsswitch.conf: is a directory: the warnings about DNS leaks below leave it out",
				"reading /etc/resolv.conf: read ROOT/etc/resolv.conf: is a directory: whether namespaces without one of their own can resolve names is not checked",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := layOut(t, tt.files)
			var namespaces []Namespace
			if tt.ns0 != nil {
				namespaces = append(namespaces, Namespace{Spec: "ns0", Overlay: tt.ns0(root)})
			}
			for _, spec := range tt.others {
				namespaces = append(namespaces, Namespace{Spec: spec})
			}
			got := Host{Root: root}.Warnings(namespaces)
			if len(got) != len(tt.want) {
				t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for i, want := range tt.want {
				// A want may be the start of a long warning.
				if want = strings.ReplaceAll(want, "ROOT", root); !strings.HasPrefix(got[i], want) {
					t.Errorf("warning %d:\n%s\nwant:\n%s", i, got[i], want)
				}
			}
		})
	}
}

// TestOverrides lists what the overlay says it shows, and where.
func TestOverrides(t *testing.T) {
	const root = "/srv/root"
	tests := []struct {
		name    string
		overlay *netns.Overlay
		want    string
	}{
		{
			name:    "Debian with resolved and nscd",
			overlay: ns0(root, "/run/nscd", "/run/systemd/resolve"),
			want:    "/etc/hosts, /etc/resolv.conf (via /run/systemd/resolve); hides /run/nscd",
		},
		{
			name: "a resolv.conf of the host's own, and a hosts file elsewhere",
			overlay: &netns.Overlay{Name: "ns0", OwnResolvConf: true,
				Binds: []netns.Mount{
					{Source: root + "/etc/netns/ns0/hosts", Target: root + "/usr/share/hosts"},
					{Source: root + "/etc/netns/ns0/resolv.conf", Target: root + "/etc/resolv.conf"},
				},
				Shadows:   []netns.Mount{{Source: root + netns.ShadowRoot + "/ns0/run/systemd/resolve", Target: root + "/run/systemd/resolve"}},
				Overrides: []netns.Override{{Name: "hosts", Target: root + "/usr/share/hosts"}, {Name: "resolv.conf", Target: root + "/etc/resolv.conf"}},
			},
			want: "/etc/hosts (at /usr/share/hosts), /etc/resolv.conf; hides /run/systemd/resolve",
		},
		{
			name: "files through one shadow, one of them in a directory inside it",
			overlay: &netns.Overlay{Name: "ns0",
				Shadows: []netns.Mount{{Source: root + netns.ShadowRoot + "/ns0/run/x", Target: root + "/run/x"}},
				Overrides: []netns.Override{
					{Name: "a", Target: root + "/run/x/a", Shadow: root + "/run/x"},
					{Name: "b", Target: root + "/run/x/y/b", Shadow: root + "/run/x"},
				},
			},
			want: "/etc/a (via /run/x), /etc/b (via /run/x)",
		},
		{
			name:    "an empty directory",
			overlay: &netns.Overlay{Name: "ns0"},
			want:    "nothing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Host{Root: root}).Overrides(tt.overlay); got != tt.want {
				t.Errorf("Overrides = %q; want %q", got, tt.want)
			}
		})
	}
}
