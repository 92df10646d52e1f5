package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
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

// Syslog facilities (syslog(3)) for the journal's SYSLOG_FACILITY field,
// which journald hands on to syslog with the record. The hook's records say
// why a login was refused or let in: they are authpriv's, so that auth.log
// (Debian) and secure (RHEL) show them beside sshd's and su's, readable
// only by administrators (they name users and remote hosts). The watcher's
// are the daemon's, but for those of a violation (see recordKinds).
const (
	facilityDaemon   = 3  // LOG_DAEMON
	facilityAuthpriv = 10 // LOG_AUTHPRIV
)

// The MESSAGE_IDs of the records an administrator acts on, fixed for good:
// `journalctl MESSAGE_ID=...` finds them, and catalog/netns-session.catalog,
// installed under /usr/lib/systemd/catalog, explains each (journalctl -x).
const (
	// messageDenied: the hook refused a login (ACTION=deny).
	messageDenied = "35f72890dedf446ab7f48c969e1f7a54"
	// messageRootFallback: the policy could not be used, and root was let
	// in on the host network (ACTION=root-fallback).
	messageRootFallback = "bb9d1bf5419f40f9b57e6c226e3168ba"
	// messageRootUnplaced: as messageRootFallback, but joining the host
	// network failed, so root's session stays where it was opened
	// (ACTION=root-unplaced).
	messageRootUnplaced = "6b01021b5267408b952514cfe93256d3"
	// messageViolation: the watcher found a session or a user manager
	// outside its namespace (VERDICT=violation).
	messageViolation = "4b628d77ce0f4f518c9797d5387a0152"
	// messageReloadRefused: the watcher refused a config on reload
	// (ACTION=reload-refused).
	messageReloadRefused = "3f339301a39147ad84c0cd4930067550"
)

// messageIDs are all of the above; the catalog has an entry for each.
var messageIDs = []string{messageDenied, messageRootFallback, messageRootUnplaced, messageViolation, messageReloadRefused}

// recordKind is what a record of one kind carries beyond its fields.
type recordKind struct {
	messageID string
	// login says the record tells why a session was refused or ended,
	// which goes to authpriv whoever logs it.
	login bool
}

// recordKinds gives the kinds of records by their ACTION field, which
// the hook and the watcher set already; a record with VERDICT=violation is
// of violationKind whatever its action (terminate, warn, terminate-failed).
var recordKinds = map[string]recordKind{
	"deny":           {messageID: messageDenied, login: true},
	"root-fallback":  {messageID: messageRootFallback, login: true},
	"root-unplaced":  {messageID: messageRootUnplaced, login: true},
	"reload-refused": {messageID: messageReloadRefused},
}

var violationKind = recordKind{messageID: messageViolation, login: true}

// kindOf returns the kind of a record at prio with fields (without their
// prefix). Only a record at warning or above has one: the hook's summary
// of a session it let open, at info, has the action of root's fallback
// too, which the record before it, the alert or error, explains.
func kindOf(prio journal.Priority, fields map[string]string) recordKind {
	if prio > journal.PriWarning {
		return recordKind{}
	}
	if fields["VERDICT"] == "violation" {
		return violationKind
	}
	return recordKinds[fields["ACTION"]]
}

// eventLog writes one record per event to the journal with structured fields,
// falls back to stderr when the journal socket is not there, and appends a
// human-readable line to an optional log file (pam_netns's `log=`).
type eventLog struct {
	debug    bool
	facility int               // facilityDaemon or facilityAuthpriv
	fields   map[string]string // context attached to every record: user, service, ...
	file     io.Writer         // nil unless --log was given
	stderr   io.Writer
	send     func(msg string, prio journal.Priority, vars map[string]string) error
}

func newEventLog(debug bool, facility int) *eventLog {
	return &eventLog{
		debug:    debug,
		facility: facility,
		fields:   map[string]string{},
		stderr:   os.Stderr,
		send:     journal.Send,
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

// Alert is for what denies every login but root's: a config that cannot
// be used.
func (l *eventLog) Alert(msg string, extra map[string]string) {
	l.record(journal.PriAlert, msg, extra)
}

func (l *eventLog) record(prio journal.Priority, msg string, extra map[string]string) {
	fields := make(map[string]string, len(l.fields)+len(extra))
	for k, v := range l.fields {
		fields[k] = v
	}
	for k, v := range extra {
		if v != "" {
			fields[k] = v
		}
	}
	vars := make(map[string]string, len(fields)+3)
	for k, v := range fields {
		vars[fieldPrefix+k] = v
	}
	vars["SYSLOG_IDENTIFIER"] = syslogIdentifier
	kind, facility := kindOf(prio, fields), l.facility
	if kind.login {
		facility = facilityAuthpriv
	}
	vars["SYSLOG_FACILITY"] = strconv.Itoa(facility)
	if kind.messageID != "" {
		vars["MESSAGE_ID"] = kind.messageID
	}
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
