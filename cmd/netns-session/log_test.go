package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

func TestEventLogRecords(t *testing.T) {
	tests := []struct {
		name       string
		debug      bool
		journalErr error
		log        func(l *eventLog)
		wantSent   []string // messages the journal got
		wantFields map[string]string
		wantStderr string
	}{
		{
			name: "info goes to the journal with context and extra fields",
			log: func(l *eventLog) {
				l.set("USER", "alice")
				l.Info("placed", map[string]string{"NETNS": "/run/netns/ns0", "EMPTY": ""})
			},
			wantSent:   []string{"placed"},
			wantFields: map[string]string{"NETNS_SESSION_USER": "alice", "NETNS_SESSION_NETNS": "/run/netns/ns0", "SYSLOG_IDENTIFIER": "netns-session"},
		},
		{
			name:     "debug records only with debug on",
			log:      func(l *eventLog) { l.Debugf("step %d", 1) },
			wantSent: nil,
		},
		{
			name:     "debug on",
			debug:    true,
			log:      func(l *eventLog) { l.Debugf("step %d", 1) },
			wantSent: []string{"step 1"},
		},
		{
			name:       "no journal: stderr, control characters quoted",
			journalErr: errors.New("no socket"),
			log: func(l *eventLog) {
				l.set("RHOST", "evil\nhost")
				l.Error("denied", nil)
			},
			wantStderr: "netns-session: denied rhost=\"evil\\nhost\"\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent []string
			var fields map[string]string
			var stderr bytes.Buffer
			l := newEventLog(tt.debug)
			l.stderr = &stderr
			l.send = func(msg string, _ journal.Priority, vars map[string]string) error {
				if tt.journalErr != nil {
					return tt.journalErr
				}
				sent = append(sent, msg)
				fields = vars
				return nil
			}
			tt.log(l)
			if strings.Join(sent, "|") != strings.Join(tt.wantSent, "|") {
				t.Errorf("journal got %q, want %q", sent, tt.wantSent)
			}
			for k, v := range tt.wantFields {
				if fields[k] != v {
					t.Errorf("field %s = %q, want %q", k, fields[k], v)
				}
			}
			if _, ok := fields["NETNS_SESSION_EMPTY"]; ok {
				t.Errorf("empty field was sent")
			}
			if stderr.String() != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestEventLogFileLine(t *testing.T) {
	var file bytes.Buffer
	l := newEventLog(false)
	l.send = func(string, journal.Priority, map[string]string) error { return nil }
	l.file = &file
	l.set("USER", "alice")
	l.Info("placed", map[string]string{"ACTION": "joined"})
	line := file.String()
	if !strings.Contains(line, " netns-session[") || !strings.HasSuffix(line, `]: placed action="joined" user="alice"`+"\n") {
		t.Errorf("log file line = %q", line)
	}
}
