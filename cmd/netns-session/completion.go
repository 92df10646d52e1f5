package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// completionShells are the shells completion writes a script for, in the
// order its help names them.
var completionShells = []string{"bash", "zsh", "fish"}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: strings.Join(completionShells, "|"),
		Description: `Prints a script that completes netns-session's commands and flags in the
shell named. The bash and zsh scripts ask netns-session itself which words fit
(it answers to a last argument --generate-bash-completion); the fish script
lists them. Packages install them; by hand:

   netns-session completion bash > /usr/share/bash-completion/completions/netns-session
   netns-session completion zsh > /usr/share/zsh/site-functions/_netns-session
   netns-session completion fish > /usr/share/fish/vendor_completions.d/netns-session.fish

or, for the running shell only: source <(netns-session completion bash).`,
		BashComplete: func(c *cli.Context) {
			if c.NArg() == 0 {
				fmt.Fprintln(c.App.Writer, strings.Join(completionShells, "\n"))
			}
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 || !slices.Contains(completionShells, c.Args().First()) {
				return usageError(c, "completion takes one shell, %s; got %q", strings.Join(completionShells, ", "), c.Args().Slice())
			}
			return writeCompletion(c.App, c.Args().First(), c.App.Writer)
		},
	}
}

// writeCompletion writes the completion script of app for shell.
func writeCompletion(app *cli.App, shell string, w io.Writer) error {
	var script string
	switch shell {
	case "bash":
		script = bashCompletion
	case "zsh":
		script = zshCompletion
	case "fish":
		// Generated from the commands and flags themselves, so it cannot
		// fall behind them; fish.go builds also with urfave_cli_no_docs.
		s, err := app.ToFishCompletion()
		if err != nil {
			return fmt.Errorf("generating the fish completion: %w", err)
		}
		script = s
	}
	_, err := io.WriteString(w, script)
	return err
}

// bashCompletion is urfave/cli's autocomplete/bash_autocomplete (v2.27.7)
// for netns-session: its own function names, registered for netns-session
// alone, and words taken from COMP_WORDS when bash-completion is not
// loaded, which the original needs for _get_comp_words_by_ref.
const bashCompletion = `# bash completion for netns-session                     -*- shell-script -*-
# Written by "netns-session completion bash". netns-session itself answers
# which words fit: the words so far, then --generate-bash-completion.

_netns_session_init_completion() {
  COMPREPLY=()
  if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
    _get_comp_words_by_ref "$@" cur prev words cword
  else
    cur="${COMP_WORDS[COMP_CWORD]}"
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
}

_netns_session() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur prev words cword opts requestComp
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    if declare -F _init_completion >/dev/null 2>&1; then
      _init_completion -n "=:" || return
    else
      _netns_session_init_completion -n "=:" || return
    fi
    words=("${words[@]:0:$cword}")
    if [[ "$cur" == "-"* ]]; then
      requestComp="${words[*]} ${cur} --generate-bash-completion"
    else
      requestComp="${words[*]} --generate-bash-completion"
    fi
    opts=$(eval "${requestComp}" 2>/dev/null)
    COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
    return 0
  fi
}

complete -o bashdefault -o default -o nospace -F _netns_session netns-session
`

// zshCompletion is urfave/cli's autocomplete/zsh_autocomplete (v2.27.7) for
// netns-session. It works both ways zsh loads it: autoloaded from $fpath
// as _netns-session, where the file is the function's body and completes at
// once, and sourced, where it registers the function with compdef.
const zshCompletion = `#compdef netns-session
# zsh completion for netns-session, written by "netns-session completion zsh".
# netns-session itself answers which words fit: the words so far, then
# --generate-bash-completion.

_netns-session() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

if [[ "${funcstack[1]}" == "_netns-session" ]]; then
  _netns-session "$@"
else
  compdef _netns-session netns-session
fi
`
