package policy

import (
	"fmt"
	"io/fs"
	"maps"
	"syscall"
	"testing"
	"time"

	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/proc"
)

// The fake files of TestResolvConfView, as stat gives them.
var (
	hostResolvConf = proc.FileID{Dev: 8, Ino: 10}
	ns0ResolvConf  = proc.FileID{Dev: 8, Ino: 20}
	oldNs0Conf     = proc.FileID{Dev: 8, Ino: 21} // replaced by rename since
)

// TestResolvConfView reports which resolv.conf the judged process sees,
// beside a verdict that it leaves as it is.
func TestResolvConfView(t *testing.T) {
	alice := userUIDs["alice"]
	tests := []struct {
		name   string
		config string
		pid    int
		seen   proc.FileID // what the process sees at /etc/resolv.conf
		// seenErr, ns0Err and hostErr are what looking at it, at
		// /etc/netns/ns0/resolv.conf and at the host's fail with.
		seenErr, ns0Err, hostErr error
		hookJudge                bool // a judge without SeenFile, as the PAM hook's
		verdict                  Verdict
		want                     ResolvConfView
		wantErr                  bool
	}{
		{name: "the namespace's file", config: "alice ns0\n", pid: pidInNs0, seen: ns0ResolvConf, verdict: Compliant, want: ResolvConfNamespace},
		{name: "the host's file, in the right namespace: reported, no violation", config: "alice ns0\n", pid: pidInNs0, seen: hostResolvConf,
			verdict: Compliant, want: ResolvConfHost},
		{name: "a replaced version of the namespace's file", config: "alice ns0\n", pid: pidInNs0, seen: oldNs0Conf, verdict: Compliant, want: ResolvConfOther},
		{name: "no file at all", config: "alice ns0\n", pid: pidInNs0, seenErr: fmt.Errorf("/etc/resolv.conf: %w", proc.ErrNoFile),
			verdict: Compliant, want: ResolvConfOther},
		{name: "another file while the host has none", config: "alice ns0\n", pid: pidInNs0, seen: oldNs0Conf,
			hostErr: fmt.Errorf("stating /etc/resolv.conf: %w", fs.ErrNotExist), verdict: Compliant, want: ResolvConfOther},
		{name: "a violation sees the host's", config: "alice ns0\n", pid: pidInHost, seen: hostResolvConf, verdict: Violation, want: ResolvConfHost},
		{name: "the process's view unreadable", config: "alice ns0\n", pid: pidInNs0, seenErr: fmt.Errorf("stating /proc/200/root: %w", syscall.EACCES),
			verdict: Compliant, want: ResolvConfUnknown, wantErr: true},
		{name: "the namespace's file unreadable", config: "alice ns0\n", pid: pidInNs0, seen: ns0ResolvConf,
			ns0Err: fmt.Errorf("stating /etc/netns/ns0/resolv.conf: %w", syscall.EACCES), verdict: Compliant, want: ResolvConfUnknown, wantErr: true},
		{name: "the host's file unreadable", config: "alice ns0\n", pid: pidInNs0, seen: oldNs0Conf,
			hostErr: fmt.Errorf("stating /etc/resolv.conf: %w", syscall.EACCES), verdict: Compliant, want: ResolvConfUnknown, wantErr: true},
		{name: "a namespace without a resolv.conf of its own", config: "alice ns0\n", pid: pidInNs0, seen: hostResolvConf,
			ns0Err: fmt.Errorf("stating /etc/netns/ns0/resolv.conf: %w", fs.ErrNotExist), verdict: Compliant, want: ResolvConfNotLooked},
		{name: "a namespace given by path has no /etc directory", config: "alice /run/netns/ns0\n", pid: pidInNs0, seen: hostResolvConf,
			verdict: Compliant, want: ResolvConfNotLooked},
		{name: "the host namespace", config: "alice -\n", pid: pidInHost, seen: hostResolvConf, verdict: Compliant, want: ResolvConfNotLooked},
		{name: "unmapped = keep", config: "unmapped = keep\n", pid: pidInNs0, seen: hostResolvConf, verdict: Unconstrained, want: ResolvConfNotLooked},
		{name: "an unreadable namespace is not looked at", config: "alice ns0\n", pid: pidUnreadable, seen: hostResolvConf, verdict: Unknown, want: ResolvConfNotLooked},
		{name: "the PAM hook's judge looks at nothing", config: "alice ns0\n", pid: pidInNs0, seen: hostResolvConf, hookJudge: true,
			verdict: Compliant, want: ResolvConfNotLooked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := fakeJudge(t, tt.config)
			j.SeenFile = func(pid int, path string) (proc.FileID, error) {
				if pid != tt.pid || path != "/etc/resolv.conf" {
					return proc.FileID{}, fmt.Errorf("looked at %s of process %d", path, pid)
				}
				return tt.seen, tt.seenErr
			}
			j.StatFile = func(path string) (proc.FileID, error) {
				switch path {
				case "/etc/netns/ns0/resolv.conf":
					return ns0ResolvConf, tt.ns0Err
				case "/etc/resolv.conf":
					return hostResolvConf, tt.hostErr
				}
				return proc.FileID{}, fmt.Errorf("stating %s: %w", path, fs.ErrNotExist)
			}
			if tt.hookJudge {
				j.SeenFile, j.StatFile = nil, nil
			}
			f := j.Process(alice, "alice", tt.pid)
			if f.Verdict != tt.verdict {
				t.Errorf("verdict %v, want %v: %s", f.Verdict, tt.verdict, f.Reason)
			}
			if f.ResolvConf != tt.want || (f.ResolvConfErr != nil) != tt.wantErr {
				t.Errorf("view %q (%v), want %q with error %t", f.ResolvConf, f.ResolvConfErr, tt.want, tt.wantErr)
			}
			fields := f.Fields(map[string]string{})
			wantFields := map[string]string{}
			if tt.want != ResolvConfNotLooked {
				wantFields["RESOLV_CONF"] = tt.want.String()
			}
			if tt.wantErr {
				wantFields["RESOLV_CONF_ERROR"] = f.ResolvConfErr.Error()
			}
			got := maps.Clone(fields)
			for k := range got {
				if k != "RESOLV_CONF" && k != "RESOLV_CONF_ERROR" {
					delete(got, k)
				}
			}
			if !maps.Equal(got, wantFields) {
				t.Errorf("journal fields %v, want %v", got, wantFields)
			}
		})
	}
}

// TestLeaderGoneWhileLookedAtDropsTheView: what was read of a leader that
// turns out gone may have been another process's, its view too.
func TestLeaderGoneWhileLookedAtDropsTheView(t *testing.T) {
	j := fakeJudge(t, "alice ns0\n")
	j.StatFile = func(string) (proc.FileID, error) { return ns0ResolvConf, nil }
	j.SeenFile = func(int, string) (proc.FileID, error) { return ns0ResolvConf, nil }
	j.Pin = func(pid int) (Pinned, error) {
		return &fakeProcess{pid: pid, cgroup: "/system.slice/ssh.service", exited: true}, nil
	}
	f, leader := j.Session(sessionOfAlice("active", time.Hour, func(s *logind.Session) { s.Leader = pidInNs0 }))
	leader.Release()
	if f.Verdict != Gone || f.ResolvConf != ResolvConfNotLooked {
		t.Errorf("verdict %v (%s), view %q; want gone and no view", f.Verdict, f.Reason, f.ResolvConf)
	}
}
