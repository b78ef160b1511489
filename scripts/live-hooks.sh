#!/usr/bin/env bash
# Live check of the signal wiring against the real CLIs (not part of `cargo test`).
#
# Installs Claude Code and Codex from npm at the versions scripts/live-presets.sh pins
# into a temp dir and runs them offline under `vigil watch` in a private tmux server
# with a throwaway HOME, so vigil starts each with the wiring it generates (Claude Code
# `--settings <state>/hooks/claude-<agent>.json`, Codex `-c notify=[vigil, "hook"]`).
# Checks: each CLI starts and reaches its prompt with the wiring (no settings or config
# error), and, for Claude Code, its hooks really run `vigil hook` (the journal shows the
# signals vigil heard from it), and its statusLine runs vigil's wrapper, which keeps the
# user's own statusLine showing. Prints the journal's signal lines and the screens.
#
#   scripts/live-hooks.sh
#
# Needs: bash, tmux, node + npm (reaching the npm registry), cargo, jq. Only fake keys
# are used. Everything it starts and its temp dir go at exit.
set -euo pipefail

CLAUDE_VERSION=2.1.332
CODEX_VERSION=0.171.0

repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigil-hooks.XXXXXX")
chmod 700 "$tmp"
sock="vigil-hooks-$$"
h="$tmp/home"
proj="$tmp/proj"
state="$h/.local/state/vigil-live"
watch_pid=

ours() {
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$tmp/"; then
      echo "${p#/proc/}"
    fi
  done
}

cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && sleep 1
  tmux -L "$sock" kill-server 2>/dev/null || true
  local pids
  pids=$(ours)
  # shellcheck disable=SC2086
  [ -n "$pids" ] && { kill $pids 2>/dev/null || true; sleep 2; }
  pids=$(ours)
  # shellcheck disable=SC2086
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "live-hooks: $*" >&2; }

(cd "$repo" && cargo build --quiet --locked)
vigil="$repo/target/debug/vigil"

say "installing Claude Code $CLAUDE_VERSION and Codex $CODEX_VERSION into $tmp/npm"
npm install --prefix "$tmp/npm" --no-audit --no-fund --loglevel=error \
  "@anthropic-ai/claude-code@$CLAUDE_VERSION" "@openai/codex@$CODEX_VERSION" >"$tmp/npm.log" 2>&1 || {
  cat "$tmp/npm.log" >&2
  exit 1
}

mkdir -p "$h" "$proj/claude/.claude" "$proj/codex"
echo '{"hasCompletedOnboarding":true}' >"$h/.claude.json"
# The user's own statusLine, in the project: vigil must keep it working through its
# wrapper (`vigil hook --statusline`), which runs it; it names the process that ran it.
cat >"$proj/claude/.claude/settings.json" <<'JSON'
{"statusLine": {"type": "command", "command": "echo \"user statusline via $(cat /proc/$PPID/comm)\""}}
JSON
cat >"$proj/vigil.toml" <<TOML
[vigil]
poll_interval = "1s"
socket = "$sock"
state_dir = "$state"

[defaults]
idle_checks = 1000

[[agent]]
name = "claude"
command = ["claude"]
cwd = "claude"
env = { ANTHROPIC_API_KEY = "sk-ant-fake" }

[[agent]]
name = "codex"
command = ["codex"]
cwd = "codex"
env = { OPENAI_API_KEY = "sk-fake" }
TOML

run_vigil() {
  env -i HOME="$h" PATH="$tmp/npm/node_modules/.bin:/usr/local/bin:/usr/bin:/bin" \
    TERM=xterm-256color LANG=C.UTF-8 "$vigil" --config "$proj/vigil.toml" "$@"
}

run_vigil watch >"$tmp/watch.log" 2>&1 &
watch_pid=$!

session() { run_vigil status --json | jq -r ".agents[] | select(.name == \"$1\") | .session"; }
screen() { tmux -L "$sock" capture-pane -p -J -t "=$1:" -S -60 2>/dev/null; }
keys() { local n=$1; shift; tmux -L "$sock" send-keys -t "=$n:" "$@"; }
wait_for() {
  local n=$1 text=$2 secs=$3 i
  for ((i = 0; i < secs * 2; i++)); do
    screen "$n" | grep -qF -- "$text" && return 0
    sleep 0.5
  done
  say "$n: no «$text» after ${secs}s; it shows:"
  screen "$n" >&2
  return 1
}
submit() {
  local n=$1 text=$2
  sleep 1
  keys "$n" -l "$text"
  sleep 1
  keys "$n" Enter
}

for _ in $(seq 60); do
  cs=$(session claude) xs=$(session codex)
  [ -n "$cs" ] && [ "$cs" != null ] && tmux -L "$sock" has-session -t "=$cs" 2>/dev/null && break
  sleep 0.5
done
say "sessions: claude=$cs codex=$xs"
say "claude's command line: $(tr '\0' ' ' </proc/"$(tmux -L "$sock" display -p -t "=$cs:" '#{pane_pid}')"/cmdline)"

ok=0
# A signal Claude Code's hooks sent through `vigil hook` and vigil took (not the session file).
hooked='any(.[]; .kind == "signal" and .source == "claude" and (.ignored | not) and ((.event // "") | startswith("session:") | not))'
# Claude Code: trust dialog, API key dialog, the prompt; a prompt fires UserPromptSubmit.
# pick ITEM in the dialog on SESSION: arrows until the cursor is on it, then Enter.
pick() {
  local n=$1 item=$2 i
  sleep 2
  for ((i = 0; i < 6; i++)); do
    screen "$n" | grep -qF -- "❯ $item" && break
    keys "$n" Down
    sleep 1
  done
  keys "$n" Enter
}
if wait_for "$cs" "Yes, I trust this folder" 60; then
  pick "$cs" "Yes, I trust this folder"
  if wait_for "$cs" "Do you want to use this API key" 60; then
    pick "$cs" "Yes"
  fi
  if wait_for "$cs" "shift+tab to cycle" 60; then
    say "claude: reached its prompt with vigil's --settings file"
    submit "$cs" "say hi"
    for _ in $(seq 120); do
      run_vigil log --json -n 200 | jq -s -e "$hooked" >/dev/null 2>&1 && break
      sleep 1
    done
  fi
fi
if run_vigil log --json -n 500 | jq -s -e "$hooked" >/dev/null 2>&1; then
  say "claude: ACCEPTED the settings file: its hooks ran vigil hook"
  ok=$((ok + 1))
else
  say "claude: no signal heard from its hooks"
fi
# The statusLine: the user's line on Claude's screen, run by vigil's wrapper.
if wait_for "$cs" "user statusline via vigil" 30; then
  say "claude: ACCEPTED vigil's statusLine: the user's own line shows, run by vigil hook --statusline"
  ok=$((ok + 1))
else
  say "claude: the user's statusLine did not show through vigil's wrapper"
fi

# Codex: sign in with an API key; the prompt shows the -c override was accepted.
if wait_for "$xs" "Sign in with ChatGPT" 60; then
  keys "$xs" 3; sleep 0.5; keys "$xs" Enter
  wait_for "$xs" "Paste or type your API key" 30 && { keys "$xs" -l sk-fake; sleep 0.5; keys "$xs" Enter; }
fi
if wait_for "$xs" "Ask Codex to do anything" 60; then
  say "codex: ACCEPTED the notify override (it reached its prompt)"
  ok=$((ok + 1))
  submit "$xs" "say hi"
  sleep 20
  keys "$xs" F2
  sleep 2
  say "codex's warnings (f2):"
  screen "$xs" | tail -25 >&2
  keys "$xs" Escape
fi
say "codex's command line: $(tr '\0' ' ' </proc/"$(tmux -L "$sock" display -p -t "=$xs:" '#{pane_pid}')"/cmdline)"
if ours | while read -r p; do tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null; echo; done | grep -q "app-server"; then
  say "codex: a detached app-server runs (not embedded)"
else
  say "codex: no app-server process (embedded, as any -c override makes it)"
fi

say "signals in the journal:"
run_vigil log -n 500 | grep -E "heard from|signal " >&2 || say "(none)"
say "claude's screen:"; screen "$cs" | tail -15 >&2
say "codex's screen:"; screen "$xs" | tail -15 >&2
say "$ok of 3 accepted"
[ "$ok" -eq 3 ]
