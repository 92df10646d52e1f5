package units

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// cgroupHierarchies are where user@UID.service's cgroup may be found under
// CgroupRoot: the unified hierarchy mounted there (cgroup v2), or, on hybrid
// and legacy hosts, the v2 tree in "unified" and systemd's own v1 tree.
var cgroupHierarchies = []string{"", "unified", "systemd"}

// managerCgroups are the cgroups of user@UID.service that hold the manager:
// since systemd 247 it moves itself into init.scope; before that, and early in
// its start, it is in the service's own cgroup.
var managerCgroups = []string{"init.scope", ""}

// UserManagerPID returns the main PID of the running user@UID.service, or an
// error matching ErrNotRunning. It reads the cgroup tree rather than asking
// systemd, to stay cheap on the login path.
func (m *Manager) UserManagerPID(uid uint32) (int, error) {
	id := strconv.FormatUint(uint64(uid), 10)
	service := filepath.Join("user.slice", "user-"+id+".slice", userManagerUnit(id))
	for _, hierarchy := range cgroupHierarchies {
		for _, cgroup := range managerCgroups {
			procs := filepath.Join(m.CgroupRoot, hierarchy, service, cgroup, "cgroup.procs")
			pids, err := readPIDs(procs)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("finding user manager of uid %d: %w", uid, err)
			}
			if len(pids) > 0 {
				return m.mainPID(pids), nil
			}
		}
	}
	return 0, fmt.Errorf("finding user manager of uid %d: %w", uid, ErrNotRunning)
}

// RunningManagerUIDs returns, in ascending order, the UIDs whose
// user@UID.service has a cgroup in any hierarchy, so a sync can place
// managers that run without a drop-in.
func (m *Manager) RunningManagerUIDs() ([]uint32, error) {
	var uids []uint32
	for _, hierarchy := range cgroupHierarchies {
		matches, err := filepath.Glob(filepath.Join(m.CgroupRoot, hierarchy, "user.slice", "user-*.slice", "user@*.service"))
		if err != nil {
			return nil, fmt.Errorf("finding running user managers: %w", err)
		}
		for _, path := range matches {
			if uid, ok := userManagerUID(filepath.Base(path), ".service"); ok {
				uids = append(uids, uid)
			}
		}
	}
	slices.Sort(uids)
	return slices.Compact(uids), nil
}

func readPIDs(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, field := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(field)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", path, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// mainPID picks the manager among the processes of its cgroup: the others,
// like "(sd-pam)", are its children.
func (m *Manager) mainPID(pids []int) int {
	if len(pids) == 1 {
		return pids[0]
	}
	for _, pid := range pids {
		ppid, err := m.parentPID(pid)
		if err != nil {
			// It exited since the cgroup was read.
			continue
		}
		if !slices.Contains(pids, ppid) {
			return pid
		}
	}
	return pids[0]
}

func (m *Manager) parentPID(pid int) (int, error) {
	data, err := os.ReadFile(filepath.Join(m.ProcRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name in parentheses may hold anything, even ") ";
	// the state and the parent's PID follow its last ")".
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, fmt.Errorf("parsing stat of pid %d: no command name", pid)
	}
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 2 {
		return 0, fmt.Errorf("parsing stat of pid %d: too few fields", pid)
	}
	return strconv.Atoi(fields[1])
}
