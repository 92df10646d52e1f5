package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/netns-session/netns-session/internal/netns"
)

// TestNetnsRefusesBadArguments checks the arguments before anything touches
// /run/netns, so it runs safely anywhere.
func TestNetnsRefusesBadArguments(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr error
		mention string
	}{
		{"add without a name", []string{"add"}, nil, "takes one NAME"},
		{"add with two names", []string{"add", "a", "b"}, nil, "takes one NAME"},
		{"add of a path", []string{"add", "../etc"}, netns.ErrInvalidName, "../etc"},
		{"del of a dot", []string{"del", "."}, netns.ErrInvalidName, `"."`},
		{"list with a name", []string{"list", "ns0"}, nil, "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newApp().Run(append([]string{"netns-session", "netns"}, tt.args...))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}
