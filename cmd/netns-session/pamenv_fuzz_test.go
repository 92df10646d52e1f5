package main

import (
	"strings"
	"testing"
)

// FuzzParsePAMEnviron plants any entries in the PAM environment, as pam_env
// may from a user's files, and checks that the items pam_exec appends after
// them are what the hook reads. Its seed corpus is
// testdata/fuzz/FuzzParsePAMEnviron.
func FuzzParsePAMEnviron(f *testing.F) {
	f.Fuzz(func(t *testing.T, planted []byte, service, user, typ, tty string) {
		items := []string{service, user, typ, tty}
		for _, v := range items {
			if strings.IndexByte(v, 0) >= 0 {
				t.Skip("an environment entry cannot hold NUL")
			}
		}
		// pam_exec's order: the PAM environment, then PAM_SERVICE,
		// PAM_USER, PAM_TTY, (PAM_RHOST, PAM_RUSER when set) and PAM_TYPE.
		environ := append(strings.Split(string(planted), "\x00"),
			"PAM_SERVICE="+service, "PAM_USER="+user, "PAM_TTY="+tty, "PAM_TYPE="+typ)
		got := parsePAMEnviron(environ)
		if got.Service != service || got.User != user || got.Type != typ || got.TTY != tty {
			t.Errorf("planted %q, appended service %q user %q type %q tty %q: got %+v", planted, service, user, typ, tty, got)
		}
		for _, name := range got.Unsafe {
			if !isUnsafeEnv(name) || !strings.Contains("\x00"+string(planted), "\x00"+name) {
				t.Errorf("planted %q: %q named unsafe", planted, name)
			}
		}
	})
}
