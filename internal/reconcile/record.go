package reconcile

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/units"
)

// DefaultLingerRecord is where sync records the lingering users it resolved,
// by name and UID, so that the boot-time sync can hold their managers before
// it asks NSS anything: logind starts them right after it, and the directory
// may be slow or down at boot.
const DefaultLingerRecord = "/var/lib/netns-session/lingering"

// recordHeader opens the record; lines starting with '#' are comments.
const recordHeader = `# Lingering users, by UID and name, whose managers "netns-session sync --boot"
# keeps from starting (NetworkNamespacePath=/dev/null) until their policy is
# known. Written by "netns-session sync"; do not edit.
`

// lingerRecord maps the name of each recorded lingering user to its UID.
type lingerRecord map[string]uint32

// readLingerRecord reads the record at path; a missing record is empty. A
// line it cannot read is an error, and the others still count: every user
// it holds is one fewer that could start on the host network.
func readLingerRecord(path string) (lingerRecord, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return lingerRecord{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the record of lingering users: %w", err)
	}
	r := lingerRecord{}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		uid, name, err := parseRecordLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s:%d: %w", path, n, err))
			continue
		}
		r[name] = uid
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("reading %s: %w", path, err))
	}
	return r, errors.Join(errs...)
}

func parseRecordLine(line string) (uint32, string, error) {
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return 0, "", fmt.Errorf("want \"UID NAME\", got %q", line)
	}
	uid, err := strconv.ParseUint(fields[0], 10, 32)
	if err != nil {
		return 0, "", fmt.Errorf("parsing uid %q: %w", fields[0], err)
	}
	if uid == 0 {
		// The PAM hook lets root in on the host network when nothing else
		// works; holding its manager would only hurt the repair.
		return 0, "", fmt.Errorf("root (uid 0) is never held")
	}
	return uint32(uid), fields[1], nil
}

// marshal returns the record as its file holds it, by UID, then name.
func (r lingerRecord) marshal() []byte {
	names := slices.SortedFunc(maps.Keys(r), func(a, b string) int {
		return cmp.Or(cmp.Compare(r[a], r[b]), strings.Compare(a, b))
	})
	b := []byte(recordHeader)
	for _, name := range names {
		b = strconv.AppendUint(b, uint64(r[name]), 10)
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, '\n')
	}
	return b
}

// writeLingerRecord replaces the record at path with r, atomically: the boot
// reads the old record or the new one, never a part.
func writeLingerRecord(ctx context.Context, path string, r lingerRecord) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing the record of lingering users: %w", err)
	}
	if err := units.WriteFileAtomic(ctx, path, r.marshal(), 0o644); err != nil {
		return fmt.Errorf("writing the record of lingering users: %w", err)
	}
	return nil
}

// nextLingerRecord is the record after a sync: every lingering user the sync
// resolved, with the UID NSS gave; the entry of old for a lingering user whose
// lookup failed, since a directory that is down says nothing about the user;
// no entry for a user NSS does not know or that no longer lingers; never root.
func nextLingerRecord(old lingerRecord, lingering []string, lookups map[string]lookup) lingerRecord {
	next := lingerRecord{}
	for _, name := range lingering {
		l, looked := lookups[name]
		switch {
		case looked && l.err == nil:
			if l.user.UID != 0 {
				next[name] = l.user.UID
			}
		case looked && errors.Is(l.err, config.ErrUnknownUser):
		default:
			if uid, ok := old[name]; ok {
				next[name] = uid
			}
		}
	}
	return next
}

// lookup is the outcome of looking a user up by name.
type lookup struct {
	user *config.User
	err  error
}

// lookupLog is the user database of one sync, which remembers what each
// lookup of a user by name gave, so that the record of lingering users costs
// no lookup of its own.
type lookupLog struct {
	config.Directory
	byName map[string]lookup
}

func (l *lookupLog) LookupUser(name string) (*config.User, error) {
	u, err := l.Directory.LookupUser(name)
	if l.byName == nil {
		l.byName = make(map[string]lookup)
	}
	l.byName[name] = lookup{user: u, err: err}
	return u, err
}

// HoldLingering is the first half of the boot-time sync. It writes a
// units.NoNetns drop-in for every user the record of lingering users names
// and that has none, and reloads systemd once, without asking NSS anything:
// if the directory is slow or down, and the sync of the second half is cut
// short, logind still finds the managers held instead of starting them on
// the host network. Sync then replaces each hold with the drop-in the policy
// wants, or removes it.
func HoldLingering(ctx context.Context, m *units.Manager, opts Options) (*Report, error) {
	report := &Report{DryRun: opts.DryRun}
	record, err := readLingerRecord(opts.lingerRecord())
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	report.Users = len(record)
	var set units.Set
	for _, name := range slices.Sorted(maps.Keys(record)) {
		uid := record[name]
		set.Hold(name, uid)
		if _, err := os.Lstat(m.DropInPath(uid)); err == nil {
			continue
		}
		report.Changes = append(report.Changes, Change{
			Action: Write, UID: uid, User: name, Netns: units.NoNetns,
			Reason: "recorded lingering user, held until its policy is known",
		})
	}
	slices.SortFunc(report.Changes, func(a, b Change) int { return cmp.Compare(a.UID, b.UID) })
	if !opts.DryRun && len(set.UIDs()) > 0 {
		applied, err := m.Apply(ctx, &set)
		if err != nil {
			errs = append(errs, err)
		}
		report.Reloaded = len(applied.Reloaded) > 0
	}
	return report, errors.Join(errs...)
}
