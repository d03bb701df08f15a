"""Composite traits: a phrase a profile declares as a bundle of traits.

    trait "nfv networking" 1 "Virtio NICs tuned for packet processing" {
        network model virtio
        prefer network queues auto
        network ring size 1024
    }

A composite is used like any trait (``-t 'nfv networking'``, a profile's line) and
stands for its parts, resolved at that place: a part conflicts, fills or gives way
as it would written there, and ``explain`` and conflicts name the part with the use
behind it. A part written ``prefer`` is a preference wherever the composite is used;
``prefer nfv networking`` makes every part one. Parts may use other composites.

Declarations are found in the files of the request (``-p FILE``) and in the newest
version of every profile on the search path; one phrase has one declaring profile.
A phrase that virtuned's own vocabulary reads as a trait is that trait: a profile
cannot redefine it. Declaring is all a declaration does: the profile's own trait
lines apply only when the profile is used.
"""

from __future__ import annotations

import re

from virtuned.diagnostics import VirtunedError, error, quoted
from virtuned.frozen import frozen
from virtuned.resolve import profiles, registry
from virtuned.syntax import ast
from virtuned.syntax.parser import parse

# Words a statement starts with: a phrase starting with one could not be used.
KEYWORDS = ("profile", "include", "param", "prefer", "when", "trait")
MAX_PHRASE_WORDS = 8
# How deep composites may use composites (the walk recurses per level).
MAX_DEPTH = 8
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]*")


@frozen
class Composite:
    """A declared composite trait and the profile that declares it."""

    phrase: str
    version: int
    doc: str
    parts: tuple[ast.TraitLine | ast.Prefer, ...]
    declaration: ast.Declaration
    file: profiles.ProfileFile
    tree: ast.Profile

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    @property
    def profile(self) -> str:
        header = self.tree.header
        return header.name if header else self.file.source


def declared(file: profiles.ProfileFile, tree: ast.Profile) -> dict[str, Composite]:
    """The composites a parsed file declares, each checked; errors raise (exit 2)."""
    found: dict[str, Composite] = {}
    problems = []
    for statement in tree.statements:
        if not isinstance(statement, ast.Declaration):
            continue
        try:
            composite = _checked(statement, file, tree)
        except VirtunedError as exc:
            problems += exc.diagnostics
            continue
        if composite.phrase in found:
            first = found[composite.phrase].declaration.phrase.span
            problems.append(error(statement.phrase.span, f"trait '{composite.phrase}' is "
                                  f"declared twice in this file (first at {first})"
                                  ).diagnostics[0])
        found[composite.phrase] = composite
    if problems:
        raise VirtunedError(problems)
    return found


def _checked(declaration: ast.Declaration, file, tree) -> Composite:
    phrase_item = declaration.phrase
    words = phrase_item.value.split()
    phrase = " ".join(words)
    span = phrase_item.span
    if not words or len(words) > MAX_PHRASE_WORDS or not all(
            _WORD.fullmatch(w) for w in words):
        raise error(span, f"a trait's phrase is 1 to {MAX_PHRASE_WORDS} words (letters, "
                    f"digits, _ . + -, not starting with a digit), not "
                    f"{quoted(phrase_item.value)}")
    if words[0] in KEYWORDS:
        raise error(span, f"a trait's phrase cannot start with '{words[0]}', which "
                    "starts a statement")
    builtin = _builtin(words)
    if builtin is not None:
        raise error(span, f"'{phrase}' is virtuned's trait '{builtin.name}': a profile "
                    "cannot declare it again", hint="choose another phrase")
    if declaration.version is None or declaration.doc is None or \
            not declaration.doc.value.strip():
        raise error(declaration.span, f"trait '{phrase}' needs a version and a "
                    "description", hint=f'trait "{phrase}" 1 "what it does" {{ ... }}')
    version = declaration.version.text
    if not (version.isdigit() and len(version) <= 4 and 1 <= int(version)):
        raise error(declaration.version.span, f"a trait's version is a whole number "
                    f"from 1 to 9999, not {quoted(version)}")
    if not declaration.parts:
        raise error(declaration.span, f"trait '{phrase}' has no parts",
                    hint="list the trait lines it stands for between its braces")
    for part in declaration.parts:
        line = part.trait if isinstance(part, ast.Prefer) else part
        for item in line.items:
            if isinstance(item, ast.ParamRef):
                raise error(item.span, "a composite trait's parts take no $params",
                            hint="write the values; a profile's params stay in the profile")
    return Composite(phrase, int(version), declaration.doc.value, declaration.parts,
                     declaration, file, tree)


def _builtin(words: list[str]) -> registry.TraitDef | None:
    """virtuned's trait that reads these words, if any."""
    items = tuple(ast.Literal(w) if w[:1].isdigit() else ast.Word(w) for w in words)
    return next((d for d in registry.all_traits()
                 if not isinstance(registry.match(d, items), registry.Mismatch)), None)


def words_of(line: ast.TraitLine) -> str | None:
    """The phrase a line would use a composite by: its words (None: it has values)."""
    if not all(isinstance(item, ast.Word) for item in line.items):
        return None
    return " ".join(item.text for item in line.items)


class Composites:
    """The composites a request may use: its own files' declarations, then the
    search path's (read only when a line names no trait of virtuned's)."""

    def __init__(self, library: profiles.Library):
        self.library = library
        self.own: dict[str, Composite] = {}
        self._found: dict[str, Composite | None] = {}
        self._declared: dict[str, tuple[str, ...]] | None = None  # the path's, once

    def add_own(self, file: profiles.ProfileFile, tree: ast.Profile) -> None:
        """The declarations of a file the request names."""
        for phrase, composite in declared(file, tree).items():
            other = self.own.get(phrase)
            if other is not None and other.file.source != file.source:
                raise _twice(phrase, composite, other)
            self.own[phrase] = composite

    def find(self, phrase: str) -> Composite | None:
        """The composite of this phrase: the request's own, else the one profile on
        the search path that declares it."""
        if phrase in self.own:
            return self.own[phrase]
        if phrase not in self._found:
            self._found[phrase] = self._from_library(phrase)
        return self._found[phrase]

    def _from_library(self, phrase: str) -> Composite | None:
        found = []
        for name in self.declared().get(phrase, ()):
            path = self.library.find(name, profiles.ANY_VERSION)
            if path is None or phrase not in self.library.declared_in(path):
                continue  # only an older version declares it
            file = profiles.load_library_file(path)
            found.append(declared(file, parse(file.text, file.source)).get(phrase))
        found = [c for c in found if c is not None]
        if len(found) > 1:
            raise _twice(phrase, found[1], found[0])
        return found[0] if found else None

    def phrases(self) -> tuple[str, ...]:
        """Every phrase the request could use (for suggestions)."""
        return tuple(sorted(set(self.own) | set(self.declared())))

    def declared(self) -> dict[str, tuple[str, ...]]:
        """The search path's phrases → their declaring profiles, read once a request."""
        if self._declared is None:
            self._declared = self.library.declarations()
        return self._declared


def _twice(phrase: str, one: Composite, other: Composite):
    return error(one.declaration.phrase.span, f"trait '{phrase}' is declared by "
                 f"{one.file.source} and by {other.file.source}: one phrase, one "
                 "declaration", hint="rename one of them")


def listing(library: profiles.Library) -> tuple[Composite, ...]:
    """Every composite on the search path (newest version of each profile), by
    phrase. A declaration that is wrong is an error here too."""
    composites = Composites(library)
    found = (composites.find(phrase) for phrase in sorted(composites.declared()))
    return tuple(c for c in found if c is not None)
