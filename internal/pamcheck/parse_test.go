package pamcheck

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseLinesReadsAsLinuxPAM(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []Line
	}{
		{"fields split on blanks", "session\trequired   pam_exec.so seteuid /usr/sbin/netns-session pam\n",
			[]Line{{1, []string{"session", "required", "pam_exec.so", "seteuid", "/usr/sbin/netns-session", "pam"}}}},
		{"comments and blank lines", "# head\n\n   # indented\nsession optional pam_systemd.so # trailing\n",
			[]Line{{4, []string{"session", "optional", "pam_systemd.so"}}}},
		{"a control in brackets is one field", "session [success=ok ignore=ignore default=bad] pam_selinux.so open\n",
			[]Line{{1, []string{"session", "success=ok ignore=ignore default=bad", "pam_selinux.so", "open"}}}},
		{`an argument in brackets, "\]" read as "]"`, `session required pam_x.so [a b\] c] d` + "\n",
			[]Line{{1, []string{"session", "required", "pam_x.so", "a b] c", "d"}}}},
		{"the character after a closing bracket starts the next field", "session [default=1]pam_permit.so\n",
			[]Line{{1, []string{"session", "default=1", "pam_permit.so"}}}},
		{"an unclosed bracket runs to the end", "session [default=bad pam_x.so\n",
			[]Line{{1, []string{"session", "default=bad pam_x.so"}}}},
		{"a backslash continues the line, numbered where it starts", "session required \\\n   pam_exec.so \\  \n /usr/sbin/netns-session pam\nsession optional pam_systemd.so\n",
			[]Line{{1, []string{"session", "required", "pam_exec.so", "/usr/sbin/netns-session", "pam"}}, {4, []string{"session", "optional", "pam_systemd.so"}}}},
		{"a comment ends a continued line", "session required pam_a.so # note \\\nsession required pam_b.so\n",
			[]Line{{1, []string{"session", "required", "pam_a.so"}}, {2, []string{"session", "required", "pam_b.so"}}}},
		{"a blank line ends a continued line", "session required \\\n\npam_b.so\n",
			[]Line{{1, []string{"session", "required"}}, {3, []string{"pam_b.so"}}}},
		{"a continued comment line starts nothing", "  \\\nsession required pam_a.so\n",
			[]Line{{2, []string{"session", "required", "pam_a.so"}}}},
		{"no final newline", "@include common-session", []Line{{1, []string{"@include", "common-session"}}}},
		{"a file ending in a backslash keeps its last line", "session required pam_a.so \\", []Line{{1, []string{"session", "required", "pam_a.so"}}}},
		{"a carriage return is part of a field, as in C", "session required pam_a.so\r\n", []Line{{1, []string{"session", "required", "pam_a.so\r"}}}},
		{"a NUL ends what a line says", "session required pam_a.so\x00 pam_b.so\nsession required pam_c.so\n",
			[]Line{{1, []string{"session", "required", "pam_a.so"}}, {2, []string{"session", "required", "pam_c.so"}}}},
		{"a hash after a NUL is no comment, the NUL ends the line anyway", "session required pam_a.so\x00#x \\\npam_b.so\n",
			[]Line{{1, []string{"session", "required", "pam_a.so"}}}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseLines(tt.text); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseLines(%q):\n got %q\nwant %q", tt.text, got, tt.want)
			}
		})
	}
}

// FuzzParseLines checks what every reading of a PAM file must keep: lines
// numbered in order within the file, no empty line, no field that holds a
// comment, a newline or a NUL, and outside brackets no blank.
func FuzzParseLines(f *testing.F) {
	for _, seed := range []string{
		"session required pam_exec.so seteuid /usr/sbin/netns-session pam\n",
		"@include common-session\n# comment\n\n",
		"session [success=ok ignore=ignore module_unknown=ignore default=bad] pam_selinux.so open\n",
		"session required \\\n pam_exec.so \\\n\n/x pam # c \\\n",
		`auth required pam_x.so [a b\] c] [` + "\n",
		"session\x00required\r\n\t-session optional pam_systemd.so",
		"\\\n\\\n\\",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		lines := ParseLines(text)
		physical := strings.Count(text, "\n") + 1
		prev := 0
		for _, l := range lines {
			if l.N <= prev || l.N > physical {
				t.Fatalf("line number %d after %d, in a file of %d lines", l.N, prev, physical)
			}
			prev = l.N
			if len(l.Fields) == 0 {
				t.Fatalf("line %d has no fields", l.N)
			}
			for _, field := range l.Fields {
				if strings.ContainsAny(field, "#\n\x00") {
					t.Fatalf("line %d: field %q holds a comment, newline or NUL", l.N, field)
				}
			}
		}
		// Written without brackets, fields are the line's words.
		if !strings.ContainsAny(text, "[\\#\x00\n") {
			var want []string
			want = append(want, strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' })...)
			var got []string
			for _, l := range lines {
				got = append(got, l.Fields...)
			}
			if !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
				t.Fatalf("one line %q: fields %q, want %q", text, got, want)
			}
		}
	})
}
