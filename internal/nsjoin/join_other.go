//go:build !amd64

package nsjoin

import (
	"context"
	"fmt"

	"github.com/netns-session/netns-session/internal/netns"
)

// JoinParent would move the caller's thread waiting on this process into
// the network namespace at nsPath, and into mount's mount namespace unless
// mount is nil. The syscall injection it needs exists for amd64 only, so here
// it succeeds only when every thread of the caller is already in those
// namespaces (an unmapped user logging in on the host), and otherwise fails
// with ErrUnsupportedArch: the login of a mapped user is denied rather than
// opened on the host network.
func JoinParent(ctx context.Context, caller *Caller, nsPath string, mount *MountJoin, opts Options) error {
	if caller == nil {
		return fmt.Errorf("joining the caller to %s: no caller pinned: %w", nsPath, ErrCallerChanged)
	}
	target, err := netns.CheckNetns(nsPath)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTargetUnavailable, err)
	}
	if caller.alreadyIn(target, mount) {
		return nil
	}
	return fmt.Errorf("joining the caller to %s: %w", nsPath, ErrUnsupportedArch)
}
