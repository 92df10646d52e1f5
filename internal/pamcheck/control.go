package pamcheck

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// returnValues are the names a "[value=action ...]" control may give,
// libpam's _pam_token_returns, "default" last.
var returnValues = []string{
	"success", "open_err", "symbol_err", "service_err", "system_err", "buf_err",
	"perm_denied", "auth_err", "cred_insufficient", "authinfo_unavail",
	"user_unknown", "maxtries", "new_authtok_reqd", "acct_expired", "session_err",
	"cred_unavail", "cred_expired", "cred_err", "no_module_data", "conv_err",
	"authtok_err", "authtok_recover_err", "authtok_lock_busy",
	"authtok_disable_aging", "try_again", "ignore", "abort", "authtok_expired",
	"module_unknown", "bad_item", "conv_again", "incomplete", "default",
}

// notFailures are the results that required does not count as failures.
var notFailures = []string{"success", "new_authtok_reqd", "ignore"}

// keywordControls are the controls libpam spells out when it reads them
// (_pam_parse_conf_file), "default" standing for every result not named.
var keywordControls = map[string]string{
	"required":   "success=ok new_authtok_reqd=ok ignore=ignore default=bad",
	"requisite":  "success=ok new_authtok_reqd=ok ignore=ignore default=die",
	"optional":   "success=ok new_authtok_reqd=ok default=ignore",
	"sufficient": "success=done new_authtok_reqd=done default=ignore",
}

// controlActions reads a control as libpam does: the keywords spelled out,
// a "[...]" control parsed.
func controlActions(control string) (actions, error) {
	if spelled, ok := keywordControls[strings.ToLower(control)]; ok {
		control = spelled
	}
	return parseControl(control)
}

// actions are what a control does on each return value, as written.
type actions map[string]string

// of is the action on value: the one given for it, else the default, else
// libpam's default for a "[...]" control, bad.
func (a actions) of(value string) string {
	if action, ok := a[value]; ok {
		return action
	}
	if action, ok := a["default"]; ok {
		return action
	}
	return "bad"
}

// written is how the control writes the action on value: "value=action",
// or "default=action" when value has none of its own.
func (a actions) written(value string) string {
	if _, ok := a[value]; ok {
		return value + "=" + a[value]
	}
	return "default=" + a.of(value)
}

// jump is the number of modules an action skips, 0 for one that is no
// jump.
func jump(action string) int {
	n, err := strconv.Atoi(action)
	if err != nil {
		return 0
	}
	return n
}

// checkControl says what is wrong with control as the hook's, and how
// badly; why is "" for a control that, like required and requisite, denies
// the session when the hook fails.
func checkControl(control string) (sev Severity, why string) {
	switch strings.ToLower(control) {
	case "required", "requisite":
		return 0, ""
	case "optional":
		return Error, "the session opens when the hook fails, so a mapped user whose namespace cannot be joined lands on the host network"
	case "sufficient":
		return Error, "the session opens when the hook fails, so a mapped user whose namespace cannot be joined lands on the host network, and its success ends the stack before the modules after it (pam_systemd.so)"
	}
	actions, err := parseControl(control)
	if err != nil {
		return Error, fmt.Sprintf("%v: Linux-PAM then counts every result as a failure, so every session through the stack fails, root's too", err)
	}
	// On a failure, ok and done make it the stack's result unless that is
	// a failure already, as bad and die do: the session is denied either
	// way (libpam's _pam_dispatch_aux). ignore passes the failure over,
	// reset forgets it with the results before it, a jump skips it: the
	// modules after decide alone.
	var open []string
	for _, value := range returnValues[:len(returnValues)-1] {
		switch a := actions.of(value); {
		case slices.Contains(notFailures, value):
		case a == "ignore", a == "reset", jump(a) > 0:
			open = append(open, value+"="+a)
		}
	}
	if open != nil {
		return Error, fmt.Sprintf("a failure of the hook does not deny the session (%s), so a mapped user whose namespace cannot be joined lands on the host network", strings.Join(open, " "))
	}
	switch a := actions.of("success"); a {
	case "ok", "ignore":
		return 0, ""
	case "bad", "die":
		return Error, "success=" + a + " fails every session through the stack, root's too"
	default:
		return Warning, "success=" + a + " skips the modules after the hook (pam_systemd.so)"
	}
}

// parseControl reads a "[value=action ...]" control (without brackets) as
// libpam's _pam_parse_control does: blanks may surround "=", an action is
// ignore, ok, done, bad, die, reset or a jump N > 0.
func parseControl(control string) (actions, error) {
	parsed := actions{}
	s := control
	for {
		s = strings.TrimLeft(s, " \t\n\v\f\r")
		if s == "" {
			return parsed, nil
		}
		value := ""
		for _, v := range returnValues {
			if strings.HasPrefix(s, v) {
				value = v
				break
			}
		}
		if value == "" {
			return nil, fmt.Errorf("malformed control %q: expecting a return value at %q", control, s)
		}
		s = strings.TrimLeft(s[len(value):], " \t\n\v\f\r")
		if !strings.HasPrefix(s, "=") {
			return nil, fmt.Errorf("malformed control %q: expecting \"=\" after %s", control, value)
		}
		s = strings.TrimLeft(s[1:], " \t\n\v\f\r")
		action := ""
		for _, a := range []string{"ignore", "ok", "done", "bad", "die", "reset"} {
			if strings.HasPrefix(s, a) {
				action = a
				break
			}
		}
		if action == "" {
			end := 0
			for end < len(s) && s[end] >= '0' && s[end] <= '9' {
				end++
			}
			if n, err := strconv.Atoi(s[:end]); err != nil || n == 0 {
				return nil, fmt.Errorf("malformed control %q: expecting an action for %s", control, value)
			}
			action = s[:end]
		}
		// A second default changes nothing: the first set every result
		// not given yet, and results given later override it either way.
		if _, set := parsed[value]; value != "default" || !set {
			parsed[value] = action
		}
		s = s[len(action):]
	}
}
