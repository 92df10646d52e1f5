package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/reconcile"
	"github.com/netns-session/netns-session/internal/units"
	"github.com/netns-session/netns-session/internal/userdb"
)

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:      "sync",
		Usage:     "make every user@UID.service drop-in match the config",
		UsageText: "netns-session sync [--dry-run] [--boot] [--config FILE]",
		Description: `The PAM hook places a user's systemd manager when the user logs in. sync places
the managers nobody logs in for and cleans up after config changes: it writes
/run/systemd/system/user@UID.service.d/50-netns-session.conf (NetworkNamespacePath=)
for every user it can name whose policy is a namespace, removes it where the
policy is the host network or "unmapped = keep", and reloads systemd once if
anything changed. netns-session-sync.service runs it at boot, before
systemd-logind starts the managers of lingering users.

The users it can name: those of user lines, the members NSS lists for the
groups of @group lines, lingering users (/var/lib/systemd/linger), users whose
user@UID.service runs, and users that already have a drop-in. Users that only
"*" maps, or that are in a mapped group only as their primary group, are not
listed by NSS; they are placed when they log in, and by sync from then on.

A drop-in naming a namespace that does not exist is still written (with a
warning): systemd then refuses to start that manager rather than start it on
the host network. A running manager keeps its namespace until it restarts.
Unknown users are skipped with a warning and their drop-ins left alone.

Lingering users and the directory at boot: sync records the lingering users it
resolves, by UID and name, in ` + reconcile.DefaultLingerRecord + ` (a user it cannot
look up this time keeps their entry; root is never recorded). With --boot, as
netns-session-sync.service runs it, sync first writes a drop-in naming
` + units.NoNetns + ` for every recorded user that has none, and reloads systemd,
before it reads the config or asks NSS anything: if the directory is slow or
down and the unit times out, logind, which starts lingering users' managers
right after it, finds them held rather than starting them on the host network.
It then syncs as usual, which replaces each hold with the drop-in the policy
wants or removes it. When a sync other than the boot-time one takes such a
hold away from a lingering user whose manager does not run, it starts
user@UID.service: logind starts lingering managers only at boot.

It fails closed, like the PAM hook: a user whose policy cannot be known and
who has no drop-in gets one naming ` + units.NoNetns + `, which systemd refuses
to start the manager with (status 225/NETWORK); a user who has a drop-in keeps
it as it is, and sync names the user and exits 1. When the config has errors
that is every user sync can name but root (lingering users, users with a
drop-in or a running manager); otherwise it is each user for whom NSS fails,
a source such as LDAP or SSSD being down included. Once the config is fixed
or the source is back, sync again: it starts the held managers of lingering
users; the others start when their users log in.

It prints each drop-in it writes or removes (with --dry-run: would write or
remove, and changes nothing). Exit status 1: the config has errors, or some
users could not be looked up or some drop-ins not written (the others are
synced).`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "show what would change, change nothing"},
			&cli.BoolFlag{Name: "boot", Usage: "hold the recorded lingering users' managers before anything else (netns-session-sync.service)"},
			configFlag("read"),
		},
		Action: func(c *cli.Context) error {
			if err := noArguments(c, "sync"); err != nil {
				return err
			}
			var errs []error
			manager := units.New()
			opts := reconcile.Options{DryRun: c.Bool("dry-run"), Boot: c.Bool("boot")}
			if opts.Boot {
				// Before the config is read: nothing may ask NSS first.
				report, err := reconcile.HoldLingering(c.Context, manager, opts)
				fmt.Fprintln(c.App.Writer, "holding the managers of the recorded lingering users:")
				printSyncReport(c.App.Writer, report)
				if err != nil {
					errs = append(errs, fmt.Errorf("holding lingering users: %w", err))
				}
			}
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				// A nil config makes Sync keep every manager it can name
				// from starting.
				cfg = nil
				errs = append(errs, fmt.Errorf("loading config, so no user's policy is known:\n%w", err))
			}
			report, err := reconcile.Sync(c.Context, cfg, userdb.System(), manager, opts)
			printSyncReport(c.App.Writer, report)
			if err != nil {
				errs = append(errs, fmt.Errorf("syncing drop-ins: %w", err))
			}
			return errors.Join(errs...)
		},
	}
}

// printSyncReport prints one line per changed drop-in, the warnings and a
// summary.
func printSyncReport(w io.Writer, r *reconcile.Report) {
	verb := map[reconcile.Action]string{reconcile.Write: "write", reconcile.Remove: "remove"}
	if r.DryRun {
		verb = map[reconcile.Action]string{reconcile.Write: "would write", reconcile.Remove: "would remove"}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, c := range r.Changes {
		target := c.Netns
		if c.Action == reconcile.Remove {
			target = "(no drop-in)"
		}
		fmt.Fprintf(tw, "%s\t%s (uid %d)\t%s\t%s\n", verb[c.Action], c.User, c.UID, target, c.Reason)
	}
	for _, uid := range r.Started {
		fmt.Fprintf(tw, "start\t%s\tits drop-in no longer holds it, and the user lingers\n", units.UserManagerUnit(uid))
	}
	tw.Flush()
	for _, warning := range r.Warnings {
		fmt.Fprintln(w, "warning:", warning)
	}
	switch {
	case r.DryRun:
		fmt.Fprintf(w, "dry run: %s of %s would change; nothing was changed\n", plural(len(r.Changes), "drop-in"), plural(r.Users, "user"))
	case r.Reloaded:
		fmt.Fprintf(w, "%s of %s changed; systemd reloaded\n", plural(len(r.Changes), "drop-in"), plural(r.Users, "user"))
	case len(r.Changes) > 0:
		fmt.Fprintf(w, "%s of %s differed; systemd was not reloaded\n", plural(len(r.Changes), "drop-in"), plural(r.Users, "user"))
	default:
		fmt.Fprintf(w, "%s checked; nothing to change\n", plural(r.Users, "user"))
	}
}
