"""Run the real CLI in-process, in a given folder, and capture what it prints."""

from __future__ import annotations

import contextlib
import io
import os


def run(argv: list[str], cwd=None, stdin: str | None = None) -> tuple[int, str, str]:
    from virtuned.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_cwd = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.chdir(old_cwd)
    return code, out.getvalue(), err.getvalue()


def write(folder, files: dict[str, str]) -> None:
    """Create ``files`` (relative path → text) under ``folder``."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
