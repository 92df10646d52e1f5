package pamcheck

import (
	"cmp"
	"slices"
	"strings"
)

// collector gathers findings, one per place and kind: a line that
// common-session holds is one problem, whichever services read it, and its
// finding names them all.
type collector struct {
	pending []*pending
}

type pending struct {
	severity Severity
	file     string
	line     int
	kind     string
	services []string
	// msg writes the message for the services (", "-separated).
	msg func(services string) string
}

// add records a finding of kind at file:line for service ("" for none),
// or adds service to the one recorded there.
func (c *collector) add(sev Severity, file string, line int, kind, service string, msg func(services string) string) {
	for _, p := range c.pending {
		if p.file == file && p.line == line && p.kind == kind {
			if service != "" && !slices.Contains(p.services, service) {
				p.services = append(p.services, service)
			}
			return
		}
	}
	p := &pending{severity: sev, file: file, line: line, kind: kind, msg: msg}
	if service != "" {
		p.services = []string{service}
	}
	c.pending = append(c.pending, p)
}

// findings returns the findings in file and line order.
func (c *collector) findings() []Finding {
	out := make([]Finding, 0, len(c.pending))
	for _, p := range c.pending {
		out = append(out, Finding{Severity: p.severity, File: p.file, Line: p.line, Msg: p.msg(strings.Join(p.services, ", "))})
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	return out
}
