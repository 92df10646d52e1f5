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

// demoLookup resolves, in a login shell, a name only ns0's resolver knows
// and one only the host's does, a line each: the address or "no answer".
const demoLookup = "for n in " + dnsNs0Name + " " + dnsHostName + `; do a=$(getent hosts $n | awk '{print $1}'); echo "$n ${a:-no answer}"; done`

// TestDemo is what `make demo` runs: a mapped and an unmapped user log in over
// ssh, and it says in plain words which network each shell and each user
// service got. It asserts what it prints, so it is a test like the others.
func TestDemo(t *testing.T) {
	requireHarness(t)
	c := boot(t, demoSuite)
	say := func(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) }

	// ns0 gets a link and a resolver of its own, and /etc/netns/ns0, so the
	// two networks differ at a glance; the host resolves through
	// systemd-resolved, as Ubuntu and many servers do.
	enableDNS(t, c)
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
	say("ns0's own /etc, %s/resolv.conf (ns0 runs a resolver on its loopback):", "/etc/netns/ns0")
	for line := range strings.Lines(ns0Resolv) {
		say("    %s", strings.TrimRight(line, "\n"))
	}
	say("The host's /etc/resolv.conf points at systemd-resolved's stub, 127.0.0.53.")

	for _, u := range []struct{ user, want, words, resolves string }{
		{"alice", "network namespace ns0", "alice is mapped to ns0", dnsNs0Name},
		{"bob", "the host network namespace", "bob is not mapped", dnsHostName},
	} {
		stdout, stderr, err := c.SSH(t.Context(), u.user,
			demoProbe+"; echo ---; systemd-run --user --quiet --wait --pipe sh -c '"+demoProbe+"'; echo ---; "+demoLookup)
		if err != nil {
			t.Fatalf("ssh %s@127.0.0.1: %v\n%s", u.user, err, stderr)
		}
		parts := strings.Split(stdout, "---\n")
		if len(parts) != 3 {
			t.Fatalf("unexpected output of %s's login:\n%s", u.user, stdout)
		}
		shell, service, lookups := parts[0], parts[1], parts[2]
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
		say("  and the ssh shell looks names up (getent hosts):")
		answered := []string{}
		for line := range strings.Lines(lookups) {
			say("      %s", strings.TrimRight(line, "\n"))
			if name, addr, _ := strings.Cut(strings.TrimSpace(line), " "); addr != "no answer" {
				answered = append(answered, name)
			}
		}
		if len(answered) != 1 || answered[0] != u.resolves {
			t.Errorf("%s's shell resolved %q, want only %s", u.user, answered, u.resolves)
		}
	}
	say("")
	say("alice's lookups went to ns0's resolver through /etc/netns/ns0/resolv.conf;")
	say("bob's went to the host's resolved. See README, \"DNS and /etc in a namespace\".")
	say("")
	say("The container is torn down now. Run `make test` for the whole suite.")
}
