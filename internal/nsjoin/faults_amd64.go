//go:build netns_session_faults

// This file exists only in the fault-injection build (go build -tags
// netns_session_faults), which the end-to-end suites bind into their
// containers to kill the helper in the middle of a join and prove that the
// login fails closed. A build without the tag contains none of it: stepHook
// stays nil.

package nsjoin

import (
	"bytes"
	"os"

	"golang.org/x/sys/unix"
)

// faultFile arms a fault: it holds the name of the step (stepStopped, ...)
// at which the helper SIGKILLs itself. Only root may arm one.
const faultFile = "/run/netns-session-fault"

func init() {
	armed, ok := armedStep()
	if !ok {
		return
	}
	stepHook = func(name string) {
		if name != armed {
			return
		}
		// One shot: removing the file disarms the fault and tells the
		// suite that it fired.
		_ = unix.Unlink(faultFile)
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
	}
}

// armedStep returns the step named in faultFile, if the file exists, is a
// regular file owned by root and is writable by no one else.
func armedStep() (string, bool) {
	fd, err := unix.Open(faultFile, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != 0 || st.Mode&0o022 != 0 {
		return "", false
	}
	buf := make([]byte, 64)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return "", false
	}
	return string(bytes.TrimSpace(buf[:n])), true
}
