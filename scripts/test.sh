#!/usr/bin/env bash
# The whole test suite: lint (ruff), types (mypy, strict for controller/), then pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup-env.sh"
setup_env dev
cd "$PROJECT_ROOT"
bin="$VENV/bin"
echo "== ruff"
"$bin/ruff" check .
"$bin/ruff" format --check .
echo "== mypy"
"$bin/mypy" --strict controller
"$bin/mypy" simulators tests bench grafana
echo "== pytest"
exec "$bin/pytest" "$@"
