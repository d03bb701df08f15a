"""Run the real ``virtuned`` command in a process of its own whose address space is
capped, so a hostile input that still made virtuned grow without bound would fail
the test with a MemoryError (exit 1) instead of swapping the machine."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDRESS_SPACE = 1024 * 1024 * 1024  # far above a compile's own (about 60 MB)


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_bounded(argv: list[str], stdin=subprocess.DEVNULL, cwd=ROOT
                ) -> tuple[int, str, str]:
    """``stdin``: a file object or descriptor the command reads."""
    done = subprocess.run([sys.executable, "-m", "virtuned", *argv], stdin=stdin,
                          capture_output=True, cwd=cwd, preexec_fn=_capped)
    return done.returncode, done.stdout.decode(), done.stderr.decode()
