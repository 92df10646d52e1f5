// Package config owns the netns-session policy: it reads
// /etc/security/netns-session.conf and /etc/security/netns-session.d/*.conf,
// refuses files an unprivileged user could have written, validates every line,
// and resolves a login user to the network namespace the session must run in.
// It looks users and groups up through a Directory, whose contract it owns
// ("unavailable" is never "not found"); package userdb implements it with the
// system's NSS, so config itself is pure Go and builds without cgo.
//
// The format, one entry per line:
//
//	# comment              (also trailing: "alice ns0 # lab bench")
//	alice      ns0         user alice -> /run/netns/ns0
//	@research  lab         members of group research -> /run/netns/lab
//	bob        /srv/ns/b   an absolute path to a namespace file
//	carol      -           the host namespace (that of PID 1)
//	*          guest       everyone without a user or group line
//	unmapped = keep        directive: what happens to users no line matches
//	enforce = warn         directive: what the watcher does with a session
//	                       outside its namespace (default: terminate)
//
// A user line selects a user (by UID, so any name NSS gives that UID counts)
// and beats group lines, group lines apply in file order (files in load
// order), and "*" comes last. The decision depends on the UID alone: the
// user is resolved under the name NSS gives the UID (see Config.Resolve). Users no line matches get the host
// namespace, or stay where the login process is with "unmapped = keep".
//
// Where named namespaces live and what a name may be are package netns's
// rules (netns.Dir, netns.NameProblem); config applies them to NETNS.
package config

import (
	"strings"

	"github.com/netns-session/netns-session/internal/netns"
)

// Where the policy lives.
const (
	DefaultFile = "/etc/security/netns-session.conf"
	DefaultDir  = "/etc/security/netns-session.d"
)

// Netns is the network namespace a rule names.
type Netns struct {
	// Host is set for "-": the namespace of PID 1.
	Host bool
	// Path is the namespace file: netns.Dir/NAME, the path as written, or
	// netns.HostPath.
	Path string
	// Spec is the namespace as written in the config: "-", "NAME" or "/PATH".
	Spec string
}

// Name is the name of a namespace the config names as NAME, under which
// /etc/netns/NAME holds its /etc files (as with ip netns exec); "" for the
// host and for a namespace given by path, which have no such directory.
func (n Netns) Name() string {
	if n.Host || strings.HasPrefix(n.Spec, "/") {
		return ""
	}
	return n.Spec
}

// netnsFromSpec returns the namespace a valid NETNS field names.
func netnsFromSpec(spec string) Netns {
	switch {
	case spec == "-":
		return Netns{Host: true, Path: netns.HostPath, Spec: spec}
	case strings.HasPrefix(spec, "/"):
		return Netns{Path: spec, Spec: spec}
	default:
		return Netns{Path: netns.Dir + "/" + spec, Spec: spec}
	}
}

// SelectorKind says whom a rule applies to.
type SelectorKind uint8

// The selector kinds, in the order resolution tries them.
const (
	SelectUser  SelectorKind = iota // a user name
	SelectGroup                     // @group
	SelectAll                       // *
)

// Rule is one mapping line.
type Rule struct {
	File string
	Line int
	Kind SelectorKind
	// Name is the user or group name without "@"; empty for "*".
	Name  string
	Netns Netns
}

// Selector returns the selector as written: "alice", "@research" or "*".
func (r Rule) Selector() string {
	switch r.Kind {
	case SelectGroup:
		return "@" + r.Name
	case SelectAll:
		return "*"
	default:
		return r.Name
	}
}

// Source returns "FILE:LINE".
func (r Rule) Source() string {
	return position{r.File, r.Line}.String()
}

// UnmappedPolicy says what happens to users no rule matches.
type UnmappedPolicy int

const (
	// UnmappedHost moves unmapped users to the host namespace (PID 1's), so
	// su or sudo from a mapped session to an unmapped user leaves the mapped
	// namespace.
	UnmappedHost UnmappedPolicy = iota
	// UnmappedKeep leaves unmapped users in the namespace of the login process.
	UnmappedKeep
)

var unmappedPolicyNames = []string{UnmappedHost: "host", UnmappedKeep: "keep"}

func (p UnmappedPolicy) String() string { return choiceName(p, unmappedPolicyNames) }

// EnforcePolicy says what the watcher does with a session that runs outside
// the namespace its user is mapped to.
type EnforcePolicy int

const (
	// EnforceTerminate ends the session through logind: a session that
	// escaped its namespace is cut off, not just reported.
	EnforceTerminate EnforcePolicy = iota
	// EnforceWarn only logs the violation.
	EnforceWarn
)

var enforcePolicyNames = []string{EnforceTerminate: "terminate", EnforceWarn: "warn"}

func (p EnforcePolicy) String() string { return choiceName(p, enforcePolicyNames) }

// Config is the merged policy of all loaded files. Load and Parse guarantee
// that no selector appears twice.
type Config struct {
	// Files are the files read, in load order.
	Files    []string
	Unmapped UnmappedPolicy
	Enforce  EnforcePolicy

	// texts[i] is the content of Files[i]; rules point into it.
	texts []string
	rules []rule
}

// rule is the stored form of a Rule: offsets instead of strings, so a
// config of 100k lines costs little memory and nothing to scan for the
// garbage collector; a login parses the whole config every time. Rules are
// built from it on demand.
type rule struct {
	file  uint32 // index into Files and texts
	line  uint32
	kind  SelectorKind
	name  span // the name without "@"
	netns span
}

// span is text[start:end] of one file, or of one line while parsing.
type span struct{ start, end uint32 }

func (s span) shift(by int) span { return span{s.start + uint32(by), s.end + uint32(by)} }

func (c *Config) str(r *rule, s span) string { return c.texts[r.file][s.start:s.end] }

func (c *Config) rule(r *rule) Rule {
	return Rule{File: c.Files[r.file], Line: int(r.line), Kind: r.kind, Name: c.str(r, r.name), Netns: netnsFromSpec(c.str(r, r.netns))}
}

// Rules returns the rules in file order (files in load order).
func (c *Config) Rules() []Rule {
	rules := make([]Rule, len(c.rules))
	for i := range c.rules {
		rules[i] = c.rule(&c.rules[i])
	}
	return rules
}
