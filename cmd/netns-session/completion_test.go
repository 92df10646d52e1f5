package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCompletionScriptsGenerate: each shell's script is printed, is meant
// for netns-session, and parses in its shell where that shell is
// installed.
func TestCompletionScriptsGenerate(t *testing.T) {
	tests := []struct {
		shell string
		want  []string
		// parse checks the syntax of a script without running it.
		parse []string
	}{
		{shell: "bash", want: []string{"_netns_session() {", "complete -o bashdefault -o default -o nospace -F _netns_session netns-session\n"}, parse: []string{"bash", "-n"}},
		{shell: "zsh", want: []string{"#compdef netns-session\n", "_netns-session() {", "compdef _netns-session netns-session\n"}, parse: []string{"zsh", "-n"}},
		// Generated from the app: every command is there, with its flags.
		{shell: "fish", want: []string{"function __fish_netns-session_no_subcommand",
			"complete -r -c netns-session -n '__fish_netns-session_no_subcommand' -a 'status'",
			"complete -r -c netns-session -n '__fish_seen_subcommand_from netns' -a 'del delete'",
			"complete -c netns-session -n '__fish_seen_subcommand_from sync' -f -l dry-run -s n",
			"-a 'completion'",
		}, parse: []string{"fish", "--no-execute"}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			code, script, stderr := runMain(t, "completion", tt.shell)
			if code != 0 || stderr != "" {
				t.Fatalf("exit status %d, stderr %q", code, stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(script, want) {
					t.Errorf("the %s script lacks %q:\n%s", tt.shell, want, script)
				}
			}
			if _, err := exec.LookPath(tt.parse[0]); err != nil {
				t.Logf("%s is not installed: the script's syntax is not checked", tt.parse[0])
				return
			}
			path := filepath.Join(t.TempDir(), "script")
			if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(tt.parse[0], append(tt.parse[1:], path)...).CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", tt.parse, err, out)
			}
		})
	}
}

// bashCompletionLib is bash-completion's library, which the script uses
// for the words when a shell has loaded it.
const bashCompletionLib = "/usr/share/bash-completion/bash_completion"

// TestBashCompletesSubcommands loads the bash script as a shell does and
// runs its function for a command line, as bash does on TAB: it asks
// netns-session for the words, with bash-completion's library and without.
func TestBashCompletesSubcommands(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed: the bash completion is not tried")
	}
	tests := []struct {
		name  string
		words []string
		want  []string
	}{
		{"commands", []string{"netns-session", ""}, []string{"check", "completion", "h", "help", "netns", "pam", "status", "sync", "watch"}},
		{"a command begun", []string{"netns-session", "st"}, []string{"status"}},
		{"subcommands", []string{"netns-session", "netns", ""}, []string{"add", "del", "delete", "h", "help", "list"}},
		{"a flag begun", []string{"netns-session", "status", "--j"}, []string{"--json"}},
		{"shells", []string{"netns-session", "completion", ""}, []string{"bash", "fish", "zsh"}},
	}
	libraries := map[string]string{"without bash-completion": ""}
	if _, err := os.Stat(bashCompletionLib); err == nil {
		libraries["with bash-completion"] = "source " + bashCompletionLib + "\n"
	} else {
		t.Logf("%s is missing: the script is tried without it only", bashCompletionLib)
	}
	dir, env := mainBin(t)
	env = append(env, "PATH="+dir+":"+os.Getenv("PATH"))
	for library, load := range libraries {
		for _, tt := range tests {
			t.Run(library+"/"+tt.name, func(t *testing.T) {
				var words []string
				for _, w := range tt.words {
					words = append(words, "'"+w+"'")
				}
				script := load + `source <(netns-session completion bash) || exit
COMP_WORDS=(` + strings.Join(words, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
_netns_session
printf '%s\n' "${COMPREPLY[@]}"
`
				cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
				cmd.Env = env
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("bash: %v", err)
				}
				got := strings.Fields(string(out))
				slices.Sort(got)
				if !slices.Equal(got, tt.want) {
					t.Errorf("completes %q to %q, want %q", tt.words, got, tt.want)
				}
			})
		}
	}
}
