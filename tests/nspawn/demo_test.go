package nspawn

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// demoSuite is the system `make demo` shows: the newest Debian.
var demoSuite = Suite{Name: "trixie"}

// demoProbe runs in a login shell and in a systemd-run --user service: the
// namespace identity, then the interfaces it sees.
const demoProbe = netnsOfSelf + "; ip -br addr"

// TestDemo is what `make demo` runs: a mapped and an unmapped user log in over
// ssh, and it says in plain words which network each shell and each user
// service got. It asserts what it prints, so it is a test like the others.
func TestDemo(t *testing.T) {
	requireHarness(t)
	c := boot(t, demoSuite)
	say := func(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) }

	// ns0 gets a link of its own, so the two networks differ at a glance.
	c.Sh(t, `set -e
ip netns add ns0
ip link add demo-host type veth peer name demo-ns0 netns ns0
ip addr add 192.0.2.1/24 dev demo-host && ip link set demo-host up
ip -n ns0 addr add 192.0.2.2/24 dev demo-ns0 && ip -n ns0 link set demo-ns0 up && ip -n ns0 link set lo up`)
	const config = "alice ns0   # alice works in ns0; everyone else keeps the host network\n"
	c.WriteFile(t, configPath, config, 0o644)
	installHook(t, c)
	names := map[string]string{
		netnsID(t, c, "/proc/1/ns/net"): "the host network namespace",
		netnsID(t, c, "/run/netns/ns0"): "network namespace ns0",
	}
	version := strings.TrimSpace(c.Run(t, "netns-session", "--version"))

	say("")
	say("=== netns-session demo: a throwaway Debian %s container with systemd, logind and sshd ===", demoSuite.Name)
	say("%s is installed at /usr/sbin/netns-session.", version)
	say("The PAM line, before pam_systemd.so in /etc/pam.d/common-session:")
	say("    %s", hookLine)
	say("The mapping, %s:", configPath)
	say("    %s", strings.TrimSpace(config))

	for _, u := range []struct{ user, want, words string }{
		{"alice", "network namespace ns0", "alice is mapped to ns0"},
		{"bob", "the host network namespace", "bob is not mapped"},
	} {
		stdout, stderr, err := c.SSH(t.Context(), u.user,
			demoProbe+"; echo ---; systemd-run --user --quiet --wait --pipe sh -c '"+demoProbe+"'")
		if err != nil {
			t.Fatalf("ssh %s@127.0.0.1: %v\n%s", u.user, err, stderr)
		}
		shell, service, ok := strings.Cut(stdout, "---\n")
		if !ok {
			t.Fatalf("unexpected output of %s's login:\n%s", u.user, stdout)
		}
		say("")
		say("%s, and logs in with `ssh %s@127.0.0.1`:", u.words, u.user)
		for _, part := range []struct{ what, out string }{
			{"the ssh shell", shell},
			{"a `systemd-run --user` service", service},
		} {
			id, addrs, _ := strings.Cut(part.out, "\n")
			got := names[strings.TrimSpace(id)]
			if got == "" {
				got = "an unknown network namespace " + id
			}
			say("  %s runs in %s and sees:", part.what, got)
			for line := range strings.Lines(addrs) {
				say("      %s", strings.TrimRight(line, "\n"))
			}
			if got != u.want {
				t.Errorf("%s of %s runs in %s, want %s", part.what, u.user, got, u.want)
			}
		}
	}
	say("")
	say("The container is torn down now. Run `make test` for the whole suite.")
}
