package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/netns-session/netns-session/internal/hook"
	"github.com/netns-session/netns-session/internal/netns"
	"github.com/netns-session/netns-session/internal/nsjoin"
	"github.com/netns-session/netns-session/internal/units"
	"github.com/netns-session/netns-session/internal/userdb"
)

func pamCommand() *cli.Command {
	return &cli.Command{
		Name:      "pam",
		Usage:     "place a session being opened in its user's network namespace (run by pam_exec)",
		ArgsUsage: "[config=PATH] [log=PATH] [debug]",
		Description: `Run from the PAM session stack, before pam_systemd.so:

   session required pam_exec.so seteuid /usr/sbin/netns-session pam

For PAM_TYPE=open_session it resolves PAM_USER through the config, writes the
drop-in that starts user@UID.service in the user's namespace (reloading systemd
only when the drop-in changed), and moves the process that opens the session -
sshd's privileged monitor, login, su, sudo, cron - into the namespace, so the
shell it forks inherits it. Unmapped users go to the host namespace (PID 1's)
unless the config says "unmapped = keep".

A namespace NAME with a directory /etc/netns/NAME is shown as "ip netns exec
NAME" shows it: the session gets a mount namespace of its own in which each
file of that directory is at /etc/FILE and /sys lists NAME's interfaces, and
the drop-in binds the same files for the user manager. Resolver files under
/run (systemd-resolved's stub) are covered through their directory, so a
rewrite by the host never takes the namespace's resolv.conf away; with a
resolv.conf of its own, resolved's and nscd's sockets are hidden too.

Exit status 0 lets the session open; anything else denies it. A mapped user is
denied whenever their namespace cannot be confirmed: missing namespace, failed
join, failed drop-in, an /etc/netns/NAME that cannot be applied (or a login
program with threads, under chroot or in a removed directory, which cannot be
given it), or a user manager already running in another namespace or without
the namespace's /etc.
A broken or insecure config denies everyone but root. The reason is one line on
stderr; details go to the journal (journalctl -t netns-session).

Other PAM_TYPE values and PAM_SERVICE=systemd-user (the user manager's own
session, placed by its drop-in) succeed without doing anything. Options are
taken only from arguments, never from the environment; pam_netns's
config=PATH, log=PATH and debug arguments work too. PATHs must be absolute.
Any other argument, -h and --help included, counts as a broken config.`,
		Flags: []cli.Flag{
			configFlag("read"),
			&cli.StringFlag{Name: "log", Usage: "also append a line per session to `FILE`"},
			&cli.BoolFlag{Name: "debug", Usage: "log every step"},
		},
		// main runs `netns-session pam ...` without the CLI; the flags above
		// are for the help. Should the CLI ever get here, it parses nothing
		// itself either: no argument may print help and exit 0.
		SkipFlagParsing: true,
		Action:          runPAMCommand,
	}
}

// pamOptions are the hook's settings, from the arguments on the PAM line.
type pamOptions struct {
	configPath string
	logPath    string
	debug      bool
}

// parsePAMArgs reads the arguments after "pam" on the PAM line: pam_netns's
// config=PATH, log=PATH and debug, and --config PATH, --log PATH and
// --debug (also with =), in any order and mixed: a PAM line mixing the two
// styles must not read as a broken config, which would lock out every user
// but root. PATHs must be absolute: pam_exec keeps the caller's working
// directory, which under su is the user's.
func parsePAMArgs(args []string) (pamOptions, error) {
	var opts pamOptions
	for i := 0; i < len(args); i++ {
		arg := args[i]
		isFlag := strings.HasPrefix(arg, "-")
		key, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if isFlag && !hasValue && (key == "config" || key == "log") && i+1 < len(args) {
			i++
			value, hasValue = args[i], true
		}
		switch {
		case key == "debug" && !hasValue:
			opts.debug = true
		case (key == "config" || key == "log") && value != "" && !filepath.IsAbs(value):
			return opts, fmt.Errorf("pam argument %s=%q is not an absolute path", key, value)
		case key == "config" && value != "":
			opts.configPath = value
		case key == "log" && value != "":
			opts.logPath = value
		default:
			return opts, fmt.Errorf("unknown pam argument %q (want config=PATH, log=PATH or debug)", arg)
		}
	}
	return opts, nil
}

func runPAMCommand(c *cli.Context) error {
	opts, optsErr := parsePAMArgs(c.Args().Slice())
	if runPAM(c.Context, opts, optsErr) != 0 {
		return cli.Exit("", 1)
	}
	return nil
}

// runPAM opens the session pam_exec runs it for and returns the exit status:
// 0 lets the session open. A bad pam argument, optsErr, counts as a broken
// config.
func runPAM(ctx context.Context, opts pamOptions, optsErr error) int {
	start := time.Now()
	// Pinned first: once the caller exits, this process belongs to a reaper,
	// which the join must never mistake for the caller.
	caller, callerErr := nsjoin.PinParent()
	if caller != nil {
		defer caller.Close()
	}
	log := newEventLog(opts.debug, facilityAuthpriv)
	if opts.logPath != "" {
		if err := log.openFile(opts.logPath); err != nil {
			log.Warning(err.Error(), nil)
		}
	}
	req, err := readPAMRequest()
	if err != nil {
		return deny(log, start, &hook.Denial{Reason: "cannot read the PAM request", Err: err})
	}
	if optsErr != nil && req.Type == "" {
		// pam_exec always sets PAM_TYPE: this is someone at a terminal.
		fmt.Fprintf(os.Stderr, "netns-session: %v; `netns-session help pam` lists the arguments\n", optsErr)
		return exitUsage
	}
	// Before any lookup: a denied user is still looked up (keepManagerOff).
	scrubEnv()
	log.Set("USER", req.User)
	log.Set("SERVICE", req.Service)
	log.Set("TTY", req.TTY)
	log.Set("RHOST", req.RHost)
	log.Set("TYPE", req.Type)

	join := parentJoiner{caller: caller, callerErr: callerErr, debugf: log.Debugf}
	h := hook.New(hook.Config{
		Log:        log,
		Joiner:     join,
		Units:      units.New(),
		Users:      userdb.System(),
		ConfigPath: opts.configPath,
		ConfigErr:  optsErr, // a bad pam argument counts as a broken config
	})
	placed, err := h.Open(ctx, req)
	if err != nil {
		return deny(log, start, err)
	}
	if placed != nil {
		log.Info(placed.Message, map[string]string{
			"ACTION":      placed.Action,
			"NETNS":       placed.Netns,
			"UID":         placed.UID,
			"DURATION_US": strconv.FormatInt(time.Since(start).Microseconds(), 10),
		})
	}
	return 0
}

// parentJoiner joins the process that opens the session - our parent,
// waiting for us - into target.
type parentJoiner struct {
	// caller is that process, pinned at start; callerErr says why it could
	// not be, which fails every join.
	caller    *nsjoin.Caller
	callerErr error
	debugf    func(format string, args ...any)
}

// Join builds the session's mount namespace first when etc asks for one:
// a copy of the caller's (pam_exec's child shares it, and its working
// directory), which the caller then joins. It is built on this goroutine's
// thread, which stays in it, locked, until the process exits: the join
// and what little the hook does after it run there too.
func (j parentJoiner) Join(ctx context.Context, target string, etc *netns.Overlay) error {
	if j.callerErr != nil {
		return j.callerErr
	}
	opts := nsjoin.Options{Debugf: j.debugf}
	if etc == nil {
		return nsjoin.JoinParent(ctx, j.caller, target, nil, opts)
	}
	// A namespace that is missing is that, not an /etc directory that
	// cannot be applied.
	if _, err := netns.CheckNetns(target); err != nil {
		return fmt.Errorf("%w: %w", nsjoin.ErrTargetUnavailable, err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("%w: naming the working directory: %w", hook.ErrEtcView, err)
	}
	mnt, err := netns.EnterMountNS(etc, target, cwd)
	if err != nil {
		return fmt.Errorf("%w: %w", hook.ErrEtcView, err)
	}
	return nsjoin.JoinParent(ctx, j.caller, target, &nsjoin.MountJoin{Path: mnt.Path(), ID: mnt.ID()}, opts)
}

func deny(log *eventLog, start time.Time, err error) int {
	var d *hook.Denial
	if !errors.As(err, &d) {
		d = &hook.Denial{Reason: "internal error", Err: err}
	}
	record := log.Error
	if d.Everyone {
		record = log.Alert
	}
	record("session denied: "+d.Error(), map[string]string{
		"ACTION":      "deny",
		"DURATION_US": strconv.FormatInt(time.Since(start).Microseconds(), 10),
	})
	fmt.Fprintf(os.Stderr, "netns-session: login refused: %s\n", d.Reason)
	return 1
}
