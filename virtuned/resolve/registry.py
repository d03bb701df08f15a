"""The one explicit registry of primitive traits.

A trait is declared once, in its own module under ``virtuned/vocab/``, with the
``@trait`` decorator: its phrase (words and typed slots), its semantics version, its
documentation (the docstring), the slot it decides (for conflicts), the platform facts
it fixes (for the planner) and its emit function. Registering is the registry's only
mutable state; it happens when ``virtuned.vocab`` is imported.

Phrase syntax: plain words, ``{name:type}`` slots and ``[...]`` optional groups, e.g.
``"disk bus {bus:virtio|sata|scsi|ide}"``. Slot types: ``int``, ``size``, ``cpus``,
``word``, ``string``, or a ``|``-separated choice of words.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable
from typing import Any

import attrs

from virtuned import values
from virtuned.syntax import ast


@attrs.frozen
class Slot:
    name: str
    type: str
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type in _SLOT_TYPES:
            return _SLOT_TYPES[self.type].description
        return {
            "int": "a whole number",
            "size": "a size like 1GiB",
            "cpus": "a CPU list like 0-3,8",
            "word": "a word",
            "string": "a quoted string",
        }[self.type]


@attrs.frozen
class Optional:
    tokens: tuple[str | Slot | Optional, ...]


Token = str | Slot | Optional


@attrs.frozen
class TraitDef:
    phrase: str
    tokens: tuple[Token, ...]
    version: int
    doc: str
    emit: Callable[..., Any]
    # Two traits with the same key must agree on their arguments (else: conflict).
    key: Callable[[dict], tuple]
    # Platform facts this trait fixes, e.g. {"machine": "q35"}.
    facts: Callable[[dict], dict]
    # Canonical order among traits of this phrase (default: by argument values).
    order: Callable[[dict], tuple] | None = None
    # A trait that stands for other traits (``recommended``): (args, facts) → an
    # Expansion, resolved as preferences of their own beside it.
    expand: Callable[[dict, Any], Expansion] | None = None
    # The planner contribution: args → fields of placement.Requirements it sets
    # ({"cpus": "dedicated"}), so the planner knows the trait without naming it.
    needs: Callable[[dict], dict] | None = None

    @property
    def name(self) -> str:
        """The leading words: how the trait is listed and how suggestions are made."""
        words = []
        for token in self.tokens:
            if not isinstance(token, str):
                break
            words.append(token)
        return " ".join(words)

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""


@attrs.frozen
class Expansion:
    """What an expanding trait stands for: trait-line texts, each with the reason
    it is there (shown in its label), and warnings for the line itself."""

    lines: tuple[tuple[str, str], ...] = ()  # (trait text, reason)
    warnings: tuple[str, ...] = ()


@attrs.frozen
class SlotType:
    """A slot type a vocabulary module adds (``{id:osinfo}``): its parser raises
    ValueError with the message the user sees."""

    parse: Callable[[str], Any]
    description: str


_SLOT_TYPES: dict[str, SlotType] = {}


def slot_type(name: str, parse: Callable[[str], Any], description: str) -> None:
    """Register a slot type; phrases that use it must be registered after it."""
    _SLOT_TYPES[name] = SlotType(parse, description)


# phrase → {semantics version → definition}. Old versions stay registered so that a
# lock written by an older virtuned replays with the behaviour it was written with.
_REGISTRY: dict[str, dict[int, TraitDef]] = {}
VALUE_TYPES = ("int", "size", "cpus", "word", "string")


def trait(phrase: str, *, version: int, key: Callable[[dict], tuple] | None = None,
          facts: Callable[[dict], dict] | None = None,
          order: Callable[[dict], tuple] | None = None,
          expand: Callable[[dict, Any], Expansion] | None = None,
          needs: Callable[[dict], dict] | None = None):
    """Register the decorated emit function as semantics ``version`` of ``phrase``.

    Changing what a trait emits means registering a new version beside the old one.
    """
    tokens = _compile_phrase(phrase)

    def register(emit):
        definition = TraitDef(
            phrase=phrase, tokens=tokens, version=version, doc=emit.__doc__ or "",
            emit=emit, key=key or (lambda args, _p=phrase: (_p,)),
            facts=facts or (lambda args: {}), order=order, expand=expand, needs=needs)
        if not definition.doc.strip():
            raise TypeError(f"trait {phrase!r} has no documentation")
        versions = _REGISTRY.setdefault(phrase, {})
        if version in versions:
            raise TypeError(f"trait {phrase!r} version {version} is registered twice")
        versions[version] = definition
        _changed()
        return emit

    return register


def unregister(phrase: str, version: int) -> None:
    """Remove one version (tests register throwaway traits and clean up after)."""
    del _REGISTRY[phrase][version]
    if not _REGISTRY[phrase]:
        del _REGISTRY[phrase]
    _changed()


_GENERATION = [0]


def _changed() -> None:
    _GENERATION[0] += 1
    all_traits.cache_clear()


def generation() -> int:
    """Changes whenever the vocabulary does, so caches of resolved traits can tell."""
    return _GENERATION[0]


@functools.lru_cache(maxsize=1)
def all_traits() -> tuple[TraitDef, ...]:
    """The current (newest) version of every trait, in registration order."""
    if not _REGISTRY:
        raise RuntimeError("no trait is registered: import virtuned.vocab first")
    return tuple(versions[max(versions)] for versions in _REGISTRY.values())


def lookup(phrase: str, version: int) -> TraitDef | None:
    return _REGISTRY.get(phrase, {}).get(version)


def slot(definition: TraitDef, name: str) -> Slot:
    """The slot called ``name`` in a definition's phrase."""
    def walk(tokens):
        for token in tokens:
            if isinstance(token, Slot) and token.name == name:
                return token
            if isinstance(token, Optional):
                found = walk(token.tokens)
                if found:
                    return found
        return None

    found = walk(definition.tokens)
    if found is None:
        raise KeyError(f"{definition.phrase!r} has no slot {name!r}")
    return found


def to_text(value) -> str:
    """A typed argument as the text that would type back to it."""
    if isinstance(value, frozenset):
        return values.format_cpulist(value)
    return str(value)


def from_text(slot_: Slot, text: str):
    """The inverse of ``to_text`` for one slot (used to read locks)."""
    if slot_.type == "choice":
        if text not in slot_.choices:
            raise ValueError(f"expected {slot_.describe()}, got {text!r}")
        return text
    if slot_.type in ("word", "string"):
        return text
    if slot_.type in _SLOT_TYPES:
        return _SLOT_TYPES[slot_.type].parse(text)
    return {"int": values.parse_int, "size": values.parse_size,
            "cpus": values.parse_cpulist}[slot_.type](text)


def _compile_phrase(phrase: str) -> tuple[Token, ...]:
    pieces = re.findall(r"\{[^}]*\}|\[|\]|[^\s\[\]{}]+", phrase)
    stack: list[list[Token]] = [[]]
    for piece in pieces:
        if piece == "[":
            stack.append([])
        elif piece == "]":
            group = Optional(tuple(stack.pop()))
            stack[-1].append(group)
        elif piece.startswith("{"):
            name, _, type_ = piece[1:-1].partition(":")
            # Anything but a value type is a choice of words, even of one ("virtio").
            choices = () if type_ in VALUE_TYPES or type_ in _SLOT_TYPES \
                else tuple(type_.split("|"))
            stack[-1].append(Slot(name, "choice" if choices else type_, choices))
        else:
            stack[-1].append(piece)
    if len(stack) != 1:
        raise TypeError(f"unbalanced [ ] in trait phrase {phrase!r}")
    return tuple(stack[0])


# ---------------------------------------------------------------- matching

@attrs.frozen
class Mismatch:
    """How far a trait's phrase matched a line, and why it stopped."""

    matched: int  # number of items consumed before the failure
    message: str
    item_index: int | None  # which item is wrong (None: the line is too short)


def match(definition: TraitDef, items: tuple) -> dict | Mismatch:
    """Match trait-line items (already param-substituted) against a phrase.

    Returns the typed arguments, or the Mismatch that got furthest.
    """
    result = _match(definition.tokens, items, 0, {})
    if isinstance(result, Mismatch):
        return result
    args, consumed = result
    if consumed != len(items):
        return Mismatch(consumed, f"unexpected {_show(items[consumed])} after "
                        f"'{_render(definition.tokens)}'", consumed)
    return args


def _match(tokens, items, pos, args):
    if not tokens:
        return args, pos
    token, rest = tokens[0], tokens[1:]
    if isinstance(token, Optional):
        with_group = _match(token.tokens + rest, items, pos, args)
        if not isinstance(with_group, Mismatch) and with_group[1] == len(items):
            return with_group
        without = _match(rest, items, pos, args)
        if isinstance(without, Mismatch):
            # Report whichever attempt got further: it says more about the mistake.
            if isinstance(with_group, Mismatch) and with_group.matched > without.matched:
                return with_group
            return without
        if without[1] == len(items) or isinstance(with_group, Mismatch):
            return without
        return with_group
    if pos >= len(items):
        want = token if isinstance(token, str) else token.describe()
        return Mismatch(pos, f"missing {want!r}" if isinstance(token, str) else
                        f"missing {token.name}: expected {want}", None)
    item = items[pos]
    if isinstance(token, str):
        if _is_word(item) and item.text == token:
            return _match(rest, items, pos + 1, args)
        return Mismatch(pos, f"expected '{token}', got {_show(item)}", pos)
    try:
        value = convert(token, item)
    except ValueError as exc:
        return Mismatch(pos, f"{token.name}: {exc}", pos)
    return _match(rest, items, pos + 1, {**args, token.name: value})


def convert(slot: Slot, item) -> Any:
    """Type one item for a slot, or raise ValueError saying what was expected."""
    text = item.value if isinstance(item, ast.String) else item.text
    if slot.type == "choice":
        if _is_word(item) and text in slot.choices:
            return text
        if not _is_word(item) and text in slot.choices:
            raise ValueError(f"expected {slot.describe()}, got the quoted string {item}; "
                             f"write it without quotes")
        close = difflib.get_close_matches(text, slot.choices, n=1)
        suggestion = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"expected {slot.describe()}, got {text!r}{suggestion}")
    if slot.type == "word":
        if _is_word(item):
            return text
        raise ValueError(f"expected a word, got {text!r}")
    if slot.type == "string":
        return text
    if isinstance(item, ast.String):
        raise ValueError(f"expected {slot.describe()}, got a quoted string")
    if slot.type in _SLOT_TYPES:
        return _SLOT_TYPES[slot.type].parse(text)
    return {"int": values.parse_int, "size": values.parse_size,
            "cpus": values.parse_cpulist}[slot.type](text)


def _is_word(item) -> bool:
    return isinstance(item, ast.Word)


def _show(item) -> str:
    return repr(str(item))


def _render(tokens) -> str:
    out = []
    for token in tokens:
        if isinstance(token, str):
            out.append(token)
        elif isinstance(token, Slot):
            out.append(token.name.upper())
        else:
            out.append("[" + _render(token.tokens) + "]")
    return " ".join(out)


def usage(definition: TraitDef) -> str:
    return _render(definition.tokens)


def suggest(words: list[str], definitions) -> list[str]:
    """Trait names close to the leading words of an unknown line ("did you mean")."""
    names = sorted({d.name for d in definitions})
    candidates = []
    for size in sorted({len(n.split()) for n in names}):
        head = " ".join(words[:size])
        candidates += difflib.get_close_matches(head, [n for n in names
                                                       if len(n.split()) == size],
                                                n=3, cutoff=0.6)
    return sorted(set(candidates), key=lambda n: -difflib.SequenceMatcher(
        None, " ".join(words[:len(n.split())]), n).ratio())[:3]
