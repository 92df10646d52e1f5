package netns

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// ID identifies a namespace by the device and inode of its nsfs file. Every
// way to reach a namespace (/proc/PID/ns/net, /proc/PID/task/TID/ns/net, a
// bind mount under /run/netns, an open fd) stats to the same ID, and two
// namespaces never share one while both exist.
type ID struct {
	Dev, Ino uint64
}

// String formats the ID as "dev:ino", the form `stat -L -c %d:%i` prints.
func (id ID) String() string {
	return fmt.Sprintf("%d:%d", id.Dev, id.Ino)
}

func idOf(st *unix.Stat_t) ID {
	return ID{Dev: st.Dev, Ino: st.Ino}
}

// PathID returns the ID of the file at path, following symlinks, so that a
// /proc/PID/ns/* link yields the namespace it points to. It does not check
// that path is a namespace; use CheckNetns for that.
func PathID(path string) (ID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return ID{}, fmt.Errorf("stating %s: %w", path, err)
	}
	return idOf(&st), nil
}

// ProcessNetnsID returns the ID of the network namespace of process pid (of
// its main thread, which is what /proc/PID/ns/net shows).
func ProcessNetnsID(pid int) (ID, error) {
	return PathID(fmt.Sprintf("/proc/%d/ns/net", pid))
}

// ThreadNetnsID returns the ID of the network namespace of thread tid of
// process pid. Threads of one process may be in different namespaces.
func ThreadNetnsID(pid, tid int) (ID, error) {
	return PathID(fmt.Sprintf("/proc/%d/task/%d/ns/net", pid, tid))
}

// nsTypeNames names the namespace types NS_GET_NSTYPE reports, for messages.
var nsTypeNames = map[int]string{
	unix.CLONE_NEWCGROUP: "cgroup",
	unix.CLONE_NEWIPC:    "ipc",
	unix.CLONE_NEWNS:     "mount",
	unix.CLONE_NEWNET:    "network",
	unix.CLONE_NEWPID:    "pid",
	unix.CLONE_NEWTIME:   "time",
	unix.CLONE_NEWUSER:   "user",
	unix.CLONE_NEWUTS:    "uts",
}

// CheckNetns checks that path is a network namespace (an nsfs file whose
// NS_GET_NSTYPE is CLONE_NEWNET; kernel 4.11 or later) and returns its ID.
// It fails with ErrNotNamespace or ErrNotNetNamespace, whose messages read
// "PATH is not a (network) namespace", or with the stat/open error, which
// matches fs.ErrNotExist for a missing path.
func CheckNetns(path string) (ID, error) {
	fd, id, err := openNetns(path)
	if err != nil {
		return ID{}, err
	}
	unix.Close(fd)
	return id, nil
}

// openNetns opens the network namespace at path, checked as CheckNetns
// checks it, and returns the open fd, whose namespace is the one checked
// even if path is replaced meanwhile.
func openNetns(path string) (int, ID, error) {
	// nsfs files are regular files; refusing anything else before opening it
	// keeps a FIFO or a device node named by mistake from being opened at all.
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return -1, ID{}, fmt.Errorf("checking namespace %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return -1, ID{}, fmt.Errorf("%s is %w", path, ErrNotNamespace)
	}
	// Everything below looks at the opened fd. O_NONBLOCK and O_NOCTTY keep
	// a replacement of path harmless to open.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, ID{}, fmt.Errorf("opening namespace %s: %w", path, err)
	}
	id, err := checkNetnsFD(fd, path)
	if err != nil {
		unix.Close(fd)
		return -1, ID{}, err
	}
	return fd, id, nil
}

func checkNetnsFD(fd int, path string) (ID, error) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return ID{}, fmt.Errorf("stating file system of %s: %w", path, err)
	}
	if fs.Type != unix.NSFS_MAGIC {
		return ID{}, fmt.Errorf("%s is %w", path, ErrNotNamespace)
	}
	nsType, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return ID{}, fmt.Errorf("querying namespace type of %s: %w", path, err)
	}
	if nsType != unix.CLONE_NEWNET {
		return ID{}, fmt.Errorf("%s is %w (it is a %s namespace)", path, ErrNotNetNamespace, nsTypeNames[nsType])
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return ID{}, fmt.Errorf("stating namespace %s: %w", path, err)
	}
	return idOf(&st), nil
}
