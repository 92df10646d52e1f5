// Package netns owns network namespaces as the rest of netns-session sees
// them:
//
//   - Named namespaces: files under /run/netns (Dir) that are bind mounts of
//     a namespace, laid out exactly as iproute2's `ip netns` keeps them, so
//     `ip netns exec`, the config's NAME form and NetworkNamespacePath= all
//     find the same namespace. It creates them with the loopback interface
//     up, deletes them, lists them, and runs code inside one on a locked OS
//     thread.
//   - Naming: what a name may be (NameProblem), and HostPath, the host's
//     namespace; the config applies these rules, it does not make them.
//   - Identity: a namespace is the device and inode of its nsfs file (ID),
//     however it is reached; CheckNetns is the one check that a path is a
//     network namespace, for the registry, the PAM join and the watcher.
//   - Per-namespace /etc: the directories /etc/netns/NAME (EtcRoot) that
//     `ip netns exec` overlays on /etc. LoadOverlay plans what a session
//     of NAME sees instead of the host's files and how it keeps seeing
//     them when the host rewrites its resolver files, Prepare keeps the
//     shadow directories under ShadowRoot, and EnterMountNS builds a
//     session's mount namespace (the overlay, and a /sys of the network
//     namespace) on the calling thread, for the PAM join to enter. The
//     drop-ins of the user managers carry the same plan (package units).
//
// It does not use github.com/vishvananda/netns. Its NewNamed unshares the
// calling thread and leaves it in the new namespace, does not make
// /run/netns a shared mount point as `ip netns add` does (so a delete
// would not reach mount namespaces that copied it), and leaves the
// loopback down; its GetFromPath opens any path without checking that it
// is a network namespace, which CheckNetns exists to do.
package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Registry is a directory of named network namespaces.
type Registry struct {
	// Dir holds one bind-mounted namespace file per name.
	Dir string
}

// System returns the registry ip netns and the config use, /run/netns.
func System() Registry { return Registry{Dir: Dir} }

// Path returns the namespace file of name.
func (r Registry) Path(name string) string { return filepath.Join(r.Dir, name) }

// Add makes name a network namespace with its loopback interface up, the
// way `ip netns add` does (plus the loopback): Dir becomes a shared mount
// point, so that a later delete propagates to every mount namespace that
// copied it, and a new namespace is bind-mounted on an empty file named name.
// When name already is a network namespace, Add only makes sure its loopback
// is up and reports created false; it fails with ErrOccupied when the name is
// taken by something else.
func (r Registry) Add(name string) (created bool, err error) {
	if err := ValidateName(name); err != nil {
		return false, err
	}
	path := r.Path(name)
	switch _, err := CheckNetns(path); {
	case err == nil:
		if err := Do(path, setLoopbackUp); err != nil {
			return false, fmt.Errorf("bringing up loopback in %s: %w", path, err)
		}
		return false, nil
	case errors.Is(err, ErrNotNamespace) || errors.Is(err, ErrNotNetNamespace):
		return false, fmt.Errorf("adding %s: %w (netns-session netns del %s removes it)", path, ErrOccupied, name)
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("adding %s: %w", path, err)
	}
	if err := r.makeSharedMountPoint(); err != nil {
		return false, err
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("creating namespace file %s: %w", path, err)
	}
	unix.Close(fd)
	err = inNewThreadNetns(func() error {
		// /proc/self would name the main thread's namespace, not this one's.
		if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting the new namespace on %s: %w", path, err)
		}
		if err := setLoopbackUp(); err != nil {
			return fmt.Errorf("bringing up loopback in %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		if _, rmErr := r.remove(path); rmErr != nil {
			return false, errors.Join(err, fmt.Errorf("cleaning up after the failed add: %w", rmErr))
		}
		return false, err
	}
	return true, nil
}

// makeSharedMountPoint makes Dir a mount point with shared propagation, as
// iproute2's netns_add does: mount --make-rshared, and when Dir is not a
// mount point yet (EINVAL), bind-mount it on itself first. The flock keeps
// concurrent adds at boot from stacking bind mounts of Dir on each other.
func (r Registry) makeSharedMountPoint() error {
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", r.Dir, err)
	}
	lock, err := unix.Open(r.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", r.Dir, err)
	}
	defer unix.Close(lock) // closing releases the flock
	if err := unix.Flock(lock, unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", r.Dir, err)
	}
	for madeMountPoint := false; ; madeMountPoint = true {
		err := unix.Mount("", r.Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if err != unix.EINVAL || madeMountPoint {
			return fmt.Errorf("making %s a shared mount point: %w", r.Dir, err)
		}
		if err := unix.Mount(r.Dir, r.Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting %s on itself: %w", r.Dir, err)
		}
	}
}

// Delete removes name, the way `ip netns del` does: it detaches the bind
// mount and removes the file. Processes still in the namespace keep it alive
// until they exit. Without such a file Delete does nothing and reports
// deleted false; a file that is not a namespace is removed too.
func (r Registry) Delete(name string) (deleted bool, err error) {
	if err := ValidateName(name); err != nil {
		return false, err
	}
	return r.remove(r.Path(name))
}

func (r Registry) remove(path string) (bool, error) {
	// EINVAL: not a mount point, the leftover of an interrupted add.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return false, fmt.Errorf("unmounting %s: %w", path, err)
	}
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("removing %s: %w", path, err)
	}
	return true, nil
}

// Entry is one name in a registry.
type Entry struct {
	Name string
	Path string
	// ID identifies the namespace; zero when Err is set.
	ID ID
	// Err says why the file is not a usable network namespace.
	Err error
}

// List returns the entries of the registry in name order; a missing Dir has
// none.
func (r Registry) List() ([]Entry, error) {
	dirents, err := os.ReadDir(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", r.Dir, err)
	}
	entries := make([]Entry, 0, len(dirents))
	for _, d := range dirents {
		e := Entry{Name: d.Name(), Path: r.Path(d.Name())}
		e.ID, e.Err = CheckNetns(e.Path)
		entries = append(entries, e)
	}
	return entries, nil
}
