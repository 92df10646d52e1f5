package config

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/netns-session/netns-session/internal/netns"
)

const (
	// maxLineBytes bounds one line: no valid line comes near it, and a stray
	// binary file then fails with one clear message per line.
	maxLineBytes = 4096
	// maxFileBytes bounds one file, so a mistaken path (a log, a device)
	// cannot make the login path read without end.
	maxFileBytes = 64 << 20
	// maxNameBytes is the longest user or group name accepted; NSS has no
	// fixed limit, but no real name comes near it.
	maxNameBytes = 256
)

// A directive sets one policy from a "NAME = VALUE" line.
type directive struct {
	name string
	set  func(c *Config, value string) error
}

// directives are all the directives the format knows.
var directives = [...]directive{
	{"unmapped", func(c *Config, v string) error { return setChoice(&c.Unmapped, v, unmappedPolicyNames) }},
	{"enforce", func(c *Config, v string) error { return setChoice(&c.Enforce, v, enforcePolicyNames) }},
}

// setChoice sets *dst to the index of value in names.
func setChoice[T ~int](dst *T, value string, names []string) error {
	for i, name := range names {
		if name == value {
			*dst = T(i)
			return nil
		}
	}
	return fmt.Errorf("want %s", strings.Join(names, " or "))
}

func choiceName[T ~int](v T, names []string) string {
	if v < 0 || int(v) >= len(names) {
		return fmt.Sprintf("invalid(%d)", int(v))
	}
	return names[v]
}

// Parse parses one config file read from r; file names it in errors and
// rules. Problems come back as an ErrorList holding all of them, together
// with the rules that are valid, so a report can still show those; a caller
// enforcing the policy must treat any error as fatal.
func Parse(file string, r io.Reader) (*Config, error) {
	p := newParser()
	sizeHint := int64(4096)
	if sized, ok := r.(interface{ Len() int }); ok {
		sizeHint = int64(sized.Len())
	}
	text, err := readConfig(file, r, sizeHint)
	if err != nil {
		p.errs = append(p.errs, err)
	} else {
		p.parseFile(file, text)
	}
	return p.finish()
}

// readConfig reads a whole config file, refusing absurd sizes. sizeHint is
// the expected size; the file is copied once into the returned string.
func readConfig(file string, r io.Reader, sizeHint int64) (string, *Error) {
	var text strings.Builder
	text.Grow(int(min(sizeHint, maxFileBytes)))
	n, err := io.Copy(&text, io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return "", &Error{File: file, Msg: fmt.Sprintf("reading: %v", err), Err: err}
	}
	if n > maxFileBytes {
		return "", &Error{File: file, Msg: fmt.Sprintf("larger than %d MiB: not a config file", maxFileBytes>>20), Err: ErrInvalid}
	}
	return text.String(), nil
}

// parser accumulates the rules of all files of one config, so duplicates are
// found across files.
type parser struct {
	cfg        Config
	selectors  *selectorSet
	directives map[string]position // directive name -> where it was set
	errs       ErrorList
}

func newParser() *parser {
	return &parser{directives: make(map[string]position, len(directives))}
}

func (p *parser) finish() (*Config, error) {
	return &p.cfg, p.errs.err()
}

// lineRef is the line being parsed.
type lineRef struct {
	file  uint32 // index into cfg.Files
	n     int    // 1-based line number
	start int    // offset of the line in the file's text
}

func (p *parser) errorf(at lineRef, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.cfg.Files[at.file], Line: at.n, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid})
}

// parseFile parses the text of one file.
func (p *parser) parseFile(file string, text string) {
	at := lineRef{file: uint32(len(p.cfg.Files))}
	p.cfg.Files = append(p.cfg.Files, file)
	p.cfg.texts = append(p.cfg.texts, text)
	if p.selectors == nil {
		lines := strings.Count(text, "\n") + 1
		p.selectors = newSelectorSet(lines)
		p.cfg.rules = make([]rule, 0, lines)
	}
	for at.n = 1; at.start < len(text); at.n++ {
		end := strings.IndexByte(text[at.start:], '\n')
		if end < 0 {
			end = len(text) - at.start
		}
		p.parseLine(at, text[at.start:at.start+end])
		at.start += end + 1
	}
}

func (p *parser) parseLine(at lineRef, line string) {
	// Accept CRLF files, as the pam_netns config reader did.
	line = strings.TrimSuffix(line, "\r")
	if len(line) > maxLineBytes {
		p.errorf(at, "line too long (%d bytes, the limit is %d)", len(line), maxLineBytes)
		return
	}
	var fields [3]span
	count, ctrl := scanLine(line, &fields)
	if ctrl >= 0 {
		p.errorf(at, "control character %#02x in column %d", line[ctrl], ctrl+1)
		return
	}
	field := func(i int) string { return line[fields[i].start:fields[i].end] }
	switch {
	case count == 0:
	case strings.IndexByte(field(0), '=') >= 0 || strings.HasPrefix(field(1), "="):
		p.parseDirective(at, line)
	case count == 1:
		p.errorf(at, "missing namespace after %q: want SELECTOR NETNS", field(0))
	case count > 2:
		p.errorf(at, "%d fields, want 2: SELECTOR NETNS (comments start with #)", count)
	default:
		p.parseMapping(at, line, fields[0], fields[1])
	}
}

func (p *parser) parseDirective(at lineRef, line string) {
	line, _, _ = strings.Cut(line, "#")
	name, value, _ := strings.Cut(line, "=")
	name, value = strings.Trim(name, " \t"), strings.Trim(value, " \t")
	if name == "" || value == "" || strings.ContainsAny(name, " \t") || strings.ContainsAny(value, " \t=") {
		p.errorf(at, "malformed directive: want NAME = VALUE")
		return
	}
	for _, d := range directives {
		if d.name != name {
			continue
		}
		if first, dup := p.directives[name]; dup {
			p.errorf(at, "duplicate directive %s (first set at %s)", name, first)
			return
		}
		p.directives[name] = position{p.cfg.Files[at.file], at.n}
		if err := d.set(&p.cfg, value); err != nil {
			p.errorf(at, "bad value %q for %s: %v", value, name, err)
		}
		return
	}
	p.errorf(at, "unknown directive %q (known: %s)", name, directiveNames())
}

func directiveNames() string {
	names := make([]string, len(directives))
	for i, d := range directives {
		names[i] = d.name
	}
	return strings.Join(names, ", ")
}

// parseMapping parses a SELECTOR NETNS line; sel and ns are the fields'
// spans in line.
func (p *parser) parseMapping(at lineRef, line string, sel, ns span) {
	selector, spec := line[sel.start:sel.end], line[ns.start:ns.end]
	r := rule{file: at.file, line: uint32(at.n), name: sel, netns: ns}
	switch {
	case selector == "*":
		r.kind, r.name.end = SelectAll, sel.start
	case strings.HasPrefix(selector, "@"):
		r.kind, r.name.start = SelectGroup, sel.start+1
		if why := checkName(selector[1:], false); why != "" {
			p.errorf(at, "invalid group name %q: %s", selector[1:], why)
			return
		}
	default:
		r.kind = SelectUser
		if why := checkName(selector, true); why != "" {
			p.errorf(at, "invalid user name %q: %s", selector, why)
			return
		}
	}
	if why := checkNetnsSpec(spec); why != "" {
		p.errorf(at, "invalid netns %q: %s", spec, why)
		return
	}
	if len(p.cfg.rules) == maxRules {
		p.errorf(at, "more than %d rules", maxRules)
		return
	}
	if first, added := p.selectors.add(&p.cfg, len(p.cfg.rules), r.kind, line[r.name.start:r.name.end]); !added {
		p.errorf(at, "duplicate selector %q (first at %s)", selector, p.cfg.rule(&p.cfg.rules[first]).Source())
		return
	}
	r.name, r.netns = r.name.shift(at.start), r.netns.shift(at.start)
	p.cfg.rules = append(p.cfg.rules, r)
}

// scanLine stores the spans of the first len(fields) space- or
// tab-separated fields of line, up to a "#", in fields, and returns how many
// fields there are and the index of the first ASCII control character other
// than tab (-1 if none). One pass: a login scans every line of the config.
func scanLine(line string, fields *[3]span) (count, ctrl int) {
	start, comment := -1, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c < 0x20 && c != '\t' || c == 0x7f:
			return count, i
		case comment:
		case c == ' ' || c == '\t' || c == '#':
			if start >= 0 {
				if count < len(fields) {
					fields[count] = span{uint32(start), uint32(i)}
				}
				count++
				start = -1
			}
			comment = c == '#'
		case start < 0:
			start = i
		}
	}
	if start >= 0 {
		if count < len(fields) {
			fields[count] = span{uint32(start), uint32(len(line))}
		}
		count++
	}
	return count, -1
}

// checkName returns why name is not an acceptable user (user set) or group
// name, or "". Accepted: 1 to 256 of A-Z a-z 0-9 _ . -, not starting with
// "-", not "." or "..", not all digits (it would read as a numeric ID), and
// for users one trailing "$" (Samba machine accounts).
func checkName(name string, user bool) string {
	switch {
	case name == "":
		return "empty name"
	case len(name) > maxNameBytes:
		return fmt.Sprintf("longer than %d bytes", maxNameBytes)
	case name == "." || name == "..":
		return "not a name"
	case name[0] == '-':
		return `must not start with "-"`
	}
	body := name
	if user && len(name) > 1 && name[len(name)-1] == '$' {
		body = name[:len(name)-1]
	}
	if c := netns.DisallowedChar(body); c != "" {
		if user {
			return c + " not allowed (use A-Z a-z 0-9 _ . - and a trailing $)"
		}
		return c + " not allowed (use A-Z a-z 0-9 _ . -)"
	}
	if strings.Trim(body, "0123456789") == "" {
		return "all digits: give the name, not the numeric ID"
	}
	return ""
}

// checkNetnsSpec returns why spec is not "-", a netns name or a clean
// absolute path, or "".
func checkNetnsSpec(spec string) string {
	switch {
	case spec == "-":
		return ""
	case strings.HasPrefix(spec, "/"):
		if clean := filepath.Clean(spec); clean != spec {
			return fmt.Sprintf("path is not clean (write %q)", clean)
		}
		return ""
	case strings.IndexByte(spec, '/') >= 0:
		return "neither a name under " + netns.Dir + " nor an absolute path"
	}
	return netns.NameProblem(spec)
}
