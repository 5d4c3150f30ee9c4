#!/usr/bin/env bash
# Create .venv and install Lockplane with its test tools, and Chromium for the browser
# test (tests/test_ui.py). Idempotent: quiet when everything is already there.
#
#   bash scripts/setup.sh               everything (what scripts/test.sh and CI use)
#   bash scripts/setup.sh --no-browser  without Chromium (what scripts/demo.sh uses)
#
# Chromium comes from Debian's `chromium` package (apt-get, as root: CI runs as root).
# Where it cannot be installed the browser test is skipped, except under CI=true, where
# a missing browser fails setup.
# pgBackRest (Debian's `pgbackrest`) is installed the same way, for the point-in-time
# recovery test from a pgBackRest WAL archive (tests/test_pitr.py), and Percona Toolkit
# (Debian's `percona-toolkit`) for the test that runs an exported pt-online-schema-change
# against MariaDB (tests/test_export_osc.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BROWSER=yes
[ "${1:-}" = "--no-browser" ] && BROWSER=no

say() { echo "setup: $*" >&2; }

# ------------------------------------------------------------------ Python packages
# The stamp records what was installed (pyproject.toml's hash): unchanged, pip is skipped.
STAMP=.venv/.lockplane-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $("$PY" --version 2>&1)"
    "$PY" -m venv .venv
  fi
  say "installing Lockplane, Prefect and the test tools into .venv (the first time takes" \
      "a few minutes; full log: .venv/pip.log)"
  log=.venv/pip.log
  : > "$log"
  progress() {  # one line per package pip fetches, so a long install visibly moves
    local n=0 line
    while IFS= read -r line; do
      printf '%s\n' "$line" >> "$log"
      case $line in
        Collecting*|"Obtaining file"*)
          n=$((n + 1))
          if [ -t 2 ]; then
            printf '\r\033[Ksetup:   %3d %s' "$n" "${line#Collecting }" >&2
          elif [ $((n % 10)) = 1 ]; then
            printf 'setup:   %3d %s\n' "$n" "${line#Collecting }" >&2
          fi ;;
        "Installing collected packages"*)
          [ -t 2 ] && printf '\r\033[K' >&2
          say "  installing $n packages ..." ;;
      esac
    done
    [ -t 2 ] && printf '\r\033[K' >&2 || true
  }
  if ! { .venv/bin/python -m pip install --upgrade --progress-bar off pip \
         && .venv/bin/python -m pip install --progress-bar off -e '.[test]'; } 2>&1 | progress
  then
    say "pip failed; the end of .venv/pip.log:"
    tail -30 "$log" >&2
    exit 1
  fi
  echo "$want" > "$STAMP"
  say "done: .venv is ready (source .venv/bin/activate puts 'lockplane' on your PATH)"
fi

# ------------------------------------------------------- Debian packages tests need
# Installed with apt-get when running as root; in CI a missing one fails the setup,
# elsewhere the tests that need it are skipped.
debian_package() {  # package, the test that needs it, what is skipped[, its command]
  local pkg=$1 test=$2 skipped=$3 cmd=${4:-$1}
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's $pkg for $test (apt-get; log: .venv/apt.log)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -qq "$pkg"; } >>.venv/apt.log 2>&1
    then
      say "apt-get could not install $pkg; the end of .venv/apt.log:"
      tail -20 .venv/apt.log >&2
      if [ "${CI:-}" = true ]; then exit 1; fi
    fi
  elif [ "${CI:-}" = true ]; then
    say "$pkg is missing and cannot be installed here (needs root and apt-get):" \
        "$test must run in CI"
    exit 1
  else
    say "note: $pkg is not installed (as root: apt-get install $pkg); $skipped"
  fi
  return 0
}

if [ "$BROWSER" = yes ]; then
  debian_package chromium "the browser test" "tests/test_ui.py will be skipped"
fi
debian_package pgbackrest "the pgBackRest recovery test" \
  "its test in tests/test_pitr.py will be skipped"
debian_package percona-toolkit "the pt-online-schema-change test" \
  "its test in tests/test_export_osc.py will be skipped" pt-online-schema-change
