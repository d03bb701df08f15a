#!/usr/bin/env bash
# The test command: set up (idempotent, see scripts/setup.sh), then run the
# whole test suite and a short fuzz run. Extra arguments go to pytest (and skip the
# fuzz run). "No tests ran" is a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
rc=0
.venv/bin/python -m pytest -q "$@" </dev/null || rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test: pytest collected no tests (exit 5): failing" >&2
fi
# The whole suite (no pytest arguments) ends with the fuzz tier's short run: each
# target FUZZ_SECONDS (default 10; 0 skips it) from its seeds (docs/security.md).
if [ "$rc" -eq 0 ] && [ $# -eq 0 ] && [ "${FUZZ_SECONDS:-10}" != 0 ]; then
    bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}" || rc=$?
fi
exit "$rc"
