package main

import (
	"errors"
	"testing"
)

func TestPAMOptionsWithPAMArgs(t *testing.T) {
	tests := []struct {
		name    string
		flags   pamOptions
		args    []string
		want    pamOptions
		wantErr bool
	}{
		{name: "no arguments", flags: pamOptions{configPath: "/f"}, want: pamOptions{configPath: "/f"}},
		{
			name: "seed arguments",
			args: []string{"config=/etc/security/pam_netns.conf", "log=/var/log/netns.log", "debug"},
			want: pamOptions{configPath: "/etc/security/pam_netns.conf", logPath: "/var/log/netns.log", debug: true},
		},
		{name: "argument overrides flag", flags: pamOptions{configPath: "/a"}, args: []string{"config=/b"}, want: pamOptions{configPath: "/b"}},
		{
			name: "flags after a seed argument",
			args: []string{"config=/a", "--debug", "--log=/l", "--config", "/b"},
			want: pamOptions{configPath: "/b", logPath: "/l", debug: true},
		},
		{name: "flag without its value", args: []string{"debug", "--config"}, wantErr: true},
		{name: "unknown argument", args: []string{"conf=/x"}, wantErr: true},
		{name: "unknown flag", args: []string{"--verbose"}, wantErr: true},
		{name: "empty value", args: []string{"config="}, wantErr: true},
		{name: "debug with a value", args: []string{"debug=1"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.flags.withPAMArgs(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("withPAMArgs(%q) error = %v, want error %t", tt.args, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("withPAMArgs(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestDenyKeepsReasonAndDetail(t *testing.T) {
	cause := errors.New("checking /run/netns/ns0: no such file or directory")
	d := &denial{reason: "network namespace /run/netns/ns0 is not available", err: cause}
	if !errors.Is(d, cause) {
		t.Errorf("denial does not unwrap to its cause")
	}
	if got, want := d.Error(), "network namespace /run/netns/ns0 is not available: checking /run/netns/ns0: no such file or directory"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestPAMLineOptionsSkipsTheCLIOnlyForPAMLineArguments(t *testing.T) {
	tests := []struct {
		name   string
		argv   []string
		want   pamOptions
		wantOK bool
	}{
		{name: "bare pam", argv: []string{"netns-session", "pam"}, wantOK: true},
		{
			name:   "seed arguments",
			argv:   []string{"/usr/sbin/netns-session", "pam", "config=/etc/security/pam_netns.conf", "log=/var/log/netns.log", "debug"},
			want:   pamOptions{configPath: "/etc/security/pam_netns.conf", logPath: "/var/log/netns.log", debug: true},
			wantOK: true,
		},
		{name: "flag", argv: []string{"netns-session", "pam", "--debug"}, want: pamOptions{debug: true}, wantOK: true},
		{name: "flag after an argument", argv: []string{"netns-session", "pam", "debug", "--config=/x"}, want: pamOptions{configPath: "/x", debug: true}, wantOK: true},
		{name: "help", argv: []string{"netns-session", "pam", "help"}},
		{name: "bad argument", argv: []string{"netns-session", "pam", "config="}},
		{name: "other command", argv: []string{"netns-session", "check"}},
		{name: "no command", argv: []string{"netns-session"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := pamLineOptions(tt.argv)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("pamLineOptions(%q) = %+v, %t; want %+v, %t", tt.argv, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
