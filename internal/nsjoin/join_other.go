//go:build !amd64

package nsjoin

import (
	"context"
	"fmt"
	"os"
	"strconv"
)

// JoinParent would move the parent's thread waiting on this process into
// the network namespace at nsPath. The syscall injection it needs exists for
// amd64 only, so here it succeeds only when every thread of the parent is
// already in that namespace (an unmapped user logging in on the host), and
// otherwise fails with ErrUnsupportedArch: the login of a mapped user is
// denied rather than opened on the host network.
func JoinParent(ctx context.Context, nsPath string, opts Options) error {
	target, err := CheckNetns(nsPath)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTargetUnavailable, err)
	}
	if parentIn(os.Getppid(), target) {
		return nil
	}
	return fmt.Errorf("joining the caller to %s: %w", nsPath, ErrUnsupportedArch)
}

// parentIn reports whether every thread of pid is in the namespace target.
func parentIn(pid int, target ID) bool {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			return false
		}
		if id, err := ThreadNetnsID(pid, tid); err != nil || id != target {
			return false
		}
	}
	return true
}
