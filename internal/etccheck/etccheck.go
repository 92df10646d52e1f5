// Package etccheck owns what `netns-session check` says of the namespaces'
// /etc directories: which files of /etc the sessions of a namespace see
// replaced (Host.Overrides), and where their name lookups go wrong
// (Host.Warnings): a loopback resolver named by the host's resolv.conf,
// which in a namespace of its own is the namespace's loopback, and, in a
// namespace with a resolv.conf of its own, the host's resolvers that its
// sessions still reach: systemd-resolved and nscd when their sockets are
// not hidden, and the daemons other sources of the hosts line ask. It reads
// the host's files; the overlays are netns's, the config config's.
package etccheck

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/netns-session/netns-session/internal/netns"
)

// The host's files that name resolution reads.
const (
	resolvConf   = "/etc/resolv.conf"
	nsswitchConf = "/etc/nsswitch.conf"
	nscdConf     = "/etc/nscd.conf"
	nscdBinary   = "/usr/sbin/nscd" // nscd's and unscd's
	// nscdSocketDir holds the socket glibc's nscd clients connect to
	// (_PATH_NSCDSOCKET, /var/run/nscd/socket). A login hides
	// netns.NscdRuntimeDir, which is this directory where /var/run leads
	// to /run.
	nscdSocketDir = "/var/run/nscd"
	// maxNameservers is glibc's MAXNS: it reads no more nameserver lines.
	maxNameservers = 3
)

// glibcDefaultNameserver is what glibc asks when resolv.conf names none.
var glibcDefaultNameserver = netip.MustParseAddr("127.0.0.1")

// Host is the system whose files are read: Root "" for this one, a
// directory laid out like / in tests (whose symlinks must be relative: an
// absolute one leads out of it).
type Host struct {
	Root string
}

// Namespace is a namespace the config maps users to, whose overlay could
// be planned.
type Namespace struct {
	// Spec is the namespace as the config writes it: NAME or /PATH.
	Spec string
	// Overlay is its /etc overlay (netns.LoadOverlay), nil when it has
	// none: no /etc/netns/NAME, or a namespace given by path.
	Overlay *netns.Overlay
}

// ownResolvConf reports whether the namespace's sessions see a resolv.conf
// of its own.
func (n Namespace) ownResolvConf() bool {
	return n.Overlay != nil && n.Overlay.OwnResolvConf && !slices.Contains(n.Overlay.Skipped, "resolv.conf")
}

// Overrides says which files of /etc the sessions of o's namespace see
// replaced, as "/etc/F" (with "at TARGET" when /etc/F leads elsewhere, "via
// DIR" when a shadow of a directory under /run shows it), then the shadowed
// directories that show none of them: "; hides DIR, ...". It reads no
// file: the overlay says where it shows each entry (netns.Override).
func (h Host) Overrides(o *netns.Overlay) string {
	var files []string
	shows := map[string]bool{} // the shadows that show an entry
	for _, e := range o.Overrides {
		counterpart := "/etc/" + e.Name
		switch target := h.shown(e.Target); {
		case e.Shadow != "":
			files = append(files, counterpart+" (via "+h.shown(e.Shadow)+")")
			shows[e.Shadow] = true
		case target != counterpart:
			files = append(files, counterpart+" (at "+target+")")
		default:
			files = append(files, counterpart)
		}
	}
	text := strings.Join(files, ", ")
	if text == "" {
		text = "nothing"
	}
	var hidden []string
	for _, s := range o.Shadows {
		if !shows[s.Target] {
			hidden = append(hidden, h.shown(s.Target))
		}
	}
	if len(hidden) > 0 {
		text += "; hides " + strings.Join(hidden, ", ")
	}
	return text
}

// shown is path as the system has it, outside Root.
func (h Host) shown(path string) string { return strings.TrimPrefix(path, h.Root) }

// exists reports whether path exists under Root, following symlinks.
func (h Host) exists(path string) bool {
	_, err := os.Stat(h.Root + path)
	return err == nil
}

// Warnings returns what check warns of the namespaces' /etc directories:
// entries that have no counterpart in /etc; a namespace without a
// resolv.conf of its own while the host's names only loopback resolvers;
// and, for a namespace with one, the host's resolvers that its sessions'
// lookups still reach. Host files that cannot be read are warnings too.
func (h Host) Warnings(namespaces []Namespace) []string {
	var w []string
	warnf := func(format string, args ...any) { w = append(w, fmt.Sprintf(format, args...)) }
	hosts, err := h.hostsSources()
	if err != nil {
		warnf("%v: the warnings about DNS leaks below leave it out", err)
	}
	loopback, err := h.loopbackResolvers()
	if err != nil {
		warnf("%v: whether namespaces without one of their own can resolve names is not checked", err)
	}
	for _, n := range namespaces {
		if n.Overlay != nil {
			for _, name := range n.Overlay.Skipped {
				warnf("netns %s: %s/%s has no counterpart /etc/%s, so sessions in %s do not see it (ip netns exec cannot bind it either)",
					n.Spec, netns.EtcDir(n.Overlay.Name), name, name, n.Spec)
			}
		}
		switch {
		case n.ownResolvConf():
			w = append(w, h.leaks(n, hosts)...)
		case n.Overlay != nil && n.Overlay.OwnResolvConf:
			// Skipped, as warned above.
		case loopback != "":
			warnf("netns %s: %s, and %s: in %s that is %s's own loopback, where no resolver answers unless one runs in %s, so %s",
				n.Spec, noResolvConf(n), loopback, n.Spec, n.Spec, n.Spec, h.loopbackOutcome(hosts))
		}
	}
	return w
}

// noResolvConf says that namespace n has no resolv.conf of its own, and
// where it would be.
func noResolvConf(n Namespace) string {
	if strings.HasPrefix(n.Spec, "/") {
		return "no resolv.conf of its own (a namespace given by path has no /etc/netns directory)"
	}
	return "no resolv.conf of its own (" + netns.EtcDir(n.Spec) + "/resolv.conf)"
}

// loopbackOutcome says what becomes of the lookups of a namespace whose
// sessions read a resolv.conf naming loopback resolvers: those through a
// resolver of the host that they reach are answered, through the host's
// network.
func (h Host) loopbackOutcome(hosts []string) string {
	var reached []string
	if slices.Contains(hosts, "resolve") && h.exists(netns.ResolvedRuntimeDir) {
		reached = append(reached, `systemd-resolved (by nss-resolve, "resolve" in the hosts line of `+nsswitchConf+`)`)
	}
	if cached, _ := h.nscdCachesHosts(); cached && h.exists(h.nscdSocketDir()) {
		reached = append(reached, "nscd (its hosts cache)")
	}
	if len(reached) == 0 {
		return "its DNS lookups fail"
	}
	return "lookups that read resolv.conf themselves (dig, host) fail there, while those through NSS reach the host's " +
		strings.Join(reached, " and ") + ", which looks them up through the host's network"
}

// leaks returns the warnings about the host's resolvers that the sessions
// of n, which has a resolv.conf of its own, still reach; hosts is the hosts
// line of nsswitch.conf.
func (h Host) leaks(n Namespace, hosts []string) []string {
	var w []string
	warnf := func(format string, args ...any) { w = append(w, fmt.Sprintf(format, args...)) }
	if slices.Contains(hosts, "resolve") {
		switch {
		case !h.exists(netns.ResolvedRuntimeDir):
			warnf(`netns %s: systemd-resolved does not run (no %s), so a login into %s cannot hide it: once it starts, nss-resolve ("resolve" in the hosts line of %s) hands it the lookups of the sessions opened in %s before, and it looks them up through the host's network`,
				n.Spec, netns.ResolvedRuntimeDir, n.Spec, nsswitchConf, n.Spec)
		case !hidden(n.Overlay, h.Root+netns.ResolvedRuntimeDir):
			warnf(`netns %s: %s is not hidden from its sessions, so nss-resolve ("resolve" in the hosts line of %s) hands their lookups to the host's systemd-resolved, which looks them up through the host's network`,
				n.Spec, netns.ResolvedRuntimeDir, nsswitchConf)
		case !slices.Contains(hosts, "dns"):
			warnf(`netns %s: the hosts line of %s has "resolve" but not "dns": in %s, where the host's systemd-resolved is hidden, no source reads %s's resolv.conf, so only programs that read it themselves (dig, host) resolve names there`,
				n.Spec, nsswitchConf, n.Spec, n.Spec)
		}
	}
	cached, err := h.nscdCachesHosts()
	if err != nil {
		warnf("netns %s: %v: whether its sessions reach the host's nscd is not checked", n.Spec, err)
	}
	if socketDir := h.nscdSocketDir(); cached && !hidden(n.Overlay, h.Root+socketDir) {
		switch {
		case h.exists(socketDir) && socketDir != netns.NscdRuntimeDir:
			warnf("netns %s: nscd's socket is in %s, which a login into %s does not hide (only %s is hidden): its sessions ask the host's nscd, whose hosts cache looks names up through the host's network",
				n.Spec, socketDir, n.Spec, netns.NscdRuntimeDir)
		case h.exists(socketDir):
			warnf("netns %s: %s is not hidden from its sessions, so they ask the host's nscd, whose hosts cache looks names up through the host's network",
				n.Spec, socketDir)
		case h.exists(nscdBinary):
			warnf("netns %s: nscd does not run (no %s), so a login into %s cannot hide it: once it starts, the sessions opened in %s before ask it, and its hosts cache looks names up through the host's network (\"enable-cache hosts no\" in %s avoids it)",
				n.Spec, socketDir, n.Spec, n.Spec, nscdConf)
		}
	}
	for _, source := range hosts {
		if d, ok := daemonSource(source); ok {
			warnf("netns %s: %q in the hosts line of %s asks the host's %s, which %s",
				n.Spec, source, nsswitchConf, d.daemon, d.does)
		}
	}
	return w
}

// hidden reports whether the shadows of o cover dir, a path under the
// host's /run.
func hidden(o *netns.Overlay, dir string) bool {
	return slices.ContainsFunc(o.Shadows, func(s netns.Mount) bool {
		return dir == s.Target || strings.HasPrefix(dir, s.Target+"/")
	})
}

// nscdSocketDir is where nscd's socket is: /var/run/nscd with /var/run's
// symlinks resolved (/run/nscd where /var/run leads to /run, as on Debian).
func (h Host) nscdSocketDir() string {
	varRun := filepath.Dir(nscdSocketDir)
	resolved, err := filepath.EvalSymlinks(h.Root + varRun)
	if err != nil {
		return nscdSocketDir
	}
	return h.shown(resolved) + "/" + filepath.Base(nscdSocketDir)
}

// hostDaemon is an NSS source of the hosts line that asks a daemon of the
// host, which is not hidden from a namespace's sessions.
type hostDaemon struct {
	daemon string
	does   string
}

// daemonSource returns the daemon that the NSS hosts source asks, if any.
func daemonSource(source string) (hostDaemon, bool) {
	switch {
	case strings.HasPrefix(source, "mdns"): // nss-mdns: mdns4_minimal, mdns, ...
		return hostDaemon{"avahi-daemon", "resolves names under .local by multicast on the host's networks, not the namespace's"}, true
	case source == "ldap": // libnss-ldapd
		return hostDaemon{"nslcd", "looks names up in LDAP through the host's network"}, true
	case source == "wins": // libnss-winbind
		return hostDaemon{"winbindd", "looks names up through the host's network"}, true
	}
	return hostDaemon{}, false
}

// hostsSources returns the sources of the hosts line of nsswitch.conf, in
// order, without their actions; glibc's default when there is none.
func (h Host) hostsSources() ([]string, error) {
	glibcDefault := []string{"dns", "files"}
	data, err := os.ReadFile(h.Root + nsswitchConf)
	if errors.Is(err, fs.ErrNotExist) {
		return glibcDefault, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", nsswitchConf, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		database, sources, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(database) != "hosts" {
			continue
		}
		var list []string
		inAction := false
		for _, field := range strings.Fields(sources) {
			switch {
			case strings.HasPrefix(field, "["):
				inAction = !strings.HasSuffix(field, "]")
			case inAction:
				inAction = !strings.HasSuffix(field, "]")
			default:
				list = append(list, field)
			}
		}
		return list, nil
	}
	return glibcDefault, nil
}

// loopbackResolvers describes the resolvers of the host's resolv.conf when
// glibc would ask only loopback ones, "" otherwise.
func (h Host) loopbackResolvers() (string, error) {
	data, err := os.ReadFile(h.Root + resolvConf)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("the host has no %s, so glibc asks %s", resolvConf, glibcDefaultNameserver), nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", resolvConf, err)
	}
	var servers []netip.Addr
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		if addr, err := netip.ParseAddr(fields[1]); err == nil && len(servers) < maxNameservers {
			servers = append(servers, addr)
		}
	}
	if len(servers) == 0 {
		return fmt.Sprintf("the host's %s names no nameserver, so glibc asks %s", resolvConf, glibcDefaultNameserver), nil
	}
	var names []string
	for _, addr := range servers {
		if !addr.Unmap().IsLoopback() {
			return "", nil
		}
		names = append(names, addr.String())
	}
	if len(names) == 1 {
		return fmt.Sprintf("the host's %s names the loopback resolver %s", resolvConf, names[0]), nil
	}
	return fmt.Sprintf("the host's %s names only the loopback resolvers %s", resolvConf, strings.Join(names, ", ")), nil
}

// nscdCachesHosts reports whether nscd.conf enables nscd's hosts cache,
// through which glibc's lookups go to nscd first.
func (h Host) nscdCachesHosts() (bool, error) {
	data, err := os.ReadFile(h.Root + nscdConf)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", nscdConf, err)
	}
	cached := false
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) >= 3 && fields[0] == "enable-cache" && fields[1] == "hosts" {
			cached = fields[2] == "yes"
		}
	}
	return cached, nil
}
