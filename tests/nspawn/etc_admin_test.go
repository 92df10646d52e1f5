package nspawn

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAdminSeesTheNamespaceEtc: with alice's ssh session open in ns0, whose
// /etc directory has a resolv.conf, and bob's on the host, `status` says
// that alice's leader and manager see ns0's resolv.conf and says nothing of
// bob's, and exits 0; the watcher records the same for her session; `check`
// lists what ns0 overrides without a warning about it, and warns that ns1,
// without an /etc directory, sees the host's loopback stub.
func TestAdminSeesTheNamespaceEtc(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		f := newEtcFixture(t, s)
		c := f.c
		installUnits(t, c, watchUnit)
		c.Run(t, "systemctl", "start", watchUnit)
		alice := openLiveSession(t, c, "alice")
		defer alice.Close(t)
		bob := openLiveSession(t, c, "bob")
		defer bob.Close(t)

		t.Run("status shows which resolv.conf each session sees", func(t *testing.T) {
			out, stderr, err := c.Exec(t.Context(), "netns-session", "status", "--json")
			if err != nil {
				t.Fatalf("status --json: %v\n%s", err, stderr)
			}
			var report struct {
				Sessions []struct {
					User       string `json:"user"`
					Service    string `json:"service"`
					Verdict    string `json:"verdict"`
					ResolvConf string `json:"resolv_conf"`
				} `json:"sessions"`
				Managers []struct {
					User       string `json:"user"`
					ResolvConf string `json:"resolv_conf"`
				} `json:"managers"`
			}
			if err := json.Unmarshal([]byte(out), &report); err != nil {
				t.Fatalf("status --json: %v\n%s", err, out)
			}
			want := map[string]string{"alice": "namespace", "bob": ""}
			seen := map[string]bool{}
			for _, s := range report.Sessions {
				if s.Service != "sshd" {
					continue
				}
				seen[s.User] = true
				if w, ok := want[s.User]; ok && (s.ResolvConf != w || s.Verdict != "ok") {
					t.Errorf("session of %s: resolv_conf %q, verdict %s; want %q, ok", s.User, s.ResolvConf, s.Verdict, w)
				}
			}
			for _, m := range report.Managers {
				if m.User == "alice" && m.ResolvConf != "namespace" {
					t.Errorf("alice's manager: resolv_conf %q, want namespace", m.ResolvConf)
				}
			}
			if !seen["alice"] || !seen["bob"] {
				t.Errorf("status listed the ssh sessions of %v, want alice's and bob's\n%s", seen, out)
			}
		})
		t.Run("the watcher records that alice's session sees ns0's resolv.conf", func(t *testing.T) {
			rec := waitRecord(t, c, "USER=alice", "SERVICE=sshd", "RESOLV_CONF=namespace")
			if rec["VERDICT"] != "ok" || rec["ACTION"] == "terminate" {
				t.Errorf("alice's session: verdict %s, action %s; want ok, left alone", rec["VERDICT"], rec["ACTION"])
			}
		})
		t.Run("check lists ns0's overrides and warns about ns1's loopback resolver", func(t *testing.T) {
			out, stderr, err := c.Exec(t.Context(), "netns-session", "check")
			if err != nil {
				t.Fatalf("check: %v\n%s%s", err, out, stderr)
			}
			all := out + stderr
			if !strings.Contains(all, "/etc/resolv.conf (via /run/systemd/resolve)") {
				t.Errorf("check does not list ns0's resolv.conf through resolved's directory:\n%s", all)
			}
			var ns0Warned, ns1Warned bool
			for line := range strings.Lines(all) {
				if strings.Contains(line, "warning") && strings.Contains(line, "ns0") {
					ns0Warned = true
				}
				if strings.Contains(line, "warning") && strings.Contains(line, "ns1") && strings.Contains(line, "127.0.0.53") {
					ns1Warned = true
				}
			}
			if ns0Warned || !ns1Warned {
				t.Errorf("check warned about ns0: %t, about ns1's loopback resolver: %t; want false, true:\n%s", ns0Warned, ns1Warned, all)
			}
		})
		t.Run("check errs when ns0's shadow directories could not be made", func(t *testing.T) {
			// Logins made /run/netns-session; one writable by others would
			// make the next login refuse to use it.
			c.Run(t, "chmod", "0777", "/run/netns-session")
			defer c.Run(t, "chmod", "0700", "/run/netns-session")
			out, stderr, err := c.Exec(t.Context(), "netns-session", "check")
			if all := out + stderr; err == nil || !strings.Contains(all, "unsafe shadow directory") {
				t.Errorf("check with /run/netns-session writable by all: err %v, want an error naming the unsafe shadow directory:\n%s", err, all)
			}
		})
	})
}
