package main

import (
	"strings"
	"testing"

	"github.com/netns-session/netns-session/internal/reconcile"
)

func TestPrintSyncReport(t *testing.T) {
	changes := []reconcile.Change{
		{Action: reconcile.Write, UID: 1001, User: "alice", Netns: "/run/netns/ns0", Reason: "user line for alice"},
		{Action: reconcile.Remove, UID: 1004, User: "dave", Reason: "no line matches; unmapped = host"},
	}
	tests := []struct {
		name    string
		report  reconcile.Report
		want    []string
		notWant []string
	}{
		{
			name:    "applied changes",
			report:  reconcile.Report{Users: 3, Changes: changes, Reloaded: true, Warnings: []string{"skipping user \"ghost\""}},
			want:    []string{"write  ", "alice (uid 1001)", "/run/netns/ns0", "remove ", "dave (uid 1004)", "(no drop-in)", "warning: skipping user \"ghost\"", "2 drop-ins of 3 users changed; systemd reloaded"},
			notWant: []string{"would"},
		},
		{
			name:   "dry run",
			report: reconcile.Report{DryRun: true, Users: 3, Changes: changes},
			want:   []string{"would write", "would remove", "dry run: 2 drop-ins of 3 users would change; nothing was changed"},
		},
		{
			name:   "failed reload",
			report: reconcile.Report{Users: 3, Changes: changes[:1]},
			want:   []string{"1 drop-in of 3 users differed; systemd was not reloaded"},
		},
		{
			name:    "nothing to do",
			report:  reconcile.Report{Users: 1},
			want:    []string{"1 user checked; nothing to change"},
			notWant: []string{"write", "remove", "warning"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			printSyncReport(&out, &tt.report)
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out.String())
				}
			}
		})
	}
}
