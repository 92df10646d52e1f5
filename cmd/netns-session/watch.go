package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/urfave/cli/v2"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/logind"
	"github.com/netns-session/netns-session/internal/policy"
	"github.com/netns-session/netns-session/internal/proc"
	"github.com/netns-session/netns-session/internal/reconcile"
	"github.com/netns-session/netns-session/internal/units"
	"github.com/netns-session/netns-session/internal/userdb"
	"github.com/netns-session/netns-session/internal/watch"
)

// exitConfig is EX_CONFIG of sysexits.h: the config has errors at start.
// The unit does not restart the watcher for it.
const exitConfig = 78

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:      "watch",
		Usage:     "check every session and user manager as it starts and enforce the policy (the netns-session.service daemon)",
		UsageText: "netns-session watch [--config FILE] [--debug]",
		Description: `Runs as netns-session.service. On start it syncs the user@UID.service
drop-ins (as "netns-session sync" does), then checks every logind session and
every running user manager, then each new one as logind announces it. A sync
that fails, e.g. because the directory is down, is tried again after 5
seconds, then after twice as long each time, up to every minute, until it
succeeds: it starts the managers of lingering users that the boot-time sync
held once their policy is known. It syncs too a second after a user starts or
stops lingering (loginctl enable-linger, a file in /var/lib/systemd/linger),
so that the record of lingering users that the boot-time sync holds managers
by follows. A watch of that directory that stops (no inotify watches left when
it is created again) is logged as an error, and the next sync or reload
watches it again.

A session is checked by its leader, the process that opened it: it must run in
the namespace the config maps its user to (unmapped users: the host's, or any
with "unmapped = keep"). The leader is judged only once proven the session's
(logind's LeaderPIDFDId, else the session's scope or a start time no later
than the session's): logind names a leader after it exits, and its PID may
belong to any process by then ("unknown" when nothing tells, which is not
acted on). A session whose leader is gone, such as a closing session whose
processes KillUserProcesses=no leaves running, is checked by the oldest
process of the session's user in its scope (the cgroup
user.slice/user-UID.slice/session-N.scope) that runs for that user alone (not
su or sudo waiting for their command) and outside a network namespace the
user made in a user namespace of their own (unshare -rn, bwrap); "gone" when
none is left. Every class of session is checked but greeter, lock-screen and
the user manager's own (manager, manager-early), which are checked as user
managers. A session outside its namespace was opened by a PAM service without
the netns-session line, or was escaped from; the config decides what happens
to it:

   enforce = terminate   end the session through logind (the default)
   enforce = warn        only log it

Terminating kills the leader first, unless the session is closing or was
checked by a process of its scope, then has logind stop the session's scope
(TerminateSession). Unless the leader had not reached its scope yet (a young
session, whose leader has forked no one), logind is then asked to kill every
process in the scope too (KillSession, which systemd does by the scope's
cgroup), whatever TerminateSession answered: logind does nothing to stop a
session it is stopping already, which a closing session is and any session
becomes once a leader in its scope is killed, and a TerminateSession that
failed or timed out may have left the scope running. The session counts as
terminated once KillSession has succeeded, or logind no longer knows it.
The watcher signals no process of a closing session, or of one checked by a
process of its scope, itself.

A user manager (user@UID.service) in the wrong namespace is only logged, with
either setting: stopping it would kill every service of the user, and the PAM
hook already refuses new sessions while it runs there.

Every verdict goes to the journal with structured fields:

   journalctl -t netns-session NETNS_SESSION_VERDICT=violation

Where the namespace has a resolv.conf of its own (/etc/netns/NAME/resolv.conf),
the record of a session or manager in it says which file its process sees at
/etc/resolv.conf: NETNS_SESSION_RESOLV_CONF=namespace, host, other or unknown
(see "netns-session status --help"). It is recorded, never acted on.

SIGHUP, or "watch --reload", reads the config again, syncs the drop-ins and
checks every running session against the new map. A config with errors is
refused and the one loaded before stays in force; the watcher logs that as an
alert, and its status (systemctl status) says so until a reload succeeds. The
PAM hook reads the files at every login, so it denies every login but root's
until they are fixed: check a draft with "netns-session check --config FILE"
before putting it in place. A config with errors at start stops the daemon
with exit status 78.

"watch --reload", the service's ExecReload (systemctl reload netns-session),
asks the running watcher to reload through its socket
` + reloadSocket + ` and waits up to ` + reloadTimeout.String() + ` for its verdict: exit status 0
once the new config is in force and the drop-ins synced (or, when the sync
failed, logged and retried as at start), 78 with the reason
on stderr (which the unit's journal and systemctl status show) when the
watcher refused it, 1 when no watcher answers or none answers in time.
--pid PID (ExecReload passes $MAINPID) asks only the watcher of that PID. It reconnects, and
checks everything again, when the system bus or logind restarts.`,
		Flags: []cli.Flag{
			configFlag("read"),
			&cli.BoolFlag{Name: "debug", Usage: "log every step"},
			&cli.BoolFlag{Name: "reload", Usage: "ask the running watcher to read the config again, and exit with its verdict (the service's ExecReload)"},
			&cli.IntFlag{Name: "pid", Usage: "with --reload, ask only the watcher of process `PID` (the service's $MAINPID)"},
		},
		Action: runWatch,
	}
}

func runWatch(c *cli.Context) error {
	if err := noArguments(c, "watch"); err != nil {
		return err
	}
	if c.Bool("reload") {
		if c.IsSet("config") || c.IsSet("debug") {
			return usageError(c, "watch --reload asks the running watcher, which reads its own config: --config and --debug do not apply")
		}
		return reloadExit(requestReload(reloadSocket, c.Int("pid"), reloadTimeout))
	}
	if c.IsSet("pid") {
		return usageError(c, "watch: --pid goes with --reload")
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := newEventLog(c.Bool("debug"), facilityDaemon)
	reloads := make(chan watch.Reload)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
			case <-ctx.Done():
				return
			}
			select {
			case reloads <- watch.Reload{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Without the socket the watcher still watches, and reloads on SIGHUP;
	// only systemctl reload fails, saying that no watcher answers.
	if err := listenReloads(ctx, reloadSocket, reloads, log); err != nil {
		log.Error(err.Error()+"; systemctl reload fails until the watcher restarts (kill -HUP still reloads)", map[string]string{"ACTION": "reload-socket"})
	}

	users := userdb.System()
	manager := units.New()
	configPath := c.String("config")
	sleeps := &proc.SleepLog{}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warning("reading the watchdog settings: "+err.Error(), nil)
	}
	w := watch.New(watch.Config{
		Log:         log,
		Judge:       policy.NewJudge(nil, users, sleeps),
		RecordSleep: sleeps.Record,
		Load:        func() (*config.Config, error) { return config.Load(configPath) },
		Sync: func(ctx context.Context, cfg *config.Config) (*reconcile.Report, error) {
			return reconcile.Sync(ctx, cfg, users, manager, reconcile.Options{})
		},
		LookupUID:   users.LookupUID,
		ManagerPID:  manager.UserManagerPID,
		Dial:        func(ctx context.Context) (watch.Logind, error) { return logind.Dial(ctx) },
		WatchLinger: func() (watch.LingerWatch, error) { return reconcile.WatchLinger(reconcile.DefaultLingerDir) },
		Notify: func(state string) {
			if _, err := daemon.SdNotify(false, state); err != nil {
				log.Warning("notifying systemd: "+err.Error(), nil)
			}
		},
		// Pinging at half the interval leaves the other half for a slow
		// turn of the loop.
		Watchdog: interval / 2,
	})
	return watchExit(w.Run(ctx, reloads))
}

// reloadExit maps the verdict of watch --reload to its exit status: a
// config the watcher refused is exitConfig, with its reason; one line on
// stderr either way, which the unit's journal keeps for systemctl status.
func reloadExit(err error) error {
	var refusal reloadRefusal
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refusal):
		return cli.Exit("netns-session: "+refusal.Error(), exitConfig)
	}
	return cli.Exit("netns-session: "+err.Error(), 1)
}

// watchExit maps what the watcher returns to the exit status of watch: a
// config with errors at start is exitConfig.
func watchExit(err error) error {
	if errors.Is(err, watch.ErrConfig) {
		return cli.Exit("netns-session: "+err.Error(), exitConfig)
	}
	return err
}
