#!/usr/bin/env bash
# In-Envoy benchmark of the local embedding-model candidates; prints a markdown table.
# Needs scripts/install.sh (Envoy) and the candidate dirs in .local/models/ (scripts/build-local.sh,
# scripts/models/prepare_candidates.py). Usage: bench/embed/bench.sh [--models a,b] [--requests N] [--no-build]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="$ROOT/.local/venv/bin/python"
[ -x "$PY" ] || { echo "no $PY: run scripts/install.sh" >&2; exit 1; }
exec "$PY" "$ROOT/bench/embed/bench.py" "$@"
