package nspawn

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	bootTimeout     = 90 * time.Second
	shutdownTimeout = 15 * time.Second
	// execTimeout bounds every command run in a container, whatever the
	// caller's context says, so a hung login cannot hang the suite.
	execTimeout = 2 * time.Minute
	// heldTimeout bounds a session a test holds open while it works, which
	// on a loaded machine may take longer than execTimeout.
	heldTimeout = 10 * time.Minute
)

// containerEnv is the environment of every command run in a container: the
// test binary's own environment means nothing there.
var containerEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/bash",
	"LANG=C.UTF-8", "TERM=dumb",
}

// forEachSuite runs fn as a subtest for every suite, all in parallel.
func forEachSuite(t *testing.T, fn func(t *testing.T, s Suite)) {
	t.Helper()
	requireHarness(t)
	for _, s := range suites {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, s)
		})
	}
}

// Container is a booted Debian system: systemd as PID 1, logind, sshd, a
// private network, and the netns-session under test at /usr/sbin/netns-session
// (unless booted without it, see bootOptions). It is torn down when the test
// that booted it ends.
type Container struct {
	Suite Suite
	Name  string // nspawn's machine name, unique across runs

	image   string   // the overlay's lower directory
	binds   []string // read-only binds, HOST:CONTAINER, the binary's among them
	dir     string   // upper/, work/, root/ (the merged tree) and console.log
	cgroups []string // where nspawn starts, see cgroupGroup

	mu      sync.Mutex
	current *machine         // the running boot
	execs   map[int]struct{} // process groups of running Exec commands
}

// machine is one boot of a Container: one systemd-nspawn process.
type machine struct {
	cmd    *exec.Cmd
	leader int           // the container's init, as the host sees it
	exited chan struct{} // closed once nspawn has exited
}

// boot starts a container of suite s on a fresh overlay over its image and
// waits until systemd reports the system running.
func boot(t *testing.T, s Suite) *Container {
	t.Helper()
	return bootWith(t, s, bootOptions{})
}

// bootOptions change what bootWith puts in a container.
type bootOptions struct {
	// binary is bound in at /usr/sbin/netns-session instead of the build
	// under test, e.g. the fault-injection build.
	binary string
	// withoutBinary boots the image as debootstrap made it, with nothing
	// at /usr/sbin/netns-session: the package tests install it with dpkg,
	// which cannot replace a bind mount.
	withoutBinary bool
	// bindRO are more read-only binds, HOST:CONTAINER as systemd-nspawn's
	// --bind-ro takes them.
	bindRO []string
}

// bootWith is boot with options.
func bootWith(t *testing.T, s Suite, opts bootOptions) *Container {
	t.Helper()
	requireHarness(t)
	image := imageFor(t, s)
	binds := slices.Clone(opts.bindRO)
	if !opts.withoutBinary {
		if opts.binary == "" {
			opts.binary = binary
		}
		binds = append(binds, opts.binary+":/usr/sbin/netns-session")
	}
	c, err := newContainer(s, image, binds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.destroy(t) })
	c.start(t)
	return c
}

// newContainer creates the directories and cgroups of a container and
// registers it for the signal handler, which holds live's lock for good once
// it runs: nothing is created after the handler has cleaned up.
func newContainer(s Suite, image string, binds []string) (*Container, error) {
	live.Lock()
	defer live.Unlock()
	dir, err := os.MkdirTemp(runDir, s.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("creating container directory: %w", err)
	}
	c := &Container{
		Suite:   s,
		Name:    "nst-" + filepath.Base(dir),
		image:   image,
		binds:   binds,
		dir:     dir,
		cgroups: cgroupsOf(filepath.Base(runDir), filepath.Base(dir)),
		execs:   map[int]struct{}{},
	}
	for _, sub := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("creating overlay directory: %w", err)
		}
	}
	for _, cg := range c.cgroups {
		if err := os.MkdirAll(cg, 0o755); err != nil {
			return nil, fmt.Errorf("creating cgroup: %w", err)
		}
	}
	live.containers[c] = struct{}{}
	return c, nil
}

// Reboot shuts the container down cleanly and boots it again on the same
// overlay, so everything written to its disk survives.
func (c *Container) Reboot(t *testing.T) {
	t.Helper()
	if !c.stop() {
		t.Fatalf("%s did not shut down within %v and was killed", c.Name, shutdownTimeout)
	}
	c.start(t)
}

func (c *Container) consolePath() string { return filepath.Join(c.dir, "console.log") }

func (c *Container) start(t *testing.T) {
	t.Helper()
	console, err := os.OpenFile(c.consolePath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("creating console log: %v", err)
	}
	defer console.Close() // nspawn holds its own descriptor once started

	root := filepath.Join(c.dir, "root")
	// The overlay is mounted in nspawn's private mount namespace, so it goes
	// away with nspawn however nspawn ends.
	const script = `for cg in $5; do echo 0 > "$cg/cgroup.procs"; done
mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4"
shift 5
exec systemd-nspawn "$@"`
	args := []string{c.image, filepath.Join(c.dir, "upper"), filepath.Join(c.dir, "work"), root, strings.Join(c.cgroups, " "),
		"--directory=" + root, "--boot", "--private-network", "--keep-unit", "--register=no",
		"--machine=" + c.Name,
		"--setenv=SYSTEMD_COLORS=0"} // a console log without escape sequences
	for _, b := range c.binds {
		args = append(args, "--bind-ro="+b)
	}
	cmd := isolated(context.Background(), script, args...)
	cmd.Stdout, cmd.Stderr = console, console
	if err := startIsolated(cmd); err != nil {
		t.Fatalf("starting systemd-nspawn: %v", err)
	}
	m := &machine{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(m.exited)
	}()
	c.mu.Lock()
	c.current = m
	c.mu.Unlock()

	began := time.Now()
	if err := c.waitRunning(m, began.Add(bootTimeout)); err != nil {
		t.Fatalf("booting %s (%s): %v\n--- last lines of %s ---\n%s", c.Name, c.Suite.Name, err, c.consolePath(), tail(c.consolePath(), 40))
	}
	t.Logf("%s (%s) running after %v", c.Name, c.Suite.Name, time.Since(began).Round(time.Millisecond))
}

// waitRunning finds the container's init and waits for `systemctl
// is-system-running --wait` to say running. It retries because systemctl
// cannot reach systemd until early boot has set up its socket.
func (c *Container) waitRunning(m *machine, deadline time.Time) error {
	leader, err := findLeader(m, deadline)
	if err != nil {
		return err
	}
	c.mu.Lock()
	m.leader = leader
	c.mu.Unlock()

	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for {
		out, stderr, err := c.Exec(ctx, "systemctl", "is-system-running", "--wait")
		switch strings.TrimSpace(out) {
		case "running":
			return nil
		case "degraded":
			failed, _, _ := c.Exec(ctx, "systemctl", "--failed", "--no-pager")
			return fmt.Errorf("%w:\n%s", errDegraded, failed)
		}
		select {
		case <-m.exited:
			return errNspawnExited
		case <-ctx.Done():
			return fmt.Errorf("%w after %v (last answer %q: %v)", errBootTimeout, bootTimeout, strings.TrimSpace(out+stderr), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// findLeader returns the host PID of the container's init: the child of
// nspawn that lives in another PID namespace.
func findLeader(m *machine, deadline time.Time) (int, error) {
	nspawn := m.cmd.Process.Pid
	for {
		own, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", nspawn))
		if err != nil {
			return 0, errNspawnExited
		}
		for _, pid := range processes(func(ppid, _ int) bool { return ppid == nspawn }) {
			if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && ns != own {
				return pid, nil
			}
		}
		select {
		case <-m.exited:
			return 0, errNspawnExited
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%w after %v: no container init appeared", errBootTimeout, bootTimeout)
		}
	}
}

// processes returns the PIDs of the processes whose parent PID and process
// group match. It scans /proc: this kernel has no /proc/PID/task/TID/children.
func processes(match func(ppid, pgrp int) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after the command name, which may contain anything, are
		// the state, the parent PID and the process group.
		end := bytes.LastIndexByte(stat, ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(string(stat[end+1:]))
		if len(fields) < 3 {
			continue
		}
		ppid, err1 := strconv.Atoi(fields[1])
		pgrp, err2 := strconv.Atoi(fields[2])
		if err1 == nil && err2 == nil && match(ppid, pgrp) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stop shuts the current boot down, if any: SIGTERM makes nspawn halt the
// container cleanly; if that takes longer than shutdownTimeout, SIGKILL on
// nspawn, PID 1 of the namespace the container lives in, kills the container
// with it. It reports whether the shutdown was clean and is safe to call more
// than once, concurrently.
//
// Commands Exec runs are killed first, and again while it waits: they are
// doomed anyway, and left alone they can stall the shutdown for good.
// systemd-shutdown stops every process before it kills it, nsenter stops
// itself to mirror its child and is never resumed, and a child nobody reaps
// keeps the container's PID namespace, and so nspawn, alive.
func (c *Container) stop() (clean bool) {
	c.mu.Lock()
	m := c.current
	c.mu.Unlock()
	if m == nil {
		return true
	}
	select {
	case <-m.exited:
		return true
	default:
	}
	c.killExecs()
	m.cmd.Process.Signal(syscall.SIGTERM)
	latecomers := time.NewTicker(100 * time.Millisecond)
	defer latecomers.Stop()
	deadline := time.After(shutdownTimeout)
	for {
		select {
		case <-m.exited:
			return true
		case <-latecomers.C:
			c.killExecs()
		case <-deadline:
			m.cmd.Process.Kill()
			<-m.exited
			return false
		}
	}
}

// killExecs kills every command Exec runs.
func (c *Container) killExecs() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for leader := range c.execs {
		killExec(leader)
	}
}

// killExec kills the process group of an Exec command, led by its nsenter.
// The members inside the container go first, so that nsenter, still alive,
// reaps them: its orphaned child would wait as a zombie for the host's init
// to reap it, which can take seconds, and a container shutting down waits for
// it (10 s on bookworm). nsenter stops itself whenever its child stops, so it
// is resumed to reap.
func killExec(leader int) {
	members := processes(func(_, pgrp int) bool { return pgrp == leader })
	for _, pid := range members {
		if pid != leader {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if len(members) <= 1 { // nsenter has not forked yet, or its child is gone
		syscall.Kill(leader, syscall.SIGKILL)
		return
	}
	syscall.Kill(leader, syscall.SIGCONT)
}

// remove removes the stopped container's cgroups and directory.
func (c *Container) remove() error {
	if err := removeCgroups(c.cgroups...); err != nil {
		return err
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("removing %s: %w", c.dir, err)
	}
	return nil
}

func (c *Container) destroy(t *testing.T) {
	if t.Failed() {
		t.Logf("--- last lines of %s console ---\n%s", c.Name, tail(c.consolePath(), 60))
	}
	if !c.stop() {
		t.Logf("%s did not halt within %v and was killed", c.Name, shutdownTimeout)
	}
	if err := c.remove(); err != nil {
		t.Error(err)
	}
	live.Lock()
	delete(live.containers, c)
	live.Unlock()
}

// Exec runs args in all the container's namespaces, as root, with
// containerEnv, bounded by ctx and by execTimeout. A non-zero exit is an
// error wrapping *exec.ExitError.
func (c *Container) Exec(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return c.execWithInput(ctx, nil, args...)
}

func (c *Container) execWithInput(ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	return c.execFor(ctx, execTimeout, stdin, args...)
}

// execFor is execWithInput bounded by timeout instead of execTimeout.
func (c *Container) execFor(ctx context.Context, timeout time.Duration, stdin io.Reader, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c.mu.Lock()
	leader := c.current.leader
	c.mu.Unlock()

	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", strconv.Itoa(leader), "--all", "--"}, args...)...)
	cmd.Env = containerEnv
	cmd.Stdin = stdin
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// nsenter forks to enter the PID namespace, and the command may fork
	// too: in a group of their own, a timeout kills them all (see killExec).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		killExec(cmd.Process.Pid)
		return nil
	}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return "", "", fmt.Errorf("running %q in %s: %w", args, c.Name, err)
	}
	pgid := cmd.Process.Pid
	c.mu.Lock()
	c.execs[pgid] = struct{}{}
	c.mu.Unlock()
	err := cmd.Wait()
	c.mu.Lock()
	delete(c.execs, pgid)
	c.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		err = fmt.Errorf("running %q in %s: %w", args, c.Name, err)
	}
	return stdout.String(), stderr.String(), err
}

// Run runs args in the container and returns its stdout; any failure fails
// the test, showing stderr.
func (c *Container) Run(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := c.Exec(t.Context(), args...)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s\nstdout:\n%s", err, stderr, stdout)
	}
	return stdout
}

// Sh runs script with `bash -c` in the container, like Run.
func (c *Container) Sh(t *testing.T, script string) string {
	t.Helper()
	return c.Run(t, "/bin/bash", "-c", script)
}

// WriteFile writes content to path in the container, owned by root with
// mode's permission bits, creating missing parent directories.
func (c *Container) WriteFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	const script = `mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && chmod "$2" "$1"`
	_, stderr, err := c.execWithInput(t.Context(), strings.NewReader(content),
		"/bin/bash", "-c", script, "bash", path, strconv.FormatUint(uint64(mode.Perm()), 8))
	if err != nil {
		t.Fatalf("writing %s: %v\n%s", path, err, stderr)
	}
}

// SSH runs command as user over ssh to 127.0.0.1 inside the container, with
// root's key, so the login goes through sshd and the whole PAM session stack.
func (c *Container) SSH(ctx context.Context, user, command string) (stdout, stderr string, err error) {
	return c.Exec(ctx, sshArgs(user, command)...)
}

// sshHeld is SSH for a session held open while the test works: bounded by
// heldTimeout, not execTimeout.
func (c *Container) sshHeld(ctx context.Context, user, command string) (stdout, stderr string, err error) {
	return c.execFor(ctx, heldTimeout, nil, sshArgs(user, command)...)
}

// sshArgs is the command line of a non-interactive ssh login of user to
// the container's sshd with root's key, running command.
func sshArgs(user, command string) []string {
	return []string{"ssh", "-i", rootKey,
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=5",
		"-o", "LogLevel=ERROR",
		user + "@127.0.0.1", command}
}
