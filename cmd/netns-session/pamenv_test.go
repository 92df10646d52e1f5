package main

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/netns-session/netns-session/internal/hook"
)

func TestParsePAMEnviron(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    hook.Request
	}{
		{
			name:    "pam_exec items",
			environ: []string{"PATH=/usr/bin", "PAM_RHOST=10.0.0.1", "PAM_SERVICE=sshd", "PAM_TTY=ssh", "PAM_USER=alice", "PAM_TYPE=open_session"},
			want:    hook.Request{Type: "open_session", User: "alice", Service: "sshd", TTY: "ssh", RHost: "10.0.0.1"},
		},
		{
			name:    "planted items lose to the ones pam_exec appends",
			environ: []string{"PAM_USER=root", "PAM_SERVICE=systemd-user", "PAM_TYPE=close_session", "PAM_SERVICE=sshd", "PAM_USER=alice", "PAM_TYPE=open_session"},
			want:    hook.Request{Type: "open_session", User: "alice", Service: "sshd"},
		},
		{
			name:    "prefix of another name does not match",
			environ: []string{"PAM_USERX=mallory", "PAM_USER=alice"},
			want:    hook.Request{User: "alice"},
		},
		{
			name:    "empty value is kept",
			environ: []string{"PAM_TTY=/dev/pts/1", "PAM_TTY="},
			want:    hook.Request{},
		},
		{name: "nothing set", environ: nil, want: hook.Request{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parsePAMEnviron(tt.environ); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parsePAMEnviron() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParsePAMEnvironFindsUnsafeVariables proves that every variable that
// would steer the loader, libc or NSS in a process running as root is found
// in the environment pam_exec hands over, and nothing else.
func TestParsePAMEnvironFindsUnsafeVariables(t *testing.T) {
	items := []string{"PAM_SERVICE=sshd", "PAM_USER=alice", "PAM_TYPE=open_session"}
	tests := []struct {
		name    string
		planted []string
		want    []string
	}{
		{name: "clean", planted: []string{"PATH=/usr/bin", "LANG=C.UTF-8", "HOME=/home/alice"}},
		{name: "pam_tmpdir's TMPDIR is fine", planted: []string{"TMPDIR=/tmp/user/1001"}},
		{name: "LD_PRELOAD", planted: []string{"LD_PRELOAD=/nonexistent"}, want: []string{"LD_PRELOAD"}},
		{name: "LD_AUDIT", planted: []string{"LD_AUDIT=/home/alice/a.so"}, want: []string{"LD_AUDIT"}},
		{name: "any LD_ variable", planted: []string{"LD_WHATEVER_COMES_NEXT=1"}, want: []string{"LD_WHATEVER_COMES_NEXT"}},
		{name: "GCONV_PATH", planted: []string{"GCONV_PATH=/home/alice"}, want: []string{"GCONV_PATH"}},
		{name: "GLIBC_TUNABLES", planted: []string{"GLIBC_TUNABLES=glibc.malloc.check=3"}, want: []string{"GLIBC_TUNABLES"}},
		{name: "_SSS_LOOPS", planted: []string{"_SSS_LOOPS=NO"}, want: []string{"_SSS_LOOPS"}},
		{name: "GODEBUG", planted: []string{"GODEBUG=madvdontneed=1"}, want: []string{"GODEBUG"}},
		{
			name:    "every one of glibc's list",
			planted: []string{"GETCONF_DIR=x", "HOSTALIASES=x", "LOCALDOMAIN=x", "LOCPATH=x", "MALLOC_TRACE=x", "NIS_PATH=x", "NLSPATH=x", "RESOLV_HOST_CONF=x", "RES_OPTIONS=x", "TZDIR=x"},
			want:    []string{"GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_TRACE", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TZDIR"},
		},
		{name: "named once however often set", planted: []string{"LD_PRELOAD=/a", "GCONV_PATH=/b", "LD_PRELOAD=/c"}, want: []string{"LD_PRELOAD", "GCONV_PATH"}},
		{name: "empty value", planted: []string{"LD_LIBRARY_PATH="}, want: []string{"LD_LIBRARY_PATH"}},
		{name: "without =", planted: []string{"LD_PRELOAD"}, want: []string{"LD_PRELOAD"}},
		{name: "lower case is another variable", planted: []string{"ld_preload=/x", "gconv_path=/y"}},
		{name: "a longer name is another variable", planted: []string{"GCONV_PATHS=/x", "XGODEBUG=1", "LD=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parsePAMEnviron(append(tt.planted, items...))
			if !reflect.DeepEqual(got.Unsafe, tt.want) {
				t.Errorf("unsafe variables in %q = %q, want %q", tt.planted, got.Unsafe, tt.want)
			}
			if got.User != "alice" || got.Type != "open_session" || got.Service != "sshd" {
				t.Errorf("PAM items read as %+v", got)
			}
		})
	}
}

// TestScrubEnvRemovesWhatSteersLookups checks that nothing the PAM
// environment set is left in the process once the hook looks anyone up:
// neither what steers NSS, libc or a bus, nor anything else.
func TestScrubEnvRemovesWhatSteersLookups(t *testing.T) {
	saved := os.Environ()
	t.Cleanup(func() {
		os.Clearenv()
		for _, entry := range saved {
			name, value, _ := strings.Cut(entry, "=")
			os.Setenv(name, value)
		}
	})
	for _, name := range []string{
		"SYSTEMD_BYPASS_USERDB", "SYSTEMD_ONLY_USERDB", // nss-systemd
		"DBUS_SYSTEM_BUS_ADDRESS", "DBUS_SESSION_BUS_ADDRESS",
		"GCONV_PATH", "LANG", "SOME_FUTURE_VARIABLE",
	} {
		t.Setenv(name, "unix:path=/tmp/not-a-bus")
	}
	scrubEnv()
	if env := os.Environ(); len(env) != 0 {
		t.Errorf("environment left: %q", env)
	}
	for _, name := range []string{"SYSTEMD_BYPASS_USERDB", "SYSTEMD_ONLY_USERDB", "PATH"} {
		if v, set := os.LookupEnv(name); set {
			t.Errorf("%s=%q is still set", name, v)
		}
	}
}
