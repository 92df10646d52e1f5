package nspawn

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The DNS fixture (enableDNS): name resolution as a Debian or Ubuntu host
// does it, and a resolver of its own inside ns0.
//
//	container   systemd-resolved, /etc/resolv.conf -> its stub, and
//	            "resolve [!UNAVAIL=return]" before dns in nsswitch.conf as
//	            libnss-resolve installs it; resolved forwards to the uplink
//	uplink      a throwaway namespace behind a veth (uplink-host, 10.53.0.1,
//	            the container's default route; uplink0, 10.53.0.2):
//	            dnsmasq on 10.53.0.2 knows dnsHostName
//	ns0         a veth end without addresses (ns0-eth; ns0-host in the
//	            container), dnsmasq on 127.0.0.1 knows dnsNs0Name, another on
//	            127.0.0.2 knows dnsAltName; /etc/netns/ns0/resolv.conf names
//	            127.0.0.1
//
// Every resolver answers NXDOMAIN for any other name under dnsZone and logs
// every query to /run/dns-fixture/UNIT.log, so a test tells where a lookup
// went by a name only it asks for (netns-view's MARKER). Everything is an
// enabled unit: the fixture comes back after a reboot.
const (
	dnsZone     = "netns-session.test"
	dnsHostName = "host." + dnsZone
	dnsHostAddr = "192.0.2.1"
	dnsNs0Name  = "ns0." + dnsZone
	dnsNs0Addr  = "192.0.2.2"
	dnsAltName  = "alt." + dnsZone
	dnsAltAddr  = "192.0.2.3"

	// ns0Resolv is /etc/netns/ns0/resolv.conf; ns0AltResolv what an
	// administrator replaces it with.
	ns0Resolv    = "# ns0's own resolver (netns-session tests)\nnameserver 127.0.0.1\n"
	ns0AltResolv = "# ns0's second resolver (netns-session tests)\nnameserver 127.0.0.2\n"

	stubResolv      = "/run/systemd/resolve/stub-resolv.conf"
	uplinkLink      = "uplink-host" // the container's end of the uplink veth
	dnsLogDir       = "/run/dns-fixture"
	resolvedDropIn  = "/etc/systemd/resolved.conf.d/50-netns-session-test.conf"
	nssResolveHosts = "hosts: files resolve [!UNAVAIL=return] dns"
	nssPlainHosts   = "hosts: files dns"
)

// dnsProvisionScript runs chrooted at image build. systemd-resolved's
// postinst enables it and turns /etc/resolv.conf into a link to its stub,
// libnss-resolve's puts resolve into nsswitch.conf: both are undone, so that
// the tests that do not call enableDNS see the image as before.
const dnsProvisionScript = `
systemctl disable systemd-resolved.service
if [ -L /etc/resolv.conf ]; then
	rm /etc/resolv.conf
	if [ -e /etc/.resolv.conf.systemd-resolved.bak ]; then
		mv /etc/.resolv.conf.systemd-resolved.bak /etc/resolv.conf
	else
		: > /etc/resolv.conf
	fi
fi
sed -i -E '/^hosts:/s/ resolve \[!UNAVAIL=return\]//' /etc/nsswitch.conf
`

// resolvedConf makes resolved forward everything to the uplink's dnsmasq,
// and only there: no fallback servers, no multicast protocols, no cache (so
// every lookup that reaches resolved reaches the uplink's log).
const resolvedConf = `[Resolve]
DNS=10.53.0.2
Domains=~.
FallbackDNS=
LLMNR=no
MulticastDNS=no
DNSSEC=no
Cache=no
`

// uplinkDropIn gives the uplink namespace its veth. The default route through
// it is what makes resolved answer at all: without a routable link it says
// "Network is down".
const uplinkDropIn = `[Service]
ExecStartPost=ip link add uplink-host type veth peer name uplink0 netns uplink
ExecStartPost=ip addr add 10.53.0.1/24 dev uplink-host
ExecStartPost=ip link set uplink-host up
ExecStartPost=ip -n uplink addr add 10.53.0.2/24 dev uplink0
ExecStartPost=ip -n uplink link set uplink0 up
ExecStartPost=ip route replace default via 10.53.0.2 dev uplink-host
ExecStopPost=-ip link del uplink-host
`

// ns0DropIn gives ns0 an interface the container does not have, so its /sys
// can be told from the container's, and a second loopback address for the
// second resolver. The veth has no addresses: nothing in ns0 reaches the
// container through it.
const ns0DropIn = `[Service]
ExecStartPost=ip link add ns0-host type veth peer name ns0-eth netns ns0
ExecStartPost=ip link set ns0-host up
ExecStartPost=ip -n ns0 link set ns0-eth up
ExecStartPost=ip -n ns0 addr add 127.0.0.2/8 dev lo
ExecStopPost=-ip link del ns0-host
`

// dnsResolver is one dnsmasq of the fixture: in namespace netns, listening
// on listen, knowing name.
type dnsResolver struct{ unit, netns, listen, name, addr string }

var dnsResolvers = []dnsResolver{
	{unit: "dns-uplink", netns: "uplink", listen: "10.53.0.2", name: dnsHostName, addr: dnsHostAddr},
	{unit: "dns-ns0", netns: "ns0", listen: "127.0.0.1", name: dnsNs0Name, addr: dnsNs0Addr},
	{unit: "dns-ns0-alt", netns: "ns0", listen: "127.0.0.2", name: dnsAltName, addr: dnsAltAddr},
}

// dnsLog is where the resolver of unit logs its queries.
func dnsLog(unit string) string { return dnsLogDir + "/" + unit + ".log" }

func (r dnsResolver) unitFile() string {
	return fmt.Sprintf(`[Unit]
Description=Test resolver %[1]s in netns %[2]s
BindsTo=netns-session-netns@%[2]s.service
After=netns-session-netns@%[2]s.service

[Service]
NetworkNamespacePath=/run/netns/%[2]s
ExecStartPre=mkdir -p %[6]s
ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file \
  --no-hosts --no-resolv --bind-interfaces --listen-address=%[3]s \
  --local=/%[7]s/ --host-record=%[4]s,%[5]s \
  --log-queries --log-facility=%[8]s

[Install]
WantedBy=multi-user.target
`, r.unit, r.netns, r.listen, r.name, r.addr, dnsLogDir, dnsZone, dnsLog(r.unit))
}

// netnsView is the fixture's probe, /usr/local/bin/netns-view MARKER: what
// the process that runs it sees, a KEY=VALUE a line. It looks MARKER up
// under dnsZone too, so that the resolvers' logs tell where its lookups went.
const netnsView = `#!/bin/bash
lookup() { timeout 10 getent hosts "$1" | awk '{print $1; exit}'; }
lookup "$1.probe.` + dnsZone + `" >/dev/null
echo "ns0=$(lookup ` + dnsNs0Name + `)"
echo "host=$(lookup ` + dnsHostName + `)"
echo "alt=$(lookup ` + dnsAltName + `)"
echo "resolv=$(grep -v '^#' /etc/resolv.conf | grep . | tr '\n' '|')"
echo "sys=$(ls /sys/class/net | tr '\n' ' ')"
echo "netns=$(stat -L -c %d:%i /proc/self/ns/net)"
echo "mntns=$(stat -L -c %d:%i /proc/self/ns/mnt)"
`

// dnsFixture is a container with enableDNS applied.
type dnsFixture struct {
	c *Container
	// hostView is what a process of the container sees, placed nowhere.
	hostView view
	ns0      string // ns0's identity, device:inode
	barriers atomic.Int64
}

// enableDNS sets the DNS fixture up in c and waits until the container
// resolves dnsHostName through resolved.
func enableDNS(t *testing.T, c *Container) *dnsFixture {
	t.Helper()
	installUnits(t, c, netnsUnit)
	c.WriteFile(t, "/etc/systemd/system/netns-session-netns@uplink.service.d/50-dns-fixture.conf", uplinkDropIn, 0o644)
	c.WriteFile(t, "/etc/systemd/system/netns-session-netns@ns0.service.d/50-dns-fixture.conf", ns0DropIn, 0o644)
	units := []string{"netns-session-netns@uplink.service", "netns-session-netns@ns0.service"}
	for _, r := range dnsResolvers {
		c.WriteFile(t, "/etc/systemd/system/"+r.unit+".service", r.unitFile(), 0o644)
		units = append(units, r.unit+".service")
	}
	c.WriteFile(t, resolvedDropIn, resolvedConf, 0o644)
	c.WriteFile(t, "/etc/netns/ns0/resolv.conf", ns0Resolv, 0o644)
	c.WriteFile(t, "/usr/local/bin/netns-view", netnsView, 0o755)
	c.Run(t, "systemctl", "daemon-reload")
	c.Run(t, append([]string{"systemctl", "enable", "--now"}, units...)...)
	c.Run(t, "systemctl", "enable", "--now", "systemd-resolved.service")
	c.Sh(t, `set -e
ln -sfn ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
sed -i 's/^hosts:.*/`+nssResolveHosts+`/' /etc/nsswitch.conf`)
	f := &dnsFixture{c: c, ns0: netnsID(t, c, "/run/netns/ns0")}
	f.waitHostResolves(t)
	f.hostView = parseView(t, "root on the host", c.Run(t, "/usr/local/bin/netns-view", "root-on-host"))
	return f
}

// waitHostResolves waits until the container resolves dnsHostName: resolved
// takes a moment to find its link routable, after a start and after a boot.
func (f *dnsFixture) waitHostResolves(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, stderr, err := f.c.Exec(t.Context(), "getent", "hosts", dnsHostName)
		if err == nil && strings.HasPrefix(out, dnsHostAddr+" ") {
			return
		}
		if time.Now().After(deadline) {
			status, _, _ := f.c.Exec(t.Context(), "resolvectl", "status", "--no-pager")
			t.Fatalf("the container does not resolve %s through resolved 30 s after enableDNS: %q, %v\n%s\nresolvectl status:\n%s", dnsHostName, out, err, stderr, status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// view is what netns-view printed: the answers for the fixture's names (""
// when the lookup failed), the lines of /etc/resolv.conf but comments, each
// ended by "|", the interfaces /sys/class/net lists, and the namespaces of
// the process.
type view struct {
	ns0, host, alt string
	resolv         string
	sys            []string
	netns, mntns   string
}

// parseView parses netns-view's output, printed by where.
func parseView(t *testing.T, where, out string) view {
	t.Helper()
	fields := map[string]string{}
	for line := range strings.Lines(out) {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\n"), "="); ok {
			fields[k] = v
		}
	}
	for _, k := range []string{"ns0", "host", "alt", "resolv", "sys", "netns", "mntns"} {
		if _, ok := fields[k]; !ok {
			t.Fatalf("%s: netns-view printed no %s:\n%s", where, k, out)
		}
	}
	sys := strings.Fields(fields["sys"])
	slices.Sort(sys)
	return view{
		ns0: fields["ns0"], host: fields["host"], alt: fields["alt"],
		resolv: fields["resolv"], sys: sys,
		netns: fields["netns"], mntns: fields["mntns"],
	}
}

// barrierLookups send a query to a resolver of the fixture from a place
// whose lookups reach it: with the dns source alone, whatever nsswitch.conf
// says, a lookup reads the resolv.conf of the place it runs in.
var barrierLookups = map[string][]string{
	"dns-uplink": {"getent", "-s", "dns", "hosts"},                               // resolved, which forwards there
	"dns-ns0":    {"ip", "netns", "exec", "ns0", "getent", "-s", "dns", "hosts"}, // /etc/netns/ns0/resolv.conf
}

// resolverLog returns what the resolver of unit logged, once it has logged
// every query sent to it before the call: its query for a fresh name must
// show up first, and dnsmasq logs queries in the order they come.
func (f *dnsFixture) resolverLog(t *testing.T, unit string) string {
	t.Helper()
	lookup, ok := barrierLookups[unit]
	if !ok {
		t.Fatalf("no way to send a barrier query to %s", unit)
	}
	barrier := fmt.Sprintf("barrier-%d.probe.%s", f.barriers.Add(1), dnsZone)
	f.c.Exec(t.Context(), slices.Concat(lookup, []string{barrier})...) // NXDOMAIN: the query is all it is for
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := f.c.Run(t, "cat", dnsLog(unit))
		if strings.Contains(log, " "+barrier+" from ") {
			return log
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log the query for %s within 10 s; its log ends:\n%s", unit, barrier, lastLines(log, 10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queried reports whether the resolver of unit was asked for the marker's
// name.
func (f *dnsFixture) queried(t *testing.T, unit, marker string) bool {
	t.Helper()
	return strings.Contains(f.resolverLog(t, unit), " "+marker+".probe."+dnsZone+" from ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// assertNs0View fails the test unless what was seen at where is ns0's /etc:
// its resolv.conf, lookups answered by ns0's resolver and never by the
// host's, and the lookup of marker in ns0's resolver's log and not in the
// uplink's.
func (f *dnsFixture) assertNs0View(t *testing.T, where, marker string, v view) {
	t.Helper()
	if v.netns != f.ns0 {
		t.Errorf("%s runs in netns %s, want ns0 (%s)", where, v.netns, f.ns0)
	}
	if want := "nameserver 127.0.0.1|"; v.resolv != want {
		t.Errorf("%s: /etc/resolv.conf names %q, want ns0's own (%q from /etc/netns/ns0/resolv.conf)", where, v.resolv, want)
	}
	if v.ns0 != dnsNs0Addr {
		t.Errorf("%s: %s resolves to %q, want %s: ns0's resolver did not answer", where, dnsNs0Name, v.ns0, dnsNs0Addr)
	}
	if v.host != "" {
		t.Errorf("%s: %s resolves to %s, want no answer: a lookup reached the host's resolver", where, dnsHostName, v.host)
	}
	if f.queried(t, "dns-uplink", marker) {
		t.Errorf("%s: the host's upstream resolver logged the session's lookup of %s.probe.%s: a DNS leak", where, marker, dnsZone)
	}
	if !f.queried(t, "dns-ns0", marker) {
		t.Errorf("%s: ns0's resolver never got the session's lookup of %s.probe.%s", where, marker, dnsZone)
	}
}

// assertHostView fails the test unless what was seen at where, in netns
// want, is the host's /etc, mount namespace and /sys, as before the feature.
func (f *dnsFixture) assertHostView(t *testing.T, where, marker, want string, v view) {
	t.Helper()
	h := f.hostView
	if v.netns != want {
		t.Errorf("%s runs in netns %s, want %s", where, v.netns, want)
	}
	if v.mntns != h.mntns {
		t.Errorf("%s runs in mount namespace %s, want the host's %s: nothing may change for it", where, v.mntns, h.mntns)
	}
	if v.resolv != h.resolv {
		t.Errorf("%s: /etc/resolv.conf names %q, want the host's %q", where, v.resolv, h.resolv)
	}
	if v.host != dnsHostAddr || v.ns0 != "" {
		t.Errorf("%s: %s resolves to %q and %s to %q; want %s through the host's resolved, and nothing", where, dnsHostName, v.host, dnsNs0Name, v.ns0, dnsHostAddr)
	}
	if !slices.Equal(v.sys, h.sys) {
		t.Errorf("%s: /sys/class/net lists %q, want the host's %q", where, v.sys, h.sys)
	}
	if !f.queried(t, "dns-uplink", marker) {
		t.Errorf("%s: the host's upstream resolver never got the lookup of %s.probe.%s", where, marker, dnsZone)
	}
}

// TestDNSFixture proves what the per-namespace /etc tests rest on, without
// netns-session: the container resolves the uplink's name through resolved
// and not ns0's; `ip netns exec ns0` resolves ns0's name through ns0's
// resolv.conf and not the uplink's, and shows ns0's interfaces; each
// resolver logs the queries it gets; a view built by hand as netns-session
// builds it passes the tests' assertions; resolved rewrites its stub file by
// rename when its configuration changes, which detaches a bind mount over
// that file in another mount namespace (systemd issue 32366) but not one
// over its directory; and an
// administrator's rename of /etc/netns/ns0/resolv.conf names the second
// resolver.
func TestDNSFixture(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		f := enableDNS(t, c)

		t.Run("the container resolves through resolved and the uplink only", func(t *testing.T) {
			h := f.hostView
			if h.host != dnsHostAddr || h.ns0 != "" {
				t.Errorf("the container resolves %s to %q and %s to %q; want %s and nothing", dnsHostName, h.host, dnsNs0Name, h.ns0, dnsHostAddr)
			}
			if want := "nameserver 127.0.0.53|"; !strings.HasPrefix(h.resolv, want) {
				t.Errorf("the container's resolv.conf names %q, want resolved's stub (%s)", h.resolv, want)
			}
			if !f.queried(t, "dns-uplink", "root-on-host") {
				t.Error("the uplink's resolver did not log the container's lookup")
			}
			if f.queried(t, "dns-ns0", "root-on-host") {
				t.Error("ns0's resolver logged the container's lookup")
			}
			if !slices.Contains(h.sys, uplinkLink) || slices.Contains(h.sys, "ns0-eth") {
				t.Errorf("the container's /sys/class/net lists %q, want %s and not ns0-eth", h.sys, uplinkLink)
			}
		})

		t.Run("ip netns exec ns0 resolves through ns0's resolv.conf", func(t *testing.T) {
			out := c.Run(t, "ip", "netns", "exec", "ns0", "getent", "-s", "dns", "hosts", dnsNs0Name)
			if !strings.HasPrefix(out, dnsNs0Addr+" ") {
				t.Errorf("ip netns exec ns0 getent hosts %s = %q, want %s", dnsNs0Name, out, dnsNs0Addr)
			}
			if out, _, err := c.Exec(t.Context(), "ip", "netns", "exec", "ns0", "getent", "-s", "dns", "hosts", dnsHostName); err == nil {
				t.Errorf("ip netns exec ns0 resolves %s: %q", dnsHostName, out)
			}
			if log := f.resolverLog(t, "dns-ns0"); !strings.Contains(log, " "+dnsNs0Name+" from 127.0.0.1") {
				t.Errorf("ns0's resolver did not log the lookup of %s; its log ends:\n%s", dnsNs0Name, lastLines(log, 10))
			}
			if sys := strings.Fields(c.Run(t, "ip", "netns", "exec", "ns0", "ls", "/sys/class/net")); !slices.Contains(sys, "ns0-eth") || slices.Contains(sys, uplinkLink) {
				t.Errorf("ip netns exec ns0 ls /sys/class/net = %q, want ns0-eth and not %s", sys, uplinkLink)
			}
		})

		t.Run("nss-resolve reaches the host's resolved from ip netns exec ns0", func(t *testing.T) {
			// The leak the feature closes: the varlink socket is a file, not
			// an address of the namespace.
			out, _, err := c.Exec(t.Context(), "ip", "netns", "exec", "ns0", "getent", "hosts", dnsHostName)
			if err != nil || !strings.HasPrefix(out, dnsHostAddr+" ") {
				t.Errorf("ip netns exec ns0 getent hosts %s = %q, %v; want %s through resolved's socket", dnsHostName, out, err, dnsHostAddr)
			}
		})

		t.Run("control: a view built by hand as netns-session builds it passes the ns0 assertions", func(t *testing.T) {
			// resolved's directory shadowed by one whose links name ns0's
			// resolv.conf (which also hides resolved's socket), then what
			// ip netns exec does: proof that the tests of sessions can pass.
			out := c.Sh(t, `unshare --mount --propagation slave bash -c '
set -e
shadow=$(mktemp -d /run/shadow-XXXXXX)
ln -s /etc/netns/ns0/resolv.conf "$shadow/stub-resolv.conf"
ln -s /etc/netns/ns0/resolv.conf "$shadow/resolv.conf"
mount --bind "$shadow" /run/systemd/resolve
exec ip netns exec ns0 /usr/local/bin/netns-view control'`)
			v := parseView(t, "the control", out)
			f.assertNs0View(t, "the control", "control", v)
			if !slices.Contains(v.sys, "ns0-eth") {
				t.Errorf("the control lists %q in /sys/class/net, want ns0's ns0-eth", v.sys)
			}
		})

		t.Run("a resolved reconfiguration renames its stub file: a bind over the file is lost, one over its directory kept", func(t *testing.T) {
			// Two mount namespaces show ns0's resolv.conf at /etc/resolv.conf,
			// ip netns exec's way and netns-session's, across a rewrite.
			binds := []struct{ name, setup, want string }{
				{"a bind over the stub file", "mount --bind /etc/netns/ns0/resolv.conf " + stubResolv, "nameserver 127.0.0.1\nnameserver 127.0.0.53\n"},
				{"a bind over the stub's directory", `shadow=$(mktemp -d /run/shadow-XXXXXX)
ln -s /etc/netns/ns0/resolv.conf "$shadow/stub-resolv.conf"
mount --bind "$shadow" /run/systemd/resolve`, "nameserver 127.0.0.1\nnameserver 127.0.0.1\n"},
			}
			const rewritten = "/run/stub-rewritten"
			type result struct {
				out, stderr string
				err         error
			}
			done := make([]chan result, len(binds))
			for i, b := range binds {
				done[i] = make(chan result, 1)
				ready := fmt.Sprintf("/run/bind-%d-ready", i)
				go func() {
					out, stderr, err := c.Exec(t.Context(), "unshare", "--mount", "--propagation", "slave", "bash", "-c", fmt.Sprintf(`set -e
%s
grep nameserver /etc/resolv.conf
touch %s
timeout 60 sh -c 'until [ -e %s ]; do sleep 0.05; done'
grep nameserver /etc/resolv.conf`, b.setup, ready, rewritten))
					done[i] <- result{out, stderr, err}
				}()
				waitFor(t, c, b.name, "test -e "+ready)
			}
			rewriteStub(t, c)
			c.Run(t, "touch", rewritten)
			for i, b := range binds {
				r := <-done[i]
				if r.err != nil {
					t.Errorf("%s: %v\n%s", b.name, r.err, r.stderr)
				} else if r.out != b.want {
					t.Errorf("/etc/resolv.conf through %s, before and after resolved rewrote the stub:\n%swant:\n%s", b.name, r.out, b.want)
				}
			}
			c.Sh(t, "rm -f /run/bind-*-ready "+rewritten)
		})

		t.Run("an administrator's rename of ns0's resolv.conf names the second resolver", func(t *testing.T) {
			replaceNs0Resolv(t, c, ns0AltResolv)
			defer replaceNs0Resolv(t, c, ns0Resolv)
			out := c.Run(t, "ip", "netns", "exec", "ns0", "getent", "-s", "dns", "hosts", dnsAltName)
			if !strings.HasPrefix(out, dnsAltAddr+" ") {
				t.Errorf("ip netns exec ns0 getent hosts %s = %q, want %s", dnsAltName, out, dnsAltAddr)
			}
		})
	})
}

// rewriteStub changes resolved's search domains at run time, as a DHCP lease
// or a VPN does, waits until resolved has replaced its stub file by rename,
// and registers the revert.
func rewriteStub(t *testing.T, c *Container) {
	t.Helper()
	before := strings.TrimSpace(c.Run(t, "stat", "-c", "%i", stubResolv))
	c.Run(t, "resolvectl", "domain", uplinkLink, "rewrite."+dnsZone)
	t.Cleanup(func() {
		// The test's context is done by now.
		if _, stderr, err := c.Exec(context.Background(), "resolvectl", "revert", uplinkLink); err != nil {
			t.Errorf("reverting resolved's search domains: %v\n%s", err, stderr)
		}
	})
	waitFor(t, c, "resolved to rename a new stub file into place", fmt.Sprintf(
		`[ "$(stat -c %%i %s)" != %s ] && grep -q 'rewrite\.%s' %s`, stubResolv, before, strings.ReplaceAll(dnsZone, ".", `\.`), stubResolv))
}

// replaceNs0Resolv replaces /etc/netns/ns0/resolv.conf by rename, as editors
// do.
func replaceNs0Resolv(t *testing.T, c *Container, content string) {
	t.Helper()
	c.WriteFile(t, "/etc/netns/ns0/.resolv.conf.new", content, 0o644)
	c.Run(t, "mv", "-f", "/etc/netns/ns0/.resolv.conf.new", "/etc/netns/ns0/resolv.conf")
}
