"""Where the grammar and the shipped profile library live.

In a checkout they are the top-level ``grammar/`` and ``traits/`` folders (DESIGN.md's
layout); an installed package carries them as ``virtuned/grammar`` and
``virtuned/traits`` (see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def directory(name: str) -> Path:
    installed = _PACKAGE / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name


def read_text(folder: str, filename: str) -> str:
    return (directory(folder) / filename).read_text(encoding="utf-8")
