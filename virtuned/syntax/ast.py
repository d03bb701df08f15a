"""The AST of the trait language: frozen attrs nodes, each with a source span.

Spans never take part in equality (``eq=False``), so ``parse(format(ast)) == ast``
compares meaning, not layout.
"""

from __future__ import annotations

import attrs

from virtuned.diagnostics import Span
from virtuned.frozen import frozen

_span = attrs.field(eq=False, repr=False, default=None)


@frozen
class Word:
    text: str
    span: Span = _span

    def __str__(self) -> str:
        return self.text


@frozen
class Literal:
    """A number-like token (``4``, ``1GiB``, ``0-3,^2``); typed by the trait that uses it."""

    text: str
    span: Span = _span

    def __str__(self) -> str:
        return self.text


@frozen
class String:
    value: str
    span: Span = _span

    def __str__(self) -> str:
        escaped = (self.value.replace("\\", "\\\\").replace('"', '\\"')
                   .replace("\n", "\\n").replace("\t", "\\t"))
        return f'"{escaped}"'


@frozen
class ParamRef:
    name: str
    span: Span = _span

    def __str__(self) -> str:
        return f"${self.name}"


Item = Word | Literal | String | ParamRef


@frozen
class TraitLine:
    items: tuple[Item, ...]
    span: Span = _span

    @property
    def words(self) -> str:
        return " ".join(str(i) for i in self.items)


@frozen
class Prefer:
    """A soft trait: dropped with a warning when it conflicts or cannot hold."""

    trait: TraitLine
    span: Span = _span


@frozen
class Header:
    name: str
    version: str
    summary: str | None
    span: Span = _span


@frozen
class Assignment:
    name: str
    value: Item
    span: Span = _span


@frozen
class Include:
    name: str
    range: str | None
    assignments: tuple[Assignment, ...]
    span: Span = _span


@frozen
class Param:
    name: str
    type: str
    optional: bool
    default: Item | None
    span: Span = _span


@frozen
class FactTest:
    """``machine q35``, ``os family windows``, or a bare param name (``node``)."""

    items: tuple[Item, ...]
    span: Span = _span


@frozen
class Not:
    operand: Condition
    span: Span = _span


@frozen
class And:
    operands: tuple[Condition, ...]
    span: Span = _span


@frozen
class Or:
    operands: tuple[Condition, ...]
    span: Span = _span


Condition = FactTest | Not | And | Or


@frozen
class When:
    condition: Condition
    body: tuple[Statement, ...]
    span: Span = _span


@frozen
class Declaration:
    """``trait "PHRASE" VERSION "what it does" { ... }``: a composite trait, the
    phrase standing for the trait lines (and preferences) of its body."""

    phrase: String
    version: Literal | None
    doc: String | None
    parts: tuple[TraitLine | Prefer, ...]
    span: Span = _span


Statement = Header | Include | Param | TraitLine | Prefer | When | Declaration


@frozen
class Comment:
    """``# text`` at a line and column (``text`` starts with the ``#``)."""

    line: int
    col: int
    text: str


@frozen
class Profile:
    """One parsed file (or one inline ``-t`` text)."""

    source: str = attrs.field(eq=False)
    statements: tuple[Statement, ...]
    # Comments are layout, like spans: kept for the formatter, not part of equality.
    comments: tuple[Comment, ...] = attrs.field(eq=False, default=(), repr=False)

    @property
    def header(self) -> Header | None:
        return next((s for s in self.statements if isinstance(s, Header)), None)
