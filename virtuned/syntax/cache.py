"""A disk cache of parsed profiles, for short-lived processes (the CLI).

Parsing itself is quick, but a process that parses must first import lark and build
its parser, which costs a command-line run more than everything else it does with a
profile. Profiles rarely change, so the CLI keeps each parsed text as plain data
(lists, dictionaries, strings, numbers; in marshal's form, which needs no import as
JSON's would: 1 % of a run) under ``$XDG_CACHE_HOME/virtuned/syntax``
(``~/.cache/...``; ``VIRTUNED_CACHE_DIR`` moves it, an empty value turns it off),
keyed by the text, its name and the code that parsed it (the stamps of the grammar,
parser and AST files): an edited profile or an upgraded virtuned never sees an old
entry. Only the AST's own node classes, strings and numbers are ever built from an
entry, so a tampered file can at worst describe another profile, as the profile files
on the search path can. Whatever goes wrong with the cache (no home, read-only disk,
a broken entry) only means parsing again.
"""

from __future__ import annotations

import marshal
import os
from pathlib import Path

import attrs

from virtuned import caching, data
from virtuned.diagnostics import Span
from virtuned.syntax import ast

FORMAT = 2
MAX_ENTRIES = 512  # beyond this the oldest half goes (inline -t texts vary)

_directory: Path | None = None


def enable(directory: str | os.PathLike | None = None) -> None:
    """Use the cache in this process (``directory``: else the default place)."""
    global _directory
    if directory is None:
        chosen = caching.cache_home()
        directory = os.path.join(chosen, "syntax") if chosen else None
    _directory = Path(directory) if directory else None


def disable() -> None:
    global _directory
    _directory = None


def load(text: str, filename: str):
    """The cached AST of ``text`` named ``filename``, or None."""
    if _directory is None or not _ours(_directory):
        return None
    try:
        with open(_directory / _key(text, filename), "rb") as file:
            profile = _decode(marshal.loads(file.read()))
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError,
            RecursionError):
        return None
    return profile if type(profile) is ast.Profile else None


def store(text: str, filename: str, profile) -> None:
    if _directory is None:
        return
    try:
        _directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _ours(_directory):
            return
        path = _directory / _key(text, filename)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_bytes(marshal.dumps(_encode(profile)))
        os.replace(temporary, path)
        _prune()
    except (OSError, RecursionError):
        pass


def lark_tables() -> str | bool:
    """Where lark may cache its parser tables: a file in this cache's directory when
    the cache is on and the directory is ours, else nowhere. (lark's own default, a
    predictable name in the shared temporary directory, would load a pickle another
    local user could have planted there.)"""
    if _directory is None:
        return False
    try:
        _directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    return str(_directory / "lark-tables.pickle") if _ours(_directory) else False


_ours = caching.owned  # someone else's directory is never trusted (nor written to)


def _prune() -> None:
    entries = [p for p in _directory.iterdir() if p.name != "lark-tables.pickle"]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda p: p.stat().st_mtime_ns)
    for old in entries[: len(entries) // 2]:
        old.unlink(missing_ok=True)


_CODE_DIGEST: list[bytes] = []


def _key(text: str, filename: str) -> str:
    if not _CODE_DIGEST:
        # The code that parsed it by its files' stamps (caching.stamp: what changes
        # when a file changes), not their text: hashing that cost a run 1M instructions.
        here = os.path.dirname(__file__)
        files = [os.path.join(data.directory("grammar"), "virtuned.lark"),
                 *(os.path.join(here, module) for module in ("parser.py", "ast.py",
                                                             "cache.py"))]
        stamps = [(name, caching.stamp(name)) for name in files]
        _CODE_DIGEST.append(caching.sha256(repr((FORMAT, stamps)).encode()).digest())
    digest = caching.sha256(_CODE_DIGEST[0])
    digest.update(filename.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest() + ".marshal"


# ---------------------------------------------------------------- plain data

def _classes() -> dict:
    found = {name: value for name, value in vars(ast).items()
             if isinstance(value, type) and attrs.has(value)}
    return {**found, "Span": Span}


_CLASSES: dict = {}


def _encode(node):
    if isinstance(node, tuple):
        return [_encode(item) for item in node]
    if node is None or isinstance(node, (str, int)):
        return node
    return {"@": type(node).__name__,
            **{field.name: _encode(getattr(node, field.name))
               for field in attrs.fields(type(node))}}


def _decode(value):
    if isinstance(value, list):
        return tuple(_decode(item) for item in value)
    if isinstance(value, dict):
        if not _CLASSES:
            _CLASSES.update(_classes())
        cls = _CLASSES[value["@"]]
        return cls(**{name: _decode(item) for name, item in value.items() if name != "@"})
    if value is None or type(value) in (str, int, bool):  # what _encode writes, no more
        return value
    raise TypeError(f"no value of an entry: {type(value).__name__}")
