package userdb

/*
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

// The _r lookups return their error instead of setting errno; these wrappers
// hand back the record by value with a found flag, so no C pointer to a Go
// stack variable is kept across the call.
static struct passwd nss_getpwnam(const char *name, char *buf, size_t len, int *found, int *err) {
	struct passwd pwd, *result = NULL;
	memset(&pwd, 0, sizeof pwd);
	*err = getpwnam_r(name, &pwd, buf, len, &result);
	*found = result != NULL;
	return pwd;
}

static struct passwd nss_getpwuid(uid_t uid, char *buf, size_t len, int *found, int *err) {
	struct passwd pwd, *result = NULL;
	memset(&pwd, 0, sizeof pwd);
	*err = getpwuid_r(uid, &pwd, buf, len, &result);
	*found = result != NULL;
	return pwd;
}

static struct group nss_getgrnam(const char *name, char *buf, size_t len, int *found, int *err) {
	struct group grp, *result = NULL;
	memset(&grp, 0, sizeof grp);
	*err = getgrnam_r(name, &grp, buf, len, &result);
	*found = result != NULL;
	return grp;
}
*/
import "C"

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netns-session/netns-session/internal/config"
)

const (
	// Record buffers start small and double on ERANGE: groups from LDAP or
	// Active Directory can list tens of thousands of members.
	minRecordBuffer = 1 << 10
	maxRecordBuffer = 32 << 20
	// maxGroupList bounds getgrouplist's answer; the kernel allows 65536
	// supplementary groups, directories may list more.
	maxGroupList = 1 << 20
)

// System returns the system's user database.
func System() NSS { return NSS{} }

// NSS is the system's user database: getpwnam_r, getpwuid_r,
// getgrouplist and getgrnam_r through glibc's NSS, so users and groups from
// LDAP, SSSD, extrausers or systemd userdb count like those in /etc/passwd.
// A source that fails makes a lookup fail with ErrSourceUnavailable, never
// with ErrUnknownUser or ErrUnknownGroup; only getgrouplist cannot tell
// (see GroupIDs).
type NSS struct{}

func (NSS) LookupUser(name string) (*config.User, error) {
	var pwd C.struct_passwd
	err := lookupByName("getpwnam_r", name, config.ErrUnknownUser, func(cname, buf *C.char, size C.size_t, found, errno *C.int) {
		pwd = C.nss_getpwnam(cname, buf, size, found, errno)
	})
	if err != nil {
		return nil, err
	}
	return userOf(&pwd), nil
}

// LookupUID returns the user with uid under the name NSS gives the UID,
// also for what is known only by UID (a running user manager, a drop-in);
// an error wrapping ErrUnknownUser when there is none.
func (NSS) LookupUID(uid uint32) (*config.User, error) {
	var pwd C.struct_passwd
	err := lookupRecord("getpwuid_r", "with uid "+strconv.FormatUint(uint64(uid), 10), config.ErrUnknownUser, func(buf *C.char, size C.size_t, found, errno *C.int) {
		pwd = C.nss_getpwuid(C.uid_t(uid), buf, size, found, errno)
	})
	if err != nil {
		return nil, err
	}
	return userOf(&pwd), nil
}

// userOf copies what a User needs out of pwd and the buffer its strings
// point into.
func userOf(pwd *C.struct_passwd) *config.User {
	return &config.User{Name: C.GoString(pwd.pw_name), UID: uint32(pwd.pw_uid), GID: uint32(pwd.pw_gid)}
}

// GroupIDs returns the groups of u through getgrouplist, which cannot report
// a failing source: glibc skips a module that is UNAVAILABLE and returns the
// groups of the others. Its list is proof that u is in a group, never that u
// is not; Resolve looks every group line's group up with getgrnam_r before it
// decides that u is in none of them, and that lookup fails when the group's
// source is down.
func (NSS) GroupIDs(u *config.User) ([]uint32, error) {
	cname, err := cString(u.Name)
	if err != nil {
		return nil, err
	}
	size := 64
	for {
		gids := make([]C.gid_t, size)
		n := C.int(size)
		// getgrouplist returns -1 only when the list is too short, with n
		// set to the length needed.
		if C.getgrouplist(cname, C.gid_t(u.GID), &gids[0], &n) >= 0 {
			ids := make([]uint32, n)
			for i := range ids {
				ids[i] = uint32(gids[i])
			}
			return ids, nil
		}
		size = max(int(n), 2*size)
		if size > maxGroupList {
			return nil, fmt.Errorf("getgrouplist %q: more than %d groups", u.Name, maxGroupList)
		}
	}
}

func (NSS) LookupGroup(name string) (*config.Group, error) {
	var grp C.struct_group
	err := lookupByName("getgrnam_r", name, config.ErrUnknownGroup, func(cname, buf *C.char, size C.size_t, found, errno *C.int) {
		grp = C.nss_getgrnam(cname, buf, size, found, errno)
	})
	if err != nil {
		return nil, err
	}
	var members []string
	if grp.gr_mem != nil {
		for p := grp.gr_mem; *p != nil; p = (**C.char)(unsafe.Add(unsafe.Pointer(p), unsafe.Sizeof(*p))) {
			members = append(members, C.GoString(*p))
		}
	}
	return &config.Group{Name: C.GoString(grp.gr_name), GID: uint32(grp.gr_gid), Members: members}, nil
}

// lookupByName runs lookupRecord for the record called name, with name as a
// C string for lookup to pass on.
func lookupByName(call, name string, notFound error, lookup func(cname, buf *C.char, size C.size_t, found, errno *C.int)) error {
	cname, err := cString(name)
	if err != nil {
		return err
	}
	return lookupRecord(call, strconv.Quote(name), notFound, func(buf *C.char, size C.size_t, found, errno *C.int) {
		lookup(cname, buf, size, found, errno)
	})
}

// lookupRecord runs the NSS lookup call of the record key describes (both
// named for errors). It returns nil when the record was found, notFound
// wrapped when there is no such record, and any other failure wrapped:
// ErrSourceUnavailable when a source failed.
func lookupRecord(call, key string, notFound error, lookup func(buf *C.char, size C.size_t, found, errno *C.int)) error {
	found, err := withRecordBuffer(func(buf []byte) (bool, syscall.Errno) {
		var found, errno C.int
		lookup((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &found, &errno)
		return found != 0, syscall.Errno(errno)
	})
	switch {
	case err != nil:
		return fmt.Errorf("%s %s: %w", call, key, err)
	case !found:
		return fmt.Errorf("%w %s", notFound, key)
	}
	return nil
}

// withRecordBuffer runs lookup with a buffer that grows while lookup reports
// ERANGE, and reports whether the record was found (a missing one is not an
// error; a failing source is, see recordAnswerOf). The record's strings point
// into the buffer, which stays alive as long as the record does.
func withRecordBuffer(lookup func(buf []byte) (found bool, errno syscall.Errno)) (bool, error) {
	for size := minRecordBuffer; ; size *= 2 {
		found, errno := lookup(make([]byte, size))
		switch recordAnswerOf(errno, found) {
		case recordFound:
			return true, nil
		case recordMissing:
			return false, nil
		case recordFailed:
			// The errno is text only: ENOENT would otherwise match
			// fs.ErrNotExist, and a source that is down read as gone.
			return false, fmt.Errorf("%w: %v (%s)", config.ErrSourceUnavailable, errno, errnoName(errno))
		}
		if size >= maxRecordBuffer {
			return false, fmt.Errorf("record larger than %d bytes", maxRecordBuffer)
		}
	}
}

// recordAnswer is what one call of getpwnam_r, getpwuid_r or getgrnam_r
// says about its record.
type recordAnswer uint8

const (
	recordFound   recordAnswer = iota
	recordMissing              // no source has the record
	recordTooBig               // ERANGE: the buffer is too small
	recordFailed               // a source failed: whether it exists is unknown
)

// recordAnswerOf reads the return value and the result pointer of an _r
// lookup. glibc reports a real miss - every source answered NOTFOUND - as 0
// with a NULL result. When a source is UNAVAILABLE it returns that module's
// errno instead, and that is often ENOENT: libnss-ldapd and the sss client
// when their daemon cannot be reached, files and extrausers when their file
// is missing. So ENOENT, which POSIX allows for "not found", is a failure
// here like any other errno; only 0 without a result is a miss.
func recordAnswerOf(ret syscall.Errno, found bool) recordAnswer {
	switch {
	case ret == syscall.ERANGE:
		return recordTooBig
	case ret != 0:
		return recordFailed
	case found:
		return recordFound
	default:
		return recordMissing
	}
}

// errnoName returns the symbolic name of errno, "ENOENT", for the journal:
// "no such file or directory" alone suggests a missing file.
func errnoName(errno syscall.Errno) string {
	if name := unix.ErrnoName(errno); name != "" {
		return name
	}
	return "errno " + strconv.Itoa(int(errno))
}

// cString returns name as a C string in Go memory.
func cString(name string) (*C.char, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("name %q contains NUL", name)
	}
	b := append([]byte(name), 0)
	return (*C.char)(unsafe.Pointer(&b[0])), nil
}
