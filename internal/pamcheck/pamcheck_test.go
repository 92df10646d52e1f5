package pamcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const hook = "session required pam_exec.so seteuid /usr/sbin/netns-session pam\n"

// debian is /etc/pam.d as Debian ships it (bookworm; comments left out,
// line numbers kept where findings name them), the hook wired in as
// pam-auth-update puts it: before pam_systemd.so in common-session and at
// the end of common-session-noninteractive.
func debian() map[string]string {
	return map[string]string{
		"etc/pam.d/common-session": "# common-session\n" +
			"session [default=1] pam_permit.so\n" +
			"session requisite pam_deny.so\n" +
			"session required pam_permit.so\n" +
			"session required pam_unix.so\n" +
			hook + // line 6
			"session optional pam_systemd.so\n", // line 7
		"etc/pam.d/common-session-noninteractive": "session [default=1] pam_permit.so\n" +
			"session requisite pam_deny.so\n" +
			"session required pam_permit.so\n" +
			"session required pam_unix.so\n" + // line 4
			hook, // line 5
		"etc/pam.d/common-auth": "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n",
		"etc/pam.d/sshd": "@include common-auth\n" +
			"account required pam_nologin.so\n" +
			"session [success=ok ignore=ignore module_unknown=ignore default=bad] pam_selinux.so close\n" +
			"session required pam_loginuid.so\n" +
			"@include common-session\n" + // line 5
			"session required pam_env.so\n" +
			"session required pam_env.so user_readenv=1 envfile=/etc/default/locale\n" + // line 7: after the hook
			"session [success=ok ignore=ignore module_unknown=ignore default=bad] pam_selinux.so open\n",
		"etc/pam.d/login":  "session required pam_env.so readenv=1\n@include common-auth\n@include common-session\n",
		"etc/pam.d/su":     "auth sufficient pam_rootok.so\nsession required pam_env.so readenv=1\n@include common-auth\n@include common-session\n",
		"etc/pam.d/su-l":   "auth include su\naccount include su\nsession optional pam_keyinit.so force revoke\nsession include su\n",
		"etc/pam.d/sudo":   "session required pam_limits.so\n@include common-auth\n@include common-session-noninteractive\n",
		"etc/pam.d/sudo-i": "session required pam_limits.so\n@include common-session\n",
		"etc/pam.d/cron":   "@include common-auth\nsession required pam_loginuid.so\n@include common-session-noninteractive \nsession required pam_limits.so\n",
		// Debian's atd reads ~/.pam_environment in its auth stack, which
		// is not the session stack's business.
		"etc/pam.d/atd":                     "@include common-auth\nsession required pam_loginuid.so\n@include common-session-noninteractive\nsession required pam_limits.so\nauth required pam_env.so user_readenv=1\n",
		"proc/sys/kernel/yama/ptrace_scope": "1\n",
		"sys/fs/selinux/enforce":            "0\n",
	}
}

// layOut writes files under a new root; a nil-like "\x00absent" content
// leaves the file out.
func layOut(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for path, content := range files {
		if content == absent {
			continue
		}
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const absent = "\x00absent"

// commonSession is debian()'s common-session with lines added before the
// hook: the first of them is line 6.
func commonSession(before string) string {
	return "# common-session\n" +
		"session [default=1] pam_permit.so\n" +
		"session requisite pam_deny.so\n" +
		"session required pam_permit.so\n" +
		"session required pam_unix.so\n" +
		before + hook + "session optional pam_systemd.so\n"
}

// passes is the finding of a line at common-session:line that passes the
// hook at common-session:hookLine in the stacks that include it.
func passes(line int, module, control string, hookLine int, how string) string {
	return fmt.Sprintf("E /etc/pam.d/common-session:%d: %s's control %q passes the netns-session hook (/etc/pam.d/common-session:%d) in the session stack of sshd, login, su, su-l, sudo-i: %s; the sessions it lets pass open without the hook, so a mapped user's stays on the host network; move the hook before this line", line, module, control, hookLine, how)
}

func TestCheckFindsWhatStandsInTheHooksWay(t *testing.T) {
	tests := []struct {
		name string
		// change replaces files of debian(); absent removes one.
		change map[string]string
		// want are the findings, "E " or "W " and the finding.
		want []string
	}{
		{name: "Debian wired as pam-auth-update does: nothing"},
		{
			name:   "the hook missing from the non-interactive stack",
			change: map[string]string{"etc/pam.d/common-session-noninteractive": "session required pam_permit.so\nsession required pam_unix.so\n"},
			want:   []string{`E /etc/pam.d/common-session-noninteractive:2: the session stack of sudo, cron, atd has no netns-session hook: mapped users' sessions opened through it stay on the host network; add "` + HookLine + `" after this line (Debian: pam-auth-update --enable netns-session)`},
		},
		{
			name:   "the hook missing from common-session: named at pam_systemd.so",
			change: map[string]string{"etc/pam.d/common-session": "session required pam_unix.so\nsession optional pam_systemd.so\n"},
			want:   []string{`E /etc/pam.d/common-session:2: the session stack of sshd, login, su, su-l, sudo-i has no netns-session hook: mapped users' sessions opened through it stay on the host network; add "` + HookLine + `" before this line, pam_systemd.so's (Debian: pam-auth-update --enable netns-session)`},
		},
		{
			name:   "the hook after pam_systemd.so",
			change: map[string]string{"etc/pam.d/common-session": "session required pam_unix.so\n-session optional /lib/x86_64-linux-gnu/security/pam_systemd.so\n" + hook},
			want:   []string{"E /etc/pam.d/common-session:3: the netns-session hook comes after pam_systemd.so (/etc/pam.d/common-session:2) in the session stack of sshd, login, su, su-l, sudo-i: pam_systemd starts the user's systemd manager before the hook has placed it, so the user's services run on the host network; move the hook before pam_systemd.so"},
		},
		{
			name: "pam_env with user_readenv=1 before the hook",
			change: map[string]string{"etc/pam.d/sshd": "session required pam_loginuid.so\n" +
				"session required pam_env.so user_readenv=1 envfile=/dev/null\n" +
				"@include common-session\n"},
			want: []string{"E /etc/pam.d/sshd:2: pam_env.so with user_readenv=1 comes before the netns-session hook (/etc/pam.d/common-session:6) in the session stack of sshd: a user's ~/.pam_environment reaches the hook, which pam_exec runs as root, and the dynamic loader obeys it (LD_PRELOAD) before the hook can refuse it; move this line after the hook"},
		},
		{
			name:   "pam_env with user_readenv turned off again before the hook",
			change: map[string]string{"etc/pam.d/sshd": "session required pam_env.so user_readenv=1 user_readenv=0\n@include common-session\n"},
		},
		{
			name:   "the hook optional",
			change: map[string]string{"etc/pam.d/common-session-noninteractive": "session optional pam_exec.so seteuid /usr/sbin/netns-session pam\n"},
			want:   []string{`E /etc/pam.d/common-session-noninteractive:1: the netns-session hook's control "optional" in the session stack of sudo, cron, atd: the session opens when the hook fails, so a mapped user whose namespace cannot be joined lands on the host network; use required`},
		},
		{
			name: "the hook in a continued line, by another path, with options and a bracketed control that fails closed",
			change: map[string]string{"etc/pam.d/common-session-noninteractive": "session [success=ok ignore=ignore default=bad] pam_exec.so \\\n" +
				"  quiet log=/var/log/ns.log type=open_session /usr/local/sbin/netns-session pam debug\n"},
		},
		{
			name: "su-l through include and substack",
			change: map[string]string{
				"etc/pam.d/su-l": "session include su\n",
				"etc/pam.d/su":   "session substack common-session\n",
			},
		},
		{
			name: "no hook: another subcommand, the hook at close only, another program",
			change: map[string]string{"etc/pam.d/common-session-noninteractive": "session required pam_exec.so /usr/sbin/netns-session sync\n" +
				"session required pam_exec.so type=close_session /usr/sbin/netns-session pam\n" +
				"session required pam_exec.so /usr/sbin/netns-session-old pam\n" +
				"# session required pam_exec.so /usr/sbin/netns-session pam\n"},
			want: []string{`E /etc/pam.d/common-session-noninteractive:3: the session stack of sudo, cron, atd has no netns-session hook: mapped users' sessions opened through it stay on the host network; add "` + HookLine + `" after this line (Debian: pam-auth-update --enable netns-session)`},
		},
		{
			name:   "a sufficient line before the hook: its success ends the stack",
			change: map[string]string{"etc/pam.d/common-session": commonSession("session sufficient pam_permit.so\n")},
			want:   []string{passes(6, "pam_permit.so", "sufficient", 7, "success=done ends the stack before it when the module succeeds")},
		},
		{
			name:   "a jump right before the hook lands past it",
			change: map[string]string{"etc/pam.d/common-session": commonSession("session [success=1 default=ignore] pam_permit.so\n")},
			want:   []string{passes(6, "pam_permit.so", "success=1 default=ignore", 7, "success=1 jumps past it")},
		},
		{
			name:   "a default of done ends the stack when the module succeeds",
			change: map[string]string{"etc/pam.d/common-session": commonSession("session [default=done] pam_succeed_if.so user ingroup staff\n")},
			want:   []string{passes(6, "pam_succeed_if.so", "default=done", 7, "default=done ends the stack before it when the module succeeds")},
		},
		{
			name: "a jump on failure past the hook, one on success to it, done on failure only, a jump too long: the first only",
			change: map[string]string{"etc/pam.d/common-session": commonSession(
				"session [success=ok default=4] pam_succeed_if.so user ingroup staff\n" +
					"session [success=2 default=ignore] pam_permit.so\n" +
					"session [success=ok session_err=done default=bad] pam_limits.so\n" +
					"session [success=9 default=ignore] pam_permit.so\n")},
			want: []string{passes(6, "pam_succeed_if.so", "success=ok default=4", 10, "default=4 jumps past it")},
		},
		{
			name: "a substack counts as one module in a jump: the jump lands past the hook",
			change: map[string]string{
				"etc/pam.d/common-session": commonSession("session [success=2 default=ignore] pam_permit.so\nsession substack session-extra\n"),
				"etc/pam.d/session-extra":  "session required pam_limits.so\nsession required pam_keyinit.so\n",
			},
			want: []string{passes(6, "pam_permit.so", "success=2 default=ignore", 8, "success=2 jumps past it")},
		},
		{
			name: "a substack's sufficient ends only the substack, and a jump in it cannot leave it: the hook after runs",
			change: map[string]string{
				"etc/pam.d/common-session": commonSession("session substack session-extra\n"),
				"etc/pam.d/session-extra":  "session sufficient pam_permit.so\nsession [success=2 default=ignore] pam_permit.so\nsession required pam_limits.so\n",
			},
		},
		{
			name: "a sufficient line in the substack that holds the hook ends the substack before it",
			change: map[string]string{
				"etc/pam.d/common-session-noninteractive": "session required pam_unix.so\nsession substack session-extra\n",
				"etc/pam.d/session-extra":                 "session sufficient pam_permit.so\n" + hook,
			},
			want: []string{`E /etc/pam.d/session-extra:1: pam_permit.so's control "sufficient" passes the netns-session hook (/etc/pam.d/session-extra:2) in the session stack of sudo, cron, atd: success=done ends its substack before it when the module succeeds; the sessions it lets pass open without the hook, so a mapped user's stays on the host network; move the hook before this line`},
		},
		{
			name:   "the hook's type=OPEN_SESSION: pam_exec compares it exactly, so it never runs",
			change: map[string]string{"etc/pam.d/common-session-noninteractive": "session required pam_unix.so\nsession required pam_exec.so type=OPEN_SESSION /usr/sbin/netns-session pam\n"},
			want:   []string{"E /etc/pam.d/common-session-noninteractive:2: the session stack of sudo, cron, atd has no netns-session hook: this line's type=OPEN_SESSION never matches, as pam_exec compares it exactly, so pam_exec skips the hook and mapped users' sessions opened through the stack stay on the host network; write type=open_session"},
		},
		{
			name:   "the hook's control ok on every result: a failure still denies the session",
			change: map[string]string{"etc/pam.d/common-session-noninteractive": "session [default=ok] pam_exec.so seteuid /usr/sbin/netns-session pam\n"},
		},
		{
			name:   "an include that is missing",
			change: map[string]string{"etc/pam.d/cron": "@include common-session-noninteractive\n@include cron-extra\n"},
			want:   []string{"E /etc/pam.d/cron:2: includes cron-extra, which Linux-PAM cannot read (no such file or directory): it fails the sessions of cron, whose stack is checked without it"},
		},
		{
			name:   "an include loop",
			change: map[string]string{"etc/pam.d/atd": "@include common-session-noninteractive\n@include atd\n"},
			// At the depth where libpam gives up, both includes fail.
			want: []string{
				"E /etc/pam.d/atd:1: includes common-session-noninteractive, which Linux-PAM cannot read (includes nest too deep): it fails the sessions of atd, whose stack is checked without it",
				"E /etc/pam.d/atd:2: includes atd, which Linux-PAM cannot read (includes nest too deep): it fails the sessions of atd, whose stack is checked without it",
			},
		},
		{
			name:   "a service from /usr/lib/pam.d, one not installed",
			change: map[string]string{"etc/pam.d/atd": absent, "usr/lib/pam.d/atd": "session optional pam_exec.so /usr/sbin/netns-session pam\n", "etc/pam.d/sudo-i": absent},
			want:   []string{`E /usr/lib/pam.d/atd:1: the netns-session hook's control "optional" in the session stack of atd: the session opens when the hook fails, so a mapped user whose namespace cannot be joined lands on the host network; use required`},
		},
		{
			name:   "Yama forbids ptrace",
			change: map[string]string{"proc/sys/kernel/yama/ptrace_scope": "3\n"},
			want:   []string{"E /proc/sys/kernel/yama/ptrace_scope: 3: Yama forbids every ptrace attach, which the hook needs to move a login into its namespace, so every mapped user's login is denied; set kernel.yama.ptrace_scope to 2 or lower (a scope of 3 holds until reboot)"},
		},
		{
			name:   "Yama allows root: scope 2, or no Yama",
			change: map[string]string{"proc/sys/kernel/yama/ptrace_scope": "2\n", "sys/fs/selinux/enforce": absent},
		},
		{
			name:   "no Yama",
			change: map[string]string{"proc/sys/kernel/yama/ptrace_scope": absent},
		},
		{
			name:   "SELinux enforcing",
			change: map[string]string{"sys/fs/selinux/enforce": "1"},
			want:   []string{"E /sys/fs/selinux/enforce: 1: SELinux enforces its policy, which refuses the join (the hook's ptrace of the login process and its setns), so every mapped user's login is denied"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := debian()
			for path, content := range tt.change {
				files[path] = content
			}
			r := System{Root: layOut(t, files)}.Check()
			var got []string
			for _, f := range r.Findings {
				sev := "W "
				if f.Severity == Error {
					sev = "E "
				}
				got = append(got, sev+f.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// The report lists every installed service with where its hook is.
func TestCheckListsTheStacks(t *testing.T) {
	files := debian()
	files["etc/pam.d/atd"] = absent
	r := System{Root: layOut(t, files)}.Check()
	var got []string
	for i, st := range r.Stacks {
		at := "missing"
		if r.Hooks[i] >= 0 {
			at = st.Entries[r.Hooks[i]].Position()
		}
		got = append(got, st.Service+" "+st.File+" "+at)
	}
	want := []string{
		"sshd /etc/pam.d/sshd /etc/pam.d/common-session:6",
		"login /etc/pam.d/login /etc/pam.d/common-session:6",
		"su /etc/pam.d/su /etc/pam.d/common-session:6",
		"su-l /etc/pam.d/su-l /etc/pam.d/common-session:6",
		"sudo /etc/pam.d/sudo /etc/pam.d/common-session-noninteractive:5",
		"sudo-i /etc/pam.d/sudo-i /etc/pam.d/common-session:6",
		"cron /etc/pam.d/cron /etc/pam.d/common-session-noninteractive:5",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stacks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckControl(t *testing.T) {
	tests := []struct {
		control string
		want    string // "" fine, else "E " or "W " and the start of why
	}{
		{"required", ""},
		{"Requisite", ""},
		{"optional", "E the session opens when the hook fails"},
		{"sufficient", "E the session opens when the hook fails"},
		{"success=ok default=bad", ""},
		{"success = ok new_authtok_reqd=ok ignore=ignore default=die", ""},
		{"success=ok", ""}, // default is bad
		{"default=bad", "E success=bad fails every session"},
		{"success=ok default=ignore", "E a failure of the hook does not deny the session (open_err=ignore"},
		{"success=ok ignore=ignore module_unknown=ignore default=bad", "E a failure of the hook does not deny the session (module_unknown=ignore)"},
		{"success=ok session_err=2 default=bad", "E a failure of the hook does not deny the session (session_err=2)"},
		{"success=ok default=bad default=ignore", ""},
		// ok and done on a failure make it the stack's result.
		{"success=ok default=ok", ""},
		{"success=ok session_err=done default=bad", ""},
		{"success=ok session_err=reset default=bad", "E a failure of the hook does not deny the session (session_err=reset)"},
		{"success=done default=bad", "W success=done skips the modules after the hook"},
		{"success=1 default=bad", "W success=1 skips"},
		{"success=okay", `E malformed control "success=okay": expecting a return value at "ay"`},
		{"succes=ok", `E malformed control "succes=ok": expecting a return value`},
		{"success=0", `E malformed control "success=0": expecting an action for success`},
		{"success ok", `E malformed control "success ok": expecting "=" after success`},
	}
	for _, tt := range tests {
		t.Run(tt.control, func(t *testing.T) {
			sev, why := checkControl(tt.control)
			got := ""
			if why != "" {
				got = map[Severity]string{Warning: "W ", Error: "E "}[sev] + why
			}
			if tt.want == "" && got != "" || !strings.HasPrefix(got, tt.want) {
				t.Errorf("checkControl(%q) = %q, want %q...", tt.control, got, tt.want)
			}
		})
	}
}
