package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// catalogFile is the journal catalog the packages install under
// /usr/lib/systemd/catalog.
const catalogFile = "../../catalog/netns-session.catalog"

// catalogEntry is one entry of a catalog(7) file.
type catalogEntry struct {
	id      string
	headers map[string][]string
	body    string
}

// catalogHeader is a header line of an entry, as journalctl reads it.
var catalogHeader = regexp.MustCompile(`^([A-Z][A-Za-z-]*): (.+)$`)

// parseCatalog reads a catalog(7) file: "-- ID" opens an entry, header
// lines follow until a blank line, then the text until the next entry.
// Lines starting with # outside an entry are comments.
func parseCatalog(t *testing.T, path string) []catalogEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []catalogEntry
	var cur *catalogEntry
	inHeaders := false
	var body []string
	flush := func() {
		if cur != nil {
			cur.body = strings.TrimSpace(strings.Join(body, "\n"))
			entries = append(entries, *cur)
		}
		body = nil
	}
	scanner := bufio.NewScanner(f)
	for n := 1; scanner.Scan(); n++ {
		line := scanner.Text()
		if id, ok := strings.CutPrefix(line, "-- "); ok {
			flush()
			cur = &catalogEntry{id: id, headers: map[string][]string{}}
			inHeaders = true
			continue
		}
		switch {
		case cur == nil && (line == "" || strings.HasPrefix(line, "#")):
		case cur == nil:
			t.Errorf("%s:%d: text outside an entry: %q", path, n, line)
		case inHeaders && line == "":
			inHeaders = false
		case inHeaders:
			m := catalogHeader.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s:%d: not a header line: %q", path, n, line)
				continue
			}
			cur.headers[m[1]] = append(cur.headers[m[1]], m[2])
		default:
			body = append(body, line)
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	return entries
}

// TestCatalogExplainsEveryMessageID: the shipped catalog has one entry per
// MESSAGE_ID the code logs and none for an ID it no longer logs, each with
// what catalog(7) and journalctl -x show: a subject, who defines it, where
// to get support, the man page, and what happened and what to do. Fields
// it substitutes are ones the records carry.
func TestCatalogExplainsEveryMessageID(t *testing.T) {
	entries := parseCatalog(t, catalogFile)
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.id)
		t.Run(e.id, func(t *testing.T) {
			for _, h := range []string{"Subject", "Defined-By", "Support"} {
				if len(e.headers[h]) != 1 {
					t.Errorf("%s: %q, want one", h, e.headers[h])
				}
			}
			if got := e.headers["Defined-By"]; len(got) == 1 && got[0] != "netns-session" {
				t.Errorf("Defined-By: %s, want netns-session", got[0])
			}
			if !slices.Contains(e.headers["Documentation"], "man:netns-session(8)") {
				t.Errorf("Documentation: %q, want man:netns-session(8) among them", e.headers["Documentation"])
			}
			if !strings.Contains(e.body, "What to do:") {
				t.Errorf("the text says nothing of what to do:\n%s", e.body)
			}
			for _, m := range regexp.MustCompile(`@([A-Z0-9_]+)@`).FindAllStringSubmatch(e.headers["Subject"][0]+"\n"+e.body, -1) {
				if !strings.HasPrefix(m[1], fieldPrefix) {
					t.Errorf("@%s@: not a field of ours", m[1])
				}
			}
		})
	}
	want := slices.Clone(messageIDs)
	sort.Strings(want)
	sort.Strings(ids)
	if !slices.Equal(ids, want) {
		t.Errorf("catalog entries %q, want one for each MESSAGE_ID %q", ids, want)
	}
}

// TestCatalogReadsAsJournalctlReadsIt has journalctl build its catalog
// database from the file, as the package's journalctl --update-catalog
// does, and list every entry with its subject.
func TestCatalogReadsAsJournalctlReadsIt(t *testing.T) {
	journalctl, err := exec.LookPath("journalctl")
	if err != nil {
		t.Skip("no journalctl here: the nspawn tests read the catalog with it (TestAuthLogExplainsDenialsWithTheCatalog)")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "usr/lib/systemd/catalog")
	for _, d := range []string{dir, filepath.Join(root, "var/lib/systemd/catalog")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(catalogFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "netns-session.catalog"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(journalctl, "--root="+root, "--update-catalog").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("journalctl --update-catalog: %v\n%s", err, out)
	}
	out, err := exec.Command(journalctl, "--root="+root, "--list-catalog").CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v\n%s", err, out)
	}
	for _, e := range parseCatalog(t, catalogFile) {
		if want := e.id + " netns-session: " + e.headers["Subject"][0]; !strings.Contains(string(out), want+"\n") {
			t.Errorf("journalctl --list-catalog lacks %q:\n%s", want, out)
		}
	}
}
