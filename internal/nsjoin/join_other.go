//go:build !amd64

package nsjoin

import (
	"context"
	"fmt"
)

// JoinParent would move the parent's thread waiting on this process into
// the network namespace at nsPath. The syscall injection it needs exists for
// amd64 only, so here it always fails with ErrUnsupportedArch: the login of
// a mapped user is denied rather than opened on the host network.
func JoinParent(ctx context.Context, nsPath string, opts Options) error {
	return fmt.Errorf("joining the caller to %s: %w", nsPath, ErrUnsupportedArch)
}
