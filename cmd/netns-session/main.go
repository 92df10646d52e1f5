// Command netns-session binds Linux login sessions to pre-configured network
// namespaces: a PAM hook places each login, and the other subcommands inspect
// and maintain the policy.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/netns-session/netns-session/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newApp() *cli.App {
	return &cli.App{
		Name:  "netns-session",
		Usage: "bind login sessions to per-user network namespaces",
		Description: `An administrator maps users and groups to named network namespaces in
/etc/security/netns-session.conf (and /etc/security/netns-session.d/*.conf).
Every session of a mapped user - ssh, su, sudo, cron, systemd --user services -
then runs in that namespace; unmapped users stay on the host network.`,
		Version:              version,
		EnableBashCompletion: false,
		Commands: []*cli.Command{
			pamCommand(),
			checkCommand(),
			syncCommand(),
			netnsCommand(),
			watchCommand(),
			statusCommand(),
		},
	}
}

// configFlag is the --config flag every command that reads the config has;
// verb says what the command does with it.
func configFlag(verb string) *cli.StringFlag {
	return &cli.StringFlag{
		Name:  "config",
		Usage: verb + " only this config `FILE` instead of " + config.DefaultFile + " and " + config.DefaultDir + "/*.conf",
	}
}

// noArguments refuses arguments to a command that takes none; name is the
// command as typed.
func noArguments(c *cli.Context, name string) error {
	if c.NArg() > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", name, c.Args().Slice())
	}
	return nil
}

func main() {
	if opts, isPAM, err := pamLineOptions(os.Args); isPAM {
		os.Exit(runPAM(context.Background(), opts, err))
	}
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "netns-session: %v\n", err)
		os.Exit(1)
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
