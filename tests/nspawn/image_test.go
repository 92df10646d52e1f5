package nspawn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Suite is a Debian release the tests run on.
type Suite struct{ Name string }

var suites = []Suite{{Name: "bookworm"}, {Name: "trixie"}}

// imagePackages is what debootstrap installs on top of minbase: systemd as
// init with logind and the user bus, sshd and its client for real logins,
// iproute2 for `ip netns`, libnss-extrausers as a group source that is not
// /etc/group, pamtester and cron for the other PAM services.
var imagePackages = []string{
	"systemd", "systemd-sysv", "dbus", "dbus-user-session", "libpam-systemd",
	"openssh-server", "openssh-client", "iproute2", "sudo", "procps",
	"libnss-extrausers", "pamtester", "cron",
	// for the benchmarks and the attack suite: the in-process pam_usernet
	// reference, syscall counts, and at(1) as one more way to start jobs.
	"libpam-net", "strace", "at",
	// a real directory whose server or client daemon a test can stop: the
	// sources that are unavailable rather than empty (ldap_test.go).
	"slapd", "ldap-utils", "libnss-ldapd", "nslcd",
	// name resolution as Debian and Ubuntu hosts do it, and resolvers a test
	// puts on either side of a namespace (dns_test.go).
	"systemd-resolved", "libnss-resolve", "dnsmasq-base",
	// what an administrator installing the package meets: man pages, bash
	// completion, and auth.log written by a syslog daemon (rsyslog, left
	// disabled: the tests that read auth.log start it).
	"man-db", "bash-completion", "rsyslog",
}

// suitePackages are installed in one suite's image only: Debian trixie's
// packaged Go, which the module must build with, and the C compiler cgo
// needs for the NSS lookups.
var suitePackages = map[string][]string{
	"trixie": {"golang-1.24-go", "gcc", "libc6-dev"},
}

// packagesFor is everything debootstrap installs on top of minbase for s.
func packagesFor(s Suite) []string {
	return append(slices.Clone(imagePackages), suitePackages[s.Name]...)
}

// testUsers are created in every image with these uids, a home, bash and a
// locked password; root's key logs in as any of them.
var testUsers = []struct {
	Name string
	UID  int
}{{"alice", 1001}, {"bob", 1002}, {"carol", 1003}, {"dave", 1004}}

// rootKey is the private key in the image that every test user accepts.
const rootKey = "/root/.ssh/id_ed25519"

// provisionScript runs chrooted in the new image. PAM is left as Debian ships
// it: tests add the netns-session line themselves.
var provisionScript = func() string {
	var b strings.Builder
	b.WriteString("set -eu\n")
	b.WriteString("install -d -m 0700 /root/.ssh\n")
	fmt.Fprintf(&b, "ssh-keygen -q -t ed25519 -N '' -C netns-session-test -f %s\n", rootKey)
	for _, u := range testUsers {
		fmt.Fprintf(&b, "groupadd --gid %d %s\n", u.UID, u.Name)
		fmt.Fprintf(&b, "useradd --uid %d --gid %d --create-home --shell /bin/bash %s\n", u.UID, u.UID, u.Name)
		fmt.Fprintf(&b, "install -d -m 0700 -o %s -g %s /home/%s/.ssh\n", u.Name, u.Name, u.Name)
		fmt.Fprintf(&b, "install -m 0600 -o %s -g %s %s.pub /home/%s/.ssh/authorized_keys\n", u.Name, u.Name, rootKey, u.Name)
	}
	b.WriteString("install -d -m 0755 /etc/security\n")
	b.WriteString("systemctl disable rsyslog.service\n")
	b.WriteString(ldapProvisionScript)
	b.WriteString(dnsProvisionScript)
	return b.String()
}()

// imageBuildTimeout bounds debootstrap and provisioning; a first build takes
// about two minutes.
const imageBuildTimeout = 20 * time.Minute

type cachedImage struct {
	once sync.Once
	dir  string
	err  error
}

var images sync.Map // suite name -> *cachedImage

// imageFor returns the cached image of s, building it on first use. A failed
// build fails every test of that suite with the same error.
func imageFor(t *testing.T, s Suite) string {
	t.Helper()
	v, _ := images.LoadOrStore(s.Name, new(cachedImage))
	img := v.(*cachedImage)
	img.once.Do(func() { img.dir, img.err = ensureImage(t, s) })
	if img.err != nil {
		t.Fatal(img.err)
	}
	return img.dir
}

func mirror() string {
	if m := os.Getenv(mirrorEnv); m != "" {
		return m
	}
	return defaultMirror
}

// imageKey names an image by everything that goes into it, so a change to the
// package list, the provisioning or the mirror builds a new one.
func imageKey(s Suite, mirror string) string {
	h := sha256.New()
	for _, part := range []string{s.Name, strings.Join(packagesFor(s), ","), provisionScript, mirror} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return s.Name + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// ensureImage returns images/SUITE-KEY, building it under a per-suite lock
// when it is missing. The image is built in a temporary directory and renamed
// when complete, so a killed build never leaves a directory that looks valid.
func ensureImage(t *testing.T, s Suite) (string, error) {
	imagesDir := filepath.Join(cacheDir, "images")
	if err := os.MkdirAll(imagesDir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", imagesDir, err)
	}
	mirror := mirror()
	key := imageKey(s, mirror)
	dir := filepath.Join(imagesDir, key)

	lock, err := os.Create(filepath.Join(imagesDir, s.Name+".lock"))
	if err != nil {
		return "", fmt.Errorf("creating image lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	if _, err := os.Stat(dir); err == nil {
		return dir, useImage(dir)
	}

	// Holding the lock, every other build directory of this suite is the
	// leftover of a killed build, and every other image is outdated.
	if err := removeMatching(imagesDir, ".build-"+s.Name+"-*"); err != nil {
		return "", err
	}
	if err := removeUnusedImages(imagesDir, s.Name); err != nil {
		return "", err
	}
	logPath := dir + ".log"
	t.Logf("building %s image (~2 min), log: %s", s.Name, logPath)
	start := time.Now()
	if err := buildImage(s, mirror, dir, logPath); err != nil {
		return "", fmt.Errorf("building %s image: %w\n--- last lines of %s ---\n%s", s.Name, err, logPath, tail(logPath, 40))
	}
	t.Logf("built %s image in %v", s.Name, time.Since(start).Round(time.Second))
	return dir, useImage(dir)
}

// useImage marks dir as in use by this test binary until it exits: a shared
// flock on DIR.use, which removeUnusedImages respects, so that a run with a
// new package list never deletes the image under another run's containers.
func useImage(dir string) error {
	f, err := os.OpenFile(dir+".use", os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("marking %s in use: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return fmt.Errorf("marking %s in use: %w", dir, err)
	}
	// Kept referenced: the finalizer of an unreachable *os.File closes it,
	// which would drop the lock at the next garbage collection.
	imagesInUse.Lock()
	imagesInUse.files = append(imagesInUse.files, f)
	imagesInUse.Unlock()
	return nil
}

// imagesInUse holds the DIR.use files of this process, open and locked for
// its life.
var imagesInUse struct {
	sync.Mutex
	files []*os.File
}

// removeUnusedImages removes the images of suite that no running test binary
// uses, with their logs.
func removeUnusedImages(imagesDir, suite string) error {
	uses, err := filepath.Glob(filepath.Join(imagesDir, suite+"-*.use"))
	if err != nil {
		return err
	}
	for _, use := range uses {
		f, err := os.Open(use)
		if err != nil {
			return fmt.Errorf("opening %s: %w", use, err)
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			image := strings.TrimSuffix(use, ".use")
			err = removeMatching(imagesDir, filepath.Base(image), filepath.Base(image)+".log", filepath.Base(use))
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func buildImage(s Suite, mirror, dir, logPath string) error {
	log, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating build log: %w", err)
	}
	defer log.Close()
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-"+filepath.Base(dir)+"-")
	if err != nil {
		return fmt.Errorf("creating build directory: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	// The image's directory becomes the container's /.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("setting mode of %s: %w", tmp, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), imageBuildTimeout)
	defer cancel()
	args := []string{"--variant=minbase", "--include=" + strings.Join(packagesFor(s), ","), s.Name, tmp, mirror}
	fmt.Fprintf(log, "+ debootstrap %s\n", strings.Join(args, " "))
	if err := runLogged(isolated(ctx, `exec debootstrap "$@"`, args...), log); err != nil {
		return fmt.Errorf("running debootstrap: %w", err)
	}
	fmt.Fprintf(log, "+ chroot %s /bin/bash -s <<EOF\n%sEOF\n", tmp, provisionScript)
	provision := isolated(ctx, `exec chroot "$1" /bin/bash -s`, tmp)
	provision.Stdin = strings.NewReader(provisionScript)
	if err := runLogged(provision, log); err != nil {
		return fmt.Errorf("provisioning: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("renaming finished image: %w", err)
	}
	return nil
}

func runLogged(cmd *exec.Cmd, log *os.File) error {
	cmd.Stdout, cmd.Stderr = log, log
	if err := startIsolated(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// removeMatching removes every entry of dir matching one of the patterns.
func removeMatching(dir string, patterns ...string) error {
	for _, pattern := range patterns {
		matches, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return fmt.Errorf("matching %s: %w", pattern, err)
		}
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return fmt.Errorf("removing %s: %w", m, err)
			}
		}
	}
	return nil
}

// isolated returns a command that runs script with sh in new PID and mount
// namespaces, with a fresh /proc: everything it starts dies with its first
// process, which dies with the test binary (Pdeathsig), and its mounts never
// reach the host. args are the script's $1, $2, ...
func isolated(ctx context.Context, script string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", "set -e\nmount -t proc proc /proc\n" + script, "sh"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:   syscall.CLONE_NEWPID,
		Unshareflags: syscall.CLONE_NEWNS, // Go also makes / private, recursively
		Pdeathsig:    syscall.SIGKILL,
		Setpgid:      true, // ^C reaches the test binary, which tears down in order
	}
	return cmd
}

// startIsolated starts cmd with the calling goroutine locked to its thread.
// Pdeathsig fires when the thread that forked exits, not the process, and Go
// ends a thread only when a goroutine exits while locked to it; locking and
// then releasing the thread hands it back to the runtime, which keeps it.
func startIsolated(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

// tail returns the last n lines of the file at path, for failure messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	// Console logs end their lines with \r\r\n.
	text := strings.ReplaceAll(string(data), "\r", "")
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
