package netns

import (
	"fmt"
	"unicode/utf8"
)

// Where named namespaces are found.
const (
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
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return charAt(name, i) + " not allowed in a name (use A-Z a-z 0-9 _ . -)"
		}
	}
	return ""
}

// isNameByte reports whether c may appear in user, group and netns names:
// the portable file name characters, which every NSS source accepts and no
// shell or config syntax gives a meaning to.
func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// charAt quotes the character starting at s[i] for a message.
func charAt(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte %#02x", s[i])
	}
	return fmt.Sprintf("%q", r)
}

// ValidateName returns an error wrapping ErrInvalidName unless name is a
// namespace name the config accepts (NameProblem).
func ValidateName(name string) error {
	if why := NameProblem(name); why != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, why)
	}
	return nil
}
