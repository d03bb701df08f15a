#!/usr/bin/env bash
# The fuzz tier (docs/security.md): every target of fuzz/targets.py, coverage-guided
# with atheris, SECONDS each (default 60). Corpora grow under fuzz/corpus/ (not in
# git), seeded from the repository's own inputs; a crash is written to
# fuzz/crashes/TARGET/ and ends the run with exit 1. Replay one with
#   .venv/bin/python -m fuzz.replay TARGET fuzz/crashes/TARGET/crash-...
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <("$PYTHON" -c 'from fuzz.targets import TARGETS; print(*TARGETS, sep="\n")')
fi
"$PYTHON" -c 'import atheris' 2>/dev/null || {
  echo "fuzz.sh: atheris is not installed: $PYTHON -m pip install atheris" >&2; exit 2; }

failed=0
for target in "${TARGETS[@]}"; do
  corpus="fuzz/corpus/$target" crashes="fuzz/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  "$PYTHON" - "$target" "$corpus" <<'PY'
import glob, hashlib, pathlib, sys
from fuzz.targets import INLINE_SEEDS, SEEDS
target, corpus = sys.argv[1], pathlib.Path(sys.argv[2])
seeds = [pathlib.Path(p).read_bytes() for pattern in SEEDS[target] for p in glob.glob(pattern)]
for data in seeds + list(INLINE_SEEDS.get(target, ())):
    (corpus / ("seed-" + hashlib.sha1(data).hexdigest())).write_bytes(data)
PY
  echo "== $target: ${SECONDS_EACH}s ($(ls "$corpus" | wc -l) inputs in $corpus)"
  if ! "$PYTHON" -m fuzz.run "$target" "$SECONDS_EACH" "$corpus" \
        -artifact_prefix="$crashes/" -print_final_stats=1 2>"fuzz/crashes/$target.log"; then
    echo "!! $target: a crash; see fuzz/crashes/$target.log and fuzz/crashes/$target/" >&2
    tail -n 40 "fuzz/crashes/$target.log" >&2
    failed=1
  else
    grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "fuzz/crashes/$target.log" | tail -n 2
  fi
done
exit "$failed"
