package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"golang.org/x/sys/unix"
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
				l.Set("USER", "alice")
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
				l.Set("RHOST", "evil\nhost")
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
			l := newEventLog(tt.debug, facilityDaemon)
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
	l := newEventLog(false, facilityDaemon)
	l.send = func(string, journal.Priority, map[string]string) error { return nil }
	l.file = &file
	l.Set("USER", "alice")
	l.Info("placed", map[string]string{"ACTION": "joined"})
	line := file.String()
	if !strings.Contains(line, " netns-session[") || !strings.HasSuffix(line, `]: placed action="joined" user="alice"`+"\n") {
		t.Errorf("log file line = %q", line)
	}
}

// TestEventLogFileIsOnlyARegularFile opens the log= file of the PAM line
// where someone may have put something else: the hook runs as root, so it
// must follow no symlink, never block a login on a FIFO, and write only to a
// regular file of one name.
func TestEventLogFileIsOnlyARegularFile(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.log")
	if err := os.WriteFile(existing, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	symlink := filepath.Join(dir, "symlink.log")
	if err := os.Symlink(victim, symlink); err != nil {
		t.Fatal(err)
	}
	// A hard link to a file of root's (where protected_hardlinks is off).
	hardlink := filepath.Join(dir, "hardlink.log")
	if err := os.Link(victim, hardlink); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.log")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	readFifo := filepath.Join(dir, "read-fifo.log")
	if err := unix.Mkfifo(readFifo, 0o600); err != nil {
		t.Fatal(err)
	}
	reader, err := unix.Open(readFifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(reader)

	tests := []struct {
		name    string
		path    string
		wantErr bool
	}{
		{name: "new file", path: filepath.Join(dir, "new.log")},
		{name: "existing file", path: existing},
		{name: "symlink", path: symlink, wantErr: true},
		{name: "hard link", path: hardlink, wantErr: true},
		{name: "FIFO without a reader", path: fifo, wantErr: true},
		{name: "FIFO with a reader", path: readFifo, wantErr: true},
		{name: "directory", path: dir, wantErr: true},
		{name: "device", path: "/dev/null", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newEventLog(false, facilityDaemon)
			l.send = func(string, journal.Priority, map[string]string) error { return nil }
			done := make(chan error, 1)
			go func() { done <- l.openFile(tt.path) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(2 * time.Second):
				t.Fatalf("openFile(%s) blocked", tt.path)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("openFile(%s) = %v, want error %t", tt.path, err, tt.wantErr)
			}
			if err != nil {
				if l.file != nil {
					t.Errorf("openFile(%s) failed but left a file to write to", tt.path)
				}
				return
			}
			l.Info("placed", nil)
			st, err := os.Lstat(tt.path)
			if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 || st.Size() == 0 {
				t.Errorf("log file %s after a record: %v, %v; want a non-empty regular file, mode 0600", tt.path, st, err)
			}
		})
	}
	if content, _ := os.ReadFile(victim); len(content) != 0 {
		t.Errorf("a record went through the symlink or the hard link: %q", content)
	}
}

// TestEventLogFileOnlyOfItsOwnUser opens a log= file that someone else
// created first, as a user may in /tmp: its owner could read every record,
// so it is refused and left as it was.
func TestEventLogFileOnlyOfItsOwnUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give a file to another user")
	}
	dir := t.TempDir()
	tests := []struct {
		name    string
		uid     int
		mode    os.FileMode
		wantErr bool
	}{
		{name: "root's", uid: 0, mode: 0o600},
		{name: "root's, readable by all", uid: 0, mode: 0o644},
		{name: "another user's", uid: 65534, mode: 0o600, wantErr: true},
		{name: "another user's, writable by all", uid: 65534, mode: 0o666, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".log")
			if err := os.WriteFile(path, []byte("old\n"), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(path, tt.uid, 0); err != nil {
				t.Fatal(err)
			}
			l := newEventLog(false, facilityDaemon)
			l.send = func(string, journal.Priority, map[string]string) error { return nil }
			err := l.openFile(path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("openFile(%s) = %v, want error %t", path, err, tt.wantErr)
			}
			l.Info("placed", nil)
			data, readErr := os.ReadFile(path)
			if readErr != nil {
				t.Fatal(readErr)
			}
			if written := string(data) != "old\n"; written == tt.wantErr || tt.wantErr && l.file != nil {
				t.Errorf("after openFile(%s) = %v and a record: file %q, writer %v", path, err, data, l.file)
			}
		})
	}
}

// TestEventLogKindsCarryFacilityPriorityAndID: the records an administrator
// acts on carry their MESSAGE_ID, those about logins go to authpriv
// whoever logs them (auth.log, secure), and the rest to the log's own
// facility.
func TestEventLogKindsCarryFacilityPriorityAndID(t *testing.T) {
	tests := []struct {
		name         string
		facility     int
		log          func(l *eventLog)
		wantPrio     journal.Priority
		wantFacility string
		wantID       string // "" for none
	}{
		{name: "hook: a login placed", facility: facilityAuthpriv,
			log:      func(l *eventLog) { l.Info("placed", map[string]string{"ACTION": "joined"}) },
			wantPrio: journal.PriInfo, wantFacility: "10"},
		{name: "hook: a login refused", facility: facilityAuthpriv,
			log:      func(l *eventLog) { l.Error("session denied: x", map[string]string{"ACTION": "deny"}) },
			wantPrio: journal.PriErr, wantFacility: "10", wantID: messageDenied},
		{name: "hook: a login refused for a broken config", facility: facilityAuthpriv,
			log:      func(l *eventLog) { l.Alert("session denied: x", map[string]string{"ACTION": "deny"}) },
			wantPrio: journal.PriAlert, wantFacility: "10", wantID: messageDenied},
		{name: "hook: root let in on the host", facility: facilityAuthpriv,
			log: func(l *eventLog) {
				l.Alert("config unusable, letting root in", map[string]string{"ACTION": "root-fallback"})
			},
			wantPrio: journal.PriAlert, wantFacility: "10", wantID: messageRootFallback},
		{name: "hook: root let in unplaced", facility: facilityAuthpriv,
			log:      func(l *eventLog) { l.Error("joining root's session", map[string]string{"ACTION": "root-unplaced"}) },
			wantPrio: journal.PriErr, wantFacility: "10", wantID: messageRootUnplaced},
		{name: "hook: root's session placed after the fallback", facility: facilityAuthpriv,
			log: func(l *eventLog) {
				l.Info("session of root placed on the host network", map[string]string{"ACTION": "root-fallback"})
			},
			wantPrio: journal.PriInfo, wantFacility: "10"},
		{name: "hook: a debug line", facility: facilityAuthpriv,
			log:      func(l *eventLog) { l.Debugf("step") },
			wantPrio: journal.PriDebug, wantFacility: "10"},
		{name: "watcher: a session terminated", facility: facilityDaemon,
			log: func(l *eventLog) {
				l.Warning("terminated", map[string]string{"ACTION": "terminate", "VERDICT": "violation"})
			},
			wantPrio: journal.PriWarning, wantFacility: "10", wantID: messageViolation},
		{name: "watcher: a violation warned about", facility: facilityDaemon,
			log:      func(l *eventLog) { l.Warning("violates", map[string]string{"ACTION": "warn", "VERDICT": "violation"}) },
			wantPrio: journal.PriWarning, wantFacility: "10", wantID: messageViolation},
		{name: "watcher: a termination that failed", facility: facilityDaemon,
			log: func(l *eventLog) {
				l.Error("not terminated", map[string]string{"ACTION": "terminate-failed", "VERDICT": "violation"})
			},
			wantPrio: journal.PriErr, wantFacility: "10", wantID: messageViolation},
		{name: "watcher: a session in place", facility: facilityDaemon,
			log:      func(l *eventLog) { l.Info("ok", map[string]string{"VERDICT": "ok"}) },
			wantPrio: journal.PriInfo, wantFacility: "3"},
		{name: "watcher: a reload refused", facility: facilityDaemon,
			log:      func(l *eventLog) { l.Alert("reloading config: refused", map[string]string{"ACTION": "reload-refused"}) },
			wantPrio: journal.PriAlert, wantFacility: "3", wantID: messageReloadRefused},
		{name: "watcher: a sync", facility: facilityDaemon,
			log:      func(l *eventLog) { l.Info("drop-in written", map[string]string{"ACTION": "sync-write"}) },
			wantPrio: journal.PriInfo, wantFacility: "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []journal.Priority
			var vars map[string]string
			l := newEventLog(true, tt.facility)
			l.send = func(_ string, prio journal.Priority, v map[string]string) error {
				got, vars = append(got, prio), v
				return nil
			}
			tt.log(l)
			if len(got) != 1 || got[0] != tt.wantPrio {
				t.Fatalf("priorities %v, want one record at %d", got, tt.wantPrio)
			}
			if vars["SYSLOG_FACILITY"] != tt.wantFacility {
				t.Errorf("SYSLOG_FACILITY=%q, want %q", vars["SYSLOG_FACILITY"], tt.wantFacility)
			}
			if id, ok := vars["MESSAGE_ID"]; id != tt.wantID || ok != (tt.wantID != "") {
				t.Errorf("MESSAGE_ID=%q (set: %t), want %q", id, ok, tt.wantID)
			}
		})
	}
}

// TestMessageIDsAreDistinctID128s: a MESSAGE_ID is 128 bits in 32
// lowercase hex digits, as journalctl and catalog(7) take it, and names one
// kind of record.
func TestMessageIDsAreDistinctID128s(t *testing.T) {
	seen := map[string]bool{}
	for _, id := range messageIDs {
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Errorf("MESSAGE_ID %q is not 32 lowercase hex digits", id)
		}
		if seen[id] {
			t.Errorf("MESSAGE_ID %s is used twice", id)
		}
		seen[id] = true
	}
	for action, kind := range recordKinds {
		if !slices.Contains(messageIDs, kind.messageID) {
			t.Errorf("records of ACTION=%s carry %s, which messageIDs lacks", action, kind.messageID)
		}
	}
	if !slices.Contains(messageIDs, violationKind.messageID) {
		t.Errorf("violations carry %s, which messageIDs lacks", violationKind.messageID)
	}
}
