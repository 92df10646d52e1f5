package reconcile

import "github.com/netns-session/netns-session/internal/config"

// Users is the user database a sync reads: the lookups resolution needs,
// among them the lookup by UID that running managers and existing drop-ins,
// known only by UID, need too.
type Users = config.Directory

// NSS returns the system's user database.
func NSS() Users { return config.NSS() }
