package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startSleep starts a child that lives until the test ends.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func TestPinnedProcessIdentity(t *testing.T) {
	before := clock(unix.CLOCK_BOOTTIME)
	cmd := startSleep(t)
	p, err := Pin(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Alive(); err != nil {
		t.Fatalf("a running child: %v", err)
	}

	start, err := p.StartTime()
	if err != nil {
		t.Fatal(err)
	}
	if after := clock(unix.CLOCK_BOOTTIME); start < before-Tick || start > after {
		t.Errorf("start time %v, want it between %v and %v: boot time, truncated to the tick", start, before, after)
	}

	// The child inherits its parent's cgroup.
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	h, err := systemdHierarchy()
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseCgroup(string(own), h)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Cgroup(); err != nil || got != want {
		t.Errorf("cgroup %q, %v; want %q", got, err, want)
	}

	// On pidfs, every pidfd of a process has its inode, and no other
	// process has it.
	id, ok, err := p.FDID()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Log("pidfds have no inode of their own on this kernel (before 6.9)")
	} else {
		again, err := Pin(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		other, err := Pin(startSleep(t).Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if id2, _, _ := again.FDID(); id2 != id {
			t.Errorf("two pidfds of one process: inodes %d and %d", id, id2)
		}
		if id3, _, _ := other.FDID(); id3 == id {
			t.Errorf("two processes share pidfd inode %d", id)
		}
	}
}

// TestKilledProcessExitedButAliveUntilReaped follows a process from running
// to zombie to reaped: Exited holds from its exit on, Alive until it is
// reaped.
func TestKilledProcessExitedButAliveUntilReaped(t *testing.T) {
	cmd := startSleep(t)
	p, err := Pin(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if exited, err := p.Exited(); err != nil || exited {
		t.Errorf("a running child: exited %t, %v; want false", exited, err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	// A zombie still holds its PID.
	deadline := time.Now().Add(5 * time.Second)
	for !isZombie(t, cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("the killed child did not die")
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.Alive(); err != nil {
		t.Errorf("a zombie: %v, want it alive: its PID is still its own", err)
	}
	if exited, err := p.Exited(); err != nil || !exited {
		t.Errorf("a zombie: exited %t, %v; want true", exited, err)
	}
	cmd.Wait()
	if err := p.Alive(); !errors.Is(err, unix.ESRCH) {
		t.Errorf("a reaped child: %v, want ESRCH", err)
	}
	if exited, err := p.Exited(); err != nil || !exited {
		t.Errorf("a reaped child: exited %t, %v; want true", exited, err)
	}
	if err := p.Kill(); !errors.Is(err, unix.ESRCH) {
		t.Errorf("killing a reaped child: %v, want ESRCH", err)
	}
}

func isZombie(t *testing.T, pid int) bool {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return fields[0] == "Z"
}

func TestPinNoProcess(t *testing.T) {
	for _, pid := range []int{0, -1} {
		if _, err := Pin(pid); !errors.Is(err, unix.ESRCH) {
			t.Errorf("Pin(%d): %v, want ESRCH", pid, err)
		}
	}
}

func TestIsGone(t *testing.T) {
	_, missing := os.ReadFile("/proc/0/stat")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"no error", nil, false},
		{"no /proc directory", missing, true},
		{"wrapped ESRCH", fmt.Errorf("signalling: %w", unix.ESRCH), true},
		{"permission", fs.ErrPermission, false},
		{"bad /proc file", ErrBadProc, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsGone(tt.err); got != tt.want {
				t.Errorf("IsGone(%v) = %t, want %t", tt.err, got, tt.want)
			}
		})
	}
}

// TestParseNumbersOfProc reads the numbers of /proc files: the start time
// of /proc/PID/stat and the real UID of /proc/PID/status.
func TestParseNumbersOfProc(t *testing.T) {
	startTime := func(stat string) (uint64, error) { return parseStartTime([]byte(stat)) }
	realUID := func(status string) (uint64, error) {
		uids, err := parseUIDs(status)
		return uint64(uids.Real), err
	}
	tests := []struct {
		name  string
		parse func(string) (uint64, error)
		text  string
		want  uint64
		err   bool
	}{
		{name: "plain", parse: startTime, want: 4242,
			text: "1234 (sleep) S 1 1234 1234 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 4242 2400000 200 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"},
		{name: "command with spaces and parentheses", parse: startTime, want: 99,
			text: "1234 (a) b) (c) S 1 1234 1234 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 99 2400000 200\n"},
		{name: "truncated", parse: startTime, err: true, text: "1234 (sleep) S 1 1234\n"},
		{name: "no command", parse: startTime, err: true, text: "1234 sleep S 1"},
		{name: "start time not a number", parse: startTime, err: true, text: "1234 (sleep) S 1 1234 1234 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 x 2400000\n"},
		{name: "setuid program", parse: realUID, want: 1000, text: "Name:\tping\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n"},
		{name: "root", parse: realUID, want: 0, text: "Name:\tsleep\nUid:\t0\t0\t0\t0\n"},
		{name: "no Uid line", parse: realUID, err: true, text: "Name:\tsleep\n"},
		{name: "UID not a number", parse: realUID, err: true, text: "Uid:\tx\t0\t0\t0\n"},
		{name: "effective UID not a number", parse: realUID, err: true, text: "Uid:\t0\tx\t0\t0\n"},
		{name: "three UIDs", parse: realUID, err: true, text: "Uid:\t0\t0\t0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.text)
			if tt.err {
				if !errors.Is(err, ErrBadProc) {
					t.Errorf("err %v, want ErrBadProc", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("%d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

// TestUIDsTellAProcessOfOneUserFromASetuidOne reads all four IDs of the
// Uid line: su waiting for its command keeps its caller's real UID under
// root's effective one, and runs for no one user.
func TestUIDsTellAProcessOfOneUserFromASetuidOne(t *testing.T) {
	tests := []struct {
		name   string
		status string
		want   UIDs
		only   bool // runs for 1000 alone
	}{
		{"a process of the user", "Name:\tsleep\nUid:\t1000\t1000\t1000\t1000\n", UIDs{1000, 1000, 1000, 1000}, true},
		{"su waiting for its command", "Name:\tsu\nUid:\t1000\t0\t0\t0\n", UIDs{1000, 0, 0, 0}, false},
		{"a setuid program that dropped its effective UID", "Uid:\t1000\t1000\t0\t1000\n", UIDs{1000, 1000, 0, 1000}, false},
		{"only the filesystem UID another's", "Uid:\t1000\t1000\t1000\t0\n", UIDs{1000, 1000, 1000, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uids, err := parseUIDs(tt.status)
			if err != nil || uids != tt.want {
				t.Fatalf("%+v, %v; want %+v", uids, err, tt.want)
			}
			if got := uids.Only(1000); got != tt.only {
				t.Errorf("runs for 1000 alone: %t, want %t", got, tt.only)
			}
		})
	}
}

// TestParseCgroupReadsTheHierarchySystemdUses picks the line of the
// hierarchy that systemdHierarchy found out of /proc/PID/cgroup, whatever
// else is mounted: CgroupProcs lists the same hierarchy.
func TestParseCgroupReadsTheHierarchySystemdUses(t *testing.T) {
	unified := hierarchy{root: "/sys/fs/cgroup"}
	named := hierarchy{root: "/sys/fs/cgroup/systemd", named: true}
	tests := []struct {
		name, text string
		h          hierarchy
		want       string // "": none
	}{
		{"unified", "0::/user.slice/user-1000.slice/session-3.scope\n", unified, "/user.slice/user-1000.slice/session-3.scope"},
		{"unified, with a name=systemd hierarchy mounted for containers", "1:name=systemd:/\n0::/user.slice/user-1000.slice/session-3.scope\n", unified,
			"/user.slice/user-1000.slice/session-3.scope"},
		{"hybrid", "12:cpu,cpuacct:/\n1:name=systemd:/user.slice/user-1000.slice/session-3.scope\n0::/user.slice/user-1000.slice/session-3.scope\n", named,
			"/user.slice/user-1000.slice/session-3.scope"},
		{"legacy", "3:memory:/x\n1:name=systemd:/system.slice/ssh.service\n", named, "/system.slice/ssh.service"},
		{"legacy without name=systemd", "3:memory:/x\n0::/\n", named, ""},
		{"unified without the unified line", "3:memory:/x\n1:name=systemd:/system.slice/ssh.service\n", unified, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCgroup(tt.text, tt.h)
			switch {
			case tt.want == "" && !errors.Is(err, ErrBadProc):
				t.Errorf("%q, %v; want ErrBadProc", got, err)
			case tt.want != "" && (err != nil || got != tt.want):
				t.Errorf("%q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSleepLog(t *testing.T) {
	var l SleepLog
	if got := l.SleptBy(time.Hour); got != 0 {
		t.Errorf("empty log: slept %v by 1h, want 0", got)
	}
	l.add(10*time.Minute, 0)
	l.add(20*time.Minute, 0) // nothing new
	l.add(30*time.Minute, time.Hour)
	l.add(40*time.Minute, 2*time.Hour)
	for mono, want := range map[time.Duration]time.Duration{
		5 * time.Minute:  0,
		10 * time.Minute: 0,
		35 * time.Minute: time.Hour,
		40 * time.Minute: 2 * time.Hour,
		time.Hour:        2 * time.Hour,
	} {
		if got := l.SleptBy(mono); got != want {
			t.Errorf("slept %v by %v, want %v", got, mono, want)
		}
	}
	if n := len(l.records); n != 3 {
		t.Errorf("%d records, want 3: one per sleep", n)
	}
	for i := range 2 * maxSleepRecords {
		l.add(time.Hour+time.Duration(i)*time.Minute, 3*time.Hour+time.Duration(i)*time.Minute)
	}
	if n := len(l.records); n != maxSleepRecords {
		t.Errorf("%d records, want at most %d", n, maxSleepRecords)
	}
	if got := l.SleptBy(time.Hour); got != 0 {
		t.Errorf("slept %v by an instant older than every record kept, want 0", got)
	}

	// On the running system: what was recorded is at most what has been
	// slept so far.
	l = SleepLog{}
	l.Record()
	if by, sofar := l.SleptBy(clock(unix.CLOCK_MONOTONIC)), l.SleptSoFar(); by > sofar {
		t.Errorf("slept %v by now, more than the %v slept so far", by, sofar)
	}
}

func TestParseCgroupProcs(t *testing.T) {
	if got, err := parseCgroupProcs("12\n7\n\n300\n"); err != nil || !slices.Equal(got, []int{12, 7, 300}) {
		t.Errorf("%v, %v; want [12 7 300]", got, err)
	}
	if got, err := parseCgroupProcs(""); err != nil || len(got) != 0 {
		t.Errorf("empty cgroup: %v, %v; want no PIDs", got, err)
	}
	if _, err := parseCgroupProcs("12\nx\n"); !errors.Is(err, ErrBadProc) {
		t.Errorf("a line that is no PID: %v, want ErrBadProc", err)
	}
}

// TestCgroupProcsListsTheCgroupOfAChild reads the cgroup of a child as
// Cgroup gives it, and finds the child among the processes CgroupProcs
// lists there, whichever hierarchy systemd's is on this system.
func TestCgroupProcsListsTheCgroupOfAChild(t *testing.T) {
	cmd := startSleep(t)
	p, err := Pin(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cgroup, err := p.Cgroup()
	if err != nil {
		t.Fatal(err)
	}
	pids, err := CgroupProcs(cgroup)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("cgroup %s lists %v, not the child %d", cgroup, pids, cmd.Process.Pid)
	}
	if uids, err := p.UIDs(); err != nil || !uids.Only(uint32(os.Getuid())) {
		t.Errorf("the child's user %+v, %v; want %d alone", uids, err, os.Getuid())
	}
	if _, err := CgroupProcs(cgroup + "/no-such.scope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a cgroup that does not exist: %v, want ErrNotExist", err)
	}
}

// TestSandboxedNetnsIsOneOfAUserNamespaceOfItsOwn tells the network
// namespace of `unshare -rn` (one owned by a user namespace of the
// process's own) from the reader's and from one that root made.
func TestSandboxedNetnsIsOneOfAUserNamespaceOfItsOwn(t *testing.T) {
	tests := []struct {
		name string
		attr *syscall.SysProcAttr
		root bool // making it needs root
		want bool
	}{
		{name: "the reader's namespace", attr: nil, want: false},
		{name: "a namespace root made, as ip netns add does", attr: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}, root: true, want: false},
		{name: "a namespace of a user namespace of its own, as unshare -rn makes", want: true,
			attr: &syscall.SysProcAttr{
				Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
				UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
				GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Getuid() != 0 {
				t.Skip("needs root")
			}
			cmd := exec.Command("sleep", "600")
			cmd.SysProcAttr = tt.attr
			if err := cmd.Start(); err != nil {
				// CI runs where user namespaces work: there a refusal
				// fails the test rather than skip the case it proves.
				if tt.attr != nil && tt.attr.Cloneflags&syscall.CLONE_NEWUSER != 0 && os.Getenv("CI") != "true" {
					t.Skipf("user namespaces are not allowed here (CI=true makes this a failure): %v", err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cmd.Process.Kill()
				cmd.Wait()
			})
			p, err := Pin(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if got, err := p.SandboxedNetns(); err != nil || got != tt.want {
				t.Errorf("sandboxed %t, %v; want %t", got, err, tt.want)
			}
		})
	}
}
