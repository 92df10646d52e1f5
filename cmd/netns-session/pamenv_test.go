package main

import "testing"

func TestParsePAMEnviron(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    pamRequest
	}{
		{
			name:    "pam_exec items",
			environ: []string{"PATH=/usr/bin", "PAM_RHOST=10.0.0.1", "PAM_SERVICE=sshd", "PAM_TTY=ssh", "PAM_USER=alice", "PAM_TYPE=open_session"},
			want:    pamRequest{Type: "open_session", User: "alice", Service: "sshd", TTY: "ssh", RHost: "10.0.0.1"},
		},
		{
			name:    "planted items lose to the ones pam_exec appends",
			environ: []string{"PAM_USER=root", "PAM_SERVICE=systemd-user", "PAM_TYPE=close_session", "PAM_SERVICE=sshd", "PAM_USER=alice", "PAM_TYPE=open_session"},
			want:    pamRequest{Type: "open_session", User: "alice", Service: "sshd"},
		},
		{
			name:    "prefix of another name does not match",
			environ: []string{"PAM_USERX=mallory", "PAM_USER=alice"},
			want:    pamRequest{User: "alice"},
		},
		{
			name:    "empty value is kept",
			environ: []string{"PAM_TTY=/dev/pts/1", "PAM_TTY="},
			want:    pamRequest{},
		},
		{name: "nothing set", environ: nil, want: pamRequest{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parsePAMEnviron(tt.environ); got != tt.want {
				t.Errorf("parsePAMEnviron() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
