package nsjoin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netns-session/netns-session/internal/netns"
)

// mountEnv is the environment that makes the helper join m too.
func mountEnv(m MountJoin) []string {
	return []string{envMount, m.Path, envMountID, m.ID.String()}
}

// ownNamespaces returns the IDs of the test process's network and mount
// namespaces, which are the C caller's too until a join.
func ownNamespaces(t *testing.T) (netns, mount string) {
	t.Helper()
	ownNS := fmt.Sprintf("/proc/%d/ns/", os.Getpid())
	return mustID(t, ownNS+"net"), mustID(t, ownNS+"mnt")
}

// statID returns "dev:ino" of path, as the C caller prints it.
func statID(path string) (string, error) {
	id, err := netns.PathID(path)
	return id.String(), err
}

// TestJoinParentJoinsTheMountNamespaceFirst runs the helper under the C
// caller with a mount namespace to join: it must land there, in the
// working directory it had as the new namespace shows it, and be left
// untouched when the mount namespace is not the one built for it.
func TestJoinParentJoinsTheMountNamespaceFirst(t *testing.T) {
	requireRoot(t)
	target := newNetns(t)
	host, hostMount := ownNamespaces(t)
	joined := mustID(t, target)
	ownNS := fmt.Sprintf("/proc/%d/ns/", os.Getpid())
	dir := t.TempDir()
	dirID := mustID(t, dir)
	// shadowed is covered by a tmpfs in the session's mount namespace only:
	// the caller must end up in the tmpfs, by path, not in the directory it
	// was in.
	shadowed := filepath.Join(dir, "shadowed")
	if err := os.Mkdir(shadowed, 0o755); err != nil {
		t.Fatal(err)
	}
	// Made after target is mounted, so that the copy has it too.
	session, other := newMountNS(t), newMountNS(t)
	var shadowedID string
	if err := session.do(func() (err error) {
		if err := unix.Mount("tmpfs", shadowed, "tmpfs", 0, ""); err != nil {
			return err
		}
		shadowedID, err = statID(shadowed)
		return err
	}); err != nil {
		t.Fatalf("mounting a tmpfs over %s in the session's mount namespace: %v", shadowed, err)
	}
	if shadowedID == mustID(t, shadowed) {
		t.Fatalf("the tmpfs over %s shows outside the session's mount namespace", shadowed)
	}
	refused := func(steps ...string) []string {
		return append(append([]string{stepBeforeSeize, stepStopped}, steps...), stepBeforeDetach)
	}
	// swapped is a network namespace whose path the helper binds another
	// one over once it has checked it (envSwapNetns).
	swapped, swappedWith := newNetns(t), newNetns(t)

	tests := []struct {
		name      string
		wait      string // how the caller waits (see testdata/caller.c)
		netns     string
		mount     MountJoin
		cwd       string
		rmdir     bool     // the caller removes its working directory
		env       []string // for the helper
		wantErr   string
		wantSteps []string
		// The caller afterwards: its network namespace, mount namespace and
		// working directory; wantCwdID "" is not checked.
		wantNS, wantMount, wantCwd, wantCwdID string
	}{
		{
			name: "joined to both, in its working directory", wait: "pid", netns: target, mount: session.join, cwd: dir,
			wantSteps: allMountSteps, wantNS: joined, wantMount: session.join.ID.String(), wantCwd: dir, wantCwdID: dirID,
		},
		{
			name: "working directory entered by its path in the new namespace", wait: "pid", netns: target, mount: session.join, cwd: shadowed,
			wantSteps: allMountSteps, wantNS: joined, wantMount: session.join.ID.String(), wantCwd: shadowed, wantCwdID: shadowedID,
		},
		{
			name: "waitid on it is joined to both", wait: "waitid", netns: target, mount: session.join, cwd: dir,
			wantSteps: allMountSteps, wantNS: joined, wantMount: session.join.ID.String(), wantCwd: dir, wantCwdID: dirID,
		},
		{
			name: "already in the network namespace, joined to the mount namespace", wait: "pid", netns: ownNS + "net", mount: session.join, cwd: dir,
			wantSteps: allMountSteps, wantNS: host, wantMount: session.join.ID.String(), wantCwd: dir, wantCwdID: dirID,
		},
		{
			name: "reading its output first, already in the network namespace, is not joined", wait: "stdout", netns: ownNS + "net", mount: session.join, cwd: dir,
			wantErr: ErrNotWaiting.Error(), wantNS: host, wantMount: hostMount, wantCwd: dir, wantCwdID: dirID,
		},
		{
			name: "another mount namespace at the path is not joined", wait: "pid", netns: target, mount: MountJoin{Path: session.join.Path, ID: other.join.ID}, cwd: dir,
			wantErr: ErrMismatch.Error(), wantSteps: refused(stepMntOpened), wantNS: host, wantMount: hostMount, wantCwd: dir, wantCwdID: dirID,
		},
		{
			name: "a network namespace as the mount namespace is not joined", wait: "pid", netns: target, mount: MountJoin{Path: target, ID: netns.ID{}}, cwd: dir,
			wantErr: "invalid argument", wantSteps: refused(stepMntOpened, stepOpened), wantNS: host, wantMount: hostMount, wantCwd: dir, wantCwdID: dirID,
		},
		{
			name: "network namespace replaced after the check is not joined, nor the mount namespace", wait: "pid", netns: swapped, mount: session.join, cwd: dir,
			env:     []string{envSwapNetns, swappedWith},
			wantErr: ErrMismatch.Error(), wantSteps: refused(stepMntOpened, stepOpened), wantNS: host, wantMount: hostMount, wantCwd: dir, wantCwdID: dirID,
		},
		{
			name: "cancelled with both namespaces open is not joined", wait: "pid", netns: target, mount: session.join, cwd: dir,
			env:     []string{envCancelAt, stepOpened},
			wantErr: context.Canceled.Error(), wantSteps: refused(stepMntOpened, stepOpened), wantNS: host, wantMount: hostMount, wantCwd: dir, wantCwdID: dirID,
		},
		{
			name: "cancelled in the mount namespace is joined to both", wait: "pid", netns: target, mount: session.join, cwd: dir,
			env:       []string{envCancelAt, stepMntJoined},
			wantSteps: allMountSteps, wantNS: joined, wantMount: session.join.ID.String(), wantCwd: dir, wantCwdID: dirID,
		},
		{
			name: "missing mount namespace is not joined", wait: "pid", netns: target, mount: MountJoin{Path: filepath.Join(dir, "missing"), ID: session.join.ID}, cwd: dir,
			wantErr: "no such file or directory", wantSteps: refused(), wantNS: host, wantMount: hostMount, wantCwd: dir, wantCwdID: dirID,
		},
		{
			name: "relative mount namespace path is refused before ptrace", wait: "pid", netns: target, mount: MountJoin{Path: "proc/self/ns/mnt", ID: session.join.ID}, cwd: dir,
			wantErr: ErrRelativePath.Error(), wantNS: host, wantMount: hostMount, wantCwd: dir, wantCwdID: dirID,
		},
		{
			name: "removed working directory is refused", wait: "pid", netns: target, mount: session.join, cwd: filepath.Join(dir, "removed"), rmdir: true,
			wantErr: ErrUnnamedCwd.Error(), wantSteps: refused(), wantNS: host, wantMount: hostMount, wantCwd: filepath.Join(dir, "removed") + " (deleted)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append(append([]string{envWait, "200ms", envCwd, tt.cwd}, mountEnv(tt.mount)...), tt.env...)
			if tt.rmdir {
				if err := os.Mkdir(tt.cwd, 0o755); err != nil {
					t.Fatal(err)
				}
				env = append(env, envCwdRmdir, "1")
			}
			// A wrong mount.ID is the point of a case, where it is one.
			if tt.mount.ID == (netns.ID{}) {
				id, err := netns.PathID(tt.mount.Path)
				if err != nil {
					t.Fatal(err)
				}
				env = append(env, envMountID, id.String())
			}
			reps, runs := runReport(t, "report", tt.wait, env, tt.netns)
			run := runs[0]
			assertRun(t, reps[0], run, tt.wantErr, tt.wantSteps, tt.wantNS)
			if run.mount != tt.wantMount {
				t.Errorf("caller in mount namespace %q, want %s", run.mount, tt.wantMount)
			}
			if run.cwd != tt.wantCwd || tt.wantCwdID != "" && run.cwdID != tt.wantCwdID {
				t.Errorf("caller's working directory %q (%s), want %q (%s)", run.cwd, run.cwdID, tt.wantCwd, tt.wantCwdID)
			}
		})
	}
}

// TestJoinParentMountJoinKeepsCallerIntact repeats the register, stack, fd
// and signal checks of TestJoinParentKeepsCallerIntact for joins that take
// the mount namespace too; the C caller also checks that it is in that
// namespace and in the working directory it started in.
func TestJoinParentMountJoinKeepsCallerIntact(t *testing.T) {
	requireRoot(t)
	a, b := newNetns(t), newNetns(t)
	session := newMountNS(t)
	env := append([]string{envMode, "join", envCwd, t.TempDir()}, mountEnv(session.join)...)

	t.Run("100 joins", func(t *testing.T) {
		logTimes(t, runCaller(t, "plain", 100, environ(env...), a, b))
	})
	for _, mode := range []string{"signal", "signal-eintr"} {
		t.Run(mode+" while in the mount namespace is delivered once, after", func(t *testing.T) {
			reps := runCaller(t, mode, 20, environ(append(env, envSignalAt, stepMntJoined)...), a, b)
			for i, rep := range reps {
				if !slices.ContainsFunc(rep.Logs, func(l string) bool { return strings.Contains(l, "held back signal") }) {
					t.Errorf("join %d did not hold back the signal: %q", i, rep.Logs)
				}
			}
		})
	}
}

// TestJoinParentFailedMountJoinPutsCallerBack makes a mount join fail once
// the caller is in the session's mount namespace: the caller must be brought
// back into its own, in its working directory, with its network namespace,
// root, registers, stack, fds and signals as they were (the C caller checks
// them all after each join), and the helper must say why it failed. A caller
// that cannot be brought back is killed.
func TestJoinParentFailedMountJoinPutsCallerBack(t *testing.T) {
	requireRoot(t)
	target := newNetns(t)
	host, hostMount := ownNamespaces(t)
	dir := t.TempDir()
	// hidden is under a directory that a tmpfs covers in the session's
	// mount namespace, where the chdir into it then fails.
	shadowed := filepath.Join(dir, "shadowed")
	hidden := filepath.Join(shadowed, "hidden")
	if err := os.MkdirAll(hidden, 0o755); err != nil {
		t.Fatal(err)
	}
	session := newMountNS(t)
	if err := session.do(func() error { return unix.Mount("tmpfs", shadowed, "tmpfs", 0, "") }); err != nil {
		t.Fatalf("mounting a tmpfs over %s in the session's mount namespace: %v", shadowed, err)
	}
	caller := buildCaller(t)
	undone := func(steps ...string) []string {
		head := []string{stepBeforeSeize, stepStopped, stepMntOpened, stepOpened, stepMntJoined}
		return slices.Concat(head, steps, []string{stepUndone, stepBeforeDetach})
	}

	tests := []struct {
		name      string
		mode      string // of the C caller: plain, signal or signal-eintr
		cwd       string
		env       []string
		wantErr   string
		wantSteps []string
	}{
		{
			name: "working directory missing in the mount namespace", mode: "plain", cwd: hidden,
			wantErr: "no such file or directory", wantSteps: undone(),
		},
		{
			name: "signal in the mount namespace, working directory missing there, is delivered once, after", mode: "signal", cwd: hidden,
			env: []string{envSignalAt, stepMntJoined}, wantErr: "no such file or directory", wantSteps: undone(),
		},
		{
			name: "signal without SA_RESTART in the mount namespace, working directory missing there, is delivered once, after", mode: "signal-eintr", cwd: hidden,
			env: []string{envSignalAt, stepMntJoined}, wantErr: "no such file or directory", wantSteps: undone(),
		},
		{
			name: "setns into the network namespace denied by seccomp", mode: "plain", cwd: dir,
			env: []string{envDenyNetnsSetns, "1"}, wantErr: "operation not permitted", wantSteps: undone(stepChdir),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := environ(slices.Concat([]string{envMode, "join", envExpectFail, "1", envCwd, tt.cwd}, mountEnv(session.join), tt.env)...)
			for i, rep := range callerReports(t, caller, tt.mode, 5, env, target) {
				if rep.HookErr != "" {
					t.Fatalf("the helper's step hook failed: %s", rep.HookErr)
				}
				if !strings.Contains(rep.Err, tt.wantErr) || !slices.Equal(rep.Steps, tt.wantSteps) {
					t.Errorf("join %d: error %q, steps %v; want %q, %v", i, rep.Err, rep.Steps, tt.wantErr, tt.wantSteps)
				}
				if rep.Parent != host || rep.ParentMount != hostMount {
					t.Errorf("join %d: caller in %s, mount namespace %s; want it back in %s, %s", i, rep.Parent, rep.ParentMount, host, hostMount)
				}
				if tt.mode != "plain" && !slices.ContainsFunc(rep.Logs, func(l string) bool { return strings.Contains(l, "held back signal") }) {
					t.Errorf("join %d did not hold back the signal: %q", i, rep.Logs)
				}
			}
		})
	}

	t.Run("working directory removed while in the mount namespace, the caller is killed", func(t *testing.T) {
		removed := filepath.Join(dir, "removed")
		if err := os.Mkdir(removed, 0o755); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, caller, "plain", "1", testBinary(t), target)
		cmd.Env = environ(slices.Concat([]string{envMode, "join", envExpectFail, "1", envCwd, removed, envRmdirAt, stepMntJoined}, mountEnv(session.join))...)
		out, err := cmd.Output()
		if ctx.Err() != nil {
			t.Fatalf("caller still there after 20s, stopped or waiting:\n%s", out)
		}
		reps, _ := reports(t, string(out))
		if len(reps) != 1 {
			t.Fatalf("got %d helper reports, want 1:\n%s", len(reps), out)
		}
		rep := reps[0]
		t.Logf("helper: %+v", rep)
		wantSteps := []string{stepBeforeSeize, stepStopped, stepMntOpened, stepOpened, stepMntJoined}
		if rep.HookErr != "" || !strings.Contains(rep.Err, ErrCallerKilled.Error()) || !slices.Equal(rep.Steps, wantSteps) {
			t.Errorf("helper: error %q, steps %v, hook error %q; want %v, %v", rep.Err, rep.Steps, rep.HookErr, ErrCallerKilled, wantSteps)
		}
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			t.Fatalf("caller: %v, want it killed:\n%s", err, out)
		}
		if ws := exitErr.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("caller ended with wait status %#x, want killed by SIGKILL", uint32(ws))
		}
	})
}

// TestJoinParentMountJoinRefusesAThreadedCaller: setns(CLONE_NEWNS) fails
// for a thread that shares its root and working directory, as every thread
// of a process does, so such a caller is refused before anything is done to
// it (a join of its network namespace alone works: see
// TestJoinParentMultithreadedCaller).
func TestJoinParentMountJoinRefusesAThreadedCaller(t *testing.T) {
	requireRoot(t)
	target := newNetns(t)
	host, hostMount := ownNamespaces(t)
	session := newMountNS(t)

	helper, rep, _ := runMultithreadedCaller(t, append([]string{envNetns, target}, mountEnv(session.join)...)...)
	if !strings.Contains(helper.Err, ErrCallerThreaded.Error()) || len(helper.Steps) != 0 {
		t.Errorf("helper: error %q, steps %v; want %v before any ptrace", helper.Err, helper.Steps, ErrCallerThreaded)
	}
	if rep.HelperStatus == 0 {
		t.Errorf("helper exited 0")
	}
	if rep.Waiter != host || rep.WaiterMount != hostMount {
		t.Errorf("waiting thread in %s, mount namespace %s; want it left in %s, %s", rep.Waiter, rep.WaiterMount, host, hostMount)
	}
}

// TestJoinParentKilledMidMountJoinLeavesNoCallerStopped SIGKILLs the helper
// at each step of a mount join, as the fault build does: before it touches
// the caller, the caller goes on unchanged; from the first stop on,
// PTRACE_O_EXITKILL kills the caller with it, whatever state it was in. It
// is never left stopped, or running on altered.
func TestJoinParentKilledMidMountJoinLeavesNoCallerStopped(t *testing.T) {
	requireRoot(t)
	target := newNetns(t)
	host, hostMount := ownNamespaces(t)
	session := newMountNS(t)
	caller := buildCaller(t)
	env := append([]string{envMode, "join", envCwd, t.TempDir()}, mountEnv(session.join)...)

	for _, step := range allMountSteps {
		t.Run("killed at "+step, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, caller, "report", "pid", testBinary(t), target)
			cmd.Env = environ(append(env, envKillAt, step)...)
			out, err := cmd.Output()
			if ctx.Err() != nil {
				t.Fatalf("caller still there after 20s, stopped or waiting:\n%s", out)
			}
			reps, lines := reports(t, string(out))
			if len(reps) != 0 {
				t.Errorf("the helper lived on to report %+v", reps)
			}
			if step == stepBeforeSeize {
				runs := parseCallerRuns(t, lines)
				if err != nil || len(runs) != 1 {
					t.Fatalf("caller: %v, %d runs, want one reported run:\n%s", err, len(runs), out)
				}
				if want := fmt.Sprint(int(unix.SIGKILL)); runs[0].status != want {
					t.Errorf("helper wait status %s, want %s (killed)", runs[0].status, want)
				}
				if runs[0].self != host || runs[0].mount != hostMount {
					t.Errorf("caller in %s, mount namespace %s; want it unchanged in %s, %s", runs[0].self, runs[0].mount, host, hostMount)
				}
				return
			}
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) {
				t.Fatalf("caller: %v, want it killed with the helper:\n%s", err, out)
			}
			if ws := exitErr.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Errorf("caller ended with wait status %#x, want killed by SIGKILL", uint32(ws))
			}
		})
	}
}
