package nspawn

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// statusJSON is what `netns-session status --json` prints, as far as the
// tests read it.
type statusJSON struct {
	Sessions []struct {
		ID       string `json:"id"`
		User     string `json:"user"`
		Class    string `json:"class"`
		Service  string `json:"service"`
		Leader   int    `json:"leader"`
		PID      int    `json:"pid"`
		Judged   string `json:"judged"`
		ActualID string `json:"actual_id"`
		Expected string `json:"expected_id"`
		Verdict  string `json:"verdict"`
	} `json:"sessions"`
	Managers []struct {
		Unit     string `json:"unit"`
		PID      int    `json:"pid"`
		ActualID string `json:"actual_id"`
		Expected string `json:"expected_id"`
		Verdict  string `json:"verdict"`
	} `json:"managers"`
	Violations int `json:"violations"`
}

// status runs `netns-session status --json` and returns its report and exit
// status.
func status(t *testing.T, c *Container) (statusJSON, int) {
	t.Helper()
	stdout, stderr, err := c.Exec(t.Context(), "netns-session", "status", "--json")
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("status: %v\n%s", err, stderr)
	}
	var report statusJSON
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("status --json: %v\n%s\n%s", err, stdout, stderr)
	}
	return report, code
}

// assertStatusAgrees checks every namespace status reports against
// /proc/PID/ns/net of the process it names.
func assertStatusAgrees(t *testing.T, c *Container, report statusJSON) {
	t.Helper()
	for _, s := range report.Sessions {
		if s.Verdict == "exempt" || s.Verdict == "gone" {
			continue
		}
		if s.PID == 0 {
			t.Errorf("session %s of %s: %s, judged by no process", s.ID, s.User, s.Verdict)
			continue
		}
		if got := netnsID(t, c, "/proc/"+strconv.Itoa(s.PID)+"/ns/net"); got != s.ActualID {
			t.Errorf("session %s of %s: status says process %d (its %s) is in %s, /proc says %s", s.ID, s.User, s.PID, s.Judged, s.ActualID, got)
		}
	}
	for _, m := range report.Managers {
		if got := netnsID(t, c, "/proc/"+strconv.Itoa(m.PID)+"/ns/net"); got != m.ActualID {
			t.Errorf("%s: status says PID %d is in %s, /proc says %s", m.Unit, m.PID, m.ActualID, got)
		}
	}
}

func TestStatusReportsSessionsAndViolations(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		// No watcher: it would end the violation this test looks at.
		f := newWatchFixture(t, s, watchConfig, false)
		c := f.c
		want := map[string]string{"alice": f.ns0, "bob": f.host, "carol": f.ns1}
		for user := range want {
			defer holdSession(t, c, user)()
		}

		report, code := status(t, c)
		if code != 0 {
			t.Errorf("status exited %d with every session in place, want 0: %+v", code, report)
		}
		logins := 0
		for _, s := range report.Sessions {
			if s.Service != "sshd" {
				continue
			}
			logins++
			if s.Verdict != "ok" || s.ActualID != want[s.User] || s.Expected != want[s.User] {
				t.Errorf("session %s of %s: %s in %s (expected %s), want ok in %s", s.ID, s.User, s.Verdict, s.ActualID, s.Expected, want[s.User])
			}
		}
		if logins != len(want) {
			t.Errorf("status lists %d ssh sessions, want %d: %+v", logins, len(want), report.Sessions)
		}
		if len(report.Managers) != len(want) {
			t.Errorf("status lists %d user managers, want %d: %+v", len(report.Managers), len(want), report.Managers)
		}
		assertStatusAgrees(t, c, report)

		leader, lived := escape(t, c, "alice", "escape-alice", 0)
		if lived >= 0 {
			t.Fatalf("escape session ended at once")
		}
		waitFor(t, c, "the escape session", "grep -q '/session-.*\\.scope' /proc/"+leader+"/cgroup")
		report, code = status(t, c)
		if code != 1 {
			t.Errorf("status exited %d with a session outside its namespace, want 1", code)
		}
		found := false
		for _, s := range report.Sessions {
			if strconv.Itoa(s.Leader) == leader {
				found = true
				if s.Verdict != "violation" || s.ActualID != f.host || s.Expected != f.ns0 {
					t.Errorf("escape session: %s in %s (expected %s), want a violation in %s", s.Verdict, s.ActualID, s.Expected, f.host)
				}
			}
		}
		if !found || report.Violations != 1 {
			t.Errorf("escape session with leader %s found: %t, %d violations; want it and 1", leader, found, report.Violations)
		}
		assertStatusAgrees(t, c, report)

		text, _, _ := c.Exec(t.Context(), "netns-session", "status")
		lines := strings.Split(text, "\n")
		if !strings.HasPrefix(lines[0], "SESSION  USER") || !strings.Contains(text, "violation") {
			t.Errorf("status output:\n%s", text)
		}
		// The columns line up: VERDICT heads the last column of every row.
		column := strings.Index(lines[0], "VERDICT")
		for _, line := range lines[1:] {
			if line == "" {
				break
			}
			if len(line) < column || strings.Contains(line[:column], "violation") {
				t.Errorf("row not aligned under the header:\n%s\n%s", lines[0], line)
			}
		}
		c.Run(t, "systemctl", "stop", "escape-alice")
	})
}
