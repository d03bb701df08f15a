#!/usr/bin/env bash
# The test command: set up (idempotent, see scripts/setup.sh), then run the
# whole test suite. Extra arguments go to pytest. "No tests ran" is a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
rc=0
.venv/bin/python -m pytest -q "$@" </dev/null || rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test: pytest collected no tests (exit 5): failing" >&2
fi
exit "$rc"
