#!/usr/bin/env bash
# Install the pinned agent CLIs (Claude Code, Codex, Gemini CLI) from npm into a cache folder
# outside the repository, reusing it between runs. The last line printed is the bin directory.
#
#   scripts/install-clis.sh            # install if needed, print the bin dir
#   CORRAL_CLI_CACHE=/path scripts/install-clis.sh
#
# Claude Code needs its postinstall script (it links the native binary into place), so
# --ignore-scripts must not be used here.
set -euo pipefail

CLAUDE_VERSION="${CORRAL_CLAUDE_VERSION:-2.1.329}"
CODEX_VERSION="${CORRAL_CODEX_VERSION:-0.169.0}"
GEMINI_VERSION="${CORRAL_GEMINI_VERSION:-0.61.0}"

cache="${CORRAL_CLI_CACHE:-$HOME/.cache/corral/clis}"
packages=(
  "@anthropic-ai/claude-code@${CLAUDE_VERSION}"
  "@openai/codex@${CODEX_VERSION}"
  "@google/gemini-cli@${GEMINI_VERSION}"
)
stamp_text="${packages[*]}"
bin="$cache/node_modules/.bin"

is_current() {
  [[ -f "$cache/.installed" && "$(cat "$cache/.installed")" == "$stamp_text" ]] || return 1
  local tool
  for tool in claude codex gemini; do
    [[ -x "$bin/$tool" ]] || return 1
  done
}

mkdir -p "$cache"
# Several test sessions may start at once: one installs, the others wait and then reuse it.
exec 9>"$cache/.lock"
flock 9

if ! is_current; then
  echo "installing ${stamp_text} into $cache" >&2
  rm -f "$cache/.installed"
  [[ -f "$cache/package.json" ]] || echo '{"name": "corral-clis", "private": true}' >"$cache/package.json"
  (cd "$cache" && npm install --no-audit --no-fund --loglevel=error "${packages[@]}" >&2)
  for tool in claude codex gemini; do
    "$bin/$tool" --version >/dev/null 2>&1 || { echo "install-clis: $tool does not run" >&2; exit 1; }
  done
  echo "$stamp_text" >"$cache/.installed"
fi

echo "$bin"
