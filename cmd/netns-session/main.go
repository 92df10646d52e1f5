// Command netns-session binds Linux login sessions to pre-configured network
// namespaces: a PAM hook places each login, and the other subcommands inspect
// and maintain the policy.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/netns-session/netns-session/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitUsage is the exit status of a usage error (EX_USAGE of sysexits.h):
// an unknown command or flag, or wrong arguments. It is distinct from
// status's 0, 1 and 2, so a typo in a monitoring check never reads as a
// verdict, and from watch's exitConfig.
const exitUsage = 64

func newApp() *cli.App {
	app := &cli.App{
		Name:  "netns-session",
		Usage: "bind login sessions to per-user network namespaces",
		Description: `An administrator maps users and groups to named network namespaces in
/etc/security/netns-session.conf (and /etc/security/netns-session.d/*.conf).
Every session of a mapped user - ssh, su, sudo, cron, systemd --user services -
then runs in that namespace; unmapped users stay on the host network.

Usage errors (an unknown command or flag, wrong arguments) exit with status 64.
See netns-session(8) and netns-session.conf(5).`,
		Version: version,
		// Shells ask for completions with --generate-bash-completion; see
		// netns-session completion --help.
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			pamCommand(),
			checkCommand(),
			syncCommand(),
			netnsCommand(),
			watchCommand(),
			statusCommand(),
			completionCommand(),
		},
		// run prints every error, once; urfave/cli would print an exit
		// error and exit itself.
		ExitErrHandler: func(*cli.Context, error) {},
		// Without it urfave/cli prints help for an unknown command and
		// returns an exit error of status 3.
		CommandNotFound: func(c *cli.Context, name string) {
			c.App.Metadata[unknownCommandKey] = unknownCommand(c, name)
		},
	}
	onUsageError(app.Commands)
	app.OnUsageError = flagError
	return app
}

// unknownCommandKey is where CommandNotFound leaves its usage error in the
// app's Metadata: it cannot return it.
const unknownCommandKey = "netns-session unknown command"

// usageErr is an error in how netns-session was called; errors.Is matches
// it with errUsage. help is the command whose help explains the usage.
type usageErr struct {
	err  error
	help string
}

func (e *usageErr) Error() string        { return e.err.Error() }
func (e *usageErr) Unwrap() error        { return e.err }
func (e *usageErr) Is(target error) bool { return target == errUsage }

// usageError is a usage error of the command c runs: exit status 64, and
// the message points to the command's help.
func usageError(c *cli.Context, format string, args ...any) error {
	return &usageErr{err: fmt.Errorf(format, args...), help: c.Command.HelpName}
}

// unknownCommand is the usage error of name, which is no command of c's.
func unknownCommand(c *cli.Context, name string) error {
	path := strings.TrimPrefix(c.Command.HelpName+" "+name, c.App.HelpName+" ")
	return &usageErr{err: fmt.Errorf("unknown command %q", path), help: c.Command.HelpName}
}

// flagError makes a flag the command does not define, or one without its
// value, a usage error, which urfave/cli would print with the whole help
// on stdout.
func flagError(c *cli.Context, err error, _ bool) error {
	return &usageErr{err: err, help: c.Command.HelpName}
}

// onUsageError sets flagError on every command: urfave/cli takes the app's
// for the top level only.
func onUsageError(commands []*cli.Command) {
	for _, cmd := range commands {
		cmd.OnUsageError = flagError
		onUsageError(cmd.Subcommands)
	}
}

// configFlag is the --config flag every command that reads the config has;
// verb says what the command does with it.
func configFlag(verb string) *cli.StringFlag {
	return &cli.StringFlag{
		Name: "config",
		// Completes file names in fish.
		TakesFile: true,
		Usage:     verb + " only this config `FILE` instead of " + config.DefaultFile + " and " + config.DefaultDir + "/*.conf",
	}
}

// noArguments refuses arguments to a command that takes none; name is the
// command as typed.
func noArguments(c *cli.Context, name string) error {
	if c.NArg() > 0 {
		return usageError(c, "%s takes no arguments, got %q", name, c.Args().Slice())
	}
	return nil
}

func main() {
	if opts, isPAM, err := pamLineOptions(os.Args); isPAM {
		os.Exit(runPAM(context.Background(), opts, err))
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the CLI on argv and returns the exit status. It prints each
// error once, on stderr: a usage error with a pointer to the help, an exit
// error's message as it is (status and watch prefix theirs), any other
// error after the program's name.
func run(argv []string, stdout, stderr io.Writer) int {
	app := newApp()
	app.Writer, app.ErrWriter = stdout, stderr
	err := app.Run(argv)
	if err == nil {
		if unknown, ok := app.Metadata[unknownCommandKey].(error); ok {
			err = unknown
		}
	}
	var usage *usageErr
	var exit cli.ExitCoder
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %v; see %s --help\n", app.Name, err, usage.help)
		return exitUsage
	case errors.Is(err, errCheckFailed):
		// check has printed the problems.
		return 1
	case errors.As(err, &exit):
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return exit.ExitCode()
	default:
		fmt.Fprintf(stderr, "%s: %v\n", app.Name, err)
		return 1
	}
}

// pamLineOptions tells whether argv is `netns-session pam ARGS...`, the
// hook, and returns its options. Every such argv runs the hook, never the
// CLI: help or version flags on the PAM line would print and exit 0, which
// opens every session unplaced, so they are bad arguments like any unknown
// one (err), and the hook treats them as a broken config. Skipping the CLI
// also saves every login about 0.1 ms (BENCHMARKS.md). `netns-session help
// pam` still shows the command's help.
func pamLineOptions(argv []string) (opts pamOptions, isPAM bool, err error) {
	if len(argv) < 2 || argv[1] != "pam" {
		return pamOptions{}, false, nil
	}
	opts, err = parsePAMArgs(argv[2:])
	return opts, true, err
}
