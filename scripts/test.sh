#!/usr/bin/env bash
# The one test command (`make test`, and what CI runs): installs what the tests need
# (the package with its dev extra in a venv, the real agent CLIs, a private PostgreSQL
# on 127.0.0.1), runs the whole suite, and stops what it started.
#
# Locally, CORRAL_SKIP_REALCLI=1 skips the npm CLIs and CORRAL_SKIP_PG=1 the PostgreSQL
# server (their tests are then skipped, and say so). CI (CI=true) always runs both, and
# installs Debian's chromium for the dashboard's browser tests (skipped locally without it).
set -uo pipefail
cd "$(dirname "$0")/.."

venv="${CORRAL_VENV:-.venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv" || exit 1
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' || exit 1

# the release tests sign with minisign (Debian's package): CI installs it when missing
if [[ "${CI:-}" == "true" ]] && ! command -v minisign >/dev/null 2>&1; then
  sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  { "${sudo[@]}" apt-get update -q && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q minisign; } >&2 \
    || { echo "test.sh: installing minisign failed" >&2; exit 1; }
fi

pytest_args=()
if [[ "${CI:-}" == "true" || -z "${CORRAL_SKIP_REALCLI:-}" ]]; then
  bin_dir="$(scripts/install-clis.sh | tail -n 1)" || { echo "test.sh: installing the agent CLIs failed" >&2; exit 1; }
  export CORRAL_CLI_BIN_DIR="$bin_dir"
fi

# Debian's chromium for the dashboard's browser tests: installed in CI, used when present
if browser="$(scripts/chromium.sh)"; then
  export CORRAL_CHROMIUM="$browser"
elif [[ "${CI:-}" == "true" ]]; then
  echo "test.sh: installing chromium failed" >&2
  exit 1
fi

pg_started=""
if [[ "${CI:-}" == "true" || -z "${CORRAL_SKIP_PG:-}" ]]; then
  pg_out="$(scripts/pg.sh start)" || { echo "test.sh: starting PostgreSQL failed" >&2; exit 1; }
  url="$(printf '%s\n' "$pg_out" | sed -n 's/^CORRAL_TEST_PG_URL=//p' | tail -n 1)"
  if [[ -n "$url" ]]; then
    export CORRAL_TEST_PG_URL="$url"
    pg_started=1
  fi
fi
cleanup() { [[ -n "$pg_started" ]] && scripts/pg.sh stop >/dev/null 2>&1; }
trap cleanup EXIT

"$venv/bin/python" -m pytest "${pytest_args[@]}" "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  # pytest found no test: say so in the usual summary form rather than failing CI
  echo "0 passed, 0 failed"
  rc=0
fi
exit $rc
