package policy

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/units"
)

// TestFindManagerTellsNoneRunningFromAFailure: a manager not running is no
// error (nothing to judge); a failure to look is one, and so is a PID of 0
// found without ErrNotRunning.
func TestFindManagerTellsNoneRunningFromAFailure(t *testing.T) {
	tests := []struct {
		name    string
		pid     int
		err     error
		wantPID int
		wantErr bool
	}{
		{name: "running", pid: 500, wantPID: 500},
		{name: "not running", err: fmt.Errorf("finding user manager of uid 1000: %w", units.ErrNotRunning)},
		{name: "cannot tell", err: errors.New("reading cgroup.procs: permission denied"), wantErr: true},
		{name: "PID of another PID namespace is no manager-less user", pid: 0, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, err := FindManager(func(uint32) (int, error) { return tt.pid, tt.err }, 1000)
			if pid != tt.wantPID || (err != nil) != tt.wantErr {
				t.Errorf("FindManager = %d, %v; want %d, error %t", pid, err, tt.wantPID, tt.wantErr)
			}
		})
	}
}

// TestSettledAfterManagerSettle: a manager found outside its namespace
// counts once it has stayed out for ManagerSettle, not before.
func TestSettledAfterManagerSettle(t *testing.T) {
	since := time.Now()
	tests := []struct {
		after time.Duration
		want  bool
	}{
		{0, false},
		{ManagerSettle - time.Millisecond, false},
		{ManagerSettle, true},
		{time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.after.String(), func(t *testing.T) {
			if got := Settled(since, since.Add(tt.after)); got != tt.want {
				t.Errorf("Settled after %v = %t, want %t", tt.after, got, tt.want)
			}
		})
	}
}

// TestFindingFields: the journal fields of a finding name the process
// judged only for a session's, and leave unknown identities out.
func TestFindingFields(t *testing.T) {
	host, ns0 := netns.ID{Dev: 4, Ino: 1}, netns.ID{Dev: 4, Ino: 2}
	tests := []struct {
		name string
		f    Finding
		want map[string]string
	}{
		{name: "leader", f: Finding{Verdict: Violation, Expected: "/run/netns/ns0", ExpectedID: ns0, Actual: host, PID: 101},
			want: map[string]string{"VERDICT": "violation", "EXPECTED_NETNS": "/run/netns/ns0", "EXPECTED_NETNS_ID": ns0.String(), "ACTUAL_NETNS_ID": host.String(), "JUDGED": "leader", "JUDGED_PID": "101"}},
		{name: "scope", f: Finding{Verdict: Compliant, Expected: "/run/netns/ns0", ExpectedID: ns0, Actual: ns0, PID: 301, FromScope: true},
			want: map[string]string{"VERDICT": "ok", "EXPECTED_NETNS": "/run/netns/ns0", "EXPECTED_NETNS_ID": ns0.String(), "ACTUAL_NETNS_ID": ns0.String(), "JUDGED": "scope", "JUDGED_PID": "301"}},
		{name: "manager", f: Finding{Verdict: Unconstrained, Actual: host},
			want: map[string]string{"VERDICT": "unconstrained", "EXPECTED_NETNS": "", "ACTUAL_NETNS_ID": host.String()}},
		{name: "unknown", f: Finding{Verdict: Unknown, Reason: "LDAP down"},
			want: map[string]string{"VERDICT": "unknown", "EXPECTED_NETNS": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.f.Fields(map[string]string{})
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Fields = %v, want %v", got, tt.want)
			}
		})
	}
}
