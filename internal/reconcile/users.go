package reconcile

import "github.com/netns-session/netns-session/internal/config"

// Users is the user database a sync reads: the lookups resolution needs,
// plus the lookup by UID that running managers and existing drop-ins, known
// only by UID, need.
type Users interface {
	config.Directory
	// LookupUID returns the user with uid; an error wrapping
	// config.ErrUnknownUser when there is none.
	LookupUID(uid uint32) (*config.User, error)
}

// NSS returns the system's user database.
func NSS() Users { return config.NSS() }
