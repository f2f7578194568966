#!/usr/bin/env bash
# Local stack without Docker: redis-server (+RediSearch) and Envoy with the filter, detached.
#   scripts/stack.sh up | down | status | logs
# State under .local/run/: redis.pid redis.log envoy.pid envoy.log envoy.yaml redis/ (data dir).
# Ports (override with the same env names): REDIS_PORT=6379, LISTEN_PORT=10000 (Envoy listener),
# ADMIN_PORT=9901 (Envoy admin). Envoy config = envoy/envoy-local.yaml.tmpl rendered by
# scripts/render_envoy.py (LLM_BASE_URL, WASM, POLICY, EMBED_* -- see that script).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.local/run"
# shellcheck source=paths.sh
. "$ROOT/scripts/paths.sh"

export REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
export REDIS_PORT="${REDIS_PORT:-6379}"
export LISTEN_PORT="${LISTEN_PORT:-10000}"
export ADMIN_PORT="${ADMIN_PORT:-9901}"
export WASM="${WASM:-$ROOT/target/wasm32-wasip1/release/semantic_cache.wasm}"
export POLICY="${POLICY:-$ROOT/envoy/policies/local.json}"
# EMBEDDER=sidecar: the plain filter calls the native embed_server (same model, own threads) instead of
# embedding inside Envoy's workers.
EMBEDDER="${EMBEDDER:-in-filter}"
EMBED_PORT="${EMBED_PORT:-8081}"
if [ "$EMBEDDER" = "sidecar" ]; then
  export WASM="$ROOT/target/wasm32-wasip1/release/semantic_cache.wasm"
  export EMBED_PROVIDER=openai-compatible EMBED_URL="http://127.0.0.1:$EMBED_PORT/v1/embeddings"
  export EMBED_MODEL="${EMBED_MODEL:-local}" EMBED_DIMENSIONS="${EMBED_DIMENSIONS:-384}"
  # the sidecar runs the transformer (384 dims): its own index, not the static model's of local.json
  [ "$POLICY" = "$ROOT/envoy/policies/local.json" ] && export POLICY="$ROOT/envoy/policies/local-minilm.json"
fi

log() { printf '[stack] %s\n' "$*" >&2; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_port() { # host port seconds
  "$VENV_PY" - "$1" "$2" "$3" <<'EOF'
import socket, sys, time
h, p, t = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + t
while time.time() < end:
    try:
        socket.create_connection((h, p), 0.5).close(); sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

up() {
  mkdir -p "$RUN/redis"
  if [ ! -f "$WASM" ]; then
    log "error: $WASM missing; run make build (or set WASM=...)"; exit 1
  fi
  if alive "$RUN/redis.pid"; then
    log "redis already running (pid $(cat "$RUN/redis.pid"))"
  else
    log "starting redis-server on 127.0.0.1:$REDIS_PORT (RediSearch loaded)"
    "$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$RUN/redis" --loadmodule "$REDISEARCH_SO" \
      --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log"
    wait_port 127.0.0.1 "$REDIS_PORT" 10 || { log "redis did not start; see $RUN/redis.log"; exit 1; }
  fi
  if [ "$EMBEDDER" = "sidecar" ]; then
    if alive "$RUN/embedder.pid"; then
      log "embed_server already running (pid $(cat "$RUN/embedder.pid"))"
    else
      log "starting embed_server on 127.0.0.1:$EMBED_PORT"
      setsid nohup "$ROOT/build/embed_server" --listen "127.0.0.1:$EMBED_PORT" >>"$RUN/embedder.log" 2>&1 < /dev/null &
      echo $! > "$RUN/embedder.pid"
      wait_port 127.0.0.1 "$EMBED_PORT" 30 || { log "embed_server did not start; see $RUN/embedder.log"; exit 1; }
    fi
  fi
  "$VENV_PY" "$ROOT/scripts/render_envoy.py" --out "$RUN/envoy.yaml"
  if alive "$RUN/envoy.pid"; then
    log "envoy already running (pid $(cat "$RUN/envoy.pid")); run down first to pick up a new config"
  else
    log "starting envoy: listener 127.0.0.1:$LISTEN_PORT, admin 127.0.0.1:$ADMIN_PORT, wasm $WASM"
    # setsid: keep running after the calling shell exits; --disable-hot-restart: no shared memory
    # clash with the envoys the e2e tests start.
    setsid nohup "$ENVOY_BIN" -c "$RUN/envoy.yaml" --disable-hot-restart --log-level info \
      >>"$RUN/envoy.log" 2>&1 < /dev/null &
    echo $! > "$RUN/envoy.pid"
    # The in-filter model makes V8 compile ~10 MB of code before the listener opens (~10 s here).
    if ! wait_port 127.0.0.1 "$LISTEN_PORT" 120; then
      log "envoy did not start; tail of $RUN/envoy.log:"; tail -n 30 "$RUN/envoy.log" >&2; exit 1
    fi
  fi
  status
}

stop_pid() { # name pidfile
  if alive "$2"; then
    local pid; pid="$(cat "$2")"
    log "stopping $1 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$2"
}

down() {
  stop_pid envoy "$RUN/envoy.pid"
  stop_pid embedder "$RUN/embedder.pid"
  stop_pid redis "$RUN/redis.pid"
}

status() {
  for s in redis envoy embedder; do
    if alive "$RUN/$s.pid"; then echo "$s: running (pid $(cat "$RUN/$s.pid")), log $RUN/$s.log"
    else echo "$s: stopped"; fi
  done
  echo "listener: http://127.0.0.1:$LISTEN_PORT  admin: http://127.0.0.1:$ADMIN_PORT  redis: 127.0.0.1:$REDIS_PORT"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  logs) tail -n 50 "$RUN/envoy.log" "$RUN/redis.log" ;;
  *) echo "usage: $0 up|down|status|logs" >&2; exit 2 ;;
esac
