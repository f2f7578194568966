# Source me: `model_python <module,...> <pin,...>` sets PY to .local/venv's python (creating the venv when
# missing) and pip-installs the given pins of requirements-test.txt when one of the modules does not import.
# Used by build-static.sh and build-local.sh, which may run before scripts/install.sh.
model_python() {
  local modules="$1" pins="$2" root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  PY="$root/.local/venv/bin/python"
  if [ ! -x "$PY" ]; then
    log "creating $root/.local/venv"
    mkdir -p "$root/.local"
    python3 -m venv "$root/.local/venv"
  fi
  if ! "$PY" -c "import $modules" 2>/dev/null; then
    log "pip install ${pins//,/ } (pins of requirements-test.txt)"
    # shellcheck disable=SC2046
    "$PY" -m pip install --disable-pip-version-check -q \
      $(grep -E "^(${pins//,/|})==" "$root/requirements-test.txt" | sed 's/ .*//')
  fi
}
