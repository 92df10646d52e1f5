package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/netns-session/netns-session/internal/hook"
)

// unsafeEnv lists the variables that must not reach the hook; a name ending
// in * stands for every name it starts. pam_exec runs the hook as root with
// the PAM environment, which modules that read user files (pam_env
// user_readenv=1) may have filled, and without AT_SECURE, so the dynamic
// loader and libc honour them as they would for the user's own programs.
// The list is every LD_* variable and glibc's UNSECURE_ENVVARS
// (sysdeps/generic/unsecvars.h), the ones the loader strips for setuid
// programs, but TMPDIR, which pam_tmpdir sets for every session and the hook
// never uses; plus _SSS_LOOPS, with which SSSD's NSS client answers no
// lookup, and GODEBUG, which the Go runtime reads. Finding one denies the
// session: what the loader and the runtime read at start, before the hook
// runs, cannot be undone, so they tell a misplaced PAM line. What is read
// later is cleared anyway (scrubEnv).
var unsafeEnv = []string{
	"LD_*",
	"GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH",
	"MALLOC_TRACE", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TZDIR",
	"_SSS_LOOPS",
	"GODEBUG",
}

// scrubEnv clears the whole process environment, before any lookup. The
// hook reads nothing from it but the PAM items, which readPAMRequest reads
// from /proc/self/environ, while NSS modules and libc read it when called:
// the bus addresses (DBUS_SYSTEM_BUS_ADDRESS, DBUS_SESSION_BUS_ADDRESS) that
// sd-bus based modules such as nss-mymachines dial, SYSTEMD_BYPASS_USERDB and
// SYSTEMD_ONLY_USERDB, with which nss-systemd answers "not found" for userdb
// groups instead of failing (a user mapped through such a group would land
// on the host), the variables of unsafeEnv, and whatever the next module
// reads. Clearing all of it spares keeping a list of them. With cgo on
// Linux, os.Clearenv (syscall.Clearenv) empties libc's environment too, by
// clearenv(3) (elsewhere by unsetenv(3) of each variable), which is what
// getenv(3) in an NSS module reads.
func scrubEnv() {
	os.Clearenv()
}

// isUnsafeEnv reports whether name is in unsafeEnv.
func isUnsafeEnv(name string) bool {
	for _, unsafe := range unsafeEnv {
		if prefix, ok := strings.CutSuffix(unsafe, "*"); ok && strings.HasPrefix(name, prefix) || unsafe == name {
			return true
		}
	}
	return false
}

// readPAMRequest reads the PAM items that pam_exec exported to us.
//
// pam_exec builds the helper's environment from the PAM environment (which
// pam_env and other modules may fill from user-controlled files) and then
// appends the PAM items. A user who plants PAM_USER=root in the PAM environment
// therefore produces two PAM_USER entries. The Go runtime keeps the first of
// duplicates (os.Getenv and os.Environ alike), which is the user's, so we read
// the untouched block in /proc/self/environ and take the last entry.
func readPAMRequest() (hook.Request, error) {
	raw, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		return hook.Request{}, fmt.Errorf("reading the PAM environment: %w", err)
	}
	return parsePAMEnviron(strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")), nil
}

// parsePAMEnviron picks the PAM items out of an environment block, the last
// entry of each name winning, and the names of unsafeEnv it sets. An entry
// without "=" sets nothing, but still counts as unsafe: there is no reason
// for it to be there.
func parsePAMEnviron(environ []string) hook.Request {
	var req hook.Request
	for _, entry := range environ {
		name, value, isSet := strings.Cut(entry, "=")
		item := pamItem(&req, name)
		switch {
		case item != nil && isSet:
			*item = value
		case isUnsafeEnv(name) && !slices.Contains(req.Unsafe, name):
			req.Unsafe = append(req.Unsafe, name)
		}
	}
	return req
}

// pamItem returns the field of req that holds the PAM item name, nil for
// any other name.
func pamItem(req *hook.Request, name string) *string {
	switch name {
	case "PAM_TYPE":
		return &req.Type
	case "PAM_USER":
		return &req.User
	case "PAM_SERVICE":
		return &req.Service
	case "PAM_TTY":
		return &req.TTY
	case "PAM_RHOST":
		return &req.RHost
	}
	return nil
}
