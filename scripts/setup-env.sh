#!/usr/bin/env bash
# Create or refresh the project's virtual environment in .venv and install what the project needs.
# Sourced by scripts/demo.sh and scripts/test.sh; not meant to be run on its own.
#   setup_env runtime   the controller and simulators
#   setup_env dev       the same plus the test tools, Debian packages (when root) and npm peers
set -euo pipefail

PROJECT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$PROJECT_ROOT/.venv"

_log() { printf '[setup] %s\n' "$*" >&2; }

_install_debian_packages() {
    local wanted=()
    while read -r pkg; do
        [ -n "$pkg" ] && wanted+=("$pkg")
    done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$PROJECT_ROOT/scripts/debian-packages.txt")
    [ "${#wanted[@]}" -eq 0 ] && return 0
    local missing=()
    for pkg in "${wanted[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        _log "not root: install these Debian packages yourself: ${missing[*]}"
        return 0
    fi
    _log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_env() {
    local flavour=$1 extras=""
    [ "$flavour" = dev ] && extras="[dev]"
    if [ ! -x "$VENV/bin/python" ]; then
        _log "creating virtual environment in $VENV"
        python3 -m venv "$VENV"
    fi
    # Reinstall only when pyproject.toml or the flavour changed: a second run starts at once.
    local stamp="$VENV/.installed-$flavour"
    local digest
    digest=$(sha256sum "$PROJECT_ROOT/pyproject.toml" | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        _log "installing Python packages ($flavour)"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$PROJECT_ROOT$extras"
        echo "$digest" > "$stamp"
    fi
    if [ "$flavour" = dev ]; then
        _install_debian_packages
    fi
}
