package nspawn

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// packagesDir is where the package tests bind the built packages into a
// container.
const packagesDir = "/srv/packages"

// builtPackages are the packages `make package` builds from this tree: the
// first at the version the Makefile derives from git, the newer the same
// tree at a version that sorts after it, as the next release would.
type builtPackages struct {
	dir        string // on the host; bound in at packagesDir
	version    string // of deb and rpm
	deb, rpm   string // file names in dir
	newer      string // the .deb's version
	newerDeb   string // file name in dir
	err        error
	sourceTree string // the repository, for the files the packages carry
}

var packageBuild struct {
	once sync.Once
	pkgs builtPackages
}

// packages builds the packages on first use, with make, so that the tests
// check what `make package` makes.
func packages(t *testing.T) *builtPackages {
	t.Helper()
	packageBuild.once.Do(func() {
		p := &packageBuild.pkgs
		p.sourceTree, p.err = filepath.Abs("../..")
		if p.err != nil {
			return
		}
		p.dir = filepath.Join(runDir, "packages")
		first := filepath.Join(runDir, "package-build")
		if p.err = makePackage(first); p.err != nil {
			return
		}
		if p.deb, p.version, p.err = onlyPackage(first, "netns-session_", "_amd64.deb"); p.err != nil {
			return
		}
		if p.rpm, _, p.err = onlyPackage(first, "netns-session-", ".x86_64.rpm"); p.err != nil {
			return
		}
		// "+" sorts after the end of a version in dpkg and rpm both.
		p.newer = p.version + "+newer"
		second := filepath.Join(runDir, "package-build-newer")
		if p.err = makePackage(second, "PKG_VERSION="+p.newer); p.err != nil {
			return
		}
		if p.newerDeb, _, p.err = onlyPackage(second, "netns-session_", "_amd64.deb"); p.err != nil {
			return
		}
		if p.err = os.Mkdir(p.dir, 0o755); p.err != nil {
			return
		}
		for _, f := range []string{filepath.Join(first, "dist", p.deb), filepath.Join(first, "dist", p.rpm), filepath.Join(second, "dist", p.newerDeb)} {
			if p.err = os.Rename(f, filepath.Join(p.dir, filepath.Base(f))); p.err != nil {
				return
			}
		}
	})
	p := &packageBuild.pkgs
	if p.err != nil {
		t.Fatalf("building the packages: %v", p.err)
	}
	return p
}

// makePackage runs `make package` with its binary, build and dist
// directories under dir, so that the tests leave the tree's own alone.
func makePackage(dir string, vars ...string) error {
	args := append([]string{"--no-print-directory", "package",
		"BIN=" + filepath.Join(dir, "netns-session"),
		"BUILDDIR=" + filepath.Join(dir, "build"),
		"DISTDIR=" + filepath.Join(dir, "dist")}, vars...)
	cmd := exec.Command("make", args...)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("running make %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// onlyPackage returns the one file of dir/dist named PREFIX VERSION SUFFIX,
// and its version.
func onlyPackage(dir, prefix, suffix string) (name, version string, err error) {
	matches, err := filepath.Glob(filepath.Join(dir, "dist", prefix+"*"+suffix))
	if err != nil {
		return "", "", err
	}
	if len(matches) != 1 {
		return "", "", fmt.Errorf("make package made %d files %s*%s in %s, want 1: %q", len(matches), prefix, suffix, dir, matches)
	}
	name = filepath.Base(matches[0])
	return name, strings.TrimSuffix(strings.TrimPrefix(name, prefix), suffix), nil
}

// hostOutput runs a command on the host and returns its stdout, failing the
// test with its stderr.
func hostOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running %s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// Files one format ships and the other does not: Debian's changelog,
// pam-auth-update profile and lintian overrides (RPM systems configure PAM
// with authselect), and zsh's completion directory, which differs.
var (
	debOnly = []string{
		"/usr/share/doc/netns-session/changelog.gz",
		"/usr/share/pam-configs/netns-session",
		"/usr/share/lintian/overrides/netns-session",
		"/usr/share/zsh/vendor-completions/_netns-session",
	}
	rpmOnly = []string{
		"/usr/share/zsh/site-functions/_netns-session",
	}
)

// TestPackageLintsCleanAndRPMMatchesDeb checks the packages on the host:
// lintian finds no error and no warning that packaging/lintian-overrides
// does not explain, and the .rpm carries the .deb's files, its config file
// as %config(noreplace), and the scriptlets of packaging/rpm. lintian and
// rpm are the host's (make deps installs them); without them the test
// fails rather than skips, like every test of the suite.
func TestPackageLintsCleanAndRPMMatchesDeb(t *testing.T) {
	requireHarness(t)
	for _, tool := range []string{"lintian", "rpm", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("finding %s (make deps installs lintian and rpm): %v", tool, err)
		}
	}
	p := packages(t)
	deb, rpm := filepath.Join(p.dir, p.deb), filepath.Join(p.dir, p.rpm)

	t.Run("lintian reports no errors or warnings", func(t *testing.T) {
		out, err := exec.Command("lintian", "--fail-on", "error,warning", "--display-info", deb).CombinedOutput()
		if err != nil {
			t.Errorf("lintian %s: %v\n%s", p.deb, err, out)
		}
	})

	t.Run("rpm lists the deb's files", func(t *testing.T) {
		debFiles := regularFiles(hostOutput(t, "dpkg-deb", "--contents", deb), func(line string) string {
			fields := strings.Fields(line)
			return strings.TrimPrefix(fields[len(fields)-1], ".")
		})
		rpmFiles := regularFiles(hostOutput(t, "rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]", rpm), func(line string) string {
			return strings.Fields(line)[1]
		})
		if !slices.Contains(rpmFiles, "/usr/sbin/netns-session") {
			t.Fatalf("rpm -qp lists no /usr/sbin/netns-session:\n%s", strings.Join(rpmFiles, "\n"))
		}
		want := slices.DeleteFunc(slices.Clone(debFiles), func(f string) bool { return slices.Contains(debOnly, f) })
		want = append(want, rpmOnly...)
		slices.Sort(want)
		if !slices.Equal(rpmFiles, want) {
			t.Errorf("rpm files differ from the deb's (less the format-specific ones):\nrpm: %q\nwant: %q", rpmFiles, want)
		}
		// rpm -qpl is what an administrator runs: it lists the same.
		listed := strings.Fields(hostOutput(t, "rpm", "-qpl", rpm))
		for _, f := range rpmFiles {
			if !slices.Contains(listed, f) {
				t.Errorf("rpm -qpl does not list %s", f)
			}
		}
	})

	t.Run("the config file is a conffile and %config(noreplace)", func(t *testing.T) {
		if conffiles := strings.TrimSpace(hostOutput(t, "dpkg-deb", "--info", deb, "conffiles")); conffiles != configPath {
			t.Errorf("deb conffiles = %q, want %s", conffiles, configPath)
		}
		flags := hostOutput(t, "rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", rpm)
		if !strings.Contains(flags, "cn "+configPath+"\n") {
			t.Errorf("rpm file flags do not mark %s cn (config, noreplace):\n%s", configPath, flags)
		}
	})

	t.Run("the packages carry the maintainer scripts of packaging", func(t *testing.T) {
		for script, file := range map[string]string{"postinst": "deb/postinst", "prerm": "deb/prerm", "postrm": "deb/postrm"} {
			want, err := os.ReadFile(filepath.Join(p.sourceTree, "packaging", file))
			if err != nil {
				t.Fatal(err)
			}
			if got := hostOutput(t, "dpkg-deb", "--info", deb, script); got != string(want) {
				t.Errorf("the deb's %s differs from packaging/%s", script, file)
			}
		}
		scripts := hostOutput(t, "rpm", "-qp", "--scripts", rpm)
		for heading, file := range map[string]string{
			"postinstall scriptlet":   "rpm/post",
			"preuninstall scriptlet":  "rpm/preun",
			"postuninstall scriptlet": "rpm/postun",
		} {
			want, err := os.ReadFile(filepath.Join(p.sourceTree, "packaging", file))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(scripts, heading) || !strings.Contains(scripts, strings.TrimSpace(string(want))) {
				t.Errorf("rpm -qp --scripts has no %s with packaging/%s:\n%s", heading, file, scripts)
			}
		}
	})
}

// regularFiles returns the sorted paths of the listing's regular files,
// the lines whose mode starts with "-"; path extracts a line's path.
func regularFiles(listing string, path func(line string) string) []string {
	var files []string
	sc := bufio.NewScanner(strings.NewReader(listing))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "-") {
			files = append(files, path(line))
		}
	}
	slices.Sort(files)
	return files
}

// aptEnv runs apt-get and pam-auth-update as an administrator's script
// would: debconf asks nothing.
const aptEnv = "DEBIAN_FRONTEND=noninteractive "

// TestPackageInstallEnableRemovePurge installs the .deb into a container
// that has never seen netns-session, enables it the documented way, and
// takes it through removal, reinstallation, an upgrade and purge. Removal
// must leave every login working (the PAM line goes before the binary) and
// nothing of the package running.
func TestPackageInstallEnableRemovePurge(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		p := packages(t)
		c := bootWith(t, s, bootOptions{withoutBinary: true, bindRO: []string{p.dir + ":" + packagesDir}})
		if _, _, err := c.Exec(t.Context(), "test", "-e", "/usr/sbin/netns-session"); err == nil {
			t.Fatal("/usr/sbin/netns-session exists before the package is installed")
		}
		c.Run(t, "cp", "/root/.ssh/id_ed25519.pub", "/root/.ssh/authorized_keys")
		host := netnsID(t, c, "/proc/1/ns/net")
		deb := packagesDir + "/" + p.deb

		c.Sh(t, aptEnv+"apt-get install -y -q "+deb)
		t.Run("installing changes no login and starts no unit", func(t *testing.T) {
			if pam := hookLines(t, c); len(pam) > 0 {
				t.Errorf("PAM runs netns-session right after installation:\n%s", strings.Join(pam, "\n"))
			}
			for _, unit := range []string{"netns-session.service", "netns-session-sync.service"} {
				if state, _, _ := c.Exec(t.Context(), "systemctl", "is-enabled", unit); strings.TrimSpace(state) != "disabled" {
					t.Errorf("%s is %q after installation, want disabled", unit, strings.TrimSpace(state))
				}
			}
		})

		c.Sh(t, aptEnv+"pam-auth-update --enable netns-session")
		t.Run("pam-auth-update puts the line before pam_systemd in both stacks", func(t *testing.T) {
			assertHookBeforeSystemd(t, c)
		})

		c.Sh(t, "echo 'alice ns0' >> "+configPath)
		c.Run(t, "systemctl", "enable", "--now", "netns-session-netns@ns0.service")
		ns0 := netnsID(t, c, "/run/netns/ns0")
		t.Run("alice lands in ns0 and bob on the host", func(t *testing.T) {
			assertLogins(t, c, map[string]string{"alice": ns0, "bob": host})
		})

		t.Run("man pages resolve", func(t *testing.T) {
			for page, want := range map[string]string{
				"netns-session":      "/usr/share/man/man8/netns-session.8.gz",
				"netns-session.conf": "/usr/share/man/man5/netns-session.conf.5.gz",
			} {
				if got := strings.TrimSpace(c.Run(t, "man", "-w", page)); got != want {
					t.Errorf("man -w %s = %q, want %s", page, got, want)
				}
			}
		})

		t.Run("bash completes subcommands", func(t *testing.T) {
			words := strings.Fields(c.Run(t, "bash", "-c", completeSubcommands))
			for _, want := range []string{"check", "status", "sync", "netns", "watch"} {
				if !slices.Contains(words, want) {
					t.Errorf("completing `netns-session ` offers %q, want %s among them", words, want)
				}
			}
		})

		// Every form of a line Linux-PAM would run the binary from, though
		// not spelled as the contract's: the type in capitals, the binary
		// through /sbin (one file on a merged /usr), a line continued with
		// a backslash, another type than session.
		for _, tt := range []struct{ name, line string }{
			{"the contract's line", hookLine},
			{"Session in capitals, through /sbin", "Session required pam_exec.so seteuid /sbin/netns-session pam"},
			{"a continued line", "session required pam_exec.so seteuid \\\n\t/usr/sbin/netns-session pam"},
			{"an account line", "account required pam_exec.so /usr/sbin/netns-session pam"},
		} {
			t.Run("removal refused while a hand-written line runs the binary: "+tt.name, func(t *testing.T) {
				c.Sh(t, "cat >> /etc/pam.d/login <<'EOF'\n"+tt.line+"\nEOF")
				stdout, stderr, err := c.Exec(t.Context(), "/bin/bash", "-c", aptEnv+"apt-get remove -y -q netns-session")
				if err == nil {
					t.Errorf("apt-get remove succeeded with %q in /etc/pam.d/login\n%s", tt.line, stdout)
				} else if !strings.Contains(stdout+stderr, "/etc/pam.d/login:") {
					t.Errorf("apt-get remove does not name the line that stops it:\n%s%s", stdout, stderr)
				}
				if status := c.Run(t, "dpkg-query", "-W", "-f", "${Status}", "netns-session"); status != "install ok installed" {
					t.Errorf("package status after the refused removal = %q, want install ok installed", status)
				}
				// The refusal came before pam-auth-update could take the
				// packaged line out: mapped users are still placed.
				assertHookBeforeSystemd(t, c)
				c.Sh(t, `sed -i '/netns-session/d; /pam_exec.so seteuid \\$/d' /etc/pam.d/login`)
			})
		}
		assertLogins(t, c, map[string]string{"root": host, "bob": host, "alice": ns0})

		// Removal is only a test if there was something to take away.
		c.Run(t, "test", "-e", "/run/systemd/system/user@1001.service.d/50-netns-session.conf")
		c.Run(t, "systemctl", "is-active", "--quiet", "netns-session-netns@ns0.service")
		c.Sh(t, aptEnv+"apt-get remove -y -q netns-session")
		t.Run("after removal everyone logs in, and nothing of ours is left running", func(t *testing.T) {
			if pam := hookLines(t, c); len(pam) > 0 {
				t.Errorf("PAM still runs netns-session after removal:\n%s", strings.Join(pam, "\n"))
			}
			assertEveryoneLogsIn(t, c, "alice", "bob", "root")
			if left := c.Sh(t, "grep -rl netns-session /run/systemd/system || true"); left != "" {
				t.Errorf("files of netns-session left under /run/systemd/system:\n%s", left)
			}
			if units := c.Run(t, "systemctl", "list-units", "--all", "--plain", "--no-legend", "netns-session*"); strings.TrimSpace(units) != "" {
				t.Errorf("units of netns-session still loaded:\n%s", units)
			}
		})

		c.Sh(t, aptEnv+"apt-get install -y -q "+deb)
		const edit = "# edited by the administrator\n"
		c.Sh(t, "printf '"+edit+"' >> "+configPath)
		c.Sh(t, aptEnv+"pam-auth-update --enable netns-session")
		c.Sh(t, aptEnv+"apt-get install -y -q "+packagesDir+"/"+p.newerDeb)
		// Removal disabled the namespace's unit, and stopping it deleted ns0.
		// alice's manager, if it still runs, runs in the old ns0: the hook
		// would rightly refuse her until it stops.
		c.Run(t, "systemctl", "enable", "--now", "netns-session-netns@ns0.service")
		c.Run(t, "systemctl", "stop", "user@1001.service")
		ns0 = netnsID(t, c, "/run/netns/ns0")
		t.Run("an upgrade keeps the edited conffile and the enabled profile", func(t *testing.T) {
			if v := c.Run(t, "dpkg-query", "-W", "-f", "${Version}", "netns-session"); v != p.newer {
				t.Fatalf("installed version = %q, want %s", v, p.newer)
			}
			if conf := c.Run(t, "cat", configPath); !strings.HasSuffix(conf, "alice ns0\n"+edit) {
				t.Errorf("%s after the upgrade does not end with the edits:\n%s", configPath, conf)
			}
			assertHookBeforeSystemd(t, c)
			assertLogins(t, c, map[string]string{"alice": ns0, "bob": host})
		})

		c.Sh(t, aptEnv+"apt-get purge -y -q netns-session")
		t.Run("purge removes the config and leaves logins working", func(t *testing.T) {
			if left := c.Sh(t, "ls -d /etc/security/netns-session* /var/lib/netns-session 2>/dev/null || true"); left != "" {
				t.Errorf("left after purge:\n%s", left)
			}
			if pam := hookLines(t, c); len(pam) > 0 {
				t.Errorf("PAM still runs netns-session after purge:\n%s", strings.Join(pam, "\n"))
			}
			assertEveryoneLogsIn(t, c, "alice", "root")
		})
	})
}

// hookLines returns the lines of /etc/pam.d that run /usr/sbin/netns-session,
// as FILE:LINE:TEXT.
func hookLines(t *testing.T, c *Container) []string {
	t.Helper()
	var lines []string
	for line := range strings.Lines(c.Sh(t, `grep -Hn '^[^#]*/usr/sbin/netns-session' /etc/pam.d/* || true`)) {
		lines = append(lines, strings.TrimSpace(line))
	}
	return lines
}

// assertHookBeforeSystemd checks that pam-auth-update wrote the packaged line
// into common-session, before pam_systemd, and into
// common-session-noninteractive, which sudo and cron include.
func assertHookBeforeSystemd(t *testing.T, c *Container) {
	t.Helper()
	for _, file := range []string{"/etc/pam.d/common-session", "/etc/pam.d/common-session-noninteractive"} {
		hook, systemd := -1, -1
		for i, line := range strings.Split(c.Run(t, "cat", file), "\n") {
			switch fields := strings.Fields(line); {
			case len(fields) == 0 || strings.HasPrefix(fields[0], "#"):
			case strings.Join(fields, " ") == hookLine && hook < 0:
				hook = i
			case slices.Contains(fields, "pam_systemd.so") && systemd < 0:
				systemd = i
			}
		}
		switch {
		case hook < 0:
			t.Errorf("%s has no line %q", file, hookLine)
		case systemd >= 0 && systemd < hook:
			t.Errorf("%s: pam_systemd (line %d) comes before the hook (line %d)", file, systemd+1, hook+1)
		}
	}
}

// assertLogins logs each user in over ssh and checks the namespace the shell
// runs in.
func assertLogins(t *testing.T, c *Container, want map[string]string) {
	t.Helper()
	for user, netns := range want {
		if got, stderr, err := sshNetns(t.Context(), c, user); err != nil || got != netns {
			t.Errorf("ssh %s: netns %q, err %v, want %s\n%s", user, got, err, netns, stderr)
		}
	}
}

// assertEveryoneLogsIn opens a session of each user over ssh, su and sudo,
// the services whose PAM stacks the hook was in.
func assertEveryoneLogsIn(t *testing.T, c *Container, users ...string) {
	t.Helper()
	for _, user := range users {
		if out, stderr, err := c.SSH(t.Context(), user, "id -un"); err != nil || strings.TrimSpace(out) != user {
			t.Errorf("ssh %s: %q, %v\n%s", user, strings.TrimSpace(out), err, stderr)
		}
		for _, cmd := range [][]string{{"su", user, "-c", "id -un"}, {"sudo", "-u", user, "id", "-un"}} {
			if out, stderr, err := c.Exec(t.Context(), cmd...); err != nil || strings.TrimSpace(out) != user {
				t.Errorf("%q: %q, %v\n%s", cmd, strings.TrimSpace(out), err, stderr)
			}
		}
	}
}

// completeSubcommands prints what bash completion offers after
// `netns-session `: bash-completion loads the script from its directory by
// the command's name, as it does on the first Tab, and the completion
// function runs with the words as typed.
const completeSubcommands = `set -e
source /usr/share/bash-completion/bash_completion
if declare -F _comp_load >/dev/null; then _comp_load netns-session; else __load_completion netns-session; fi
spec=$(complete -p netns-session)
fn=$(printf '%s\n' "$spec" | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
[ -n "$fn" ] || { echo "no completion function in: $spec" >&2; exit 1; }
COMP_WORDS=(netns-session "")
COMP_CWORD=1
COMP_LINE="netns-session "
COMP_POINT=${#COMP_LINE}
"$fn" netns-session "" netns-session
printf '%s\n' "${COMPREPLY[@]}"`

// TestPackageVersionFromGitDescribe checks the versions packaging/version.sh
// makes of what git describe prints: ones dpkg and rpm both take, releases
// as tagged, and builds between tags ordered after their tag. It needs no
// container.
func TestPackageVersionFromGitDescribe(t *testing.T) {
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", "../.."}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	head := git("rev-parse", "--short", "HEAD")
	when := git("log", "-1", "--format=%cd", "--date=format:%Y%m%d%H%M%S", head)
	tests := []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-4-gabc1234", "1.2.3+git4.gabc1234"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+git4.gabc1234+dirty"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{head, "0.0.0~git" + when + "." + head},
		{head + "-dirty", "0.0.0~git" + when + "." + head + ".dirty"},
		{"dev", "0.0.0~dev"},
		{"", "0.0.0~unknown"},
		{"1.0_beta:x", "1.0.beta.x"},
	}
	for _, tt := range tests {
		t.Run(tt.describe, func(t *testing.T) {
			cmd := exec.Command("packaging/version.sh", tt.describe)
			cmd.Dir = "../.."
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("packaging/version.sh %q: %v", tt.describe, err)
			}
			if got := strings.TrimSpace(string(out)); got != tt.want {
				t.Errorf("packaging/version.sh %q = %q, want %q", tt.describe, got, tt.want)
			}
		})
	}
	if _, err := exec.LookPath("dpkg"); err == nil {
		for _, order := range [][2]string{
			{"0.0.0~git" + when + "." + head, "0.0.1"},
			{"1.2.3~rc1", "1.2.3"},
			{"1.2.3", "1.2.3+git4.gabc1234"},
			{"1.2.3+git4.gabc1234", "1.2.4"},
		} {
			if err := exec.Command("dpkg", "--compare-versions", order[0], "lt", order[1]).Run(); err != nil {
				t.Errorf("dpkg does not order %s before %s", order[0], order[1])
			}
		}
	}
}
