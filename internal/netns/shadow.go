package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// shadowPerm is the mode of every shadow directory: a session's users
// must be able to read a shadow bound over, say, /run/systemd/resolve,
// whatever umask the helper inherited.
const shadowPerm = 0o755

// Prepare makes the directories of o's Shadows, under ShadowRoot/Name,
// hold exactly the planned symlinks and subdirectories. It writes nothing
// when they do already, as they do for every login but the first after a
// change: that check costs a few lstat, readlink and getdents calls. A
// missing shadow directory appears complete at once (it is built under a
// temporary name and renamed into place), a symlink is replaced by rename,
// and a directory that is right is kept, so open sessions, which bound it,
// follow every later change. Writers hold a lock on ShadowRoot/Name.
// Directories on the way to ShadowRoot/Name must be the effective user's
// and writable by nobody else, or Prepare fails with ErrUnsafeShadow. A
// nil Overlay has nothing to prepare.
func (o *Overlay) Prepare() error {
	if o == nil || len(o.Shadows) == 0 {
		return nil
	}
	w := shadowWriter{euid: os.Geteuid()}
	if right, err := w.sync(o); right || err != nil {
		return err
	}
	w.write = true
	for _, dir := range o.safeChain() {
		if _, err := w.safeDir(dir.path, dir.perm); err != nil {
			return err
		}
	}
	lock, err := unix.Open(o.shadowDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", o.shadowDir, err)
	}
	defer unix.Close(lock) // closing releases the flock
	if err := unix.Flock(lock, unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", o.shadowDir, err)
	}
	_, err = w.sync(o)
	return err
}

// CheckShadows tells, without writing anything, whether Prepare could make
// o's shadow directories: a directory on the way that is unsafe fails with
// ErrUnsafeShadow, as Prepare would at the next login. Shadows that are
// missing or out of date are no error: the next login or sync puts them
// right. A nil Overlay has nothing to check.
func (o *Overlay) CheckShadows() error {
	if o == nil || len(o.Shadows) == 0 {
		return nil
	}
	_, err := shadowWriter{euid: os.Geteuid()}.sync(o)
	return err
}

// safeChain lists the directories from the state directory
// (/run/netns-session) down to ShadowRoot/Name, with the mode each is
// created with: the state directory's is the one the units' locks give it.
func (o *Overlay) safeChain() []struct {
	path string
	perm uint32
} {
	shadowRoot := filepath.Dir(o.shadowDir)
	return []struct {
		path string
		perm uint32
	}{{filepath.Dir(shadowRoot), 0o700}, {shadowRoot, shadowPerm}, {o.shadowDir, shadowPerm}}
}

// shadowWriter checks shadow trees and, when write is set, puts them
// right. Its methods report whether what they checked was right already
// (in a check only: a write reports true); a check stops at the first
// thing that is not.
type shadowWriter struct {
	write bool
	euid  int
}

func (w shadowWriter) sync(o *Overlay) (bool, error) {
	for _, dir := range o.safeChain() {
		if right, err := w.safeDir(dir.path, dir.perm); !right || err != nil {
			return false, err
		}
	}
	var checked []string
	for i, m := range o.Shadows {
		// The directories between ShadowRoot/Name and a shadow may hold
		// other shadows: only their own kind is checked, once.
		path := o.shadowDir
		for _, c := range strings.Split(strings.TrimPrefix(filepath.Dir(m.Source), o.shadowDir+"/"), "/") {
			path += "/" + c
			if slices.Contains(checked, path) {
				continue
			}
			if right, err := w.ownDir(path); !right || err != nil {
				return false, err
			}
			checked = append(checked, path)
		}
		if right, err := w.tree(m.Source, o.trees[i]); !right || err != nil {
			return false, err
		}
	}
	return true, nil
}

// dirState is what lstat says of a path that should be a directory of
// ours.
type dirState int

const (
	dirRight     dirState = iota
	dirMissing            // nothing there
	dirForeign            // not a directory, or not the effective user's
	dirWrongMode          // ours, but not mode shadowPerm
)

func (w shadowWriter) dirState(path string) (dirState, error) {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	switch {
	case err == unix.ENOENT:
		return dirMissing, nil
	case err != nil:
		return 0, fmt.Errorf("stating %s: %w", path, err)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != w.euid:
		return dirForeign, nil
	case st.Mode&0o7777 != shadowPerm:
		return dirWrongMode, nil
	}
	return dirRight, nil
}

// safeDir checks a directory above the shadows, which may hold more than
// shadows (/run/netns-session holds the units' locks): a missing one is
// created with mode perm, but one that is unsafe is an error, not
// replaced.
func (w shadowWriter) safeDir(path string, perm uint32) (bool, error) {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	switch {
	case err == unix.ENOENT && !w.write:
		return false, nil
	case err == unix.ENOENT:
		// Writers lock ShadowRoot/Name, which may not exist yet: another
		// one may be creating the same directories.
		if err := mkdirMode(path, perm); !errors.Is(err, unix.EEXIST) {
			return true, err
		}
		return w.safeDir(path, perm)
	case err != nil:
		return false, fmt.Errorf("stating %s: %w", path, err)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return false, fmt.Errorf("checking %s: %w: it is not a directory", path, ErrUnsafeShadow)
	case int(st.Uid) != w.euid:
		return false, fmt.Errorf("checking %s: %w: it is owned by uid %d", path, ErrUnsafeShadow, st.Uid)
	case st.Mode&0o022 != 0:
		return false, fmt.Errorf("checking %s: %w: its mode is %#o", path, ErrUnsafeShadow, st.Mode&0o7777)
	}
	return true, nil
}

// ownDir makes path a directory of ours, replacing anything else by an
// empty one.
func (w shadowWriter) ownDir(path string) (bool, error) {
	state, err := w.dirState(path)
	if state == dirRight || err != nil {
		return err == nil, err
	}
	if !w.write {
		return false, nil
	}
	switch state {
	case dirWrongMode:
		return true, chmod(path)
	case dirForeign:
		if err := os.RemoveAll(path); err != nil {
			return false, fmt.Errorf("removing %s: %w", path, err)
		}
	}
	return true, mkdirMode(path, shadowPerm)
}

// tree makes path the directory node describes, with nothing else in it.
func (w shadowWriter) tree(path string, node *shadowNode) (bool, error) {
	state, err := w.dirState(path)
	if err != nil {
		return false, err
	}
	if state != dirRight && !w.write {
		return false, nil
	}
	switch state {
	case dirForeign:
		if err := os.RemoveAll(path); err != nil {
			return false, fmt.Errorf("removing %s: %w", path, err)
		}
		fallthrough
	case dirMissing:
		return true, create(path, node)
	case dirWrongMode:
		if err := chmod(path); err != nil {
			return false, err
		}
	}
	entries, err := readDir(path)
	if err != nil {
		return false, fmt.Errorf("listing %s: %w", path, err)
	}
	for _, e := range entries {
		name := e.Name()
		if node.children[name] != nil {
			continue
		}
		if !w.write {
			return false, nil
		}
		if err := os.RemoveAll(path + "/" + name); err != nil {
			return false, fmt.Errorf("removing %s: %w", path+"/"+name, err)
		}
	}
	for _, name := range sortedNames(node) {
		child, childPath := node.children[name], path+"/"+name
		var right bool
		if child.link != "" {
			right, err = w.symlink(childPath, child.link)
		} else {
			right, err = w.tree(childPath, child)
		}
		if !right || err != nil {
			return false, err
		}
	}
	return true, nil
}

// symlink makes path a symlink to dest.
func (w shadowWriter) symlink(path, dest string) (bool, error) {
	if current, err := os.Readlink(path); err == nil && current == dest {
		return true, nil
	}
	if !w.write {
		return false, nil
	}
	tmp := tempName(path)
	if err := os.RemoveAll(tmp); err != nil {
		return false, fmt.Errorf("removing %s: %w", tmp, err)
	}
	if err := os.Symlink(dest, tmp); err != nil {
		return false, fmt.Errorf("creating symlink %s: %w", tmp, err)
	}
	err := os.Rename(tmp, path)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		// Only an empty directory can be renamed over, and not by a symlink.
		if err = os.RemoveAll(path); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("replacing %s: %w", path, err)
	}
	return true, nil
}

// create builds the tree node describes under a temporary name and renames
// it to path, where nothing is.
func create(path string, node *shadowNode) error {
	tmp := tempName(path)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("removing %s: %w", tmp, err)
	}
	err := populate(tmp, node)
	if err == nil {
		if err = os.Rename(tmp, path); err != nil {
			err = fmt.Errorf("renaming %s to %s: %w", tmp, path, err)
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
	}
	return err
}

func populate(path string, node *shadowNode) error {
	if err := mkdirMode(path, shadowPerm); err != nil {
		return err
	}
	for _, name := range sortedNames(node) {
		child, childPath := node.children[name], path+"/"+name
		if child.link == "" {
			if err := populate(childPath, child); err != nil {
				return err
			}
		} else if err := os.Symlink(child.link, childPath); err != nil {
			return fmt.Errorf("creating symlink %s: %w", childPath, err)
		}
	}
	return nil
}

// tempName names the temporary twin of path. Writers hold the lock, so one
// name will do; being a dot-file, a leftover is an extra that the next
// write of the directory removes.
func tempName(path string) string {
	return filepath.Dir(path) + "/." + filepath.Base(path) + ".tmp"
}

// mkdirMode creates the directory path with mode perm whatever the umask.
func mkdirMode(path string, perm uint32) error {
	if err := unix.Mkdir(path, perm); err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if err := unix.Chmod(path, perm); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", path, err)
	}
	return nil
}

func chmod(path string) error {
	if err := unix.Chmod(path, shadowPerm); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", path, err)
	}
	return nil
}

func sortedNames(node *shadowNode) []string {
	names := make([]string, 0, len(node.children))
	for name := range node.children {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
