package policy

import (
	"strconv"

	"github.com/netns-session/netns-session/internal/netns"
)

// The one way a finding is shown: the watcher's journal fields and status's
// table cells and JSON both come from here.

// Judged says what the verdict rests on: "leader", "scope" for a process
// of the session's scope, "" for no process (and for a manager, which is
// named by its unit).
func (f Finding) Judged() string {
	switch {
	case f.FromScope:
		return "scope"
	case f.PID != 0:
		return "leader"
	}
	return ""
}

// IDs returns the identities of the namespace expected and of the one the
// process runs in as DEV:INODE, "" when unknown.
func (f Finding) IDs() (expected, actual string) {
	return idString(f.ExpectedID), idString(f.Actual)
}

func idString(id netns.ID) string {
	if id == (netns.ID{}) {
		return ""
	}
	return id.String()
}

// Fields adds the journal fields of f to fields, and returns it: the
// verdict, the namespaces compared, the process judged, if any, and which
// resolv.conf it sees, if looked at. Fields with empty values are left for
// the log to drop.
func (f Finding) Fields(fields map[string]string) map[string]string {
	if f.PID != 0 {
		fields["JUDGED_PID"] = strconv.Itoa(f.PID)
		fields["JUDGED"] = f.Judged()
	}
	fields["VERDICT"] = f.Verdict.String()
	fields["EXPECTED_NETNS"] = f.Expected
	expected, actual := f.IDs()
	if expected != "" {
		fields["EXPECTED_NETNS_ID"] = expected
	}
	if actual != "" {
		fields["ACTUAL_NETNS_ID"] = actual
	}
	if f.ResolvConf != ResolvConfNotLooked {
		fields["RESOLV_CONF"] = f.ResolvConf.String()
	}
	if f.ResolvConfErr != nil {
		fields["RESOLV_CONF_ERROR"] = f.ResolvConfErr.Error()
	}
	return fields
}
