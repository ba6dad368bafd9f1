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

_install_npm_peers() {
    # Test peers not written in Python (tests/peers: node-opcua). Installed from the committed
    # package-lock.json when node_modules is missing or older than the lock file.
    local peers="$PROJECT_ROOT/tests/peers"
    local stamp="$peers/node_modules/.package-lock.json"
    if [ -f "$stamp" ] && [ ! "$peers/package-lock.json" -nt "$stamp" ]; then
        return 0
    fi
    if ! command -v node >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        _log "installing Node.js from the machine's Debian sources"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs >/dev/null
        command -v npm >/dev/null 2>&1 ||
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
    fi
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        _log "Node.js 20 or later with npm is not installed: the node-opcua peer tests will fail."
        _log "Install Node.js >= 20 and npm (node-opcua needs >= 20; Debian bookworm ships 18), rerun."
        return 0
    fi
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$major" -lt 20 ]; then
        _log "Node.js $(node --version) is too old for the node-opcua peers: install Node.js >= 20."
        return 0
    fi
    _log "installing npm test peers (tests/peers)"
    (cd "$peers" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$stamp"
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
        _install_npm_peers
    fi
}
