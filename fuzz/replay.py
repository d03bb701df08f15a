"""Feed files to a fuzz target without the fuzzer: a crash found, or a corpus.

    python -m fuzz.replay TARGET FILE...
"""

from __future__ import annotations

import sys
from pathlib import Path

from fuzz.targets import TARGETS


def main(argv: list[str]) -> int:
    target = TARGETS[argv[1]]
    for name in argv[2:]:
        target(Path(name).read_bytes())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
