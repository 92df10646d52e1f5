package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// cgroupFS is where systemd mounts the cgroup hierarchies.
const cgroupFS = "/sys/fs/cgroup"

// CgroupProcs returns the PIDs of the processes in cgroup, a path in the
// hierarchy Cgroup reads ("/user.slice/user-1000.slice/session-3.scope"),
// as its cgroup.procs lists them; an error matching fs.ErrNotExist when
// there is no such cgroup. A PID may pass to another process as soon as it
// is read: pin it, and check with Cgroup that it is still in cgroup.
func CgroupProcs(cgroup string) ([]int, error) {
	h, err := systemdHierarchy()
	if err != nil {
		return nil, fmt.Errorf("listing the processes of cgroup %s: %w", cgroup, err)
	}
	path := filepath.Join(h.root, filepath.Clean("/"+cgroup), "cgroup.procs")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("listing the processes of cgroup %s: %w", cgroup, err)
	}
	pids, err := parseCgroupProcs(string(data))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return pids, nil
}

// hierarchy is the cgroup hierarchy systemd tracks units in: the unified
// one of cgroup v2, or the named v1 hierarchy name=systemd.
type hierarchy struct {
	root  string // where it is mounted
	named bool   // name=systemd
}

// found is the hierarchy systemdHierarchy found: which one systemd uses is
// decided at boot.
var found atomic.Pointer[hierarchy]

// systemdHierarchy returns the hierarchy systemd tracks units in, found as
// systemd finds it: the unified hierarchy when cgroupFS itself is cgroup2;
// else, on legacy and hybrid systems, the named hierarchy name=systemd at
// cgroupFS/systemd (a hybrid system's unified hierarchy, at
// cgroupFS/unified, holds the same paths). Cgroup and CgroupProcs both read
// the one it returns: a unified system may mount a name=systemd hierarchy
// too, for containers that run an old systemd, and systemd keeps no paths
// of its own there.
func systemdHierarchy() (hierarchy, error) {
	if h := found.Load(); h != nil {
		return *h, nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(cgroupFS, &fs); err != nil {
		return hierarchy{}, fmt.Errorf("finding the cgroup hierarchy: %w", err)
	}
	h := hierarchy{root: cgroupFS}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		h = hierarchy{root: filepath.Join(cgroupFS, "systemd"), named: true}
		if err := unix.Statfs(h.root, &fs); err != nil {
			return hierarchy{}, fmt.Errorf("finding the cgroup hierarchy: %w", err)
		}
		if fs.Type != unix.CGROUP_SUPER_MAGIC {
			return hierarchy{}, fmt.Errorf("finding the cgroup hierarchy: %w", ErrNoCgroupHierarchy)
		}
	}
	found.Store(&h)
	return h, nil
}

// parseCgroupProcs reads a cgroup.procs file: one PID a line.
func parseCgroupProcs(text string) ([]int, error) {
	var pids []int
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		pid, err := strconv.Atoi(line)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("%w: PID %q", ErrBadProc, line)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
