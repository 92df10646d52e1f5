package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestParsePAMArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    pamOptions
		wantErr bool
	}{
		{name: "no arguments", want: pamOptions{}},
		{
			name: "pam_netns arguments",
			args: []string{"config=/etc/security/pam_netns.conf", "log=/var/log/netns.log", "debug"},
			want: pamOptions{configPath: "/etc/security/pam_netns.conf", logPath: "/var/log/netns.log", debug: true},
		},
		{name: "later argument wins", args: []string{"--config", "/a", "config=/b"}, want: pamOptions{configPath: "/b"}},
		{
			name: "flags after a pam_netns argument",
			args: []string{"config=/a", "--debug", "--log=/l", "--config", "/b"},
			want: pamOptions{configPath: "/b", logPath: "/l", debug: true},
		},
		{name: "flag without its value", args: []string{"debug", "--config"}, wantErr: true},
		{name: "unknown argument", args: []string{"conf=/x"}, wantErr: true},
		{name: "unknown flag", args: []string{"--verbose"}, wantErr: true},
		{name: "empty value", args: []string{"config="}, wantErr: true},
		{name: "debug with a value", args: []string{"debug=1"}, wantErr: true},
		{name: "relative config=", args: []string{"config=netns-session.conf"}, wantErr: true},
		{name: "relative log=", args: []string{"log=netns.log"}, wantErr: true},
		{name: "relative --config", args: []string{"--config", "etc/netns-session.conf"}, wantErr: true},
		{name: "relative --log=", args: []string{"--log=./netns.log"}, wantErr: true},
		{name: "help flag", args: []string{"--help"}, wantErr: true},
		{name: "help after valid arguments", args: []string{"--config", "/etc/x.conf", "-h"}, wantErr: true},
		{name: "version flag", args: []string{"--version"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePAMArgs(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parsePAMArgs(%q) error = %v, want error %t", tt.args, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("parsePAMArgs(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

// TestPAMLineNeverReachesTheCLI proves that every argv of the hook, help and
// version flags included, runs the hook, where a bad argument is a broken
// config, and never the CLI, which would print help and exit 0: every
// session would open unplaced.
func TestPAMLineNeverReachesTheCLI(t *testing.T) {
	tests := []struct {
		name    string
		argv    []string
		wantPAM bool
		wantErr bool
		want    pamOptions
	}{
		{name: "bare pam", argv: []string{"netns-session", "pam"}, wantPAM: true},
		{
			name:    "pam_netns arguments",
			argv:    []string{"/usr/sbin/netns-session", "pam", "config=/etc/security/pam_netns.conf", "log=/var/log/netns.log", "debug"},
			wantPAM: true,
			want:    pamOptions{configPath: "/etc/security/pam_netns.conf", logPath: "/var/log/netns.log", debug: true},
		},
		{name: "flag", argv: []string{"netns-session", "pam", "--debug"}, wantPAM: true, want: pamOptions{debug: true}},
		{name: "flag after an argument", argv: []string{"netns-session", "pam", "debug", "--config=/x"}, wantPAM: true, want: pamOptions{configPath: "/x", debug: true}},
		{name: "-h", argv: []string{"netns-session", "pam", "-h"}, wantPAM: true, wantErr: true},
		{name: "--help", argv: []string{"netns-session", "pam", "--help"}, wantPAM: true, wantErr: true},
		{name: "help", argv: []string{"netns-session", "pam", "help"}, wantPAM: true, wantErr: true},
		{name: "--config and --help", argv: []string{"netns-session", "pam", "--config", "/etc/x.conf", "--help"}, wantPAM: true, wantErr: true},
		{name: "--version", argv: []string{"netns-session", "pam", "--version"}, wantPAM: true, wantErr: true},
		{name: "-v", argv: []string{"netns-session", "pam", "-v"}, wantPAM: true, wantErr: true},
		{name: "bad argument", argv: []string{"netns-session", "pam", "config="}, wantPAM: true, wantErr: true},
		{name: "relative config", argv: []string{"netns-session", "pam", "config=x.conf"}, wantPAM: true, wantErr: true},
		{name: "help pam is the CLI's", argv: []string{"netns-session", "help", "pam"}},
		{name: "--help is the CLI's", argv: []string{"netns-session", "--help"}},
		{name: "other command", argv: []string{"netns-session", "check"}},
		{name: "no command", argv: []string{"netns-session"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, isPAM, err := pamLineOptions(tt.argv)
			if isPAM != tt.wantPAM || (err != nil) != tt.wantErr {
				t.Fatalf("pamLineOptions(%q) = pam %t, error %v; want pam %t, error %t", tt.argv, isPAM, err, tt.wantPAM, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("pamLineOptions(%q) = %+v, want %+v", tt.argv, got, tt.want)
			}
		})
	}
}

// TestCLIStillHelpsWithThePAMCommand shows that the pam command's help is
// where an administrator looks for it.
func TestCLIStillHelpsWithThePAMCommand(t *testing.T) {
	for _, argv := range [][]string{{"netns-session", "help", "pam"}, {"netns-session", "--help"}} {
		t.Run(strings.Join(argv[1:], " "), func(t *testing.T) {
			var out bytes.Buffer
			app := newApp()
			app.Writer = &out
			if err := app.Run(argv); err != nil {
				t.Fatalf("%q: %v", argv, err)
			}
			if !strings.Contains(out.String(), "pam") || !strings.Contains(out.String(), "run by pam_exec") {
				t.Errorf("%q printed:\n%s", argv, out.String())
			}
		})
	}
}
