package nspawn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The units this package ships that tests install, from the repository's
// units/ into the container's unit directory, as make install does.
const (
	netnsUnit = "netns-session-netns@.service"
	syncUnit  = "netns-session-sync.service"
	unitDir   = "/usr/lib/systemd/system"
)

// installUnits copies units from the repository into c and reloads systemd.
func installUnits(t *testing.T, c *Container, names ...string) {
	t.Helper()
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join("..", "..", "units", name))
		if err != nil {
			t.Fatal(err)
		}
		c.WriteFile(t, filepath.Join(unitDir, name), string(data), 0o644)
	}
	c.Run(t, "systemctl", "daemon-reload")
}

// assertNetns fails unless path in c is a network namespace with its
// loopback up, seen through ip netns as iproute2 users would.
func assertNetns(t *testing.T, c *Container, name string) {
	t.Helper()
	link := c.Run(t, "ip", "netns", "exec", name, "ip", "-o", "link", "show", "lo")
	if !strings.Contains(link, ",UP") {
		t.Errorf("loopback of %s is not up: %s", name, link)
	}
	if own, ns := netnsID(t, c, "/proc/1/ns/net"), netnsID(t, c, "/run/netns/"+name); own == ns {
		t.Errorf("/run/netns/%s is the host's namespace", name)
	}
}

func TestNetnsAddListDel(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)

		if out := c.Run(t, "netns-session", "netns", "add", "ns0"); !strings.Contains(out, "created") {
			t.Errorf("first add = %q, want created", out)
		}
		id := netnsID(t, c, "/run/netns/ns0")
		if out := c.Run(t, "netns-session", "netns", "add", "ns0"); !strings.Contains(out, "exists") {
			t.Errorf("second add = %q, want exists", out)
		}
		if again := netnsID(t, c, "/run/netns/ns0"); again != id {
			t.Errorf("second add replaced the namespace: %s, was %s", again, id)
		}
		assertNetns(t, c, "ns0")
		if prop := strings.TrimSpace(c.Run(t, "findmnt", "-n", "-o", "PROPAGATION", "/run/netns")); prop != "shared" {
			t.Errorf("/run/netns propagation = %q, want shared, as ip netns makes it", prop)
		}
		if out := c.Run(t, "ip", "netns", "list"); !strings.Contains(out, "ns0") {
			t.Errorf("ip netns list = %q, want ns0", out)
		}

		// Both ways round: a namespace ip made is listed and deleted too.
		c.Run(t, "ip", "netns", "add", "ipmade")
		list := c.Run(t, "netns-session", "netns", "list")
		for _, want := range []string{"ns0", "/run/netns/ns0", id, "ipmade"} {
			if !strings.Contains(list, want) {
				t.Errorf("netns list lacks %q:\n%s", want, list)
			}
		}
		if strings.Contains(list, "unusable") {
			t.Errorf("netns list flags a namespace:\n%s", list)
		}

		for _, name := range []string{"ns0", "ipmade"} {
			if out := c.Run(t, "netns-session", "netns", "del", name); !strings.Contains(out, "deleted") {
				t.Errorf("first del %s = %q, want deleted", name, out)
			}
			if out := c.Run(t, "netns-session", "netns", "del", name); !strings.Contains(out, "no network namespace") {
				t.Errorf("second del %s = %q, want nothing to do", name, out)
			}
		}
		if out := strings.TrimSpace(c.Run(t, "ip", "netns", "list")); out != "" {
			t.Errorf("ip netns list after del = %q, want nothing", out)
		}
		if out := c.Run(t, "netns-session", "netns", "list"); !strings.Contains(out, "no network namespaces") {
			t.Errorf("netns list after del = %q", out)
		}
	})
}

func TestNetnsUnitCreatesNamespaceAtBoot(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		installUnits(t, c, netnsUnit)
		verifyUnits(t, c, unitDir+"/netns-session-netns@ns0.service")
		// The README's example of what admins put in a drop-in.
		c.WriteFile(t, "/etc/systemd/system/netns-session-netns@ns0.service.d/50-veth.conf", vethDropIn, 0o644)
		c.Run(t, "systemctl", "enable", "netns-session-netns@ns0.service")

		c.Reboot(t)

		if state := strings.TrimSpace(c.Run(t, "systemctl", "is-active", "netns-session-netns@ns0.service")); state != "active" {
			t.Fatalf("netns-session-netns@ns0.service is %s after boot", state)
		}
		assertNetns(t, c, "ns0")
		if log := c.Run(t, "journalctl", "-b", "-o", "cat", "--no-pager", "-u", "netns-session-netns@ns0.service"); !strings.Contains(log, "created network namespace ns0") {
			t.Errorf("the unit did not create ns0; its log:\n%s", log)
		}

		if addrs := c.Run(t, "ip", "-n", "ns0", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(addrs, "10.200.0.2/24") {
			t.Errorf("the drop-in's address is not in ns0: %s", addrs)
		}
		if routes := c.Run(t, "ip", "-n", "ns0", "route", "show", "default"); !strings.Contains(routes, "via 10.200.0.1") {
			t.Errorf("the drop-in's default route is not in ns0: %q", routes)
		}

		c.Run(t, "systemctl", "stop", "netns-session-netns@ns0.service")
		if _, _, err := c.Exec(t.Context(), "ip", "link", "show", "ns0-host"); err == nil {
			t.Error("the host end of the veth pair outlived the namespace unit")
		}
		if _, _, err := c.Exec(t.Context(), "test", "-e", "/run/netns/ns0"); err == nil {
			t.Error("/run/netns/ns0 still there after stopping its unit")
		}
	})
}

// vethDropIn connects ns0 to the host with a veth pair, as the README shows.
const vethDropIn = `[Service]
ExecStartPost=ip link add ns0-host type veth peer name eth0 netns ns0
ExecStartPost=ip addr add 10.200.0.1/24 dev ns0-host
ExecStartPost=ip link set ns0-host up
ExecStartPost=ip -n ns0 addr add 10.200.0.2/24 dev eth0
ExecStartPost=ip -n ns0 link set eth0 up
ExecStartPost=ip -n ns0 route add default via 10.200.0.1
ExecStopPost=-ip link del ns0-host
`

// verifyUnits runs systemd-analyze verify on unit files in c, which fails on
// bad settings, missing executables and ordering cycles.
func verifyUnits(t *testing.T, c *Container, paths ...string) {
	t.Helper()
	stdout, stderr, err := c.Exec(t.Context(), append([]string{"systemd-analyze", "verify", "--man=no"}, paths...)...)
	if err != nil || strings.TrimSpace(stdout+stderr) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s%s", strings.Join(paths, " "), err, stdout, stderr)
	}
}
