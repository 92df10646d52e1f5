package config

// CachedLookups returns dir remembering, for its own life, the answer to
// every user lookup: by name and by UID, found, not found or failed. It is
// for one pass over many users - one sync, one check of every session, one
// status - in which every resolution would otherwise look the names of the
// user lines up again, those of deleted users and of a source that is down
// included. Make one per pass and drop it after: between passes a user may
// be deleted and its UID given to another, and a remembered UID would then
// select the line of the one gone; a user may be created, or a source come
// back.
//
// A failure remembered for the pass is as safe as a user found: it leaves
// the policy of every user it concerns unknown for the pass, on which
// nothing acts. Groups are not remembered. It is not safe for concurrent
// use.
func CachedLookups(dir Directory) Directory {
	return &cachedLookups{Directory: dir, byName: map[string]answer{}, byUID: map[uint32]answer{}}
}

type cachedLookups struct {
	Directory
	byName map[string]answer
	byUID  map[uint32]answer
}

// answer is what one lookup returned.
type answer struct {
	user *User
	err  error
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

// remembered returns the answer to the lookup of key, looking it up the
// first time.
func remembered[K comparable](answers map[K]answer, key K, lookup func(K) (*User, error)) (*User, error) {
	a, ok := answers[key]
	if !ok {
		a.user, a.err = lookup(key)
		answers[key] = a
	}
	return a.user, a.err
}
