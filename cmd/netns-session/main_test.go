package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// asMainEnv makes the test binary run main instead of the tests: the tests
// run netns-session as a program, with its real argv, exit status and
// output, without building it.
const asMainEnv = "NETNS_SESSION_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// mainBin returns a directory holding netns-session, which runs this test
// binary's main, and the environment that lets it; prepend the directory
// to PATH to run it by its name.
func mainBin(t *testing.T) (dir string, env []string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, "netns-session")); err != nil {
		t.Fatal(err)
	}
	return dir, append(os.Environ(), asMainEnv+"=1")
}

// runMain runs netns-session with args and returns its exit status and
// output.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir, env := mainBin(t)
	cmd := exec.Command(filepath.Join(dir, "netns-session"), args...)
	// Without the PAM items, as at a terminal.
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PAM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running netns-session %q: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// TestExitStatusAndOutputOfTheCLI: usage errors - an unknown command or
// flag, wrong arguments - exit 64 (EX_USAGE), never status's 0, 1 or 2,
// each with one line on stderr and nothing on stdout; help works as a
// command and as a flag, on stdout; other errors are printed once.
func TestExitStatusAndOutputOfTheCLI(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.conf")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // contained in stdout; "" for an empty stdout
		wantStderr string // all of stderr
	}{
		{name: "unknown command", args: []string{"frob"}, wantCode: 64,
			wantStderr: "netns-session: unknown command \"frob\"; see netns-session --help\n"},
		{name: "help of an unknown command", args: []string{"help", "frob"}, wantCode: 64,
			wantStderr: "netns-session: unknown command \"frob\"; see netns-session --help\n"},
		{name: "unknown subcommand", args: []string{"netns", "frob"}, wantCode: 64,
			wantStderr: "netns-session: unknown command \"netns frob\"; see netns-session netns --help\n"},
		{name: "help of an unknown subcommand", args: []string{"netns", "help", "frob"}, wantCode: 64,
			wantStderr: "netns-session: unknown command \"netns frob\"; see netns-session netns --help\n"},
		{name: "unknown global flag", args: []string{"--frob"}, wantCode: 64,
			wantStderr: "netns-session: flag provided but not defined: -frob; see netns-session --help\n"},
		{name: "unknown flag of a command", args: []string{"status", "--frob"}, wantCode: 64,
			wantStderr: "netns-session: flag provided but not defined: -frob; see netns-session status --help\n"},
		{name: "unknown flag of a subcommand", args: []string{"netns", "list", "--frob"}, wantCode: 64,
			wantStderr: "netns-session: flag provided but not defined: -frob; see netns-session netns list --help\n"},
		{name: "flag without its value", args: []string{"status", "--config"}, wantCode: 64,
			wantStderr: "netns-session: flag needs an argument: -config; see netns-session status --help\n"},
		{name: "status with an argument", args: []string{"status", "alice"}, wantCode: 64,
			wantStderr: "netns-session: status takes no arguments, got [\"alice\"]; see netns-session status --help\n"},
		{name: "check with an argument", args: []string{"check", "alice"}, wantCode: 64,
			wantStderr: "netns-session: check takes no arguments, got [\"alice\"] (to see how a user resolves: check --user NAME); see netns-session check --help\n"},
		{name: "watch --reload with --config", args: []string{"watch", "--reload", "--config", "x"}, wantCode: 64,
			wantStderr: "netns-session: watch --reload asks the running watcher, which reads its own config: --config and --debug do not apply; see netns-session watch --help\n"},
		{name: "watch --pid without --reload", args: []string{"watch", "--pid", "1"}, wantCode: 64,
			wantStderr: "netns-session: watch: --pid goes with --reload; see netns-session watch --help\n"},
		{name: "watch with an argument", args: []string{"watch", "alice"}, wantCode: 64,
			wantStderr: "netns-session: watch takes no arguments, got [\"alice\"]; see netns-session watch --help\n"},
		{name: "sync with arguments", args: []string{"sync", "alice", "bob"}, wantCode: 64,
			wantStderr: "netns-session: sync takes no arguments, got [\"alice\" \"bob\"]; see netns-session sync --help\n"},
		{name: "netns list with an argument", args: []string{"netns", "list", "ns0"}, wantCode: 64,
			wantStderr: "netns-session: netns list takes no arguments, got [\"ns0\"]; see netns-session netns list --help\n"},
		{name: "netns add without a name", args: []string{"netns", "add"}, wantCode: 64,
			wantStderr: "netns-session: netns add takes one NAME, got []; see netns-session netns add --help\n"},
		{name: "netns del with two names", args: []string{"netns", "del", "a", "b"}, wantCode: 64,
			wantStderr: "netns-session: netns del takes one NAME, got [\"a\" \"b\"]; see netns-session netns del --help\n"},
		{name: "netns add of a path", args: []string{"netns", "add", "../etc"}, wantCode: 64,
			wantStderr: "netns-session: invalid namespace name \"../etc\": '/' not allowed in a name (use A-Z a-z 0-9 _ . -); see netns-session netns add --help\n"},
		{name: "completion without a shell", args: []string{"completion"}, wantCode: 64,
			wantStderr: "netns-session: completion takes one shell, bash, zsh, fish; got []; see netns-session completion --help\n"},
		{name: "completion of an unknown shell", args: []string{"completion", "csh"}, wantCode: 64,
			wantStderr: "netns-session: completion takes one shell, bash, zsh, fish; got [\"csh\"]; see netns-session completion --help\n"},
		{name: "pam at a terminal with --help", args: []string{"pam", "--help"}, wantCode: 64,
			wantStderr: "netns-session: unknown pam argument \"--help\" (want config=PATH, log=PATH or debug); `netns-session help pam` lists the arguments\n"},
		{name: "no command", args: nil, wantCode: 0, wantStdout: "COMMANDS:"},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStdout: "COMMANDS:"},
		{name: "--help", args: []string{"--help"}, wantCode: 0, wantStdout: "COMMANDS:"},
		{name: "help of a command", args: []string{"help", "status"}, wantCode: 0, wantStdout: "netns-session status - "},
		{name: "--help of a command", args: []string{"status", "--help"}, wantCode: 0, wantStdout: "netns-session status - "},
		{name: "help of pam", args: []string{"help", "pam"}, wantCode: 0, wantStdout: "netns-session pam - "},
		{name: "help of a subcommand", args: []string{"netns", "help", "add"}, wantCode: 0, wantStdout: "netns-session netns add - "},
		{name: "version", args: []string{"--version"}, wantCode: 0, wantStdout: "netns-session version "},
		{name: "completion", args: []string{"completion", "bash"}, wantCode: 0, wantStdout: "-F _netns_session netns-session\n"},
		{name: "check's errors are printed once, by check", args: []string{"check", "--config", missing}, wantCode: 1,
			wantStdout: "error: no config at " + missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d", code, tt.wantCode)
			}
			if tt.wantStdout == "" && stdout != "" || !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout:\n%s\nwant it to contain %q", stdout, tt.wantStdout)
			}
			if stderr != tt.wantStderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr, tt.wantStderr)
			}
		})
	}
}

// TestPAMLineNeverBuildsTheCLI runs main with PAM lines whose arguments the
// CLI would answer itself, some with exit status 0 (pam help, a request for
// completions), which would open every session unplaced, and all after
// every login paid for building the CLI: the hook gets them and refuses
// them (at a terminal, as a usage error; under pam_exec, as a broken
// config), printing nothing on stdout.
func TestPAMLineNeverBuildsTheCLI(t *testing.T) {
	for _, args := range [][]string{
		{"pam", "--help"},
		{"pam", "-h"},
		{"pam", "help"},
		{"pam", "--version"},
		{"pam", "--generate-bash-completion"},
		{"pam", "debug", "--generate-bash-completion"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runMain(t, args...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, "unknown pam argument") {
				t.Errorf("exit status %d, stdout %q, stderr %q; want %d from the hook, nothing on stdout", code, stdout, stderr, exitUsage)
			}
		})
	}
}

// manPage is the source of netns-session(8).
const manPage = "../../docs/netns-session.8.md"

// TestManPageDocumentsEveryCommandAndFlag: netns-session(8) has a section
// "## netns-session COMMAND ..." for every command and subcommand, which
// names each of its flags and aliases in bold, and names the global flags
// under GLOBAL OPTIONS, so that a command or flag added without its
// documentation fails here.
func TestManPageDocumentsEveryCommandAndFlag(t *testing.T) {
	text, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(text)
	app := newApp()
	app.Setup() // adds the help command and the global flags
	type entry struct {
		heading string
		names   []string // flags and aliases, as the section must show them
		// subcommands have sections of their own, which are not this one's.
		subcommands []string
	}
	var entries []entry
	var walk func(prefix string, commands []*cli.Command)
	walk = func(prefix string, commands []*cli.Command) {
		for _, cmd := range commands {
			path := prefix + " " + cmd.Name
			e := entry{heading: "## " + path}
			for _, sub := range cmd.Subcommands {
				e.subcommands = append(e.subcommands, sub.Name)
			}
			for _, alias := range cmd.Aliases {
				e.names = append(e.names, "**"+alias+"**")
			}
			e.names = append(e.names, flagNames(cmd.Flags)...)
			entries = append(entries, e)
			walk(path, cmd.Subcommands)
		}
	}
	walk(app.Name, app.Commands)
	entries = append(entries, entry{heading: "# GLOBAL OPTIONS", names: flagNames(app.Flags)})
	for _, e := range entries {
		t.Run(e.heading, func(t *testing.T) {
			section, ok := manSection(doc, e.heading, e.subcommands)
			if !ok {
				t.Fatalf("%s has no section %q", manPage, e.heading)
			}
			for _, name := range e.names {
				if !strings.Contains(section, name) {
					t.Errorf("section %q of %s does not name %s", e.heading, manPage, name)
				}
			}
		})
	}
}

// flagNames returns every name of flags as a man page shows it: **--name**,
// **-n**.
func flagNames(flags []cli.Flag) []string {
	var names []string
	for _, f := range flags {
		for _, name := range f.Names() {
			dashes := "--"
			if len(name) == 1 {
				dashes = "-"
			}
			names = append(names, "**"+dashes+name+"**")
		}
	}
	return names
}

// manSection returns the section of the markdown doc whose heading line is
// heading, alone or followed by a space and a word that is none of
// subcommands, up to the next heading.
func manSection(doc, heading string, subcommands []string) (string, bool) {
	var section strings.Builder
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "#") {
			if in {
				break
			}
			rest, found := strings.CutPrefix(line, heading+" ")
			word, _, _ := strings.Cut(rest, " ")
			in = line == heading || found && !slices.Contains(subcommands, word)
			continue
		}
		if in {
			section.WriteString(line + "\n")
		}
	}
	return section.String(), in
}
