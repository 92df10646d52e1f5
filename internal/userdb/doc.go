// Package userdb owns user and group lookups: getpwnam_r, getpwuid_r,
// getgrouplist and getgrnam_r through glibc's NSS, called with cgo, so that
// users and groups from LDAP, SSSD, extrausers or systemd userdb count as
// they do for login. It implements config.Directory, whose contract (what
// "not found" and "unavailable" mean) config keeps; the hook, the watcher,
// status, check and sync all get their lookups from System.
//
// A build without cgo fails on purpose (nocgo.go): Go's own os/user reads
// /etc/passwd and /etc/group only, and would take a user from LDAP for one
// who does not exist.
package userdb
