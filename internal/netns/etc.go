package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Where the per-namespace /etc is kept.
const (
	// EtcRoot holds a directory per named namespace whose entries the
	// namespace's sessions see in /etc: the layout `ip netns exec` reads.
	EtcRoot = "/etc/netns"
	// ShadowRoot holds, per namespace, the directories that are bound over
	// directories under /run (Overlay.Shadows).
	ShadowRoot = "/run/netns-session/shadow"
)

// The host's resolver directories that a namespace with a resolv.conf of
// its own hides from its sessions (Overlay.Shadows), when they exist.
const (
	// ResolvedRuntimeDir holds systemd-resolved's stub-resolv.conf and
	// resolv.conf, shown as the namespace's, and its varlink socket
	// io.systemd.Resolve, which nss-resolve asks: hidden, nss-resolve
	// reports itself unavailable.
	ResolvedRuntimeDir = "/run/systemd/resolve"
	// NscdRuntimeDir holds nscd's socket, where /var/run leads to /run:
	// hidden by an empty directory, glibc cannot ask nscd.
	NscdRuntimeDir = "/run/nscd"
)

// EtcDir returns the /etc directory of the namespace called name, which
// must be a valid name (ValidateName).
func EtcDir(name string) string { return filepath.Join(EtcRoot, name) }

// Mount is one bind mount of Source over Target, both absolute paths.
type Mount struct {
	Source, Target string
}

// Overlay is the plan that makes a session see a namespace's /etc
// directory the way `ip netns exec NAME` shows it, and keep seeing it when
// the host rewrites its resolver files by rename. The plan is made in the
// mount namespace it will be applied to (the caller's): the symlinks of the
// host's /etc are resolved there.
type Overlay struct {
	// Name is the namespace's name.
	Name string
	// Binds mount entries of EtcDir(Name) over their counterparts in /etc,
	// in entry order, each Target being the counterpart with its symlinks
	// resolved. They are read-write, as ip netns exec makes them, and
	// recursive, as the user manager's BindPaths= makes them: a directory
	// brings the mounts inside it.
	Binds []Mount
	// Shadows mount directories under ShadowRoot/Name over directories
	// under /run, read-only, in Target order. A counterpart whose symlinks
	// lead under /run (resolved's, NetworkManager's or resolvconf's
	// resolv.conf) is overlaid through its directory: the shadow holds a
	// symlink of the same name to the entry of EtcDir(Name), so a host
	// rewrite by rename detaches nothing and an edit of the entry by
	// rename is followed. A shadow hides everything else of the directory
	// it covers; with an own resolv.conf that is the point for
	// ResolvedRuntimeDir and NscdRuntimeDir. A directory sessions need
	// (the journal's, the system bus's, the users' runtime directories,
	// and the ones holding them: sessionRunDirs) is never shadowed: the
	// overlay cannot be planned (ErrSessionRunDir). A shadow inside
	// another one is a subdirectory of it, not a mount of its own. Prepare
	// makes the shadows.
	Shadows []Mount
	// Overrides are the entries of EtcDir(Name) that sessions see, in
	// name order, and where they see them.
	Overrides []Override
	// Skipped names the entries of EtcDir(Name) that have no counterpart
	// in /etc: ip netns exec could not bind them either.
	Skipped []string
	// OwnResolvConf says EtcDir(Name) has a resolv.conf, even a skipped
	// one: resolved's and nscd's sockets are then hidden.
	OwnResolvConf bool

	// shadowDir is ShadowRoot/Name.
	shadowDir string
	// trees holds what Prepare puts into each of Shadows, by index.
	trees []*shadowNode
}

// Override is an entry of EtcDir(Overlay.Name) that sessions see in place
// of its counterpart in /etc.
type Override struct {
	// Name is its name, in EtcDir(Overlay.Name) and in /etc.
	Name string
	// Target is where sessions see it: /etc/Name with the host's symlinks
	// resolved.
	Target string
	// Shadow is the Target of the shadow (Overlay.Shadows) in which a
	// symlink at Target leads to the entry, "" when a bind (Overlay.Binds)
	// mounts the entry at Target.
	Shadow string
}

// shadowNode is a directory of a shadow tree (children, maybe none) or,
// when link is set, a symlink to link.
type shadowNode struct {
	link     string
	children map[string]*shadowNode
}

func newShadowDir() *shadowNode { return &shadowNode{children: map[string]*shadowNode{}} }

// LoadOverlay plans the overlay of the namespace called name from
// EtcDir(name). It returns nil, nil when name is not a plain namespace
// name (a namespace given by path has no /etc directory) or when the
// directory does not exist; any other failure to read or plan it is an
// error, so a session that should see it is denied rather than shown the
// host's files.
//
// An entry is planned when it is not a dot-file (an editor's leftover) and
// it and its counterpart are both regular files or both directories; the
// counterpart's symlinks must resolve (a dangling one is an error, while
// no counterpart at all only skips the entry); a directory under /run
// that it is shown through must not be one sessions need
// (ErrSessionRunDir); and no two mounts may land on the same path or one
// inside the other.
func LoadOverlay(name string) (*Overlay, error) {
	return layout{}.loadOverlay(name)
}

// layout places the trees an overlay is made from under root: "" for the
// system, a temporary directory in tests.
type layout struct{ root string }

func (l layout) etc() string        { return l.root + "/etc" }
func (l layout) run() string        { return l.root + "/run" }
func (l layout) shadowRoot() string { return l.root + ShadowRoot }

func (l layout) loadOverlay(name string) (*Overlay, error) {
	if NameProblem(name) != "" {
		return nil, nil
	}
	dir := l.root + EtcDir(name)
	entries, found, err := readEtcDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	if !found {
		return nil, nil
	}
	p := planner{
		layout:  l,
		overlay: &Overlay{Name: name, shadowDir: l.shadowRoot() + "/" + name},
		dirs:    map[string]*shadowNode{},
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := p.addEntry(dir, e); err != nil {
			return nil, err
		}
	}
	if p.overlay.OwnResolvConf {
		if err := p.hideResolvers(dir + "/resolv.conf"); err != nil {
			return nil, err
		}
	}
	if err := p.placeShadows(); err != nil {
		return nil, err
	}
	return p.overlay, p.checkOverlaps()
}

// planner builds an Overlay.
type planner struct {
	layout
	overlay *Overlay
	// dirs holds the shadow tree of every directory under /run to shadow,
	// by its path.
	dirs map[string]*shadowNode
}

func (p *planner) addEntry(dir string, e fs.DirEntry) error {
	name := e.Name()
	if name == "resolv.conf" {
		p.overlay.OwnResolvConf = true
	}
	source := dir + "/" + name
	sourceIsDir := e.IsDir()
	if !e.Type().IsDir() && !e.Type().IsRegular() {
		fi, err := os.Stat(source)
		if err != nil {
			return fmt.Errorf("stating %s: %w", source, err)
		}
		if sourceIsDir, err = kindOf(source, fi); err != nil {
			return err
		}
	}
	counterpart := p.etc() + "/" + name
	fi, err := os.Lstat(counterpart)
	if errors.Is(err, fs.ErrNotExist) {
		p.overlay.Skipped = append(p.overlay.Skipped, name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("stating %s: %w", counterpart, err)
	}
	target, targetIsDir, err := resolve(counterpart, fi)
	if err != nil {
		return err
	}
	if sourceIsDir != targetIsDir {
		return fmt.Errorf("overlaying %s on %s: %w: %s but %s", source, target, ErrTypeMismatch, kindName(source, sourceIsDir), kindName(target, targetIsDir))
	}
	// Directly in /run, the directory to shadow would be /run itself.
	if targetDir := filepath.Dir(target); strings.HasPrefix(targetDir, p.run()+"/") {
		// Shadow is the directory for now, the mount that holds it once
		// placeShadows has chosen the mounts.
		p.overlay.Overrides = append(p.overlay.Overrides, Override{Name: name, Target: target, Shadow: targetDir})
		return p.link(targetDir, filepath.Base(target), source)
	}
	p.overlay.Overrides = append(p.overlay.Overrides, Override{Name: name, Target: target})
	p.overlay.Binds = append(p.overlay.Binds, Mount{Source: source, Target: target})
	return nil
}

// hideResolvers shadows the directories of the host's resolver sockets
// that exist: resolved's, whose file names also lead to resolvConf, and
// nscd's, left empty.
func (p *planner) hideResolvers(resolvConf string) error {
	resolved, err := p.existingRunDir(p.root + ResolvedRuntimeDir)
	if err != nil {
		return err
	}
	if resolved != "" {
		for _, name := range []string{"stub-resolv.conf", "resolv.conf"} {
			if err := p.link(resolved, name, resolvConf); err != nil {
				return err
			}
		}
	}
	nscd, err := p.existingRunDir(p.root + NscdRuntimeDir)
	if err != nil || nscd == "" {
		return err
	}
	_, err = p.shadow(nscd)
	return err
}

// existingRunDir resolves path, a directory under /run, and returns "" when
// there is none.
func (p *planner) existingRunDir(path string) (string, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("stating %s: %w", path, err)
	}
	resolved, isDir, err := resolve(path, fi)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if !isDir {
		return "", fmt.Errorf("shadowing %s: %w: %s", path, ErrTypeMismatch, kindName(resolved, false))
	}
	if !strings.HasPrefix(resolved, p.run()+"/") {
		return "", fmt.Errorf("shadowing %s: it leads to %s, outside %s", path, resolved, p.run())
	}
	return resolved, nil
}

// shadow returns the shadow tree of dir, a directory under /run, which
// must be neither in the shadows nor one sessions need.
func (p *planner) shadow(dir string) (*shadowNode, error) {
	if dir == p.shadowRoot() || strings.HasPrefix(dir, p.shadowRoot()+"/") {
		return nil, fmt.Errorf("shadowing %s: %w: it is inside %s", dir, ErrOverlap, p.shadowRoot())
	}
	node := p.dirs[dir]
	if node == nil {
		if err := p.refuseSessionRunDir(dir); err != nil {
			return nil, err
		}
		node = newShadowDir()
		p.dirs[dir] = node
	}
	return node, nil
}

// sessionRunDirs are the directories under /run that every session needs
// as the host has them, with what they hold. A shadow may not cover one,
// nor a directory it lies in (/run itself), nor lie in one: the rule is
// by name, whatever exists. ResolvedRuntimeDir, inside /run/systemd, is
// excepted: hiding it is the point of an own resolv.conf.
var sessionRunDirs = []struct{ dir, holds string }{
	{"/run/systemd", "systemd's sockets and state: journald's (and so /dev/log), the service manager's, userdb's (nss-systemd), logind's"},
	{"/run/user", "the users' runtime directories and their buses"},
	{"/run/dbus", "the system bus's socket"},
	{"/run/nslcd", "nslcd's socket, through which NSS finds LDAP users and groups"},
	{"/run/netns", "the named network namespaces"},
	{"/run/netns-session", "netns-session's locks and shadows"},
}

// refuseSessionRunDir returns an error wrapping ErrSessionRunDir when a
// shadow over dir would hide a directory of sessionRunDirs.
func (l layout) refuseSessionRunDir(dir string) error {
	if resolved := l.root + ResolvedRuntimeDir; dir == resolved || isUnder(dir, resolved) {
		return nil
	}
	for _, needed := range sessionRunDirs {
		if path := l.root + needed.dir; dir == path || isUnder(dir, path) || isUnder(path, dir) {
			return fmt.Errorf("shadowing %s: %w: %s holds %s", dir, ErrSessionRunDir, needed.dir, needed.holds)
		}
	}
	return nil
}

// link plans the symlink name -> dest in the shadow of dir.
func (p *planner) link(dir, name, dest string) error {
	node, err := p.shadow(dir)
	if err != nil {
		return err
	}
	if old := node.children[name]; old != nil && old.link != dest {
		return fmt.Errorf("shadowing %s/%s: %w: it is to lead to both %s and %s", dir, name, ErrOverlap, old.link, dest)
	}
	node.children[name] = &shadowNode{link: dest}
	return nil
}

// placeShadows turns the shadowed directories into Shadows: the outermost
// ones are mounted, each inner one becomes a subdirectory of the tree of
// the one it lies in; an entry shown through one is shown through the
// mount that holds it.
func (p *planner) placeShadows() error {
	dirs := make([]string, 0, len(p.dirs))
	for dir := range p.dirs {
		dirs = append(dirs, dir)
	}
	// A directory sorts before everything inside it.
	slices.Sort(dirs)
	o := p.overlay
	for _, dir := range dirs {
		outer := slices.IndexFunc(o.Shadows, func(m Mount) bool { return isUnder(dir, m.Target) })
		if outer < 0 {
			o.Shadows = append(o.Shadows, Mount{Source: o.shadowDir + strings.TrimPrefix(dir, p.root), Target: dir})
			o.trees = append(o.trees, p.dirs[dir])
			continue
		}
		parent, path := o.trees[outer], o.Shadows[outer].Target
		components := strings.Split(strings.TrimPrefix(dir, path+"/"), "/")
		for _, c := range components[:len(components)-1] {
			path += "/" + c
			next := parent.children[c]
			if next == nil {
				next = newShadowDir()
				parent.children[c] = next
			}
			if next.link != "" {
				return fmt.Errorf("shadowing %s: %w: %s is to be a symlink to %s", dir, ErrOverlap, path, next.link)
			}
			parent = next
		}
		last := components[len(components)-1]
		if old := parent.children[last]; old != nil {
			return fmt.Errorf("shadowing %s: %w: it is to be a symlink to %s", dir, ErrOverlap, old.link)
		}
		parent.children[last] = p.dirs[dir]
	}
	for i, e := range o.Overrides {
		if e.Shadow != "" {
			outer := slices.IndexFunc(o.Shadows, func(m Mount) bool { return e.Shadow == m.Target || isUnder(e.Shadow, m.Target) })
			o.Overrides[i].Shadow = o.Shadows[outer].Target
		}
	}
	return nil
}

// checkOverlaps refuses mounts on the same path or one inside another:
// their outcome would hang on their order, which ip netns exec, systemd
// and the session's builder need not share.
func (p *planner) checkOverlaps() error {
	var targets []string
	for _, m := range p.overlay.Binds {
		targets = append(targets, m.Target)
	}
	for _, m := range p.overlay.Shadows {
		targets = append(targets, m.Target)
	}
	for i, a := range targets {
		for _, b := range targets[i+1:] {
			if a == b || isUnder(a, b) || isUnder(b, a) {
				return fmt.Errorf("overlaying %s: %w: %s and %s", EtcDir(p.overlay.Name), ErrOverlap, a, b)
			}
		}
	}
	return nil
}

// isUnder reports whether path lies strictly inside dir.
func isUnder(path, dir string) bool {
	return strings.HasPrefix(path, dir+"/")
}

// resolve returns path, whose lstat is fi, with its symlinks resolved,
// and whether it is a directory; anything but a directory or a regular
// file is an error. A path that is no symlink is taken as it is, its
// directories (/etc, /run) being none either: one lstat is what the login
// path pays for it.
func resolve(path string, fi fs.FileInfo) (resolved string, isDir bool, err error) {
	if fi.Mode()&fs.ModeSymlink == 0 {
		isDir, err := kindOf(path, fi)
		return path, isDir, err
	}
	if resolved, err = filepath.EvalSymlinks(path); err != nil {
		return "", false, fmt.Errorf("resolving %s: %w", path, err)
	}
	if fi, err = os.Stat(resolved); err != nil {
		return "", false, fmt.Errorf("stating %s: %w", resolved, err)
	}
	isDir, err = kindOf(resolved, fi)
	return resolved, isDir, err
}

// kindOf reports whether path, whose stat is fi, is a directory; anything
// but a directory or a regular file is an error.
func kindOf(path string, fi fs.FileInfo) (isDir bool, err error) {
	switch {
	case fi.IsDir():
		return true, nil
	case fi.Mode().IsRegular():
		return false, nil
	}
	return false, fmt.Errorf("checking the type of %s: %w: it is neither a regular file nor a directory", path, ErrTypeMismatch)
}

// readEtcDir lists dir, a namespace's /etc directory, as readDir does;
// found is false when nothing is there. The common cases, no directory and
// a directory, cost one open: only a symlink at dir (or a file) fails the
// open that does not follow it with another error than ENOENT, and is then
// followed; a dangling one is an error, not "no directory", as is
// anything but ENOENT.
func readEtcDir(dir string) (entries []fs.DirEntry, found bool, err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch err {
	case unix.ENOENT:
		return nil, false, nil
	case unix.ENOTDIR, unix.ELOOP: // a symlink: ENOTDIR with O_DIRECTORY
		fd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, true, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	entries, err = readOpenDir(fd, dir)
	return entries, true, err
}

// readDir lists the directory path in name order, as os.ReadDir does,
// with fewer system calls: os.Open's registration with the poller costs
// four more per directory, on the login path.
func readDir(path string) ([]fs.DirEntry, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return readOpenDir(fd, path)
}

// readOpenDir lists fd, the directory path opened, as readDir does, and
// closes it.
func readOpenDir(fd int, path string) ([]fs.DirEntry, error) {
	dir := os.NewFile(uintptr(fd), path)
	defer dir.Close()
	entries, err := dir.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

func kindName(path string, isDir bool) string {
	if isDir {
		return path + " is a directory"
	}
	return path + " is a file"
}
