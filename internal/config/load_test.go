package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testLoader reads files under a temporary directory, trusting the test's
// own uid so that the tests also run unprivileged.
func testLoader(t *testing.T, files map[string]string) (loader, string) {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return loader{
		file:       filepath.Join(root, "netns-session.conf"),
		dir:        filepath.Join(root, "netns-session.d"),
		trustedUID: uint32(os.Getuid()),
	}, root
}

func TestLoadMergesDropIns(t *testing.T) {
	l, root := testLoader(t, map[string]string{
		"netns-session.conf":               "alice ns0\n",
		"netns-session.d/20-lab.conf":      "@lab lab\n",
		"netns-session.d/10-first.conf":    "unmapped = keep\nbob ns1\n",
		"netns-session.d/30-skip.conf.bak": "broken\n",
		"netns-session.d/README":           "broken\n",
	})
	cfg, err := l.load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	wantFiles := []string{
		filepath.Join(root, "netns-session.conf"),
		filepath.Join(root, "netns-session.d/10-first.conf"),
		filepath.Join(root, "netns-session.d/20-lab.conf"),
	}
	if !reflect.DeepEqual(cfg.Files, wantFiles) {
		t.Errorf("files = %q, want %q", cfg.Files, wantFiles)
	}
	var got []string
	for _, r := range cfg.Rules() {
		got = append(got, r.Selector()+"@"+strings.TrimPrefix(r.Source(), root+"/"))
	}
	want := []string{"alice@netns-session.conf:1", "bob@netns-session.d/10-first.conf:2", "@lab@netns-session.d/20-lab.conf:1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
	if cfg.Unmapped != UnmappedKeep {
		t.Errorf("unmapped = %v, want keep from the drop-in", cfg.Unmapped)
	}
}

func TestLoadReportsAllFilesProblems(t *testing.T) {
	l, root := testLoader(t, map[string]string{
		"netns-session.conf":          "alice ns0\nunmapped = keep\n",
		"netns-session.d/a.conf":      "alice ns1\nbad\n",
		"netns-session.d/b.conf":      "unmapped = host\n",
		"netns-session.d/c.conf/keep": "",
	})
	cfg, err := l.load()
	want := strings.Join([]string{
		root + `/netns-session.d/a.conf:1: duplicate selector "alice" (first at ` + root + `/netns-session.conf:1)`,
		root + `/netns-session.d/a.conf:2: missing namespace after "bad": want SELECTOR NETNS`,
		root + `/netns-session.d/b.conf:1: duplicate directive unmapped (first set at ` + root + `/netns-session.conf:2)`,
		root + `/netns-session.d/c.conf: not a regular file`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n got %v\nwant %s", err, want)
	}
	if cfg == nil || len(cfg.Rules()) != 1 {
		t.Errorf("want the one valid rule beside the errors, got %+v", cfg)
	}
}

func TestLoadMissing(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		explict bool
		wantErr string // "" = loads
	}{
		{name: "no drop-in directory is fine", files: map[string]string{"netns-session.conf": "alice ns0\n"}},
		{name: "no main file", files: map[string]string{"netns-session.d/a.conf": "alice ns0\n"}, wantErr: "no config at ROOT/netns-session.conf: install one or run make install"},
		{name: "explicit file missing", explict: true, wantErr: "no config at ROOT/netns-session.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, root := testLoader(t, tt.files)
			if tt.explict {
				l.dir = ""
			}
			_, err := l.load()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("load: %v", err)
				}
				return
			}
			if want := strings.ReplaceAll(tt.wantErr, "ROOT", root); err == nil || err.Error() != want {
				t.Fatalf("err = %v, want %s", err, want)
			}
			if !errors.Is(err, ErrNoConfig) {
				t.Errorf("err does not match ErrNoConfig")
			}
		})
	}
}

// An explicit path is the whole config: the drop-in directory is not read.
func TestLoadExplicitPathSkipsDropIns(t *testing.T) {
	l, _ := testLoader(t, map[string]string{
		"netns-session.conf":     "alice ns0\n",
		"netns-session.d/a.conf": "alice ns1\n",
	})
	cfg, err := Load(l.file)
	if os.Getuid() != 0 {
		// Load trusts root only.
		if !errors.Is(err, ErrInsecure) {
			t.Fatalf("unprivileged Load of own file: err = %v, want ErrInsecure", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(cfg.Files) != 1 || len(cfg.Rules()) != 1 || cfg.Rules()[0].Netns.Spec != "ns0" {
		t.Errorf("config = %+v, want just %s", cfg, l.file)
	}
}

func TestCheckTrusted(t *testing.T) {
	const fix = " (fix: chown root:root /etc/x; chmod go-w /etc/x)"
	tests := []struct {
		name string
		uid  uint32
		mode fs.FileMode
		want string // "" = trusted
	}{
		{"root file 0644", 0, 0o644, ""},
		{"root file 0600", 0, 0o600, ""},
		{"root dir 0755", 0, fs.ModeDir | 0o755, ""},
		{"root file 0444 setgid", 0, fs.ModeSetgid | 0o444, ""},
		{"user file", 1000, 0o644, "/etc/x: refusing: owned by uid 1000, not root" + fix},
		{"group writable", 0, 0o664, "/etc/x: refusing: writable by its group" + fix},
		{"world writable dir", 0, fs.ModeDir | 0o777, "/etc/x: refusing: writable by its group and writable by others" + fix},
		{"sticky world writable dir", 0, fs.ModeDir | fs.ModeSticky | 0o1777, "/etc/x: refusing: writable by its group and writable by others" + fix},
		{"everything wrong", 65534, 0o666, "/etc/x: refusing: owned by uid 65534, not root and writable by its group and writable by others" + fix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkTrusted("/etc/x", tt.uid, tt.mode, 0)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("checkTrusted: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
			if !errors.Is(err, ErrInsecure) {
				t.Errorf("err does not match ErrInsecure")
			}
		})
	}
}

// Load must refuse files and directories that someone other than root could
// have written, and still report problems in the other files.
func TestLoadRefusesInsecureFiles(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: chowns files to another user")
	}
	tests := []struct {
		name   string
		target string // relative to the temp root
		chown  bool
		mode   fs.FileMode
	}{
		{"main file owned by nobody", "netns-session.conf", true, 0o644},
		{"main file group writable", "netns-session.conf", false, 0o664},
		{"drop-in owned by nobody", "netns-session.d/a.conf", true, 0o644},
		{"drop-in world writable", "netns-session.d/a.conf", false, 0o646},
		{"drop-in directory owned by nobody", "netns-session.d", true, 0o755},
		{"drop-in directory world writable", "netns-session.d", false, 0o777},
		{"config directory group writable", ".", false, 0o775},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, root := testLoader(t, map[string]string{
				"netns-session.conf":     "alice ns0\n",
				"netns-session.d/a.conf": "bob ns1\nbad\n",
				"netns-session.d/b.conf": "carol ns2\n",
			})
			if err := os.Chmod(root, 0o755); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(root, tt.target)
			if tt.chown {
				if err := os.Chown(target, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(target, tt.mode); err != nil {
				t.Fatal(err)
			}
			cfg, err := loader{file: l.file, dir: l.dir}.load()
			if !errors.Is(err, ErrInsecure) {
				t.Fatalf("err = %v, want ErrInsecure", err)
			}
			var list ErrorList
			if !errors.As(err, &list) || list[0].File != filepath.Clean(target) || !strings.Contains(list[0].Msg, "chown root:root "+filepath.Clean(target)+"; chmod go-w "+filepath.Clean(target)) {
				t.Errorf("first error %v does not name %s and the fix", err, target)
			}
			for _, r := range cfg.Rules() {
				if strings.HasPrefix(r.File, filepath.Clean(target)) {
					t.Errorf("rule %s read from the refused %s", r.Source(), target)
				}
			}
			if tt.target == "netns-session.conf" && (len(cfg.Rules()) != 2 || len(list) != 2) {
				t.Errorf("the drop-ins were not read after the refusal: rules %+v, errors %v", cfg.Rules(), list)
			}
		})
	}
}

// A draft is validated wherever it lies: LoadDraft reports every line error
// of a file in a directory anyone may write (as /tmp), or of a file root
// does not own, and names the location's problem apart, while Load, which
// the PAM hook uses, still refuses it.
func TestLoadDraftReportsEveryLineWhereverItLies(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: chowns files to another user and trusts root only")
	}
	const draft = "alice ns0\nbroken\nbob ns0 extra\nalice ns1\n@ bad\n"
	wantLines := []string{
		`FILE:2: missing namespace after "broken": want SELECTOR NETNS`,
		`FILE:3: 3 fields, want 2: SELECTOR NETNS (comments start with #)`,
		`FILE:4: duplicate selector "alice" (first at FILE:1)`,
		`FILE:5: invalid group name "": empty name`,
	}
	tests := []struct {
		name string
		// dirMode is the directory's mode; the file's is 0644 unless
		// fileMode is set.
		dirMode, fileMode fs.FileMode
		chownFile         bool
		// insecure names what LoadDraft reports apart: "DIR" or "FILE"
		// and why; "" for nothing.
		insecure string
	}{
		{name: "a directory anyone may write, as /tmp", dirMode: fs.ModeSticky | 0o777, insecure: "DIR: writable by its group and writable by others"},
		{name: "a file writable by its group", dirMode: 0o755, fileMode: 0o664, insecure: "FILE: writable by its group"},
		{name: "a file owned by another user", dirMode: 0o755, chownFile: true, insecure: "FILE: owned by uid 65534, not root"},
		{name: "a secure location", dirMode: 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "draft.conf")
			fileMode := tt.fileMode
			if fileMode == 0 {
				fileMode = 0o644
			}
			if err := os.WriteFile(path, []byte(draft), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, fileMode); err != nil {
				t.Fatal(err)
			}
			if tt.chownFile {
				if err := os.Chown(path, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, tt.dirMode); err != nil {
				t.Fatal(err)
			}
			expand := strings.NewReplacer("FILE", path, "DIR", dir).Replace

			cfg, insecure, err := LoadDraft(path)
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("LoadDraft: err = %v, want the line errors", err)
			}
			var got []string
			for _, e := range list {
				got = append(got, e.Error())
			}
			want := make([]string, len(wantLines))
			for i, line := range wantLines {
				want[i] = expand(line)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("LoadDraft errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if errors.Is(err, ErrInsecure) {
				t.Errorf("LoadDraft counts the location among the errors: %v", err)
			}
			if cfg == nil || len(cfg.Rules()) != 1 {
				t.Errorf("LoadDraft: want alice's valid line beside the errors, got %+v", cfg)
			}
			switch {
			case tt.insecure == "" && len(insecure) > 0:
				t.Errorf("LoadDraft: insecure = %v, want none", insecure)
			case tt.insecure != "" && (len(insecure) != 1 || insecure[0].Error() != expand(tt.insecure) || !errors.Is(insecure[0], ErrInsecure)):
				t.Errorf("LoadDraft: insecure = %v, want %s", insecure, expand(tt.insecure))
			}

			_, err = Load(path)
			if tt.insecure == "" {
				if errors.Is(err, ErrInsecure) {
					t.Errorf("Load of a secure file: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInsecure) {
				t.Errorf("Load, as the PAM hook reads a config: err = %v, want ErrInsecure", err)
			}
		})
	}
}
