# Bash completion for os-update and os-update-bundle (installed under both names). Options,
# subcommands and choices come from the command's own --help when completing, so this
# script cannot drift from the binary it completes.

# _os_update_options CMD... : the options CMD's --help lists under "Options:" and its option
# groups (not those its examples mention).
_os_update_options() {
  "$@" --help 2>/dev/null | awk '
    /^(Options:|\[Option Group: .*\])$/ { on = 1; next }
    /^[^ ]/ { on = 0 }
    on && match($0, /^ +(-[a-zA-Z],)?--[a-z][a-z-]*/) {
      s = substr($0, RSTART, RLENGTH); sub(/^ +(-[a-zA-Z],)?/, "", s); print s }' | sort -u
}

# _os_update_choices OPTION CMD... : the values of "--opt TEXT:{a,b,c}" in CMD's --help.
_os_update_choices() {
  local opt=$1; shift
  "$@" --help 2>/dev/null | sed -nE "s/^ +$opt [A-Z]+:\{([^}]*)\}.*/\1/p" | tr , ' '
}

# Sets COMPREPLY for the word being completed, CMD... being the command (and subcommand).
_os_update_complete_args() {
  local cur=$1 prev=$2; shift 2
  local choices
  if [[ $prev == --* ]]; then
    choices=$(_os_update_choices "$prev" "$@")
    if [[ -n $choices ]]; then
      mapfile -t COMPREPLY < <(compgen -W "$choices" -- "$cur")
      return
    fi
  fi
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_os_update_options "$@")" -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    compopt -o filenames 2>/dev/null
  fi
}

_os_update() {
  _os_update_complete_args "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" \
    "${COMP_WORDS[0]}"
}

_os_update_bundle() {
  local cur=${COMP_WORDS[COMP_CWORD]} i sub=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    [[ ${COMP_WORDS[i]} == -* ]] || { sub=${COMP_WORDS[i]}; break; }
  done
  if [[ -z $sub && $cur != -* ]]; then
    local subs
    subs=$("${COMP_WORDS[0]}" --help 2>/dev/null |
      sed -n '/^Subcommands:$/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p')
    mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
    return
  fi
  _os_update_complete_args "$cur" "${COMP_WORDS[COMP_CWORD-1]}" "${COMP_WORDS[0]}" ${sub:+"$sub"}
}

complete -F _os_update os-update
complete -F _os_update_bundle os-update-bundle
