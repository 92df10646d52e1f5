package reconcile

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"

	"github.com/netns-session/netns-session/internal/config"
)

// Users is the user database a sync reads: the lookups resolution needs,
// plus the lookup by UID that running managers and existing drop-ins, known
// only by UID, need.
type Users interface {
	config.Directory
	// LookupUID returns the user with uid; an error wrapping
	// config.ErrUnknownUser when there is none.
	LookupUID(uid uint32) (*config.User, error)
}

// NSS returns the system's user database, config.NSS with getpwuid_r (via
// os/user, which uses NSS in cgo builds) for LookupUID.
func NSS() Users { return nssUsers{config.NSS()} }

type nssUsers struct{ config.Directory }

func (nssUsers) LookupUID(uid uint32) (*config.User, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	var unknown user.UnknownUserIdError
	if errors.As(err, &unknown) {
		return nil, fmt.Errorf("%w with uid %d", config.ErrUnknownUser, uid)
	}
	if err != nil {
		return nil, fmt.Errorf("looking up uid %d: %w", uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing gid of uid %d: %w", uid, err)
	}
	return &config.User{Name: u.Username, UID: uid, GID: uint32(gid)}, nil
}
