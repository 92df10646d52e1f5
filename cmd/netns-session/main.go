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
		HideHelpCommand:      true,
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

func main() {
	if opts, ok := pamLineOptions(os.Args); ok {
		os.Exit(runPAM(context.Background(), opts, nil))
	}
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "netns-session: %v\n", err)
		os.Exit(1)
	}
}

// pamLineOptions returns the options of `netns-session pam ARGS...` when
// withPAMArgs takes every ARG. pam_exec starts the hook so on
// every login, and building the CLI would cost each login about 0.1 ms
// (BENCHMARKS.md); flags, help and bad arguments go through the CLI.
func pamLineOptions(argv []string) (pamOptions, bool) {
	if len(argv) < 2 || argv[1] != "pam" {
		return pamOptions{}, false
	}
	opts, err := pamOptions{}.withPAMArgs(argv[2:])
	if err != nil {
		return pamOptions{}, false
	}
	return opts, true
}
