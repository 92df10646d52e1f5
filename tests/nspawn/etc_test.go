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

// The per-namespace /etc tests (issue 10): a session the hook places in a
// namespace with a directory /etc/netns/NAME sees what `ip netns exec NAME`
// shows, and nobody else sees anything new.

// etcFixture is the DNS fixture with the hook installed and this policy:
//
//	alice  ns0   /etc/netns/ns0/resolv.conf names ns0's own resolver
//	carol  ns1   no /etc/netns/ns1: as before the feature
//	dave   -     the host, by a line of his own
//	bob          unmapped: the host
type etcFixture struct {
	*dnsFixture
	host, ns1 string   // namespace identities, device:inode
	ns0Sys    []string // what `ip netns exec ns0` lists in /sys/class/net
}

// etcConfig is the etc fixture's policy.
const etcConfig = "alice ns0\ncarol ns1\ndave -\n"

func newEtcFixture(t *testing.T, s Suite) *etcFixture {
	t.Helper()
	c := boot(t, s)
	d := enableDNS(t, c)
	c.Run(t, "systemctl", "enable", "--now", "netns-session-netns@ns1.service")
	c.WriteFile(t, configPath, etcConfig, 0o644)
	c.WriteFile(t, "/usr/local/bin/live-session", liveSessionScript, 0o755)
	installHook(t, c)
	ns0Sys := strings.Fields(c.Run(t, "ip", "netns", "exec", "ns0", "ls", "/sys/class/net"))
	slices.Sort(ns0Sys)
	return &etcFixture{
		dnsFixture: d,
		host:       netnsID(t, c, "/proc/1/ns/net"),
		ns1:        netnsID(t, c, "/run/netns/ns1"),
		ns0Sys:     ns0Sys,
	}
}

// sshView logs user in over ssh and returns what netns-view MARKER shows
// in the session; a denied login fails the test.
func (f *etcFixture) sshView(t *testing.T, user, marker string) view {
	t.Helper()
	out, stderr, err := f.c.SSH(t.Context(), user, "/usr/local/bin/netns-view "+marker)
	if err != nil {
		t.Fatalf("ssh %s: %v\n%s", user, err, stderr)
	}
	return parseView(t, user+"'s ssh shell", out)
}

// TestSessionsSeeTheirNamespaceEtc: every kind of session of a user mapped
// to a namespace with /etc/netns/NAME sees that directory's files and the
// namespace's /sys, and its lookups never reach the host's resolver, through
// resolved's stub or its socket; that holds when resolved rewrites its stub
// while a session is open, follows an administrator's edit, keeps host
// mounts made later and pam_namespace's /tmp; unmapped users and namespaces
// without an /etc directory see what they saw before.
func TestSessionsSeeTheirNamespaceEtc(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newEtcFixture(t, s)
		c := f.c

		t.Run("alice's ssh shell resolves through ns0 and lists ns0's interfaces", func(t *testing.T) {
			v := f.sshView(t, "alice", "alice-ssh")
			f.assertNs0View(t, "alice's ssh shell", "alice-ssh", v)
			if !slices.Equal(v.sys, f.ns0Sys) {
				t.Errorf("alice's ssh shell: /sys/class/net lists %q, want ns0's %q", v.sys, f.ns0Sys)
			}
		})
		t.Run("alice's ssh shell resolves through ns0 with no resolve in nsswitch.conf", func(t *testing.T) {
			// Ubuntu's default: lookups go to the stub that resolv.conf names.
			c.Sh(t, `sed -i 's/^hosts:.*/`+nssPlainHosts+`/' /etc/nsswitch.conf`)
			defer c.Sh(t, `sed -i 's/^hosts:.*/`+nssResolveHosts+`/' /etc/nsswitch.conf`)
			f.assertNs0View(t, "alice's ssh shell", "alice-stub-only", f.sshView(t, "alice", "alice-stub-only"))
		})
		t.Run("su - alice resolves through ns0", func(t *testing.T) {
			out := c.Run(t, "su", "-", "alice", "-c", "/usr/local/bin/netns-view alice-su")
			f.assertNs0View(t, "su - alice", "alice-su", parseView(t, "su - alice", out))
		})
		t.Run("sudo -u alice -i resolves through ns0", func(t *testing.T) {
			out := c.Run(t, "sudo", "-u", "alice", "-i", "/usr/local/bin/netns-view", "alice-sudo")
			f.assertNs0View(t, "sudo -u alice -i", "alice-sudo", parseView(t, "sudo -u alice -i", out))
		})
		t.Run("alice's at job resolves through ns0", func(t *testing.T) {
			const result = "/home/alice/at.view"
			if _, stderr, err := c.SSH(t.Context(), "alice", "echo '/usr/local/bin/netns-view alice-at > ~/at.tmp; mv ~/at.tmp "+result+"' | at now"); err != nil {
				t.Fatalf("at: %v\n%s", err, stderr)
			}
			out := waitForFile(t, c, result, 30*time.Second)
			f.assertNs0View(t, "alice's at job", "alice-at", parseView(t, "alice's at job", out))
		})
		t.Run("systemd-run --user of alice resolves through ns0", func(t *testing.T) {
			out, stderr, err := c.SSH(t.Context(), "alice", "systemd-run --user --quiet --wait --pipe /usr/local/bin/netns-view alice-systemd-run")
			if err != nil {
				t.Fatalf("systemd-run --user: %v\n%s", err, stderr)
			}
			// systemd does not remount /sys for NetworkNamespacePath=: user
			// services keep the host's (a documented limitation).
			f.assertNs0View(t, "alice's systemd-run --user", "alice-systemd-run", parseView(t, "systemd-run --user", out))
		})
		t.Run("bob, unmapped, resolves through the host's resolved and sees the host's /sys", func(t *testing.T) {
			f.assertHostView(t, "bob's ssh shell", "bob-ssh", f.host, f.sshView(t, "bob", "bob-ssh"))
		})
		t.Run("dave, mapped to -, resolves through the host's resolved and sees the host's /sys", func(t *testing.T) {
			f.assertHostView(t, "dave's ssh shell", "dave-ssh", f.host, f.sshView(t, "dave", "dave-ssh"))
		})
		t.Run("carol, in ns1 without /etc/netns/ns1, sees the host's /etc and /sys as before", func(t *testing.T) {
			f.assertHostView(t, "carol's ssh shell", "carol-ssh", f.ns1, f.sshView(t, "carol", "carol-ssh"))
		})
		t.Run("an open session and a new one keep ns0's resolver when resolved rewrites its stub", func(t *testing.T) {
			live := openLiveSession(t, c, "alice")
			defer live.Close(t)
			f.assertNs0View(t, "alice's open session", "alice-before-rewrite", parseView(t, "open session", live.Run(t, "/usr/local/bin/netns-view alice-before-rewrite")))
			rewriteStub(t, c)
			f.assertNs0View(t, "alice's open session after the rewrite", "alice-open-after-rewrite",
				parseView(t, "open session", live.Run(t, "/usr/local/bin/netns-view alice-open-after-rewrite")))
			f.assertNs0View(t, "alice's new session after the rewrite", "alice-new-after-rewrite", f.sshView(t, "alice", "alice-new-after-rewrite"))
		})
		t.Run("the next session sees an administrator's rename of ns0's resolv.conf", func(t *testing.T) {
			if v := f.sshView(t, "alice", "alice-before-rename"); v.ns0 != dnsNs0Addr {
				t.Errorf("before the rename, alice's session resolves %s to %q, want %s", dnsNs0Name, v.ns0, dnsNs0Addr)
			}
			replaceNs0Resolv(t, c, ns0AltResolv)
			defer replaceNs0Resolv(t, c, ns0Resolv)
			v := f.sshView(t, "alice", "alice-after-rename")
			if want := "nameserver 127.0.0.2|"; v.resolv != want {
				t.Errorf("after the rename, alice's /etc/resolv.conf names %q, want the new file's %q", v.resolv, want)
			}
			if v.alt != dnsAltAddr || v.ns0 != "" || v.host != "" {
				t.Errorf("after the rename, alice resolves %s to %q, %s to %q and %s to %q; want %s from the second resolver only",
					dnsAltName, v.alt, dnsNs0Name, v.ns0, dnsHostName, v.host, dnsAltAddr)
			}
		})
		t.Run("a mount made on the host after alice's login shows in her open session", func(t *testing.T) {
			live := openLiveSession(t, c, "alice")
			defer live.Close(t)
			if v := parseView(t, "open session", live.Run(t, "/usr/local/bin/netns-view alice-late-mount")); v.resolv != "nameserver 127.0.0.1|" {
				t.Fatalf("alice's session sees /etc/resolv.conf naming %q, not ns0's: a host mount showing in it proves nothing", v.resolv)
			}
			c.Sh(t, "mkdir -p /mnt/late && mount -t tmpfs late /mnt/late && echo mounted later > /mnt/late/marker")
			defer c.Run(t, "umount", "/mnt/late")
			if got := strings.TrimSpace(live.Run(t, "cat /mnt/late/marker")); got != "mounted later" {
				t.Errorf("alice's open session reads %q from /mnt/late/marker, want the host's later mount (\"mounted later\")", got)
			}
		})
		t.Run("pam_namespace polyinstantiates /tmp and the session sees ns0's /etc", func(t *testing.T) {
			c.Sh(t, `set -e
install -d -m 000 /tmp-inst
cp /etc/security/namespace.conf /etc/security/namespace.conf.orig
echo '/tmp /tmp-inst/ user root' >> /etc/security/namespace.conf
cp /etc/pam.d/sshd /etc/pam.d/sshd.orig
touch /tmp/host-only`)
			defer c.Sh(t, `mv /etc/security/namespace.conf.orig /etc/security/namespace.conf; mv /etc/pam.d/sshd.orig /etc/pam.d/sshd`)
			for _, tt := range []struct{ name, edit string }{
				// before: the hook copies pam_namespace's mount namespace;
				// after: pam_namespace copies the one the hook joined.
				{"before the hook", `sed -i 's/^@include common-session$/session required pam_namespace.so\n&/' /etc/pam.d/sshd`},
				{"after the hook", `echo 'session required pam_namespace.so' >> /etc/pam.d/sshd`},
			} {
				t.Run(tt.name, func(t *testing.T) {
					c.Sh(t, "cp /etc/pam.d/sshd.orig /etc/pam.d/sshd && "+tt.edit)
					marker := "alice-pamns-" + strings.ReplaceAll(tt.name, " ", "-")
					out, stderr, err := c.SSH(t.Context(), "alice", fmt.Sprintf(
						`echo "tmp=$(ls /tmp | tr '\n' ' ')"; touch /tmp/%[1]s; /usr/local/bin/netns-view %[1]s`, marker))
					if err != nil {
						t.Fatalf("ssh alice with pam_namespace %s: %v\n%s", tt.name, err, stderr)
					}
					if tmp, _, _ := strings.Cut(strings.TrimPrefix(out, "tmp="), "\n"); strings.Contains(tmp, "host-only") {
						t.Errorf("alice's /tmp lists the host's /tmp/host-only (%q): not polyinstantiated", tmp)
					}
					if inst := c.Run(t, "find", "/tmp-inst", "-name", marker); !strings.Contains(inst, "/tmp-inst/") {
						t.Errorf("alice's /tmp/%s is not in an instance under /tmp-inst", marker)
					}
					f.assertNs0View(t, "alice's ssh shell with pam_namespace "+tt.name, marker, parseView(t, "ssh with pam_namespace", out))
				})
			}
		})

		// Last: it reboots the container.
		t.Run("a lingering user's service sees ns0's /etc after a reboot", func(t *testing.T) {
			const unit = `[Unit]
Description=What a lingering user's service sees

[Service]
ExecStart=/bin/sh -c 'until [ -e %h/linger.go ]; do sleep 0.2; done; /usr/local/bin/netns-view alice-linger > %h/linger.tmp; mv %h/linger.tmp %h/linger.view'

[Install]
WantedBy=default.target
`
			c.WriteFile(t, "/home/alice/.config/systemd/user/netns-view.service", unit, 0o644)
			c.Sh(t, `set -e
mkdir -p /home/alice/.config/systemd/user/default.target.wants
ln -sfn ../netns-view.service /home/alice/.config/systemd/user/default.target.wants/netns-view.service
chown -R alice:alice /home/alice/.config
rm -f /home/alice/linger.go /home/alice/linger.view`)
			// The boot-time sync writes alice's drop-in before logind starts
			// her manager; ns0 and its resolver come up from their units.
			installUnits(t, c, syncUnit)
			c.Run(t, "systemctl", "enable", syncUnit)
			c.Run(t, "systemd-run", "--wait", "--pipe", "--quiet", "loginctl", "enable-linger", "alice")

			c.Reboot(t)

			f.waitHostResolves(t)
			waitManager(t, c, 1001)
			c.Run(t, "touch", "/home/alice/linger.go")
			out := waitForFile(t, c, "/home/alice/linger.view", 30*time.Second)
			f.ns0 = netnsID(t, c, "/run/netns/ns0") // a new ns0 since the boot
			f.assertNs0View(t, "alice's lingering service after a reboot", "alice-linger", parseView(t, "lingering service", out))
		})
	})
}

// liveSessionScript runs in an ssh session as /usr/local/bin/live-session
// DIR: it runs DIR/1.cmd, DIR/2.cmd, ... in turn as they appear, each
// output to DIR/N.out, and ends at an empty one.
const liveSessionScript = `#!/bin/bash
dir=$1
mkdir -p "$dir" && touch "$dir/ready" || exit 1
i=0
while :; do
	i=$((i+1))
	until [ -e "$dir/$i.cmd" ]; do sleep 0.05; done
	[ -s "$dir/$i.cmd" ] || exit 0
	bash "$dir/$i.cmd" > "$dir/$i.tmp" 2>&1
	mv "$dir/$i.tmp" "$dir/$i.out"
done
`

var liveSessions atomic.Int64

// liveSession is an ssh session that stays open and runs commands on
// request in its own shell: what a session opened earlier sees after the
// host changed around it.
type liveSession struct {
	c    *Container
	user string
	dir  string
	n    int
	done chan error
}

// openLiveSession logs user in over ssh and keeps the session open until
// Close. The session is not bound to the test's context, which is cancelled
// before cleanups run, but to heldTimeout, like every session a test holds.
func openLiveSession(t *testing.T, c *Container, user string) *liveSession {
	t.Helper()
	s := &liveSession{
		c:    c,
		user: user,
		dir:  fmt.Sprintf("/home/%s/.live-session-%d", user, liveSessions.Add(1)),
		done: make(chan error, 1),
	}
	go func() {
		_, stderr, err := c.sshHeld(context.Background(), user, "timeout 600 /usr/local/bin/live-session "+s.dir)
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, stderr)
		}
		s.done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, err := c.Exec(t.Context(), "test", "-e", s.dir+"/ready"); err == nil {
			return s
		}
		select {
		case err := <-s.done:
			t.Fatalf("session of %s ended before it was ready: %v", user, err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live session of %s within 30s", user)
		}
	}
}

// Close ends the session and waits for it; call it deferred.
func (s *liveSession) Close(t *testing.T) {
	t.Helper()
	defer s.c.Exec(context.Background(), "rm", "-rf", s.dir)
	select {
	case err := <-s.done:
		t.Errorf("live session of %s ended before Close: %v", s.user, err)
		return
	default:
	}
	s.send(t, "")
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("live session of %s: %v", s.user, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("live session of %s did not end within 30s of Close", s.user)
	}
}

// send hands the session its next command, by rename so that it never
// reads half of one.
func (s *liveSession) send(t *testing.T, script string) {
	t.Helper()
	s.n++
	tmp := fmt.Sprintf("%s/.%d.cmd", s.dir, s.n)
	s.c.WriteFile(t, tmp, script, 0o644)
	s.c.Run(t, "mv", tmp, fmt.Sprintf("%s/%d.cmd", s.dir, s.n))
}

// Run runs script in the session's shell and returns its output.
func (s *liveSession) Run(t *testing.T, script string) string {
	t.Helper()
	s.send(t, script)
	out := fmt.Sprintf("%s/%d.out", s.dir, s.n)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got, _, err := s.c.Exec(t.Context(), "cat", out); err == nil {
			return got
		}
		select {
		case err := <-s.done:
			t.Fatalf("live session ended before it ran %q: %v", script, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("live session did not run %q within 30s", script)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
