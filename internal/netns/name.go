package netns

import (
	"fmt"
	"unicode/utf8"
)

// Where namespaces are found.
const (
	// Dir holds the named namespaces, where ip netns keeps them.
	Dir = "/run/netns"
	// HostPath is the namespace "-" and unmapped users resolve to.
	HostPath = "/proc/1/ns/net"
)

// maxNameBytes is NAME_MAX: a netns name is a file name in Dir.
const maxNameBytes = 255

// NameProblem says why name cannot name a namespace under Dir, or
// returns "". A name is 1 to 255 (NAME_MAX) of A-Z a-z 0-9 _ . -, not "." or
// "..", and does not start with "-", which would read as an option to ip and
// to netns-session; such names also pass unescaped through a systemd
// instance name like netns-session-netns@NAME.service.
func NameProblem(name string) string {
	switch {
	case name == "":
		return "empty name"
	case name == "." || name == "..":
		return "not a name"
	case name[0] == '-':
		return `name starts with "-"`
	case len(name) > maxNameBytes:
		return fmt.Sprintf("name longer than %d bytes", maxNameBytes)
	}
	if c := DisallowedChar(name); c != "" {
		return c + " not allowed in a name (use A-Z a-z 0-9 _ . -)"
	}
	return ""
}

// DisallowedChar returns the first character of s outside the portable file
// name set A-Z a-z 0-9 _ . -, quoted for a message ('/', or byte 0xff where
// s is not UTF-8), or "" when there is none. The config holds user and group
// names to the same set: every NSS source accepts it, and no shell or config
// syntax gives it a meaning.
func DisallowedChar(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-' {
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return fmt.Sprintf("byte %#02x", s[i])
		}
		return fmt.Sprintf("%q", r)
	}
	return ""
}

// ValidateName returns an error wrapping ErrInvalidName unless name is a
// namespace name the config accepts (NameProblem).
func ValidateName(name string) error {
	if why := NameProblem(name); why != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, why)
	}
	return nil
}
