package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks is the kernel's MAXSYMLINKS: how many symlinks one lookup
// follows before it fails with ELOOP.
const maxSymlinks = 40

// FileID identifies a file by its device and inode.
type FileID struct {
	Dev, Ino uint64
}

// String formats the ID as "dev:ino", the form `stat -L -c %d:%i` prints.
func (id FileID) String() string { return fmt.Sprintf("%d:%d", id.Dev, id.Ino) }

// StatFile returns the identity of the file at path, following symlinks,
// as the caller sees it.
func StatFile(path string) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return FileID{}, fmt.Errorf("stating %s: %w", path, err)
	}
	return FileID{Dev: st.Dev, Ino: st.Ino}, nil
}

// SeenFile returns the identity of the file that process pid sees at path,
// an absolute path: looked up from the process's root in its mount
// namespace, symlinks included. A stat of /proc/PID/root/PATH would not
// do: the kernel resolves an absolute symlink met on the way from the
// reader's root, so /etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf
// would name the reader's stub-resolv.conf, not the one the process sees.
//
// It fails with ErrNoFile when the process sees nothing at path (a dangling
// symlink included), and with an error IsGone tells when the process is
// gone.
func SeenFile(pid int, path string) (FileID, error) {
	root := fmt.Sprintf("/proc/%d/root", pid)
	if _, err := os.Stat(root); err != nil {
		return FileID{}, fmt.Errorf("reading the root of process %d: %w", pid, err)
	}
	id, err := fileIn(root, path)
	if errors.Is(err, ErrNoFile) {
		// Its /proc directory going reads as a missing file too.
		if _, rootErr := os.Stat(root); rootErr != nil {
			return FileID{}, fmt.Errorf("reading the root of process %d: %w", pid, rootErr)
		}
	}
	if err != nil {
		return FileID{}, fmt.Errorf("looking up %s as process %d sees it: %w", path, pid, err)
	}
	return id, nil
}

// fileIn returns the identity of the file at path, an absolute path inside
// the directory root, resolving every symlink on the way inside root as a
// process whose root it is would: an absolute target starts over at root,
// and ".." stops there. Each step is an lstat of root joined with a path
// whose symlinks are resolved already, so the kernel follows none.
func fileIn(root, path string) (FileID, error) {
	resolved, rest, links := "/", path, 0
	for rest != "" {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		switch name {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, name)
		var st unix.Stat_t
		if err := unix.Lstat(root+next, &st); err != nil {
			return FileID{}, lookupError(next, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			resolved = next
			continue
		}
		if links++; links > maxSymlinks {
			return FileID{}, fmt.Errorf("resolving %s: %w", path, unix.ELOOP)
		}
		target, err := os.Readlink(root + next)
		if err != nil {
			return FileID{}, lookupError(next, err)
		}
		if strings.HasPrefix(target, "/") {
			resolved = "/"
		}
		rest = target + "/" + rest
	}
	var st unix.Stat_t
	if err := unix.Lstat(root+resolved, &st); err != nil {
		return FileID{}, lookupError(resolved, err)
	}
	return FileID{Dev: st.Dev, Ino: st.Ino}, nil
}

// lookupError turns a missing step of a lookup into ErrNoFile, which does
// not read as a gone process (IsGone).
func lookupError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%s: %w", path, ErrNoFile)
	}
	return fmt.Errorf("stating %s: %w", path, err)
}
