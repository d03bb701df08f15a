"""Finding profiles: the search path, profile files, versions and version ranges.

A profile is a ``NAME.vt`` file whose header says ``profile NAME VERSION "summary"``.
The search path, lowest priority first:

1. the shipped library (``traits/`` in a checkout, ``virtuned/traits`` installed),
2. the system directory ``/etc/virtuned/profiles``,
3. the user directory ``$XDG_CONFIG_HOME/virtuned/profiles`` (``~/.config/...``),
4. every ``--profile-path DIR``, in the order given (later ones win).

An include picks the highest version on the path that satisfies its range; when two
directories hold the same name and version, the higher-priority one wins, so an
administrator can shadow a shipped profile without renaming it.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import attrs

from virtuned import caching, data, inputs
from virtuned.diagnostics import Span, did_you_mean, error, name_file, quoted
from virtuned.frozen import frozen

SYSTEM_DIR = Path("/etc/virtuned/profiles")


def user_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"),
                                                               ".config")
    return Path(base) / "virtuned" / "profiles"


def search_path(extra: tuple[str, ...] = ()) -> tuple[Path, ...]:
    """Lowest priority first."""
    return (data.directory("traits"), SYSTEM_DIR, user_dir(), *map(Path, extra))


# ---------------------------------------------------------------- versions

# Patterns are compiled when first used (re's own cache): a run needs few of them.
# Each number at most 9 digits: a version is a name, never a quantity to convert.
_VERSION = r"([0-9]{1,9})\.([0-9]{1,9})\.([0-9]{1,9})(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?"


@frozen(order=True)
class Version:
    major: int
    minor: int
    patch: int
    # A pre-release sorts before its release (1.0.0-rc1 < 1.0.0).
    release: bool = True
    pre: str = ""
    text: str = attrs.field(default="", eq=False, order=False)

    def __str__(self) -> str:
        return self.text or f"{self.major}.{self.minor}.{self.patch}"


def parse_version(text: str) -> Version:
    match = re.fullmatch(_VERSION, text)
    if not match:
        raise ValueError(f"expected a version like 1.2.0, got {quoted(text)}")
    major, minor, patch, pre = match.groups()
    return Version(int(major), int(minor), int(patch), pre is None, pre or "", text)


@frozen
class Range:
    """A semantic-version range: ``^1.2``, ``~1.2``, ``=1.2.3``, ``>=1.0``, ``1.2``."""

    text: str
    low: Version | None
    low_inclusive: bool
    high: Version | None  # exclusive

    def __contains__(self, version: Version) -> bool:
        if not version.release:
            return False  # a range never picks a pre-release
        if self.low is not None and (version < self.low or
                                     (version == self.low and not self.low_inclusive)):
            return False
        return self.high is None or version < self.high

    def __str__(self) -> str:
        return self.text


ANY_VERSION = Range("*", None, True, None)
_RANGE = r"(\^|~|>=|<=|>|<|=)?([0-9]{1,9})(?:\.([0-9]{1,9}))?(?:\.([0-9]{1,9}))?"


def parse_range(text: str) -> Range:
    match = re.fullmatch(_RANGE, text)
    if not match:
        raise ValueError(f"expected a version range like ^1.0, ~1.2 or >=1.0, got "
                         f"{quoted(text)}")
    op, *parts = match.groups()
    given = [int(p) for p in parts if p is not None]
    numbers = given + [0] * (3 - len(given))
    base = Version(*numbers)
    if op == "^":
        # ^1.2 → <2.0.0; ^0.2 → <0.3.0; ^0.0.3 → <0.0.4 (the leftmost non-zero part)
        index = next((i for i, n in enumerate(numbers) if n), len(given) - 1)
        index = min(index, len(given) - 1)
        return Range(text, base, True, _bump(numbers, index))
    if op == "~":
        return Range(text, base, True, _bump(numbers, min(1, len(given) - 1)))
    if op in (None, "="):
        if op == "=" and len(given) == 3:
            return Range(text, base, True, _bump(numbers, 2))
        return Range(text, base, True, _bump(numbers, len(given) - 1))
    if op == ">=":
        return Range(text, base, True, None)
    if op == ">":
        return Range(text, base, False, None)
    if op == "<":
        return Range(text, None, True, base)
    return Range(text, None, True, _bump(numbers, 2))  # "<="


def _bump(numbers: list[int], index: int) -> Version:
    bumped = numbers[:index] + [numbers[index] + 1] + [0] * (2 - index)
    return Version(*bumped)


# ---------------------------------------------------------------- profile files

@frozen(cache_hash=True)
class ProfileFile:
    """One profile's text and where it came from (its header is read when it is
    parsed)."""

    source: str  # the path shown in diagnostics, or "<trait N>"
    text: str

    @property
    def sha256(self) -> str:
        return caching.sha256(self.text.encode("utf-8")).hexdigest()


@frozen
class Library:
    """Every profile on the search path, by name (read once, then cached)."""

    directories: tuple[Path, ...]

    def candidates(self, name: str) -> tuple[tuple[Version, int, Path], ...]:
        return self._scanned().get(name, ())

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._scanned()))

    def _scanned(self) -> dict:
        # A directory's mtime changes when a profile is added, removed or renamed, so
        # a long-running process sees new profiles without rescanning every time.
        return _scan(self.directories, tuple(caching.stamp(d) for d in self.directories))

    def declared_in(self, path: Path) -> frozenset[str]:
        """The composite trait phrases the profile at ``path`` declares."""
        return _declared_phrases(path, caching.stamp(path))

    def declarations(self) -> dict[str, tuple[str, ...]]:
        """Every composite trait phrase a profile on the path declares (any version)
        → the names of the profiles that declare it."""
        found: dict[str, set[str]] = {}
        for name, candidates in self._scanned().items():
            for _, _, path in candidates:
                for phrase in self.declared_in(path):
                    found.setdefault(phrase, set()).add(name)
        return {phrase: tuple(sorted(names)) for phrase, names in found.items()}

    def find(self, name: str, wanted: Range) -> Path | None:
        """The file of the highest version in range; ties go to the later directory."""
        fitting = [c for c in self.candidates(name) if c[0] in wanted]
        return max(fitting)[2] if fitting else None

    def versions(self, name: str) -> list[str]:
        return sorted({str(v) for v, _, _ in self.candidates(name)})


@functools.lru_cache(maxsize=8)
def _scan(directories: tuple[Path, ...], stamp: tuple) -> dict[str, tuple]:
    found: dict[str, list] = {}
    for priority, directory in enumerate(directories):
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.vt")):
            header = read_header(_read_text(os.fspath(path)))
            if header is None or header[0] != path.stem:
                continue  # not a profile of this name (check reports it)
            found.setdefault(header[0], []).append((header[1], priority, path))
    return {name: tuple(items) for name, items in found.items()}


_HEADER = r'(?m)^[ \t]*profile[ \t]+([A-Za-z_][A-Za-z0-9_.+-]*)[ \t]+(\S+)'
# A composite trait's declaration, found without a full parse: its phrase.
_DECLARATION = r'(?m)^[ \t]*trait[ \t]+"((?:[^"\\\n]|\\.)*)"'


@functools.lru_cache(maxsize=256)
def _declared_phrases(path: Path, stamp) -> frozenset[str]:
    """The phrases a profile file declares (as written, spaces normalized)."""
    try:
        text = _read_text(os.fspath(path))
    except (OSError, UnicodeDecodeError):
        return frozenset()  # reading it for use says why
    return frozenset(" ".join(m.group(1).split()) for m in re.finditer(_DECLARATION, text))


def read_header(text: str) -> tuple[str, Version] | None:
    """The name and version of a profile, read without a full parse (for scanning)."""
    match = re.search(_HEADER, text)
    if not match:
        return None
    try:
        return match.group(1), parse_version(match.group(2))
    except ValueError:
        return None


def shown_name(path: Path) -> str:
    """How messages and provenance name a library file: ``traits/NAME.vt`` for the
    shipped library (wherever virtuned is installed), else the path as found."""
    shipped = data.directory("traits")
    if path.parent.resolve() == shipped.resolve():
        return f"traits/{path.name}"
    return str(path)


def load_library_file(path: Path) -> ProfileFile:
    shown = shown_name(path)
    name_file(shown, path)
    return load_file(path, shown)


def load_file(path: str | Path, shown_as: str | None = None) -> ProfileFile:
    """Read a profile file (as UTF-8 text; errors name the file)."""
    try:
        text = _read_text(os.fspath(path))
    except OSError as exc:
        raise error(Span(str(shown_as or path), 1, 1),
                    f"cannot read profile: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(Span(str(shown_as or path), 1, 1),
                    f"profile is not UTF-8 text ({exc.reason})") from None
    return ProfileFile(str(shown_as or path), text)


# path → (stamp, text): a long-lived process (the server, a management app) reads
# the same profiles again and again; a stat is much cheaper than a read.
_TEXTS = caching.Bounded(512)


def _read_text(path: str) -> str:
    stamp = caching.stamp(path)
    if stamp is None:
        os.stat(path)  # raises the OSError that says why
    cached = _TEXTS.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    text = inputs.read_text(path, "profile")  # read with its cap, never whole
    _TEXTS.put(path, (stamp, text))
    return text


def looks_like_path(reference: str) -> bool:
    """``-p`` takes a file when the argument looks like one, else a profile name."""
    return "/" in reference or reference.endswith(".vt") or os.path.isfile(reference)


def load_reference(reference: str, profile_path: tuple[str, ...] = ()) -> ProfileFile:
    """What ``-p`` names: a file by path, else the newest profile of that name."""
    if looks_like_path(reference):
        return load_file(reference)
    library = Library(search_path(tuple(profile_path)))
    path = library.find(reference, ANY_VERSION)
    if path is None:
        raise error(Span("<command line>", 1, 1),
                    f"-p {reference}: no profile '{reference}' on the search path",
                    hint=did_you_mean(reference, library.names()) or
                    "'virtuned profiles' lists them; a file needs a path like ./x.vt")
    return load_library_file(path)
