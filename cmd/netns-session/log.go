package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"golang.org/x/sys/unix"
)

// syslogIdentifier tags every journal entry, so `journalctl -t netns-session`
// shows them all.
const syslogIdentifier = "netns-session"

// fieldPrefix namespaces the structured journal fields we add, e.g.
// `journalctl NETNS_SESSION_USER=alice`.
const fieldPrefix = "NETNS_SESSION_"

// eventLog writes one record per event to the journal with structured fields,
// falls back to stderr when the journal socket is not there, and appends a
// human-readable line to an optional log file (pam_netns's `log=`).
type eventLog struct {
	debug  bool
	fields map[string]string // context attached to every record: user, service, ...
	file   io.Writer         // nil unless --log was given
	stderr io.Writer
	send   func(msg string, prio journal.Priority, vars map[string]string) error
}

func newEventLog(debug bool) *eventLog {
	return &eventLog{
		debug:  debug,
		fields: map[string]string{},
		stderr: os.Stderr,
		send:   journal.Send,
	}
}

// openFile appends records to path too. The file is created 0600: records
// name users and their remote hosts. Only a regular file of the hook's own
// user (root, under pam_exec seteuid) is written: a user who created it
// first, in /tmp say, could read every record. The hook runs as root, so a
// symlink planted at path must not be followed, a hard link planted there
// (to /etc/shadow, where fs.protected_hardlinks is off) must not be written
// through, and a FIFO or a device must neither block a login nor receive
// its records. O_NOCTTY: a terminal is
// refused below, but opening it must not make it the hook's controlling
// terminal first (older kernels let a write-only open do that).
func (l *eventLog) openFile(path string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("opening log file %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("stating log file %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return fmt.Errorf("opening log file %s: not a regular file", path)
	}
	if st.Nlink != 1 {
		unix.Close(fd)
		return fmt.Errorf("opening log file %s: it has %d links: another name of it may be any file of root's", path, st.Nlink)
	}
	if euid := os.Geteuid(); st.Uid != uint32(euid) {
		unix.Close(fd)
		return fmt.Errorf("opening log file %s: owned by uid %d, not %d: its owner could read every record", path, st.Uid, euid)
	}
	l.file = os.NewFile(uintptr(fd), path)
	return nil
}

// Set attaches a field to every later record; empty values are dropped.
func (l *eventLog) Set(key, value string) {
	if value == "" {
		delete(l.fields, key)
		return
	}
	l.fields[key] = value
}

func (l *eventLog) Debugf(format string, args ...any) {
	if l.debug {
		l.record(journal.PriDebug, fmt.Sprintf(format, args...), nil)
	}
}

func (l *eventLog) Info(msg string, extra map[string]string) {
	l.record(journal.PriInfo, msg, extra)
}

func (l *eventLog) Warning(msg string, extra map[string]string) {
	l.record(journal.PriWarning, msg, extra)
}

func (l *eventLog) Error(msg string, extra map[string]string) {
	l.record(journal.PriErr, msg, extra)
}

func (l *eventLog) record(prio journal.Priority, msg string, extra map[string]string) {
	vars := make(map[string]string, len(l.fields)+len(extra)+1)
	for k, v := range l.fields {
		vars[fieldPrefix+k] = v
	}
	for k, v := range extra {
		if v != "" {
			vars[fieldPrefix+k] = v
		}
	}
	vars["SYSLOG_IDENTIFIER"] = syslogIdentifier
	line := humanLine(msg, vars)
	if err := l.send(msg, prio, vars); err != nil {
		fmt.Fprintf(l.stderr, "%s: %s\n", syslogIdentifier, line)
	}
	if l.file != nil {
		fmt.Fprintf(l.file, "%s %s[%d]: %s\n", time.Now().Format(time.RFC3339), syslogIdentifier, os.Getpid(), line)
	}
}

// humanLine renders a record as `msg key=value ...` with our fields sorted,
// for the log file and the stderr fallback.
func humanLine(msg string, vars map[string]string) string {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		if strings.HasPrefix(k, fieldPrefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(msg)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", strings.ToLower(strings.TrimPrefix(k, fieldPrefix)), vars[k])
	}
	return b.String()
}
