#!/usr/bin/env bash
# Debian's Chromium for the dashboard's browser tests (Playwright drives it through
# executable_path: Playwright's own browser download is not used).
#
#   scripts/chromium.sh      print the browser's path; install Debian's `chromium` first
#                            when it is missing and CI=true (elsewhere: say how, exit 1)
set -euo pipefail

find_browser() {
    local name
    for name in chromium chromium-browser; do
        command -v "$name" 2>/dev/null && return 0
    done
    return 1
}

if path=$(find_browser); then
    echo "$path"
    exit 0
fi
if [[ "${CI:-}" != "true" ]]; then
    echo "chromium.sh: no chromium; install it with: apt-get install -y chromium (the browser tests skip without it)" >&2
    exit 1
fi
echo "chromium.sh: installing Debian's chromium package" >&2
sudo=()
[[ $(id -u) -ne 0 ]] && sudo=(sudo)
"${sudo[@]}" apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q chromium >&2
find_browser || { echo "chromium.sh: chromium installed but not found on PATH" >&2; exit 1; }
