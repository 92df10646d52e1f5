package config

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that any input parses without panicking, the same way
// every time, into rules that satisfy the format's guarantees. Its seed
// corpus is testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.conf", bytes.NewReader(data))
		again, errAgain := Parse("fuzz.conf", bytes.NewReader(data))
		if !reflect.DeepEqual(cfg.Rules(), again.Rules()) || cfg.Unmapped != again.Unmapped || cfg.Enforce != again.Enforce || errString(err) != errString(errAgain) {
			t.Fatalf("two parses differ:\n%+v %v\n%+v %v", cfg.Rules(), err, again.Rules(), errAgain)
		}
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is not an ErrorList: %v", err)
			}
			for _, e := range list {
				if e.File != "fuzz.conf" || e.Line < 1 || strings.Contains(e.Msg, "\n") {
					t.Errorf("bad error entry %#v", e)
				}
			}
		}
		// Rules must be valid even beside errors: check shows them.
		seen := map[string]bool{}
		for _, r := range cfg.Rules() {
			if seen[r.Selector()] {
				t.Errorf("%s: selector %q twice", r.Source(), r.Selector())
			}
			seen[r.Selector()] = true
			switch r.Kind {
			case SelectUser, SelectGroup:
				if why := checkName(r.Name, r.Kind == SelectUser); why != "" {
					t.Errorf("%s: invalid name %q accepted: %s", r.Source(), r.Name, why)
				}
			case SelectAll:
				if r.Name != "" {
					t.Errorf("%s: * rule with name %q", r.Source(), r.Name)
				}
			default:
				t.Errorf("%s: kind %d", r.Source(), r.Kind)
			}
			path := r.Netns.Path
			if !filepath.IsAbs(path) || filepath.Clean(path) != path {
				t.Errorf("%s: netns path %q is not absolute and clean", r.Source(), path)
			}
			if r.Line < 1 || r.File != "fuzz.conf" {
				t.Errorf("rule at %s", r.Source())
			}
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
