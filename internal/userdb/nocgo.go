//go:build !cgo

package userdb

// Without cgo, nss.go is left out and nothing could look users up the way
// login does; this undefined name stops the build and, in the compiler's
// message, says why.
var _ = netns_session_needs_cgo_to_look_up_users_through_glibc_NSS_as_login_does
