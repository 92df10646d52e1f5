// Package netnstest owns the fake network namespaces that the tests of every
// package share: one table of their IDs, and the namespace files that name
// them, so a judge, the watcher and status, faked, agree on which namespace
// is which and print the same IDs.
package netnstest

import (
	"fmt"
	"io/fs"

	"github.com/netns-session/netns-session/internal/netns"
)

// The fake namespaces, as stat of their nsfs files would give them.
var (
	// Host is the host's network namespace, PID 1's.
	Host = netns.ID{Dev: 4, Ino: 4026531840}
	// NS0 and NS1 are the namespaces /run/netns/ns0 and /run/netns/ns1,
	// which the tests' configs map users to.
	NS0 = netns.ID{Dev: 4, Ino: 4026532100}
	NS1 = netns.ID{Dev: 4, Ino: 4026532101}
	// Sandbox is a namespace a user made on their own (unshare -rn), which
	// no file names.
	Sandbox = netns.ID{Dev: 4, Ino: 4026532200}
)

// File checks the namespace file at path, as netns.CheckNetns does, on a
// system with the host's namespace and ns0 and ns1 under /run/netns: any
// other path does not exist.
func File(path string) (netns.ID, error) {
	switch path {
	case netns.HostPath:
		return Host, nil
	case "/run/netns/ns0":
		return NS0, nil
	case "/run/netns/ns1":
		return NS1, nil
	}
	return netns.ID{}, fmt.Errorf("checking namespace %s: %w", path, fs.ErrNotExist)
}
