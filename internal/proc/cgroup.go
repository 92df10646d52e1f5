package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
	root, err := systemdHierarchy()
	if err != nil {
		return nil, fmt.Errorf("listing the processes of cgroup %s: %w", cgroup, err)
	}
	path := filepath.Join(root, filepath.Clean("/"+cgroup), "cgroup.procs")
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

// systemdHierarchy returns the mount point of the hierarchy Cgroup reads,
// the one systemd tracks units in, found as systemd finds it: the unified
// hierarchy when cgroupFS itself is cgroup2; else, on legacy and hybrid
// systems, the named hierarchy name=systemd at cgroupFS/systemd, which
// parseCgroup prefers there (a hybrid system's unified hierarchy, at
// cgroupFS/unified, holds the same paths).
func systemdHierarchy() (string, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(cgroupFS, &fs); err != nil {
		return "", fmt.Errorf("finding the cgroup hierarchy: %w", err)
	}
	if fs.Type == unix.CGROUP2_SUPER_MAGIC {
		return cgroupFS, nil
	}
	named := filepath.Join(cgroupFS, "systemd")
	if err := unix.Statfs(named, &fs); err != nil {
		return "", fmt.Errorf("finding the cgroup hierarchy: %w", err)
	}
	if fs.Type != unix.CGROUP_SUPER_MAGIC {
		return "", fmt.Errorf("finding the cgroup hierarchy: %w", ErrNoCgroupHierarchy)
	}
	return named, nil
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
