package proc

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFileInResolvesSymlinksInsideTheRoot looks paths up in a tree laid out
// like a session's view of resolved's stub, with the tree as the root.
func TestFileInResolvesSymlinksInsideTheRoot(t *testing.T) {
	root := t.TempDir()
	for _, dir := range []string{"etc/netns/ns0", "run/systemd/resolve", "outside"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, file := range []string{"etc/netns/ns0/resolv.conf", "run/systemd/resolve/stub-resolv.conf", "etc/hosts"} {
		if err := os.WriteFile(filepath.Join(root, file), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"etc/resolv.conf":                    "/run/systemd/resolve/stub-resolv.conf",
		"run/systemd/resolve/resolv.conf":    "../../../etc/netns/ns0/resolv.conf",
		"etc/above":                          "../../../../../../etc/hosts",
		"etc/dangling":                       "/run/nothing",
		"etc/loop":                           "/etc/loop2",
		"etc/loop2":                          "loop",
		"run/systemd/resolve/etc-via-parent": "../../../etc",
	}
	for link, target := range links {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	idOf := func(rel string) FileID {
		t.Helper()
		id, err := StatFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	tests := []struct {
		name    string
		path    string
		want    FileID
		wantErr error
	}{
		{name: "an absolute symlink starts over at the root", path: "/etc/resolv.conf", want: idOf("run/systemd/resolve/stub-resolv.conf")},
		{name: "a relative symlink with ..", path: "/run/systemd/resolve/resolv.conf", want: idOf("etc/netns/ns0/resolv.conf")},
		{name: ".. stops at the root", path: "/etc/above", want: idOf("etc/hosts")},
		{name: "a symlinked directory on the way", path: "/run/systemd/resolve/etc-via-parent/netns/./ns0//resolv.conf", want: idOf("etc/netns/ns0/resolv.conf")},
		{name: "the root itself", path: "/", want: idOf(".")},
		{name: "a dangling symlink", path: "/etc/dangling", wantErr: ErrNoFile},
		{name: "a missing file", path: "/etc/none", wantErr: ErrNoFile},
		{name: "a file taken for a directory", path: "/etc/hosts/x", wantErr: ErrNoFile},
		{name: "a symlink loop", path: "/etc/loop", wantErr: unix.ELOOP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fileIn(root, tt.path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("fileIn(%s) = %v, %v; want %v", tt.path, got, err, tt.wantErr)
				}
				if IsGone(err) {
					t.Errorf("%v reads as a gone process", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("fileIn(%s) = %v, %v; want %v", tt.path, got, err, tt.want)
			}
		})
	}
}

// TestSeenFileFollowsLinksInTheProcessMountNamespace gives a child a file
// of its own behind an absolute symlink, by a bind mount in a mount
// namespace of its own: the child's file is found, where a stat through
// /proc/PID/root finds the reader's.
func TestSeenFileFollowsLinksInTheProcessMountNamespace(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: makes a mount namespace and a bind mount")
	}
	dir := t.TempDir()
	hostFile, ownFile, link := filepath.Join(dir, "host"), filepath.Join(dir, "own"), filepath.Join(dir, "link")
	for _, f := range []string{hostFile, ownFile} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(hostFile, link); err != nil {
		t.Fatal(err)
	}
	// Go makes the new mount namespace private, so the bind stays in it.
	cmd := exec.Command("sh", "-c", `mount --bind "$1" "$2" && echo ready && exec sleep 600`, "sh", ownFile, hostFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("the child did not bind its file: %q, %v", line, err)
	}
	hostID, err := StatFile(hostFile)
	if err != nil {
		t.Fatal(err)
	}
	ownID, err := StatFile(ownFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if got, err := SeenFile(pid, link); err != nil || got != ownID {
		t.Errorf("SeenFile(%d, %s) = %v, %v; want the child's file %v (the host's is %v)", pid, link, got, err, ownID, hostID)
	}
	if naive, err := StatFile("/proc/" + strconv.Itoa(pid) + "/root" + link); err != nil || naive != hostID {
		t.Errorf("a stat through /proc/PID/root gives %v, %v: want the reader's file %v, the reason SeenFile resolves links itself", naive, err, hostID)
	}
	if _, err := SeenFile(pid, filepath.Join(dir, "none")); !errors.Is(err, ErrNoFile) || IsGone(err) {
		t.Errorf("a file the child does not see: %v, want ErrNoFile", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := SeenFile(pid, link); !IsGone(err) {
		t.Errorf("a gone process: %v, want an error IsGone tells", err)
	}
}
