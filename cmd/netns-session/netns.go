package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/netns-session/netns-session/internal/netns"
)

func netnsCommand() *cli.Command {
	return &cli.Command{
		Name:      "netns",
		Usage:     "add, delete and list named network namespaces (" + netns.Dir + "/NAME, as ip netns keeps them)",
		UsageText: "netns-session netns add|del|list [NAME]",
		Description: `Named network namespaces are files under ` + netns.Dir + ` that hold a namespace
open with a bind mount, exactly as "ip netns" lays them out: "ip netns exec NAME",
the config's NAME form and NetworkNamespacePath= all find the same namespace.

"add" and "del" are idempotent, so units and scripts can run them again. They
live until the next reboot; netns-session-netns@NAME.service creates one at every
boot, before netns-session-sync.service and the network come up:

   systemctl enable --now netns-session-netns@ns0.service

Names are 1 to 255 of A-Z a-z 0-9 _ . - and do not start with "-".`,
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "create network namespace NAME with its loopback up; nothing to do if it exists",
				ArgsUsage: "NAME",
				Description: `Like "ip netns add NAME", which also makes ` + netns.Dir + ` a shared mount point,
then brings up the loopback interface, which a new namespace starts without.
If NAME exists and is a network namespace, only makes sure its loopback is up.
Fails if NAME is taken by a file that is not a network namespace.`,
				Action: changeNamed(netns.Registry.Add,
					"created network namespace %[1]s at %[2]s, loopback up",
					"network namespace %[1]s exists at %[2]s, loopback up"),
			},
			{
				Name:      "del",
				Aliases:   []string{"delete"},
				Usage:     "delete network namespace NAME; nothing to do if it does not exist",
				ArgsUsage: "NAME",
				Description: `Like "ip netns del NAME": detaches the bind mount and removes the file.
Processes still in the namespace keep it, and its interfaces, alive until they
exit. Users mapped to NAME cannot log in until it exists again.`,
				Action: changeNamed(netns.Registry.Delete,
					"deleted network namespace %[1]s",
					"no network namespace %[1]s at %[2]s"),
			},
			{
				Name:  "list",
				Usage: "list the named network namespaces",
				Description: `Prints every name under ` + netns.Dir + ` with its namespace ID (device:inode,
the way to compare it with /proc/PID/ns/net) or why it is not a usable
network namespace.`,
				Action: func(c *cli.Context) error {
					if err := noArguments(c, "netns list"); err != nil {
						return err
					}
					r := netns.System()
					entries, err := r.List()
					if err != nil {
						return err
					}
					if len(entries) == 0 {
						fmt.Fprintf(c.App.Writer, "no network namespaces in %s\n", r.Dir)
						return nil
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 8, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tPATH\tID")
					for _, e := range entries {
						id := e.ID.String()
						if e.Err != nil {
							id = "unusable: " + e.Err.Error()
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, e.Path, id)
					}
					return tw.Flush()
				},
			},
		},
	}
}

// changeNamed is the action of add and del, which are idempotent: it makes
// change to the namespace NAME in the system's registry and prints changed,
// or unchanged when there was nothing to do. Both are formats of the name
// (%[1]s) and its path (%[2]s), and need not use the path.
func changeNamed(change func(netns.Registry, string) (bool, error), changed, unchanged string) cli.ActionFunc {
	return func(c *cli.Context) error {
		name, err := oneName(c)
		if err != nil {
			return err
		}
		r := netns.System()
		done, err := change(r, name)
		if err != nil {
			return err
		}
		format := unchanged
		if done {
			format = changed
		}
		fmt.Fprintf(c.App.Writer, format+"\n", name, r.Path(name))
		return nil
	}
}

// oneName returns the single NAME argument of add and del.
func oneName(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", usageError(c, "netns %s takes one NAME, got %q", c.Command.Name, c.Args().Slice())
	}
	name := c.Args().First()
	if err := netns.ValidateName(name); err != nil {
		return "", usageError(c, "%w", err)
	}
	return name, nil
}
