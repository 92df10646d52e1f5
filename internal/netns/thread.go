package netns

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn with the calling goroutine's work moved into the network
// namespace at path: sockets fn opens belong to that namespace. fn runs on
// an OS thread of its own that only it uses, and must not start goroutines,
// which would run on other threads in the original namespace.
func Do(path string, fn func() error) error {
	return onSwitchedThread(func() error {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening %s: %w", path, err)
		}
		defer unix.Close(fd)
		// The type argument makes setns refuse anything but a network
		// namespace.
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("entering %s: %w", path, err)
		}
		return nil
	}, fn)
}

// inNewThreadNetns runs fn in a network namespace created for it; the
// namespace lives on only if fn keeps a reference, such as a bind mount of
// /proc/thread-self/ns/net.
func inNewThreadNetns(fn func() error) error {
	return onSwitchedThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("creating a network namespace: %w", err)
		}
		return nil
	}, fn)
}

// onSwitchedThread is the one place that switches namespaces, in the manner
// of containernetworking/plugins' ns.Do: on a new goroutine locked to its OS
// thread it saves the thread's network namespace, lets enter switch it, runs
// fn, and switches back. Only a thread that is back in its namespace is
// unlocked and so returned to the runtime; one that could not switch back
// stays locked, and the runtime ends it when the goroutine exits, so no other
// goroutine ever runs in the wrong namespace.
func onSwitchedThread(enter, fn func() error) error {
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		origin, openErr := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if openErr != nil {
			runtime.UnlockOSThread()
			err = fmt.Errorf("opening the thread's own network namespace: %w", openErr)
			return
		}
		defer unix.Close(origin)
		// A failed unshare or setns leaves the thread where it was.
		if err = enter(); err != nil {
			runtime.UnlockOSThread()
			return
		}
		err = fn()
		if backErr := unix.Setns(origin, unix.CLONE_NEWNET); backErr != nil {
			err = errors.Join(err, fmt.Errorf("switching back to the original network namespace: %w", backErr))
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
	return err
}
