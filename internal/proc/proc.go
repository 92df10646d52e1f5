// Package proc owns the identity of a running process: a pidfd that pins
// it, so that its PID cannot pass to another process while it is held,
// whether it has exited, and what the kernel tells about who it is: its pidfs
// inode, its cgroup, its user IDs, its start time and whether its network
// namespace is a user's sandbox, read through /proc while it is pinned; the
// processes a cgroup holds; and which file a process sees at a path, in its
// own mount namespace (SeenFile). IsGone is the one rule for telling a
// process that exited from one that could not be read. It also keeps the
// record of the system's sleep that converts logind's monotonic timestamps
// to the boot-time clock of process start times. What these prove about a
// session is policy's to decide, and about the PAM caller nsjoin's.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// userHZ is the unit of the times in /proc/PID/stat: the kernel's USER_HZ,
// part of its ABI, 100 on every architecture Go runs on.
const userHZ = 100

// Tick is the resolution of StartTime.
const Tick = time.Second / userHZ

// Process is a process pinned by a pidfd. Its PID stays its own, and is not
// handed to another process, until the process has exited and been reaped,
// which Alive tells; Kill signals it through the pidfd, so it never reaches
// another process.
type Process struct {
	pid int
	fd  int
}

// Pin opens a pidfd of pid. It fails with an error matching unix.ESRCH when
// there is no such process, and ErrNoPidfd before Linux 5.3.
func Pin(pid int) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("pinning process %d: %w", pid, unix.ESRCH)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ENOSYS) {
		err = ErrNoPidfd
	}
	if err != nil {
		return nil, fmt.Errorf("opening a pidfd of process %d: %w", pid, err)
	}
	return &Process{pid: pid, fd: fd}, nil
}

// PID returns the process's PID.
func (p *Process) PID() int { return p.pid }

// Close releases the pidfd: the PID may pass to another process after it.
func (p *Process) Close() error { return unix.Close(p.fd) }

// Alive returns nil while the process has not been reaped, so that what was
// read of /proc/PID before the call was read of this process; an error
// matching unix.ESRCH once it is gone. A zombie is alive in this sense: its
// PID is still its own.
func (p *Process) Alive() error {
	err := unix.PidfdSendSignal(p.fd, 0, nil, 0)
	if errors.Is(err, unix.EPERM) {
		// Permission is checked after the process is found.
		err = nil
	}
	if err != nil {
		return fmt.Errorf("checking that process %d still runs: %w", p.pid, err)
	}
	return nil
}

// Exited reports whether the process has exited, reaped or not: its pidfd
// polls readable from the moment it exits. Alive still holds for a zombie,
// whose PID is still its own; Exited tells a process that will never run
// again.
func (p *Process) Exited() (bool, error) {
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return false, fmt.Errorf("polling the pidfd of process %d: %w", p.pid, err)
		}
		return n > 0, nil
	}
}

// Kill sends SIGKILL to the process, and only to it.
func (p *Process) Kill() error {
	if err := unix.PidfdSendSignal(p.fd, unix.SIGKILL, nil, 0); err != nil {
		return fmt.Errorf("killing process %d: %w", p.pid, err)
	}
	return nil
}

// FDID returns the inode number of the pidfd on pidfs (Linux 6.9 and
// later): the process's identity for the life of the system, never reused,
// which logind reports as LeaderPIDFDId. ok is false on older kernels,
// whose pidfds all share one anonymous inode.
func (p *Process) FDID() (id uint64, ok bool, err error) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(p.fd, &fs); err != nil {
		return 0, false, fmt.Errorf("statfs of the pidfd of process %d: %w", p.pid, err)
	}
	if fs.Type != unix.PID_FS_MAGIC {
		return 0, false, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(p.fd, &st); err != nil {
		return 0, false, fmt.Errorf("stating the pidfd of process %d: %w", p.pid, err)
	}
	return st.Ino, true, nil
}

// StartTime returns when the process started, as time since boot on
// CLOCK_BOOTTIME (which counts the time the system slept), truncated down to
// a Tick: field 22 of /proc/PID/stat.
func (p *Process) StartTime() (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", p.pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading the start time of process %d: %w", p.pid, err)
	}
	ticks, err := parseStartTime(data)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return time.Duration(ticks) * Tick, nil
}

// parseStartTime returns field 22 of a /proc/PID/stat line. The command
// name, field 2, is in parentheses and may hold spaces and parentheses
// itself; the fields after the last ')' start at field 3.
func parseStartTime(stat []byte) (uint64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("%w: no command name", ErrBadProc)
	}
	fields := strings.Fields(string(stat[end+1:]))
	const startTime = 22 - 3
	if len(fields) <= startTime {
		return 0, fmt.Errorf("%w: %d fields after the command name", ErrBadProc, len(fields))
	}
	ticks, err := strconv.ParseUint(fields[startTime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: start time %q", ErrBadProc, fields[startTime])
	}
	return ticks, nil
}

// UIDs are the four user IDs of a process (credentials(7)).
type UIDs struct {
	Real, Effective, Saved, FS uint32
}

// Only reports whether every one of the IDs is uid: the process runs for
// that user alone. A setuid program, or su and sudo waiting for the command
// they ran, keeps its caller's real UID under another effective one.
func (u UIDs) Only(uid uint32) bool {
	return u.Real == uid && u.Effective == uid && u.Saved == uid && u.FS == uid
}

// UIDs returns the process's user IDs: the Uid line of /proc/PID/status.
func (p *Process) UIDs() (UIDs, error) {
	path := fmt.Sprintf("/proc/%d/status", p.pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return UIDs{}, fmt.Errorf("reading the user of process %d: %w", p.pid, err)
	}
	uids, err := parseUIDs(string(data))
	if err != nil {
		return UIDs{}, fmt.Errorf("reading %s: %w", path, err)
	}
	return uids, nil
}

// parseUIDs reads the four IDs (real, effective, saved, filesystem) of the
// Uid line of /proc/PID/status.
func parseUIDs(status string) (UIDs, error) {
	for line := range strings.Lines(status) {
		ids, ok := strings.CutPrefix(line, "Uid:")
		if !ok {
			continue
		}
		fields := strings.Fields(ids)
		var uids [4]uint32
		if len(fields) != len(uids) {
			return UIDs{}, fmt.Errorf("%w: Uid line %q", ErrBadProc, strings.TrimSpace(line))
		}
		for i, field := range fields {
			uid, err := strconv.ParseUint(field, 10, 32)
			if err != nil {
				return UIDs{}, fmt.Errorf("%w: Uid line %q", ErrBadProc, strings.TrimSpace(line))
			}
			uids[i] = uint32(uid)
		}
		return UIDs{Real: uids[0], Effective: uids[1], Saved: uids[2], FS: uids[3]}, nil
	}
	return UIDs{}, fmt.Errorf("%w: no Uid line", ErrBadProc)
}

// readerUserns is the reader's user namespace: the initial one, or a
// container's, which is the initial one to everything in the container. The
// watcher runs in it (RestrictNamespaces= keeps it there), and reading it
// needs no ptrace access to PID 1, which a process with fewer capabilities
// than PID 1 may be refused.
const readerUserns = "/proc/self/ns/user"

// SandboxedNetns reports whether the process's network namespace is owned by
// a user namespace other than the initial one (the reader's): one that an
// unprivileged user made for themselves (`unshare -rn`, bwrap, a rootless
// container), which starts empty and cannot be swapped for a namespace that
// the initial user namespace owns, such as the host's. Those namespaces
// (the host's, one of /run/netns) are not sandboxed.
func (p *Process) SandboxedNetns() (bool, error) {
	path := fmt.Sprintf("/proc/%d/ns/net", p.pid)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("opening the network namespace of process %d: %w", p.pid, err)
	}
	defer unix.Close(fd)
	owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	if errors.Is(err, unix.EPERM) {
		// The owner is outside the reader's user namespace, an ancestor of
		// it: no user's sandbox.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("finding the owner of the network namespace of process %d: %w", p.pid, err)
	}
	defer unix.Close(owner)
	var ownerSt, initialSt unix.Stat_t
	if err := unix.Fstat(owner, &ownerSt); err != nil {
		return false, fmt.Errorf("stating the owner of the network namespace of process %d: %w", p.pid, err)
	}
	if err := unix.Stat(readerUserns, &initialSt); err != nil {
		return false, fmt.Errorf("stating the initial user namespace: %w", err)
	}
	return ownerSt.Dev != initialSt.Dev || ownerSt.Ino != initialSt.Ino, nil
}

// Cgroup returns the path of the process's cgroup in the hierarchy systemd
// tracks units in (the unified one of cgroup v2, or name=systemd of v1; see
// systemdHierarchy), as the reader's cgroup namespace shows it:
// "/user.slice/user-1000.slice/session-3.scope".
func (p *Process) Cgroup() (string, error) {
	h, err := systemdHierarchy()
	if err != nil {
		return "", fmt.Errorf("reading the cgroup of process %d: %w", p.pid, err)
	}
	path := fmt.Sprintf("/proc/%d/cgroup", p.pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the cgroup of process %d: %w", p.pid, err)
	}
	cgroup, err := parseCgroup(string(data), h)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return cgroup, nil
}

// parseCgroup picks hierarchy h out of /proc/PID/cgroup, whose lines read
// ID:CONTROLLERS:PATH: the unified hierarchy is "0::PATH", the named v1
// hierarchy "N:name=systemd:PATH". A process lists every hierarchy mounted,
// so both may be there whichever systemd uses.
func parseCgroup(text string, h hierarchy) (string, error) {
	for line := range strings.Lines(text) {
		id, rest, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
		if !ok {
			continue
		}
		controllers, path, ok := strings.Cut(rest, ":")
		switch {
		case !ok:
		case h.named && controllers == "name=systemd":
			return path, nil
		case !h.named && id == "0" && controllers == "":
			return path, nil
		}
	}
	if h.named {
		return "", fmt.Errorf("%w: no name=systemd cgroup hierarchy", ErrBadProc)
	}
	return "", fmt.Errorf("%w: no unified cgroup hierarchy", ErrBadProc)
}
