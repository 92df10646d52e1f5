package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/config/configtest"
	"github.com/netns-session/netns-session/internal/units"
)

func TestLingerRecordRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "lingering")
	want := lingerRecord{"dave": 1004, "erin": 2001, "ali": 1001, "alice": 1001}
	if err := writeLingerRecord(context.Background(), path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readLingerRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("read back %v, want %v", got, want)
	}
	data, _ := os.ReadFile(path)
	if lines := strings.Split(strings.TrimPrefix(string(data), recordHeader), "\n"); !slices.Equal(lines, []string{"1001 ali", "1001 alice", "1004 dave", "2001 erin", ""}) {
		t.Errorf("record lines %q, want them by UID then name", lines)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("files beside the record: %v, want only the record (no temporary copy)", entries)
	}
}

func TestReadLingerRecord(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" for no file
		want    lingerRecord
		wantErr string
	}{
		{name: "missing", want: lingerRecord{}},
		{name: "comments and blank lines", content: "# x\n\n1004 dave\n  2001   erin  \n", want: lingerRecord{"dave": 1004, "erin": 2001}},
		{name: "root is never held", content: "0 root\n1004 dave\n", want: lingerRecord{"dave": 1004}, wantErr: "root (uid 0) is never held"},
		{name: "bad lines are errors, the others count", content: "1004 dave\nx erin\n2002\n1005 a b\n", want: lingerRecord{"dave": 1004}, wantErr: `parsing uid "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lingering")
			if tt.content != "" {
				writeFile(t, path, tt.content)
			}
			got, err := readLingerRecord(path)
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("readLingerRecord() error = %v, want %q", err, tt.wantErr)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("readLingerRecord() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNextLingerRecord(t *testing.T) {
	found := func(name string, uid uint32) lookup { return lookup{user: &config.User{Name: name, UID: uid}} }
	old := lingerRecord{"dave": 1004, "erin": 2001, "gone": 3000, "left": 1005}
	lingering := []string{"alice", "dave", "erin", "gone", "root", "frank"}
	lookups := map[string]lookup{
		"alice": found("alice", 1001),
		"dave":  found("dave", 1014), // renumbered
		"erin":  {err: config.ErrSourceUnavailable},
		"gone":  {err: fmt.Errorf("looking up user %q: %w", "gone", config.ErrUnknownUser)},
		"root":  found("root", 0),
		"frank": {err: config.ErrSourceUnavailable}, // never recorded before
	}
	got := nextLingerRecord(old, lingering, lookups)
	want := lingerRecord{"alice": 1001, "dave": 1014, "erin": 2001}
	if !maps.Equal(got, want) {
		t.Errorf("nextLingerRecord() = %v, want %v: resolved users as resolved, failed ones kept, unknown, unlingered users and root dropped", got, want)
	}
}

// TestSyncRecordsLingeringUsers runs Sync over a linger directory: the
// record lists the lingering users it resolved, keeps one it could not look
// up, never lists root, and is not rewritten when nothing changed.
func TestSyncRecordsLingeringUsers(t *testing.T) {
	s := newTestSystem(t)
	users := testUsers()
	users.AddUser(config.User{Name: "root", UID: 0})
	users.AddUser(config.User{Name: "erin", UID: 2001, GID: 2001})
	for _, name := range []string{"alice", "carol", "erin", "root", "ghost"} {
		s.linger(t, name)
	}
	cfg := parseConfig(t, "@lab "+present+"\n")
	if _, err := Sync(context.Background(), cfg, users, s.m, s.opts()); err != nil {
		t.Fatal(err)
	}
	want := lingerRecord{"alice": 1001, "carol": 1003, "erin": 2001}
	if got, err := readLingerRecord(s.recordPath); err != nil || !maps.Equal(got, want) {
		t.Fatalf("record = %v, %v; want %v", got, err, want)
	}
	before := mustStat(t, s.recordPath)

	if _, err := Sync(context.Background(), cfg, users, s.m, s.opts()); err != nil {
		t.Fatal(err)
	}
	if after := mustStat(t, s.recordPath); !os.SameFile(before, after) || after.ModTime() != before.ModTime() {
		t.Error("record rewritten by a sync that changed nothing")
	}

	// The directory is down for erin: her entry stays.
	users.Down = map[string]bool{"erin": true}
	_, err := Sync(context.Background(), cfg, users, s.m, s.opts())
	if !errors.Is(err, config.ErrSourceUnavailable) {
		t.Errorf("Sync() error = %v, want erin's lookup failure", err)
	}
	if got, _ := readLingerRecord(s.recordPath); !maps.Equal(got, want) {
		t.Errorf("record after erin's lookup failed = %v, want %v", got, want)
	}
}

func mustStat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// heldFirst is a hook of a directory that fails the test when it is asked
// anything before every recorded user's manager is held and systemd has
// reloaded.
type heldFirst struct {
	t     *testing.T
	s     *testSystem
	held  []uint32
	calls int
}

func (h *heldFirst) check(l configtest.Lookup) error {
	h.t.Helper()
	h.calls++
	dropIns := h.s.dropIns(h.t)
	for _, uid := range h.held {
		if dropIns[uid] != units.NoNetns {
			h.t.Errorf("%s asked of NSS while uid %d is not held (drop-ins %v)", l, uid, dropIns)
		}
	}
	if h.s.sd.reloads == 0 {
		h.t.Errorf("%s asked of NSS before systemd reloaded the holds", l)
	}
	return nil
}

// TestBootHoldsRecordedUsersBeforeAnyLookup is the boot-time sync: every
// recorded lingering user's manager is held, and systemd reloaded, before
// NSS is asked anything; then the sync replaces each hold with what the
// policy wants, keeps the hold of a user it cannot resolve, and starts no
// manager itself (logind does, next).
func TestBootHoldsRecordedUsersBeforeAnyLookup(t *testing.T) {
	s := newTestSystem(t)
	users := testUsers()
	users.AddUser(config.User{Name: "erin", UID: 2001, GID: 2001})
	users.Down = map[string]bool{"erin": true} // her directory is down
	for _, name := range []string{"bob", "dave", "erin"} {
		s.linger(t, name)
	}
	writeFile(t, s.recordPath, "1002 bob\n1004 dave\n2001 erin\n")
	s.writeDropIn(t, "alice", 1001, present) // placed by a login: no hold needed
	hook := &heldFirst{t: t, s: s, held: []uint32{1002, 1004, 2001}}
	users.Hook = hook.check
	opts := s.opts()
	opts.Boot = true

	held, err := HoldLingering(context.Background(), s.m, opts)
	if err != nil {
		t.Fatal(err)
	}
	var heldUIDs []uint32
	for _, c := range held.Changes {
		heldUIDs = append(heldUIDs, c.UID)
	}
	if !slices.Equal(heldUIDs, hook.held) || s.sd.reloads != 1 || !held.Reloaded {
		t.Errorf("held %v with %d reloads, want %v with one", heldUIDs, s.sd.reloads, hook.held)
	}
	_, err = Sync(context.Background(), parseConfig(t, "@lab "+present+"\nalice "+present+"\n"), users, s.m, opts)
	if !errors.Is(err, config.ErrSourceUnavailable) {
		t.Errorf("Sync() error = %v, want erin's lookup failure", err)
	}
	if hook.calls == 0 {
		t.Error("the directory was never asked: the test proves nothing")
	}
	// bob and carol are in lab; dave is unmapped; erin's policy is unknown.
	want := map[uint32]string{1001: present, 1002: present, 1003: present, 2001: units.NoNetns}
	if got := s.dropIns(t); !maps.Equal(got, want) {
		t.Errorf("drop-ins after the boot sync = %v, want %v", got, want)
	}
	if len(s.sd.started) != 0 {
		t.Errorf("the boot-time sync started %v; logind starts lingering managers after it", s.sd.started)
	}
}

// TestSyncStartsReleasedLingeringManagers: once a sync knows the policy of a
// lingering user whose manager a hold kept off, it starts the manager, since
// logind tried only at boot; a running manager, a user who does not linger
// and a user still unknown are left alone.
func TestSyncStartsReleasedLingeringManagers(t *testing.T) {
	s := newTestSystem(t)
	users := testUsers()
	erin := config.User{Name: "erin", UID: 2001, GID: 2001}
	users.AddUser(erin)
	for _, name := range []string{"alice", "bob", "dave", "erin"} {
		s.linger(t, name)
	}
	for _, u := range append(testUserList, erin) {
		s.writeDropIn(t, u.Name, u.UID, units.NoNetns)
	}
	s.runManager(t, 1002, 4242) // bob's runs, held since it started
	users.DownGroupLists = map[string]bool{"erin": true}
	cfg := parseConfig(t, "alice "+present+"\n@lab "+present+"\n")

	report, err := Sync(context.Background(), cfg, users, s.m, s.opts())
	if !errors.Is(err, config.ErrSourceUnavailable) {
		t.Errorf("Sync() error = %v, want erin's lookup failure", err)
	}
	// alice is mapped, dave unmapped: both released and started. bob's
	// runs; carol does not linger; erin's policy is unknown.
	want := map[uint32]string{1001: present, 1002: present, 1003: present, 2001: units.NoNetns}
	if got := s.dropIns(t); !maps.Equal(got, want) {
		t.Errorf("drop-ins = %v, want %v", got, want)
	}
	if wantStarted := []string{"user@1001.service", "user@1004.service"}; !slices.Equal(s.sd.started, wantStarted) {
		t.Errorf("started %v, want %v", s.sd.started, wantStarted)
	}
	if !slices.Equal(report.Started, []uint32{1001, 1004}) {
		t.Errorf("report.Started = %v, want [1001 1004]", report.Started)
	}

	s.sd.started = nil
	if _, err := Sync(context.Background(), cfg, users, s.m, s.opts()); !errors.Is(err, config.ErrSourceUnavailable) {
		t.Errorf("second Sync() error = %v", err)
	}
	if len(s.sd.started) != 0 {
		t.Errorf("second sync started %v again", s.sd.started)
	}
}
