package nspawn

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// check runs `netns-session check` with args and returns its report, on
// stdout, and its exit status.
func check(t *testing.T, c *Container, args ...string) (string, int) {
	t.Helper()
	stdout, stderr, err := c.Exec(t.Context(), append([]string{"netns-session", "check"}, args...)...)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return stdout, exit.ExitCode()
	case err != nil:
		t.Fatalf("check %q: %v\n%s%s", args, err, stdout, stderr)
	}
	return stdout, 0
}

// lineOf is the number of the first line of file in c that holds text.
func lineOf(t *testing.T, c *Container, file, text string) int {
	t.Helper()
	out := c.Run(t, "grep", "-n", "-m1", "-F", "--", text, file)
	var n int
	if _, err := fmt.Sscanf(out, "%d:", &n); err != nil {
		t.Fatalf("no %q in %s: %q", text, file, out)
	}
	return n
}

// problems are the lines of check's output that are problems.
func problems(out string) []string {
	var lines []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "error: ") || strings.HasPrefix(line, "warning: ") {
			lines = append(lines, strings.TrimSuffix(line, "\n"))
		}
	}
	return lines
}

// editPAM applies a sed script to a PAM file of c for the rest of the
// (sub)test, and puts the file back after.
func editPAM(t *testing.T, c *Container, file, script string) {
	t.Helper()
	c.Run(t, "cp", "-p", file, file+".preflight")
	t.Cleanup(func() {
		// The test's context is done by now.
		if _, stderr, err := c.Exec(context.Background(), "mv", file+".preflight", file); err != nil {
			t.Errorf("restoring %s: %v\n%s", file, err, stderr)
		}
	})
	c.Run(t, "sed", "-i", script, file)
}

// TestPreflightCheck runs `netns-session check` as an administrator's
// pre-flight on a Debian system wired as the README says, then with each
// mistake of the PAM wiring made in turn: each is an error naming the file
// and line, and the wired system has none. A draft in /tmp has all its
// line errors reported, and /tmp only as a warning; --quiet prints only
// problems.
func TestPreflightCheck(t *testing.T) {
	const (
		nonInteractive = "/etc/pam.d/common-session-noninteractive"
		commonSession  = "/etc/pam.d/common-session"
		sshd           = "/etc/pam.d/sshd"
	)
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		c.Run(t, "ip", "netns", "add", "ns0")
		c.WriteFile(t, configPath, "alice ns0\n", 0o644)
		installHook(t, c)

		t.Run("a correctly wired system reports none", func(t *testing.T) {
			out, code := check(t, c)
			t.Logf("check:\n%s", out)
			if code != 0 || len(problems(out)) > 0 {
				t.Errorf("check: exit %d, problems %q; want 0 and none\n%s", code, problems(out), out)
			}
			hook := fmt.Sprintf("%s:%d", commonSession, lineOf(t, c, commonSession, hookLine))
			hookNI := fmt.Sprintf("%s:%d", nonInteractive, lineOf(t, c, nonInteractive, hookLine))
			for service, at := range map[string]string{
				"sshd": hook, "login": hook, "su": hook, "su-l": hook, "sudo-i": hook,
				"sudo": hookNI, "cron": hookNI, "atd": hookNI,
			} {
				if !containsLine(out, service, at) {
					t.Errorf("check does not list the hook of %s at %s:\n%s", service, at, out)
				}
			}
			if out, code := check(t, c, "--quiet"); code != 0 || out != "" {
				t.Errorf("check --quiet: exit %d, output %q; want 0 and nothing", code, out)
			}
		})

		t.Run("the hook missing from the non-interactive stack", func(t *testing.T) {
			editPAM(t, c, nonInteractive, `/netns-session pam/d`)
			last := lineOf(t, c, nonInteractive, "pam_unix.so")
			want := fmt.Sprintf("error: %s:%d: the session stack of sudo, cron, atd has no netns-session hook", nonInteractive, last)
			out, code := check(t, c)
			if code != 1 || !hasProblem(out, want) {
				t.Errorf("check: exit %d, want 1 and %q:\n%s", code, want, out)
			}
			if !containsLine(out, "cron", "missing") {
				t.Errorf("check does not list cron's hook as missing:\n%s", out)
			}
			quiet, code := check(t, c, "--quiet")
			if code != 1 || len(problems(quiet)) != strings.Count(quiet, "\n") || !hasProblem(quiet, want) {
				t.Errorf("check --quiet: exit %d, want 1 and only the problems, %q among them:\n%s", code, want, quiet)
			}
		})

		t.Run("the hook after pam_systemd", func(t *testing.T) {
			editPAM(t, c, commonSession, `/netns-session pam/d; $a `+hookLine)
			hook := lineOf(t, c, commonSession, hookLine)
			systemd := lineOf(t, c, commonSession, "pam_systemd.so")
			want := fmt.Sprintf("error: %s:%d: the netns-session hook comes after pam_systemd.so (%s:%d) in the session stack of sshd, login, su, su-l, sudo-i",
				commonSession, hook, commonSession, systemd)
			if out, code := check(t, c); code != 1 || !hasProblem(out, want) {
				t.Errorf("check: exit %d, want 1 and %q:\n%s", code, want, out)
			}
		})

		t.Run("pam_env reading the user's environment before the hook", func(t *testing.T) {
			editPAM(t, c, sshd, `s|^@include common-session$|session required pam_env.so user_readenv=1 envfile=/dev/null\n&|`)
			env := lineOf(t, c, sshd, "user_readenv=1 envfile=/dev/null")
			want := fmt.Sprintf("error: %s:%d: pam_env.so with user_readenv=1 comes before the netns-session hook (%s:%d) in the session stack of sshd:",
				sshd, env, commonSession, lineOf(t, c, commonSession, hookLine))
			if out, code := check(t, c); code != 1 || !hasProblem(out, want) {
				t.Errorf("check: exit %d, want 1 and %q:\n%s", code, want, out)
			}
		})

		t.Run("a sufficient line before the hook, which its success skips", func(t *testing.T) {
			editPAM(t, c, commonSession, `/netns-session pam/i session sufficient pam_permit.so`)
			permit := lineOf(t, c, commonSession, "session sufficient pam_permit.so")
			want := fmt.Sprintf(`error: %s:%d: pam_permit.so's control "sufficient" passes the netns-session hook (%s:%d) in the session stack of sshd, login, su, su-l, sudo-i: success=done ends the stack before it`,
				commonSession, permit, commonSession, lineOf(t, c, commonSession, hookLine))
			if out, code := check(t, c); code != 1 || !hasProblem(out, want) {
				t.Errorf("check: exit %d, want 1 and %q:\n%s", code, want, out)
			}
		})

		t.Run("the hook with type=OPEN_SESSION, which pam_exec never matches", func(t *testing.T) {
			editPAM(t, c, nonInteractive, `s|pam_exec.so seteuid /usr/sbin/netns-session pam|pam_exec.so type=OPEN_SESSION seteuid /usr/sbin/netns-session pam|`)
			want := fmt.Sprintf("error: %s:%d: the session stack of sudo, cron, atd has no netns-session hook: this line's type=OPEN_SESSION never matches",
				nonInteractive, lineOf(t, c, nonInteractive, "type=OPEN_SESSION"))
			if out, code := check(t, c); code != 1 || !hasProblem(out, want) {
				t.Errorf("check: exit %d, want 1 and %q:\n%s", code, want, out)
			}
		})

		t.Run("a draft in /tmp: every line error, and /tmp only as a warning", func(t *testing.T) {
			const draft = "/tmp/draft.conf"
			c.WriteFile(t, draft, "alice ns0\nbroken\nbob ns0 extra\nalice -\n@ ns0\n", 0o644)
			want := []string{
				"error: " + draft + `:2: missing namespace after "broken"`,
				"error: " + draft + ":3: 3 fields, want 2",
				"error: " + draft + `:4: duplicate selector "alice" (first at ` + draft + ":1)",
				"error: " + draft + `:5: invalid group name ""`,
				"warning: /tmp: writable by its group and writable by others: the PAM hook refuses a config there",
			}
			out, code := check(t, c, "--config", draft)
			got := problems(out)
			if code != 1 || len(got) != len(want) || !strings.Contains(out, "4 errors, 1 warning") {
				t.Errorf("check --config %s: exit %d, problems:\n%s\nwant 1 and:\n%s\n%s", draft, code, strings.Join(got, "\n"), strings.Join(want, "\n"), out)
			}
			for _, w := range want {
				if !hasProblem(out, w) {
					t.Errorf("check --config %s does not say %q:\n%s", draft, w, out)
				}
			}
			quiet, code := check(t, c, "--config", draft, "--quiet")
			if code != 1 || strings.Join(problems(quiet), "\n")+"\n" != quiet {
				t.Errorf("check --config %s --quiet: exit %d, want 1 and only the problems:\n%s", draft, code, quiet)
			}
		})
	})
}

// hasProblem reports whether a line of out starts with want.
func hasProblem(out, want string) bool {
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, want) {
			return true
		}
	}
	return false
}

// containsLine reports whether out has a line of the fields service and
// at, as check's PAM table prints them.
func containsLine(out, service, at string) bool {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == service && f[1] == at {
			return true
		}
	}
	return false
}
