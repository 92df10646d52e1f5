// Package pamcheck owns what `netns-session check` says of the PAM wiring
// and of the kernel settings the hook's join needs. It reads the session
// stacks of the services users log in through (Services) the way Linux-PAM
// builds them from /etc/pam.d (ParseLines: continuation lines, comments,
// "[...]" fields; Debian's @include, include and substack followed) and
// finds, each with file and line: a stack without the hook line, the hook
// after pam_systemd.so, a pam_env.so with user_readenv=1 before the hook,
// a line before the hook whose control can pass it (a success that ends
// the stack, a jump past it), walked as libpam's dispatch walks it, and a
// hook whose control lets a session open when it fails. It also reads
// Yama's ptrace_scope, which can forbid the ptrace the join uses, and
// whether SELinux enforces, which refuses the join. It writes nothing; what
// the hook does is package hook's, the join nsjoin's.
package pamcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// The hook line of the contract.
const (
	// Program is the hook's file name; it runs from any directory.
	Program = "netns-session"
	// HookLine is the line that wires the hook into a stack.
	HookLine = "session required pam_exec.so seteuid /usr/sbin/netns-session pam"
)

// Services are the PAM services whose sessions the hook must place: ssh,
// console logins, su and sudo (the login shell variants too) and the jobs
// of cron and at. A service without a file is not installed, and skipped.
var Services = []string{"sshd", "login", "su", "su-l", "sudo", "sudo-i", "cron", "atd"}

// Kernel settings the join depends on.
const (
	// PtraceScopeFile is Yama's setting: 3 forbids every ptrace attach.
	PtraceScopeFile = "/proc/sys/kernel/yama/ptrace_scope"
	// SELinuxEnforceFile is 1 while SELinux enforces its policy.
	SELinuxEnforceFile = "/sys/fs/selinux/enforce"
)

// Severity says whether a finding breaks the policy (Error) or may
// (Warning).
type Severity uint8

const (
	Warning Severity = iota
	Error
)

// A Finding is one problem, at File:Line (Line 0: the file as a whole).
type Finding struct {
	Severity Severity
	File     string
	Line     int
	Msg      string
}

func (f Finding) String() string { return position(f.File, f.Line) + ": " + f.Msg }

// System is the machine whose files are read; Root ("" for "/") prefixes
// every path, so tests can lay out a tree of their own.
type System struct {
	Root string
}

func (s System) root() string {
	if s.Root == "" {
		return "/"
	}
	return s.Root
}

// Report is what Check found.
type Report struct {
	// Stacks are the session stacks of the installed Services, in the
	// order of Services.
	Stacks []Stack
	// Hooks has, for each of Stacks, the index of its first hook line in
	// its Entries, or -1.
	Hooks    []int
	Findings []Finding
}

// Check reads the session stacks of Services and the kernel settings, and
// reports what stands in the hook's way.
func (s System) Check() Report {
	var r Report
	var c collector
	for _, service := range Services {
		st, err := s.readStack(service)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			// Unreadable is not absent: the service may run without the hook.
			c.add(Error, ConfDir+"/"+service, 0, "read", "", func(string) string {
				return fmt.Sprintf("cannot be read (%s), so whether its sessions run the hook is unknown", describe(err))
			})
			continue
		}
		r.Stacks = append(r.Stacks, st)
		r.Hooks = append(r.Hooks, checkStack(&c, st))
	}
	s.checkKernel(&c)
	r.Findings = c.findings()
	return r
}

// checkStack records the problems of one service's session stack and
// returns the index of its hook line, -1 if none.
func checkStack(c *collector, st Stack) int {
	for _, b := range st.broken {
		c.add(Error, b.file, b.line, "include "+b.target, st.Service, func(services string) string {
			return fmt.Sprintf("includes %s, which Linux-PAM cannot read (%s): it fails the sessions of %s, whose stack is checked without it", b.target, describe(b.err), services)
		})
	}
	hook, systemd, miscased := -1, -1, -1
	miscasedType := ""
	for i, e := range st.Entries {
		runs, otherType := runsHook(e)
		switch {
		case hook < 0 && runs && otherType == "":
			hook = i
		case miscased < 0 && runs && strings.EqualFold(otherType, "open_session"):
			miscased, miscasedType = i, otherType
		case systemd < 0 && moduleName(e) == "pam_systemd.so":
			systemd = i
		}
	}
	if hook < 0 && miscased >= 0 {
		// The administrator meant this line as the hook: name it.
		m := st.Entries[miscased]
		c.add(Error, m.File, m.Line, "missing", st.Service, func(services string) string {
			return fmt.Sprintf("the session stack of %s has no netns-session hook: this line's type=%s never matches, as pam_exec compares it exactly, so pam_exec skips the hook and mapped users' sessions opened through the stack stay on the host network; write type=open_session", services, miscasedType)
		})
		return hook
	}
	if hook < 0 {
		at, where := missingAt(st, systemd)
		c.add(Error, at.File, at.Line, "missing", st.Service, func(services string) string {
			return fmt.Sprintf("the session stack of %s has no netns-session hook: mapped users' sessions opened through it stay on the host network; add %q %s (Debian: pam-auth-update --enable netns-session)", services, HookLine, where)
		})
		return hook
	}
	checkPassed(c, st, hook)
	h := st.Entries[hook]
	if systemd >= 0 && systemd < hook {
		sd := st.Entries[systemd]
		c.add(Error, h.File, h.Line, "after systemd", st.Service, func(services string) string {
			return fmt.Sprintf("the netns-session hook comes after pam_systemd.so (%s) in the session stack of %s: pam_systemd starts the user's systemd manager before the hook has placed it, so the user's services run on the host network; move the hook before pam_systemd.so", sd.Position(), services)
		})
	}
	for _, e := range st.Entries[:hook] {
		if moduleName(e) == "pam_env.so" && readsUserEnv(e.Args) {
			c.add(Error, e.File, e.Line, "user_readenv", st.Service, func(services string) string {
				return fmt.Sprintf("pam_env.so with user_readenv=1 comes before the netns-session hook (%s) in the session stack of %s: a user's ~/.pam_environment reaches the hook, which pam_exec runs as root, and the dynamic loader obeys it (LD_PRELOAD) before the hook can refuse it; move this line after the hook", h.Position(), services)
			})
		}
	}
	if sev, why := checkControl(h.Control); why != "" {
		c.add(sev, h.File, h.Line, "control", st.Service, func(services string) string {
			return fmt.Sprintf("the netns-session hook's control %q in the session stack of %s: %s; use required", h.Control, services, why)
		})
	}
	return hook
}

// checkPassed records the module lines before the hook (st.Entries[hook])
// that can make libpam's walk pass it: a success that ends the stack
// (sufficient, done) or a jump past it. Each is an error, whatever the
// module: pam_permit passes every login, pam_succeed_if those its
// condition picks, and check cannot know which logins a module passes;
// a mapped user among them opens a session on the host network, which the
// policy never allows.
func checkPassed(c *collector, st Stack, hook int) {
	at := slices.IndexFunc(st.handlers, func(h handler) bool { return h.entry == hook })
	h := st.Entries[hook]
	for i, hd := range st.handlers[:at] {
		if hd.entry < 0 {
			continue
		}
		how := st.passesHook(i, at)
		if how == nil {
			continue
		}
		ends := "the stack"
		if hd.level > 0 {
			ends = "its substack"
		}
		for k, w := range how {
			if strings.HasSuffix(w, "=done") {
				how[k] = w + " ends " + ends + " before it when the module succeeds"
			} else {
				how[k] = w + " jumps past it"
			}
		}
		e := st.Entries[hd.entry]
		c.add(Error, e.File, e.Line, "passes", st.Service, func(services string) string {
			return fmt.Sprintf("%s's control %q passes the netns-session hook (%s) in the session stack of %s: %s; the sessions it lets pass open without the hook, so a mapped user's stays on the host network; move the hook before this line", moduleName(e), e.Control, h.Position(), services, strings.Join(how, ", "))
		})
	}
}

// missingAt says where the hook belongs in a stack without it: before
// pam_systemd.so (its index systemd, or -1); else after the last line of
// an included file, which on Debian is the common-session file the
// services share; else after the stack's last line, else in the service's
// file.
func missingAt(st Stack, systemd int) (at Entry, where string) {
	if systemd >= 0 {
		return st.Entries[systemd], "before this line, pam_systemd.so's"
	}
	for i := len(st.Entries) - 1; i >= 0; i-- {
		if st.Entries[i].File != st.File {
			return st.Entries[i], "after this line"
		}
	}
	if n := len(st.Entries); n > 0 {
		return st.Entries[n-1], "after this line"
	}
	return Entry{File: st.File}, "to this file"
}

// moduleName is the file name of an entry's module.
func moduleName(e Entry) string { return path.Base(e.Module) }

// pamExecOptions are the options pam_exec takes before the command; the
// first argument that is not one of them is the command.
var pamExecOptions = []string{"debug", "expose_authtok", "seteuid", "quiet", "quiet_log", "stdout"}

// runsHook reports whether e has pam_exec.so run Program, by any path,
// with the argument "pam", and the first of its type= values that is not
// exactly "open_session" ("" for none): the line is the hook when there is
// none. pam_exec reads its options' names in any case but compares the
// type's value exactly (strcmp): any other value, OPEN_SESSION too, makes
// it skip the line at session open.
func runsHook(e Entry) (runs bool, otherType string) {
	if moduleName(e) != "pam_exec.so" {
		return false, ""
	}
	for i, arg := range e.Args {
		lower := strings.ToLower(arg)
		switch {
		case strings.HasPrefix(arg, "/"):
		case strings.HasPrefix(lower, "type="):
			if v := arg[len("type="):]; v != "open_session" && otherType == "" {
				otherType = v
			}
			continue
		case strings.HasPrefix(lower, "log="), slices.Contains(pamExecOptions, lower):
			continue
		}
		return path.Base(arg) == Program && i+1 < len(e.Args) && e.Args[i+1] == "pam", otherType
	}
	return false, ""
}

// readsUserEnv reports whether pam_env's arguments turn user_readenv on:
// its last user_readenv= is a number other than 0, read as atoi(3) does.
func readsUserEnv(args []string) bool {
	on := false
	for _, arg := range args {
		if v, ok := strings.CutPrefix(arg, "user_readenv="); ok {
			on = atoi(v) != 0
		}
	}
	return on
}

// atoi reads the leading decimal digits of s, as atoi(3) does (0 for none).
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && end < 12 && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(s[:end])
	return n
}

// checkKernel records the kernel settings that refuse the join.
func (s System) checkKernel(c *collector) {
	scope, err := s.readFile(PtraceScopeFile)
	level, atoiErr := strconv.Atoi(strings.TrimSpace(scope))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No Yama: ptrace is as capabilities allow, which the hook has.
	case err != nil:
		c.add(Warning, PtraceScopeFile, 0, "ptrace", "", func(string) string {
			return fmt.Sprintf("cannot be read (%s), so whether the hook may ptrace the login to join its namespace is unknown", describe(err))
		})
	case atoiErr != nil:
		c.add(Warning, PtraceScopeFile, 0, "ptrace", "", func(string) string {
			return fmt.Sprintf("%q is not a number, so whether the hook may ptrace the login to join its namespace is unknown", strings.TrimSpace(scope))
		})
	case level > 2:
		// 1 and 2 limit who may attach, and root, as the hook runs,
		// still may.
		c.add(Error, PtraceScopeFile, 0, "ptrace", "", func(string) string {
			return fmt.Sprintf("%d: Yama forbids every ptrace attach, which the hook needs to move a login into its namespace, so every mapped user's login is denied; set kernel.yama.ptrace_scope to 2 or lower (a scope of 3 holds until reboot)", level)
		})
	}
	switch enforce, err := s.readFile(SELinuxEnforceFile); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		c.add(Warning, SELinuxEnforceFile, 0, "selinux", "", func(string) string {
			return fmt.Sprintf("cannot be read (%s), so whether SELinux refuses the join is unknown", describe(err))
		})
	case strings.TrimSpace(enforce) == "1":
		c.add(Error, SELinuxEnforceFile, 0, "selinux", "", func(string) string {
			return "1: SELinux enforces its policy, which refuses the join (the hook's ptrace of the login process and its setns), so every mapped user's login is denied"
		})
	}
}

// describe is err without the path the finding names already.
func describe(err error) string {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err.Error()
	}
	return err.Error()
}
