package config

// CachedLookups returns dir remembering, for its own life, the users it
// found: by name and by UID. It is for one pass over many users - one sync,
// one check of every session, one status - in which every resolution would
// otherwise look the names of the user lines up again. Make one per pass and
// drop it after: between passes a user may be deleted and its UID given to
// another, and a remembered UID would then select the line of the one gone.
//
// A name or UID not found, or a lookup that failed, is asked again every
// time: the user may be created, or its source come back, within the pass.
// Groups are not remembered. It is not safe for concurrent use.
func CachedLookups(dir Directory) Directory {
	return &cachedLookups{Directory: dir, byName: map[string]*User{}, byUID: map[uint32]*User{}}
}

type cachedLookups struct {
	Directory
	byName map[string]*User
	byUID  map[uint32]*User
}

func (c *cachedLookups) LookupUser(name string) (*User, error) {
	return remembered(c.byName, name, c.Directory.LookupUser)
}

// LookupUID is remembered apart from LookupUser: the name a UID's lookup
// gives and the UID a name's lookup gives need not lead back to each other
// (two names of one UID).
func (c *cachedLookups) LookupUID(uid uint32) (*User, error) {
	return remembered(c.byUID, uid, c.Directory.LookupUID)
}

// remembered returns the user found under key, looking it up unless found.
func remembered[K comparable](found map[K]*User, key K, lookup func(K) (*User, error)) (*User, error) {
	if u, ok := found[key]; ok {
		return u, nil
	}
	u, err := lookup(key)
	if err == nil {
		found[key] = u
	}
	return u, err
}
