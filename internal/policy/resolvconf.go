package policy

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/proc"
)

// resolvConf is the file whose view is reported: the one name lookups read.
const resolvConf = "/etc/resolv.conf"

// ResolvConfView says which resolv.conf a process sees at /etc/resolv.conf,
// for a process whose expected namespace has one of its own
// (netns.EtcDir(NAME)/resolv.conf). It is shown beside the verdict, never
// part of it: a session opened before the administrator gave its namespace
// an /etc directory sees the host's files and still runs where it belongs.
type ResolvConfView uint8

// The views.
const (
	// ResolvConfNotLooked: the namespace expected has no resolv.conf of
	// its own, the verdict rests on no process that runs, or the judge
	// looks at none (the PAM hook).
	ResolvConfNotLooked ResolvConfView = iota
	// ResolvConfNamespace: the process sees its namespace's resolv.conf.
	ResolvConfNamespace
	// ResolvConfHost: it sees the one the judge sees at /etc/resolv.conf,
	// the host's.
	ResolvConfHost
	// ResolvConfOther: it sees another file, or none: say one the
	// namespace's file was replaced by since the process's view was made,
	// where that view binds the file itself rather than leading to it
	// through a symlink.
	ResolvConfOther
	// ResolvConfUnknown: what it sees could not be read.
	ResolvConfUnknown
)

var resolvConfViewNames = [...]string{
	ResolvConfNotLooked: "",
	ResolvConfNamespace: "namespace",
	ResolvConfHost:      "host",
	ResolvConfOther:     "other",
	ResolvConfUnknown:   "unknown",
}

func (v ResolvConfView) String() string {
	if int(v) < len(resolvConfViewNames) {
		return resolvConfViewNames[v]
	}
	return fmt.Sprintf("ResolvConfView(%d)", uint8(v))
}

// MarshalText writes the view as String does, for JSON.
func (v ResolvConfView) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// ResolvConfSeen finds which resolv.conf process pid sees, when the
// namespace called name (netns's name for it, "" for none) has one of its
// own; the error says why the view is unknown. The files are compared by
// device and inode, the process's looked up in its own mount namespace and
// root, the host's in the judge's: a judge in a session's mount namespace
// cannot tell the host's file from any other.
func (j *Judge) ResolvConfSeen(name string, pid int) (ResolvConfView, error) {
	if j.SeenFile == nil || name == "" {
		return ResolvConfNotLooked, nil
	}
	own := netns.EtcDir(name) + "/resolv.conf"
	ownID, err := j.StatFile(own)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ResolvConfNotLooked, nil
	case err != nil:
		return ResolvConfUnknown, err
	}
	seen, err := j.SeenFile(pid, resolvConf)
	switch {
	case errors.Is(err, proc.ErrNoFile):
		return ResolvConfOther, nil
	case err != nil:
		return ResolvConfUnknown, err
	case seen == ownID:
		return ResolvConfNamespace, nil
	}
	hostID, err := j.StatFile(resolvConf)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ResolvConfOther, nil
	case err != nil:
		return ResolvConfUnknown, err
	case seen == hostID:
		return ResolvConfHost, nil
	}
	return ResolvConfOther, nil
}
