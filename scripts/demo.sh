#!/usr/bin/env bash
# The main job: the digital-boiler plant running on the bundled simulator (`boilerctl demo`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup-env.sh"
setup_env runtime
exec "$VENV/bin/boilerctl" demo "$@"
