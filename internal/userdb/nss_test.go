package userdb

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/netns-session/netns-session/internal/config"
)

func TestNSSLookupUser(t *testing.T) {
	tests := []struct {
		name    string
		want    *config.User
		wantErr error
	}{
		{"root", &config.User{Name: "root", UID: 0, GID: 0}, nil},
		{"no-such-user-netns-session", nil, config.ErrUnknownUser},
		{"", nil, config.ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := System().LookupUser(tt.name)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.want != nil && *u != *tt.want {
				t.Errorf("user = %+v, want %+v", u, tt.want)
			}
		})
	}
}

func TestNSSLookupUID(t *testing.T) {
	tests := []struct {
		name    string
		uid     uint32
		want    *config.User
		wantErr error
	}{
		{"root", 0, &config.User{Name: "root", UID: 0, GID: 0}, nil},
		// (uid_t)-2, which no test system gives anyone.
		{"unassigned", 4294967294, nil, config.ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := System().LookupUID(tt.uid)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.want != nil && *u != *tt.want {
				t.Errorf("user = %+v, want %+v", u, tt.want)
			}
		})
	}
}

func TestNSSLookupGroup(t *testing.T) {
	g, err := System().LookupGroup("root")
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "root" || g.GID != 0 {
		t.Errorf("group = %+v, want root with gid 0", g)
	}
	if _, err := System().LookupGroup("no-such-group-netns-session"); !errors.Is(err, config.ErrUnknownGroup) {
		t.Errorf("err = %v, want ErrUnknownGroup", err)
	}
}

// The member list must match what /etc/group says for every group that
// lists members there (NSS "files" comes first on every test system).
func TestNSSGroupMembersMatchEtcGroup(t *testing.T) {
	f, err := os.Open("/etc/group")
	if err != nil {
		t.Skipf("no /etc/group: %v", err)
	}
	defer f.Close()
	checked := 0
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Split(scanner.Text(), ":")
		if len(fields) != 4 || fields[3] == "" || strings.HasPrefix(fields[0], "+") {
			continue
		}
		t.Run(fields[0], func(t *testing.T) {
			g, err := System().LookupGroup(fields[0])
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Split(fields[3], ","); !slices.Equal(g.Members, want) {
				t.Errorf("members = %q, want %q", g.Members, want)
			}
			if gid, _ := strconv.Atoi(fields[2]); g.GID != uint32(gid) {
				t.Errorf("gid = %d, want %s", g.GID, fields[2])
			}
		})
		checked++
	}
	if checked == 0 {
		t.Skip("no group in /etc/group lists members")
	}
}

func TestNSSGroupIDs(t *testing.T) {
	u, err := System().LookupUser("root")
	if err != nil {
		t.Fatal(err)
	}
	gids, err := System().GroupIDs(u)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(gids, 0) {
		t.Errorf("groups of root = %v, want the primary group 0 among them", gids)
	}
}

// BenchmarkNSSLookupUser is the price of one user line's lookup through the
// host's NSS, which a login whose UID's name has no line pays once per user
// line before the one of its UID: a name NSS knows and one it does not.
func BenchmarkNSSLookupUser(b *testing.B) {
	for _, name := range []string{"root", "no-such-user-netns-session"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := System().LookupUser(name); err != nil && !errors.Is(err, config.ErrUnknownUser) {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNSSLookupUID is the price of the lookup of a UID's owner through
// the host's NSS, which every login pays once under a config with user or
// group lines.
func BenchmarkNSSLookupUID(b *testing.B) {
	for _, uid := range []uint32{0, 4294967294} {
		b.Run(strconv.FormatUint(uint64(uid), 10), func(b *testing.B) {
			for b.Loop() {
				if _, err := System().LookupUID(uid); err != nil && !errors.Is(err, config.ErrUnknownUser) {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestWithRecordBuffer(t *testing.T) {
	tests := []struct {
		name      string
		needed    int // buffer size the lookup needs
		errno     syscall.Errno
		wantFound bool
		wantErr   string
		wantCalls int
	}{
		{"fits", minRecordBuffer, 0, true, "", 1},
		{"grows on ERANGE", 100_000, 0, true, "", 8}, // 1 KiB doubled to 128 KiB
		{"source failure", minRecordBuffer, syscall.EIO, false, "user database unavailable: input/output error (EIO)", 1},
		{"ENOENT is a source that is down, not a miss", minRecordBuffer, syscall.ENOENT, false, "user database unavailable: no such file or directory (ENOENT)", 1},
		{"gives up", 2 * maxRecordBuffer, 0, false, "record larger than 33554432 bytes", 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			found, err := withRecordBuffer(func(buf []byte) (bool, syscall.Errno) {
				calls++
				if len(buf) < tt.needed {
					return false, syscall.ERANGE
				}
				return tt.errno == 0, tt.errno
			})
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if found != tt.wantFound || gotErr != tt.wantErr {
				t.Errorf("found %v, err %v; want %v, %q", found, err, tt.wantFound, tt.wantErr)
			}
			// The errno is text: a source that is down (ENOENT) must not
			// read as fs.ErrNotExist, which callers take for a thing gone.
			if tt.errno != 0 && (!errors.Is(err, config.ErrSourceUnavailable) || errors.Is(err, tt.errno) || errors.Is(err, fs.ErrNotExist)) {
				t.Errorf("err %v: want it to match ErrSourceUnavailable, not %v nor fs.ErrNotExist", err, tt.errno)
			}
			if calls != tt.wantCalls {
				t.Errorf("%d lookups, want %d", calls, tt.wantCalls)
			}
		})
	}
}

// TestRecordAnswerOfReadsOnlyZeroWithoutResultAsMissing is the rule glibc's
// _r lookups follow: a miss is 0 with a NULL result, anything else with an
// errno is a source that failed.
func TestRecordAnswerOfReadsOnlyZeroWithoutResultAsMissing(t *testing.T) {
	tests := []struct {
		ret   syscall.Errno
		found bool
		want  recordAnswer
	}{
		{0, true, recordFound},
		{0, false, recordMissing},
		{syscall.ERANGE, false, recordTooBig},
		{syscall.ENOENT, false, recordFailed}, // nslcd or sssd unreachable, file missing
		{syscall.EAGAIN, false, recordFailed},
		{syscall.EIO, false, recordFailed},
		{syscall.ECONNREFUSED, false, recordFailed},
		{syscall.EINVAL, false, recordFailed},
		{syscall.ENOENT, true, recordFailed}, // never from glibc; not trusted
	}
	for _, tt := range tests {
		ret := "0"
		if tt.ret != 0 {
			ret = errnoName(tt.ret)
		}
		t.Run(fmt.Sprintf("ret=%s found=%t", ret, tt.found), func(t *testing.T) {
			if got := recordAnswerOf(tt.ret, tt.found); got != tt.want {
				t.Errorf("recordAnswerOf(%d, %t) = %d, want %d", tt.ret, tt.found, got, tt.want)
			}
		})
	}
}

// nssChildEnv makes the test binary run the child half of
// TestNSSMissingSourceIsUnavailable.
const nssChildEnv = "NETNS_SESSION_TEST_NSS_CHILD"

// TestNSSMissingSourceIsUnavailable runs real glibc lookups against a
// source that fails: in a child with its own mount namespace and a tmpfs on
// /etc whose nsswitch.conf names only "files", the files module finds no
// /etc/passwd or /etc/group and fails with ENOENT, as libnss-ldapd and the
// sss client do when their daemon is down. Then, with the files in place, a
// name they lack is a plain miss.
func TestNSSMissingSourceIsUnavailable(t *testing.T) {
	if os.Getenv(nssChildEnv) != "" {
		nssChild(t)
		return
	}
	if os.Getuid() != 0 {
		t.Skip("needs root: mounts a private /etc in a new mount namespace")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNSSMissingSourceIsUnavailable$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), nssChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestNSSMissingSourceIsUnavailable") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func nssChild(t *testing.T) {
	for _, dir := range []string{"/etc", "/run/nscd", "/var/run/nscd"} {
		if _, err := os.Stat(dir); err != nil {
			continue // no nscd to answer from its cache
		}
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
			t.Fatalf("mounting a tmpfs on %s: %v", dir, err)
		}
	}
	if err := os.WriteFile("/etc/nsswitch.conf", []byte("passwd: files\ngroup: files\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lookups := []struct {
		name   string
		lookup func() error
	}{
		{"LookupUser", func() error { _, err := System().LookupUser("root"); return err }},
		{"LookupUID", func() error { _, err := System().LookupUID(0); return err }},
		{"LookupGroup", func() error { _, err := System().LookupGroup("root"); return err }},
	}
	for _, l := range lookups {
		t.Run(l.name+" with the source down", func(t *testing.T) {
			err := l.lookup()
			if !errors.Is(err, config.ErrSourceUnavailable) || !strings.HasSuffix(err.Error(), "(ENOENT)") {
				t.Errorf("err = %v, want ErrSourceUnavailable with ENOENT", err)
			}
			if errors.Is(err, fs.ErrNotExist) {
				t.Errorf("err = %v: a source that is down reads as fs.ErrNotExist", err)
			}
			if errors.Is(err, config.ErrUnknownUser) || errors.Is(err, config.ErrUnknownGroup) {
				t.Errorf("err = %v: a source that is down read as not found", err)
			}
		})
	}
	if err := os.WriteFile("/etc/passwd", []byte("other:x:5:5::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/group", []byte("other:x:5:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	misses := []struct {
		name   string
		lookup func() error
		want   error
	}{
		{"LookupUser", func() error { _, err := System().LookupUser("root"); return err }, config.ErrUnknownUser},
		{"LookupUID", func() error { _, err := System().LookupUID(0); return err }, config.ErrUnknownUser},
		{"LookupGroup", func() error { _, err := System().LookupGroup("root"); return err }, config.ErrUnknownGroup},
	}
	for _, l := range misses {
		t.Run(l.name+" with the source up", func(t *testing.T) {
			if err := l.lookup(); !errors.Is(err, l.want) || errors.Is(err, config.ErrSourceUnavailable) {
				t.Errorf("err = %v, want %v", err, l.want)
			}
		})
	}
	if u, err := System().LookupUser("other"); err != nil || u.UID != 5 {
		t.Errorf("LookupUser(other) = %+v, %v; want uid 5", u, err)
	}
}
