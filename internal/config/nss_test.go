package config

import (
	"bufio"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestNSSLookupUser(t *testing.T) {
	tests := []struct {
		name    string
		want    *User
		wantErr error
	}{
		{"root", &User{Name: "root", UID: 0, GID: 0}, nil},
		{"no-such-user-netns-session", nil, ErrUnknownUser},
		{"", nil, ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := NSS().LookupUser(tt.name)
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
		want    *User
		wantErr error
	}{
		{"root", 0, &User{Name: "root", UID: 0, GID: 0}, nil},
		// (uid_t)-2, which no test system gives anyone.
		{"unassigned", 4294967294, nil, ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := NSS().LookupUID(tt.uid)
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
	g, err := NSS().LookupGroup("root")
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "root" || g.GID != 0 {
		t.Errorf("group = %+v, want root with gid 0", g)
	}
	if _, err := NSS().LookupGroup("no-such-group-netns-session"); !errors.Is(err, ErrUnknownGroup) {
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
			g, err := NSS().LookupGroup(fields[0])
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
	u, err := NSS().LookupUser("root")
	if err != nil {
		t.Fatal(err)
	}
	gids, err := NSS().GroupIDs(u)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(gids, 0) {
		t.Errorf("groups of root = %v, want the primary group 0 among them", gids)
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
		{"not found", minRecordBuffer, syscall.ENOENT, false, "", 1},
		{"source failure", minRecordBuffer, syscall.EIO, false, "input/output error", 1},
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
			if found != tt.wantFound || errString(err) != tt.wantErr {
				t.Errorf("found %v, err %v; want %v, %q", found, err, tt.wantFound, tt.wantErr)
			}
			if calls != tt.wantCalls {
				t.Errorf("%d lookups, want %d", calls, tt.wantCalls)
			}
		})
	}
}
