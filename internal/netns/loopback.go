package netns

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// loopback is the interface every network namespace is born with, down.
const loopback = "lo"

// setLoopbackUp sets IFF_UP on the loopback interface of the calling
// thread's network namespace, with the SIOCSIFFLAGS ioctl: a netlink library
// would be a dependency for one flag.
func setLoopbackUp() error {
	// A socket belongs to the namespace of the thread that opens it; the
	// ioctl acts on that namespace's interfaces.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening a socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := loopbackFlags(fd)
	if err != nil {
		return err
	}
	if ifr.Uint16()&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("setting flags of %s: %w", loopback, err)
	}
	return nil
}

// loopbackFlags returns the loopback's flags as seen through socket fd.
func loopbackFlags(fd int) (*unix.Ifreq, error) {
	ifr, err := unix.NewIfreq(loopback)
	if err != nil {
		return nil, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return nil, fmt.Errorf("reading flags of %s: %w", loopback, err)
	}
	return ifr, nil
}
