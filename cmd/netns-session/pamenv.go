package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// pamRequest is what pam_exec tells us about the session being opened.
type pamRequest struct {
	Type    string // PAM_TYPE: open_session, close_session, ...
	User    string // PAM_USER
	Service string // PAM_SERVICE: sshd, su, sudo, cron, systemd-user, ...
	TTY     string // PAM_TTY
	RHost   string // PAM_RHOST
}

// readPAMRequest reads the PAM items that pam_exec exported to us.
//
// pam_exec builds the helper's environment from the PAM environment (which
// pam_env and other modules may fill from user-controlled files) and then
// appends the PAM items. A user who plants PAM_USER=root in the PAM environment
// therefore produces two PAM_USER entries. The Go runtime keeps the first of
// duplicates (os.Getenv and os.Environ alike), which is the user's, so we read
// the untouched block in /proc/self/environ and take the last entry.
func readPAMRequest() (pamRequest, error) {
	raw, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		return pamRequest{}, fmt.Errorf("reading the PAM environment: %w", err)
	}
	return parsePAMEnviron(strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")), nil
}

// parsePAMEnviron picks the PAM items out of an environment block, the last
// entry of each name winning.
func parsePAMEnviron(environ []string) pamRequest {
	last := func(name string) string {
		prefix := name + "="
		for i := len(environ) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(environ[i], prefix); ok {
				return v
			}
		}
		return ""
	}
	return pamRequest{
		Type:    last("PAM_TYPE"),
		User:    last("PAM_USER"),
		Service: last("PAM_SERVICE"),
		TTY:     last("PAM_TTY"),
		RHost:   last("PAM_RHOST"),
	}
}
