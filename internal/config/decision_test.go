package config

import (
	"testing"

	"github.com/netns-session/netns-session/internal/netns"
)

func TestDecisionTargetAndDropIn(t *testing.T) {
	tests := []struct {
		name       string
		decision   Decision
		wantTarget string
		wantDropIn bool
		wantName   string
	}{
		{name: "named netns", decision: Decision{Netns: netnsFromSpec("ns0")}, wantTarget: "/run/netns/ns0", wantDropIn: true, wantName: "ns0"},
		{name: "path", decision: Decision{Netns: netnsFromSpec("/srv/netns/bob")}, wantTarget: "/srv/netns/bob", wantDropIn: true},
		{name: "host", decision: Decision{Netns: netnsFromSpec("-")}, wantTarget: netns.HostPath, wantDropIn: false},
		{name: "keep", decision: Decision{Keep: true}, wantTarget: "", wantDropIn: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.decision.Target(); got != tt.wantTarget {
				t.Errorf("Target() = %q, want %q", got, tt.wantTarget)
			}
			if got := tt.decision.NeedsDropIn(); got != tt.wantDropIn {
				t.Errorf("NeedsDropIn() = %t, want %t", got, tt.wantDropIn)
			}
			if got := tt.decision.Netns.Name(); got != tt.wantName {
				t.Errorf("Netns.Name() = %q, want %q", got, tt.wantName)
			}
		})
	}
}
