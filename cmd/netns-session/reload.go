package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netns-session/netns-session/internal/watch"
)

// The reload protocol: `systemctl reload netns-session` must fail when the
// watcher refuses the new config, and only the watcher knows whether it
// did: checking the files again beside it could disagree with it (a file
// edited in between, a different reading). So ExecReload runs `watch
// --reload`, which asks the running watcher over a socket in its runtime
// directory and exits with the watcher's own verdict on that request. A
// signal could not carry the answer back, and Type=notify cannot fail a
// reload: systemd 252 (bookworm) ends it when ExecReload exits, and
// RELOADING=1/READY=1 has no way to say "refused" on any version.
//
// One exchange per connection, one line each way: the client sends
// "reload"; the watcher answers "ok", or "refused" and the reason, once the
// config is in force (or refused) and the drop-ins synced, before it checks
// every session again.
const (
	reloadSocket  = "/run/netns-session/watch.sock"
	reloadRequest = "reload"
	reloadOK      = "ok"
	reloadRefused = "refused "
	// reloadTimeout bounds the client's wait for the verdict: the watcher
	// answers between two turns of its loop, and a turn can take as long
	// as a sync (10s) plus a check of every session; systemd kills an
	// ExecReload after TimeoutStartSec= (90s by default), before which
	// the client says itself what happened.
	reloadTimeout = 60 * time.Second
	// requestTimeout bounds the watcher's wait for a client's request.
	requestTimeout = 5 * time.Second
)

// reloadServer takes reload requests on a unix socket and hands them to the
// watcher's loop.
type reloadServer struct {
	listener *net.UnixListener
	reloads  chan<- watch.Reload
	log      *eventLog
}

// listenReloads takes reload requests at path for reloads until ctx ends. A
// socket another watcher still answers at is left to it: the unit's
// ExecReload must not reach a watcher someone runs by hand beside it.
func listenReloads(ctx context.Context, path string, reloads chan<- watch.Reload, log *eventLog) error {
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("listening for reload requests at %s: another watcher answers there", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("listening for reload requests: %w", err)
	}
	// Left by a watcher that did not stop cleanly; no one answers at it.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("listening for reload requests: removing the stale socket: %w", err)
	}
	listener, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listening for reload requests: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		listener.Close()
		return fmt.Errorf("listening for reload requests: %w", err)
	}
	s := &reloadServer{listener: listener, reloads: reloads, log: log}
	go func() {
		<-ctx.Done()
		listener.Close() // removes the socket too
	}()
	go s.serve(ctx)
	return nil
}

func (s *reloadServer) serve(ctx context.Context) {
	for {
		conn, err := s.listener.AcceptUnix()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("taking reload requests: "+err.Error()+"; systemctl reload cannot reach the watcher until it restarts", map[string]string{"ACTION": "reload-socket"})
			}
			return
		}
		go s.handle(ctx, conn)
	}
}

// handle answers one request.
func (s *reloadServer) handle(ctx context.Context, conn *net.UnixConn) {
	defer conn.Close()
	// The directory is root's alone; this holds if it is not.
	if cred, err := peerCred(conn); err != nil || cred.Uid != 0 {
		s.log.Warning(fmt.Sprintf("reload request refused: not from root (%+v, %v)", cred, err), map[string]string{"ACTION": "reload-socket"})
		return
	}
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || strings.TrimSuffix(line, "\n") != reloadRequest {
		return
	}
	done := make(chan error, 1)
	select {
	case s.reloads <- watch.Reload{Done: done}:
	case <-ctx.Done():
		return
	}
	var verdict error
	select {
	case verdict = <-done:
	case <-ctx.Done():
		return
	}
	answer := reloadOK
	if verdict != nil {
		answer = reloadRefused + oneLine(verdict.Error())
	}
	conn.SetWriteDeadline(time.Now().Add(requestTimeout))
	fmt.Fprintln(conn, answer)
}

// oneLine puts the lines of a message, such as every problem of a config,
// on one line.
func oneLine(msg string) string {
	return strings.ReplaceAll(strings.TrimRight(msg, "\n"), "\n", "; ")
}

// peerCred returns who is at the other end of conn.
func peerCred(conn *net.UnixConn) (*unix.Ucred, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, credErr
}

// reloadRefusal is the verdict of a watcher that refused the config: its
// reason, on one line.
type reloadRefusal string

func (r reloadRefusal) Error() string { return string(r) }

// requestReload asks the watcher at path to reload and returns its verdict:
// nil, a reloadRefusal, or why there is none. With wantPID above 0 only the watcher of that PID (the
// unit's main process) is asked.
func requestReload(path string, wantPID int, timeout time.Duration) error {
	conn, err := net.DialTimeout("unix", path, requestTimeout)
	if err != nil {
		return fmt.Errorf("reload: no watcher answers at %s (does netns-session.service run?): %w", path, err)
	}
	defer conn.Close()
	unixConn := conn.(*net.UnixConn)
	if wantPID > 0 {
		cred, err := peerCred(unixConn)
		if err != nil {
			return fmt.Errorf("reload: asking who answers at %s: %w", path, err)
		}
		if int(cred.Pid) != wantPID {
			return fmt.Errorf("reload: the watcher at %s is process %d, not the service's main process %d: nothing was reloaded", path, cred.Pid, wantPID)
		}
	}
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintln(conn, reloadRequest); err != nil {
		return fmt.Errorf("reload: asking the watcher: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("reload: no verdict from the watcher within %v; it reloads once it gets to the request (journalctl -u netns-session)", timeout)
	}
	if err != nil {
		return fmt.Errorf("reload: reading the watcher's verdict: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	switch {
	case line == reloadOK:
		return nil
	case strings.HasPrefix(line, reloadRefused):
		return reloadRefusal(strings.TrimPrefix(line, reloadRefused))
	}
	return fmt.Errorf("reload: the watcher answered %q", line)
}
