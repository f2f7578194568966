# Source me: exports ENVOY_BIN, REDIS_BIN, REDISEARCH_SO, VENV_PY written by scripts/install.sh.
#   . scripts/paths.sh
_semcache_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$_semcache_root/.local/paths.env" ]; then
  echo "scripts/paths.sh: $_semcache_root/.local/paths.env missing; run scripts/install.sh (make install)" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_semcache_root/.local/paths.env"
export ENVOY_BIN REDIS_BIN REDISEARCH_SO VENV_PY
unset _semcache_root
