#!/usr/bin/env bash
# Live check of the agent presets against the real CLIs (not part of `cargo test`).
#
# Installs Claude Code, Codex and Gemini CLI from npm at pinned versions into a temp
# dir, runs each one offline in a private tmux server with a throwaway HOME through the
# states a new user meets (first start, signed out, trust and sign-in dialogs, a pending
# hooks review, a prompt answered with a network error), captures every screen into
# fixtures/screens/<cli>-<version>-<state>.txt and prints what vigil reads on each one.
#
#   scripts/live-presets.sh                # all three
#   scripts/live-presets.sh codex          # one
#   OUT=/tmp/screens scripts/live-presets.sh   # capture elsewhere
#
# Needs: bash, tmux, node + npm (reaching the npm registry), cargo. Takes 4-6 minutes
# (Claude Code retries a request ten times before it shows the network error). Only fake
# keys are used (sk-ant-fake, sk-fake, fake-gemini-key). Everything it starts (the tmux
# server, the CLIs, the daemon Codex leaves behind) and its temp dir go at exit.
set -euo pipefail

CLAUDE_VERSION=2.1.332
CODEX_VERSION=0.171.0
GEMINI_VERSION=0.61.0

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$repo/fixtures/screens}
only=("$@")
[ ${#only[@]} -eq 0 ] && only=(claude codex gemini)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigil-live.XXXXXX")
sock="vigil-live-$$"
log="$tmp/log"

# Processes started from the temp dir (Codex's app-server daemon outlives codex and
# the tmux server), found by their executable path, ended by pid.
ours() {
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$tmp/"; then
      echo "${p#/proc/}"
    fi
  done
}

cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  local pids
  pids=$(ours)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null || true
    sleep 2
    pids=$(ours)
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "live-presets: $*" >&2; }

wanted() {
  local c
  for c in "${only[@]}"; do [ "$c" = "$1" ] && return 0; done
  return 1
}

install() {
  local pkgs=()
  wanted claude && pkgs+=("@anthropic-ai/claude-code@$CLAUDE_VERSION")
  wanted codex && pkgs+=("@openai/codex@$CODEX_VERSION")
  wanted gemini && pkgs+=("@google/gemini-cli@$GEMINI_VERSION")
  say "installing ${pkgs[*]} into $tmp/npm"
  # Claude Code declares node >= 22; its native binary runs on node 20 all the same.
  npm install --prefix "$tmp/npm" --no-audit --no-fund --loglevel=error "${pkgs[@]}" >"$log" 2>&1 || {
    cat "$log" >&2
    exit 1
  }
}

# A fresh HOME and working dir for one run.
home() { mktemp -d "$tmp/home.$1.XXXX"; }
workdir() { mktemp -d "$tmp/work.$1.XXXX"; }

# start SESSION HOME WORKDIR [VAR=value…] -- COMMAND…: a clean environment, 120x40,
# the pane kept after the program exits so its last words can be captured.
start() {
  local name=$1 h=$2 wd=$3 vars=()
  shift 3
  while [ "$1" != "--" ]; do vars+=("$1"); shift; done
  shift
  tmux -L "$sock" new-session -d -s "$name" -x 120 -y 40 -c "$wd" -- \
    env -i HOME="$h" PATH="$tmp/npm/node_modules/.bin:/usr/local/bin:/usr/bin:/bin" \
    TERM=xterm-256color LANG=C.UTF-8 "${vars[@]}" "$@" \; set-option -w -t "=$name:" remain-on-exit on
}

screen() { tmux -L "$sock" capture-pane -p -J -t "=$1:" -S -60 2>/dev/null; }
keys() { local n=$1; shift; tmux -L "$sock" send-keys -t "=$n:" "$@"; }

# wait_for SESSION TEXT SECONDS: until TEXT is on screen; says so and fails after SECONDS.
wait_for() {
  local n=$1 text=$2 secs=$3 i
  for ((i = 0; i < secs * 2; i++)); do
    screen "$n" | grep -qF -- "$text" && return 0
    sleep 0.5
  done
  say "$n: no «$text» after ${secs}s; capturing what it shows as $n-stuck"
  save "$n" "$n-stuck.txt"
  return 1
}

# save SESSION FILE: the screen as captured, trailing blank lines dropped.
save() {
  sleep 1 # let the frame finish drawing
  screen "$1" | sed -e :a -e '/^[[:space:]]*$/{$d;N;ba' -e '}' >"$out/$2"
  say "captured $2"
}

# submit SESSION TEXT EXPECT SECONDS: types TEXT, then Enter (again, should the first
# arrive before the input box is ready) until EXPECT shows.
submit() {
  local n=$1 text=$2 expect=$3 secs=$4
  sleep 1
  keys "$n" -l "$text"
  sleep 1
  keys "$n" Enter
  local i
  for ((i = 0; i < 10; i++)); do
    screen "$n" | grep -qF -- "$expect" && return 0
    sleep 1
  done
  keys "$n" Enter
  wait_for "$n" "$expect" "$secs"
}

claude_run() {
  local v="claude-$CLAUDE_VERSION" h w
  # First start: no ~/.claude.json, so the onboarding's connectivity check runs.
  h=$(home claude-new) w=$(workdir claude-new)
  start claude-new "$h" "$w" -- claude
  wait_for claude-new "Unable to connect to Anthropic services" 60 && save claude-new "$v-first-start-offline-exit.txt"

  # Onboarding done, no credentials: trust dialog, then the signed-out prompt.
  h=$(home claude-out) w=$(workdir claude-out)
  echo '{"hasCompletedOnboarding":true}' >"$h/.claude.json"
  start claude-out "$h" "$w" -- claude
  wait_for claude-out "Yes, I trust this folder" 60 || return 0
  save claude-out "$v-trust-dialog.txt"
  keys claude-out Down
  sleep 0.5
  keys claude-out Enter
  wait_for claude-out "Not logged in" 60 || return 0
  save claude-out "$v-signed-out-prompt.txt"
  # What a nudge gets for an answer.
  submit claude-out continue "Please run /login" 30 && save claude-out "$v-signed-out-nudge-answer.txt"

  # A (fake) API key: the key dialog, then a request that cannot reach the API.
  h=$(home claude-key) w=$(workdir claude-key)
  echo '{"hasCompletedOnboarding":true}' >"$h/.claude.json"
  start claude-key "$h" "$w" ANTHROPIC_API_KEY=sk-ant-fake -- claude
  wait_for claude-key "Yes, I trust this folder" 60 || return 0
  keys claude-key Down
  sleep 0.5
  keys claude-key Enter
  wait_for claude-key "Do you want to use this API key" 60 || return 0
  save claude-key "$v-api-key-dialog.txt"
  keys claude-key Up
  sleep 0.5
  keys claude-key Enter
  wait_for claude-key "shift+tab to cycle" 60 || return 0
  submit claude-key "say hi" "attempt " 60 || return 0
  save claude-key "$v-api-retry-busy.txt"
  wait_for claude-key "API Error" 400 && save claude-key "$v-network-error.txt"
}

codex_run() {
  local v="codex-$CODEX_VERSION" h w
  h=$(home codex) w=$(workdir codex)
  # Hooks Codex has not seen before: it asks for a review before the first prompt.
  mkdir -p "$h/.codex"
  cat >"$h/.codex/hooks.json" <<'EOF'
{"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "true"}]}],
           "Stop": [{"hooks": [{"type": "command", "command": "true"}]}]}}
EOF
  start codex "$h" "$w" -- codex
  wait_for codex "Sign in with ChatGPT" 60 || return 0
  save codex "$v-sign-in.txt"
  keys codex 3
  sleep 0.5
  keys codex Enter
  wait_for codex "Paste or type your API key" 30 || return 0
  save codex "$v-api-key-entry.txt"
  keys codex -l sk-fake
  sleep 0.5
  keys codex Enter
  wait_for codex "Hooks need review" 30 || return 0
  save codex "$v-hooks-review.txt"
  keys codex 3
  sleep 0.5
  keys codex Enter
  wait_for codex "Ask Codex to do anything" 30 || return 0
  save codex "$v-prompt-idle.txt"
  submit codex "say hi" "Connection failed" 60 && save codex "$v-reconnecting-busy.txt"
}

gemini_run() {
  local v="gemini-$GEMINI_VERSION" h h2 w
  h=$(home gemini) w=$(workdir gemini)
  start gemini "$h" "$w" -- gemini
  wait_for gemini "Do you trust the files in this folder?" 60 || return 0
  save gemini "$v-trust-dialog.txt"
  keys gemini Enter
  wait_for gemini "How would you like to authenticate" 60 || return 0
  save gemini "$v-auth-dialog.txt"
  keys gemini Enter
  wait_for gemini "Enter the authorization code" 60 && save gemini "$v-oauth-code-prompt.txt"

  # The folder trusted, a (fake) API key: key entry, the prompt, a request offline.
  h2=$(home gemini-key)
  mkdir -p "$h2/.gemini"
  cp "$h/.gemini/trustedFolders.json" "$h2/.gemini/"
  start gemini-key "$h2" "$w" GEMINI_API_KEY=fake-gemini-key -- gemini
  wait_for gemini-key "Existing API key detected" 60 || return 0
  keys gemini-key Enter
  wait_for gemini-key "Please enter your Gemini API key" 30 || return 0
  save gemini-key "$v-api-key-entry.txt"
  keys gemini-key Enter
  wait_for gemini-key "Type your message" 30 || return 0
  save gemini-key "$v-prompt-idle.txt"
  submit gemini-key "say hi" "Thinking" 30 || true
  wait_for gemini-key "API Error" 400 && save gemini-key "$v-network-error.txt"
}

install
mkdir -p "$out"
tmux -L "$sock" new-session -d -s keep -- sleep 100000 # the server outlives any one CLI
pids=()
for cli in claude codex gemini; do
  if wanted "$cli"; then
    # Each in its own subshell; the captured names are listed from the files after.
    ("${cli}_run") &
    pids+=($!)
  fi
done
for p in "${pids[@]}"; do wait "$p" || true; done

files=()
for cli in "${only[@]}"; do
  for f in "$out/$cli"-*-*.txt; do
    case "$f" in
      *"-$CLAUDE_VERSION-"* | *"-$CODEX_VERSION-"* | *"-$GEMINI_VERSION-"*) files+=("$f") ;;
    esac
  done
done
say "what vigil reads on each screen:"
(cd "$repo" && cargo run --quiet --locked --example read-screen -- "${files[@]}")
