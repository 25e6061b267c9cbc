#!/usr/bin/env bash
# Install the pinned agent CLIs (Claude Code, Codex, Gemini CLI, Qwen Code, OpenCode, Copilot
# CLI) from npm into a cache folder outside the repository, reusing it between runs. These are
# the versions each adapter is verified against (`corral tools`). The last line printed is
# the bin directory.
#
#   scripts/install-clis.sh            # install if needed, print the bin dir
#   CORRAL_CLI_CACHE=/path scripts/install-clis.sh
#
# Claude Code and OpenCode need their postinstall scripts (they put the native binary in
# place), so --ignore-scripts must not be used here.
set -euo pipefail

CLAUDE_VERSION="${CORRAL_CLAUDE_VERSION:-2.1.329}"
CODEX_VERSION="${CORRAL_CODEX_VERSION:-0.169.0}"
GEMINI_VERSION="${CORRAL_GEMINI_VERSION:-0.61.0}"
QWEN_VERSION="${CORRAL_QWEN_VERSION:-0.24.4}"
OPENCODE_VERSION="${CORRAL_OPENCODE_VERSION:-1.18.33}"
COPILOT_VERSION="${CORRAL_COPILOT_VERSION:-1.0.102}"

cache="${CORRAL_CLI_CACHE:-$HOME/.cache/corral/clis}"
packages=(
  "@anthropic-ai/claude-code@${CLAUDE_VERSION}"
  "@openai/codex@${CODEX_VERSION}"
  "@google/gemini-cli@${GEMINI_VERSION}"
  "@qwen-code/qwen-code@${QWEN_VERSION}"
  "opencode-ai@${OPENCODE_VERSION}"
  "@github/copilot@${COPILOT_VERSION}"
)
tools=(claude codex gemini qwen opencode copilot)
stamp_text="${packages[*]}"
bin="$cache/node_modules/.bin"

is_current() {
  [[ -f "$cache/.installed" && "$(cat "$cache/.installed")" == "$stamp_text" ]] || return 1
  local tool
  for tool in "${tools[@]}"; do
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
  for tool in "${tools[@]}"; do
    HOME="$cache/home" "$bin/$tool" --version </dev/null >/dev/null 2>&1 ||
      { echo "install-clis: $tool does not run" >&2; exit 1; }
  done
  echo "$stamp_text" >"$cache/.installed"
fi

# Copilot CLI unpacks its package into the XDG cache on its first start and prints nothing
# for ~6 s meanwhile; do it now, so a first job (and a rehearsal) starts at once
copilot_pkg="${XDG_CACHE_HOME:-$HOME/.cache}/copilot/pkg/linux-x64/${COPILOT_VERSION}"
if [[ ! -d "$copilot_pkg" ]]; then
  COPILOT_AUTO_UPDATE=false "$bin/copilot" help environment </dev/null >/dev/null 2>&1 ||
    echo "install-clis: copilot could not unpack its package (first runs will be slower)" >&2
fi

echo "$bin"
