package main

import "testing"

// TestCommandsThatTakeNoArgumentsRefuseThem: each command that takes no
// arguments refuses them, by its name as typed, before it does anything.
func TestCommandsThatTakeNoArgumentsRefuseThem(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"status", "alice"}, `status takes no arguments, got ["alice"]`},
		{[]string{"watch", "alice"}, `watch takes no arguments, got ["alice"]`},
		{[]string{"sync", "alice", "bob"}, `sync takes no arguments, got ["alice" "bob"]`},
		{[]string{"netns", "list", "ns0"}, `netns list takes no arguments, got ["ns0"]`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			err := newApp().Run(append([]string{"netns-session"}, tt.args...))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
