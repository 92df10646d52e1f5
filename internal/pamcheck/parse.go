package pamcheck

import (
	"strings"
)

// A Line is one configuration line of a PAM file as Linux-PAM reads it:
// physical lines joined where one ends in a backslash, a comment ("#" to
// the end of the physical line) cut off, and split into fields.
type Line struct {
	// N is the number (1-based) of the physical line the line starts on.
	N int
	// Fields are the line's fields. A field written "[...]" (a control
	// such as "[success=ok default=bad]", or a module argument with
	// spaces) is one field, without its brackets, "\]" in it read as "]".
	Fields []string
}

// ParseLines splits the text of a PAM file into its configuration lines,
// as libpam's _pam_assemble_line and _pam_StrTok do (Linux-PAM 1.5 to
// 1.7): a physical line whose last character other than space, tab or
// newline is a backslash goes on in the next line, the backslash read as a
// space, unless it has a "#", which ends the configuration line there; a
// blank line ends a continued one; leading blanks go; a NUL ends what the
// line says, as in C.
func ParseLines(text string) []Line {
	var lines []Line
	var assembled strings.Builder
	started := false // assembled holds the start of a configuration line
	first := 0       // the physical line it started on
	for n := 1; text != ""; n++ {
		physical, rest, _ := strings.Cut(text, "\n")
		text = rest
		content, continues := unescapeNewline(physical)
		// A comment ends the configuration line even after a backslash.
		if cstr, _, _ := strings.Cut(content, "\x00"); strings.Contains(cstr, "#") {
			continues = false
		}
		content = trimLine(content)
		if content != "" {
			if !started {
				started, first = true, n
			}
			assembled.WriteString(content)
		}
		if continues || !started {
			continue
		}
		if fields := splitFields(assembled.String()); len(fields) > 0 {
			lines = append(lines, Line{N: first, Fields: fields})
		}
		assembled.Reset()
		started = false
	}
	if started {
		// The file ended in a continued line: libpam reports an
		// incomplete read and fails the stack; what was read stands
		// here, so its modules are still seen.
		if fields := splitFields(assembled.String()); len(fields) > 0 {
			lines = append(lines, Line{N: first, Fields: fields})
		}
	}
	return lines
}

// unescapeNewline returns line with a final backslash (before trailing
// spaces and tabs) read as a space, and everything after it dropped, and
// whether there was one.
func unescapeNewline(line string) (string, bool) {
	end := strings.TrimRight(line, " \t")
	if strings.HasSuffix(end, `\`) {
		return end[:len(end)-1] + " ", true
	}
	return line, false
}

// trimLine drops leading spaces and tabs and everything from the first "#"
// (before a NUL) on.
func trimLine(s string) string {
	s = strings.TrimLeft(s, " \t")
	cstr, _, _ := strings.Cut(s, "\x00")
	if i := strings.IndexByte(cstr, '#'); i >= 0 {
		return s[:i]
	}
	return s
}

// splitFields splits an assembled line into fields as _pam_StrTok does with
// the separators space, tab and newline; the line ends at a NUL.
func splitFields(s string) []string {
	s, _, _ = strings.Cut(s, "\x00")
	var fields []string
	for {
		s = strings.TrimLeft(s, " \t\n")
		if s == "" {
			return fields
		}
		if s[0] == '[' {
			// Up to the first "]" not escaped as "\]"; the character
			// after the "]" is the next field's first, whatever it is.
			var field strings.Builder
			i := 1
			for ; i < len(s) && s[i] != ']'; i++ {
				if s[i] == '\\' && i+1 < len(s) && s[i+1] == ']' {
					i++
				}
				field.WriteByte(s[i])
			}
			fields = append(fields, field.String())
			if i < len(s) {
				i++ // the "]"
			}
			s = s[i:]
			continue
		}
		end := strings.IndexAny(s, " \t\n")
		if end < 0 {
			end = len(s)
		}
		fields = append(fields, s[:end])
		// The separator after a field is consumed with it.
		s = s[min(end+1, len(s)):]
	}
}
