#!/usr/bin/env bash
# Set up and run the main job on its embedded default (no server to install).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lockplane demo "$@"
