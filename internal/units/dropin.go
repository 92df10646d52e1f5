package units

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/netns-session/netns-session/internal/netns"
)

// Mount is a path the user manager sees in place of another: Source bound
// over Target, as a namespace's /etc directory asks (see netns.Overlay).
type Mount struct {
	Source, Target string
	// ReadOnly binds with BindReadOnlyPaths= rather than BindPaths=.
	ReadOnly bool
}

// OverlayMounts are the mounts that give a user manager the view of o's
// /etc directory (none for a nil o): its binds read-write, as ip netns exec
// makes them, its shadows read-only.
func OverlayMounts(o *netns.Overlay) []Mount {
	if o == nil {
		return nil
	}
	mounts := make([]Mount, 0, len(o.Binds)+len(o.Shadows))
	for _, b := range o.Binds {
		mounts = append(mounts, Mount{Source: b.Source, Target: b.Target})
	}
	for _, s := range o.Shadows {
		mounts = append(mounts, Mount{Source: s.Source, Target: s.Target, ReadOnly: true})
	}
	return mounts
}

// appendDropIn appends the drop-in that starts user@UID.service of user in
// the network namespace at nsPath, with mounts.
func appendDropIn(b []byte, user string, uid uint32, nsPath string, mounts ...Mount) []byte {
	b = append(b, dropInHeader...)
	b = appendPrintable(b, user)
	b = append(b, " (uid "...)
	b = strconv.AppendUint(b, uint64(uid), 10)
	b = append(b, "); do not edit:\n# regenerated at login and by \"netns-session sync\".\n"...)
	b = append(b, "[Service]\nNetworkNamespacePath="...)
	b = appendUnescaped(b, nsPath)
	b = append(b, '\n')
	for _, m := range mounts {
		if m.ReadOnly {
			b = append(b, "BindReadOnlyPaths="...)
		} else {
			b = append(b, "BindPaths="...)
		}
		b = appendUnescaped(b, m.Source)
		b = append(b, ':')
		b = appendUnescaped(b, m.Target)
		b = append(b, '\n')
	}
	return b
}

// appendUnescaped appends p, a path checkPath let through, so that systemd
// reads it back as p: it expands %-specifiers in these settings, and "%%"
// is a literal "%".
func appendUnescaped(b []byte, p string) []byte {
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			b = append(b, '%')
		}
		b = append(b, p[i])
	}
	return b
}

// appendPrintable appends s with control characters replaced, so that a
// hostile user name cannot end the comment line and inject settings.
func appendPrintable(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if isControl(s[i]) {
			b = append(b, '?')
		} else {
			b = append(b, s[i])
		}
	}
	return b
}

func isControl(c byte) bool { return c < 0x20 || c == 0x7f }

// checkNetnsPath rejects paths systemd would read as another path: it wants an
// absolute path and normalizes or strips the rest.
func checkNetnsPath(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.HasSuffix(p, " ") {
		return fmt.Errorf("%w: %q", ErrInvalidNetnsPath, p)
	}
	for i := 0; i < len(p); i++ {
		if isControl(p[i]) {
			return fmt.Errorf("%w: %q", ErrInvalidNetnsPath, p)
		}
	}
	return nil
}

// checkMountPath rejects the paths of a mount that systemd would split or
// unquote: BindPaths= is a list separated by white space of SOURCE:TARGET
// pairs, with quotes and backslash escapes. Such names are refused rather
// than escaped; no file that /etc holds needs one.
func checkMountPath(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("%w: %q", ErrInvalidMountPath, p)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; isControl(c) || c == ' ' || c == ':' || c == '\\' || c == '"' || c == '\'' {
			return fmt.Errorf("%w: %q", ErrInvalidMountPath, p)
		}
	}
	return nil
}

// dropInHeader starts every drop-in; the user name and UID follow.
const dropInHeader = "# Written by netns-session for user "

// maxHeaderGrowth bounds how much longer than the one it would write the
// header line of a matching drop-in may be: the name of a user is at most
// this long.
const maxHeaderGrowth = 256

// dropInIs reports whether the file at path exists and holds want, the
// drop-in appendDropIn writes, but for the user name in its first line. A
// UID has one drop-in whatever name it logs in under (useradd -o, a
// case-insensitive directory); rewriting it for the name in a comment would
// reload systemd at every login that takes another name. It reads at most
// len(want)+maxHeaderGrowth+1 bytes, into a stack buffer when that is small,
// because this is the whole cost of a login that changes nothing.
func dropInIs(path string, want []byte) (exists, equal bool, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err == unix.ENOENT {
		return false, false, nil
	}
	if err != nil {
		return false, false, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)

	var stack [1024]byte
	var buf []byte
	if size := len(want) + maxHeaderGrowth + 1; size <= len(stack) {
		buf = stack[:size]
	} else {
		buf = make([]byte, size)
	}
	n := 0
	for n < len(buf) {
		r, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return true, false, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if r == 0 {
			break
		}
		n += r
	}
	return true, sameButUserName(buf[:n], want), nil
}

// sameButUserName reports whether the drop-ins got and want differ at most
// in the user name of their header line; the UID there must match.
func sameButUserName(got, want []byte) bool {
	gotHeader, gotRest, ok1 := bytes.Cut(got, []byte{'\n'})
	wantHeader, wantRest, ok2 := bytes.Cut(want, []byte{'\n'})
	if !ok1 || !ok2 || !bytes.Equal(gotRest, wantRest) || !bytes.HasPrefix(gotHeader, []byte(dropInHeader)) {
		return false
	}
	// The header ends " (uid N); do not edit:", the UID being the last
	// "(uid " in it: a name may contain one too.
	i, j := bytes.LastIndex(gotHeader, []byte(" (uid ")), bytes.LastIndex(wantHeader, []byte(" (uid "))
	return i >= len(dropInHeader) && j >= 0 && bytes.Equal(gotHeader[i:], wantHeader[j:])
}

// holdsManager reports whether the drop-in at path names NoNetns, the
// namespace that keeps a manager from starting. systemd takes the last
// assignment of a setting.
func holdsManager(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	netns := ""
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "NetworkNamespacePath="); ok {
			netns = strings.TrimSpace(v)
		}
	}
	return netns == NoNetns, nil
}

// WriteFileAtomic replaces the file at path with data, as writeAtomic does,
// unless ctx ends first. Files that are read at boot use it: a crash or a
// full disk leaves the old file, never a part. Its callers take turns by a
// lock on the directory, which must exist.
func WriteFileAtomic(ctx context.Context, path string, data []byte, perm os.FileMode) error {
	dir, name := filepath.Split(path)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, &fs.PathError{Op: "open", Path: dir, Err: err})
	}
	defer unix.Close(fd)
	if err := flock(ctx, fd); err != nil {
		return fmt.Errorf("writing %s: locking %s: %w", path, dir, err)
	}
	if err := removeLeftovers(dir, name); err != nil {
		return fmt.Errorf("removing stale temporary copies of %s: %w", path, err)
	}
	if err := writeAtomic(ctx, dir, name, data, perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// tempPrefix starts the names of copies of name being written. Such a name
// is hidden and never ends in ".conf", so systemd never reads a
// half-written drop-in.
func tempPrefix(name string) string { return "." + name + "." }

// writeAtomic replaces dir/name with data: readers see the old file or the
// new one, never a part, even if the writer is killed. The rename, which
// makes the new file seen, does not happen once ctx is done.
func writeAtomic(ctx context.Context, dir, name string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix(name)+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	// CreateTemp makes the file 0600; systemd and admins read drop-ins.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

// removeLeftovers removes the temporary copies of name that writers killed
// before their rename left in dir. The caller holds what serializes writers
// of dir/name, so no live writer owns one.
func removeLeftovers(dir, name string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	prefix := tempPrefix(name)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// syncDir makes a rename, creation or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
