"""The one explicit registry of primitive traits.

A trait is declared once, in its own module under ``virtuned/vocab/``, with the
``@trait`` decorator: its phrase (words and typed slots, values with their ranges),
its semantics version, its place in canonical order, its documentation (the
docstring), the slot it decides (for conflicts), the platform facts it fixes, what it
needs of the planner, and its emit function. The decorator turns the function into
the trait's handle (its ``TraitDef``): other code names the trait by that handle
(``ctx.of(video)``), never by its phrase. Registering is the registry's only mutable
state; it happens when ``virtuned.vocab`` is imported.

Phrase syntax: plain words, ``{name:type}`` slots and ``[...]`` optional groups, e.g.
``"disk bus {bus:virtio|sata|scsi|ide}"``. Slot types: ``int``, ``size``, ``cpus``,
``word``, ``string``, a slot type a vocabulary module registers (``osinfo``), or a
``|``-separated choice of words. An ``int`` may say which values it takes: a range
``{count:int 1..256}`` (``1..``: no upper bound) or a list ``{size:int 256|512|1024}``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from virtuned import values
from virtuned.diagnostics import did_you_mean, quoted, similarity, suggestions
from virtuned.frozen import frozen
from virtuned.syntax import ast

_BASE_DESCRIPTIONS = {
    "int": "a whole number",
    "size": "a size like 1GiB",
    "cpus": "a CPU list like 0-3,8",
    "word": "a word",
    "string": "a quoted string",
}
VALUE_TYPES = tuple(_BASE_DESCRIPTIONS)


@frozen
class Slot:
    """A typed value in a phrase: its name, its type and the values it takes."""

    name: str
    type: str  # a VALUE_TYPE, "choice", or a registered slot type
    choices: tuple[str, ...] = ()  # choice: its words; int: the only values it takes
    low: int | None = None  # int: the range it takes, inclusive (None: unbounded)
    high: int | None = None

    def describe(self) -> str:
        """What the slot takes, for messages and listings."""
        if self.type == "choice":
            return "one of " + ", ".join(self.choices)
        if self.type == "int" and self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type == "int" and self.low is not None:
            upper = f" to {self.high}" if self.high is not None else " or more"
            return f"a whole number from {self.low}{upper}" if self.high is not None \
                else f"a whole number, {self.low}{upper}"
        if self.type in _SLOT_TYPES:
            return _SLOT_TYPES[self.type].description
        return _BASE_DESCRIPTIONS[self.type]

    def parse(self, text: str) -> Any:
        """The typed value of ``text``, or ValueError saying what was expected."""
        if self.type == "choice":
            if text not in self.choices:
                raise ValueError(f"expected {self.describe()}, got {quoted(text)}"
                                 + _suggestion(text, self.choices))
            return text
        if self.type in ("word", "string"):
            return text
        if self.type in _SLOT_TYPES:
            return _SLOT_TYPES[self.type].parse(text)
        if self.type == "int":
            return self._bounded(values.parse_int(text))
        return {"size": values.parse_size, "cpus": values.parse_cpulist}[self.type](text)

    def _bounded(self, number: int) -> int:
        if (self.choices and str(number) not in self.choices) or \
                (self.low is not None and number < self.low) or \
                (self.high is not None and number > self.high):
            raise ValueError(f"expected {self.describe()}, got {number}")
        return number


def _suggestion(text: str, known) -> str:
    hint = did_you_mean(text, known)
    return f" ({hint})" if hint else ""


@frozen
class Optional:
    tokens: tuple[str | Slot | Optional, ...]


Token = str | Slot | Optional


@frozen(eq=False)
class TraitDef:
    """A trait's declaration, and its handle: emitters, the planner and the rest of
    virtuned name a trait by this object, never by its phrase."""

    phrase: str
    tokens: tuple[Token, ...]
    version: int
    # The trait's place in canonical order: traits are resolved, applied, listed and
    # documented by rank, so it decides which of two elements of one kind that two
    # traits add comes first. Unique per phrase; vocabulary modules leave gaps of 10.
    rank: int
    # Trait text that uses it, with what it needs beside it ("network model
    # virtio\nnetwork queues 2"): the docs show it, the vocabulary tests compile it.
    example: str
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
    # What the trait asks of the planner: args → a need (plan/requirements.py's
    # typed needs, such as ``DedicatedCpus``) or a tuple of them.
    needs: Callable[[dict], Any] | None = None
    # Platform facts the trait prefers, given the facts known (the guest OS): (args,
    # facts) → {"machine": "pc"}. They hold where no trait and not the input decide.
    prefers: Callable[[dict, Any], dict] | None = None

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

    @property
    def module(self) -> str:
        """The module that declares the trait (where its whole story is)."""
        return self.emit.__module__

    def slots(self) -> tuple[Slot, ...]:
        """Every slot of the phrase, optional ones included, in phrase order."""
        def walk(tokens):
            for token in tokens:
                if isinstance(token, Slot):
                    yield token
                elif isinstance(token, Optional):
                    yield from walk(token.tokens)

        return tuple(walk(self.tokens))


@frozen
class Expansion:
    """What an expanding trait stands for: trait-line texts, each with the reason
    it is there (shown in its label), and warnings for the line itself."""

    lines: tuple[tuple[str, str], ...] = ()  # (trait text, reason)
    warnings: tuple[str, ...] = ()


@frozen
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


def trait(phrase: str, *, version: int, rank: int, example: str,
          key: Callable[[dict], tuple] | None = None,
          facts: Callable[[dict], dict] | None = None,
          order: Callable[[dict], tuple] | None = None,
          expand: Callable[[dict, Any], Expansion] | None = None,
          needs: Callable[[dict], Any] | None = None,
          prefers: Callable[[dict, Any], dict] | None = None):
    """Register the decorated emit function as semantics ``version`` of ``phrase``,
    at ``rank`` in canonical order, with an ``example`` of its use; the function's
    name becomes the trait's handle.

    Changing what a trait emits means registering a new version beside the old one.
    """
    tokens = _compile_phrase(phrase)
    # The values a slot takes are not part of the trait's name: a lock that names
    # "network queues {count:int}" replays whatever range the slot has now.
    phrase = re.sub(r"\{(\w+):int\s[^}]*\}", r"{\1:int}", phrase)

    def register(emit) -> TraitDef:
        definition = TraitDef(
            phrase=phrase, tokens=tokens, version=version, rank=rank, example=example,
            doc=emit.__doc__ or "", emit=emit, key=key or (lambda args, _p=phrase: (_p,)),
            facts=facts or (lambda args: {}), order=order, expand=expand, needs=needs,
            prefers=prefers)
        if not definition.doc.strip():
            raise TypeError(f"trait {phrase!r} has no documentation")
        versions = _REGISTRY.setdefault(phrase, {})
        if version in versions:
            raise TypeError(f"trait {phrase!r} version {version} is registered twice")
        for other in _REGISTRY.values():
            first = next(iter(other.values()), None)
            if first is not None and first.rank == rank and first.phrase != phrase:
                raise TypeError(f"trait {phrase!r} has the rank of {first.phrase!r}")
            if first is not None and first.phrase == phrase and first.rank != rank:
                raise TypeError(f"trait {phrase!r} version {version} changes its rank")
        versions[version] = definition
        _changed()
        return definition

    return register


# ---------------------------------------------------------------- completions

@frozen(eq=False)
class CompletionDef:
    """A good-VM default: what a compile writes where the input and every trait are
    silent (the choices of virt-install, Nova and KubeVirt, or better ones). It only
    fills: where the input or a trait says anything, it gives way without a word."""

    name: str  # what it completes, as explain names it ("the guest CPU model")
    rank: int  # its place among completions: they are emitted before the traits
    since: int  # the defaults version that brought it (locks replay a version)
    doc: str
    emit: Callable[..., Any]
    # The trait without which it has nothing to do: a compile without that trait
    # skips it (no Context made, no call).
    only_with: TraitDef | None = None

    @property
    def module(self) -> str:
        return self.emit.__module__


_COMPLETIONS: dict[str, CompletionDef] = {}


def completion(name: str, *, rank: int, since: int = 1, only_with: TraitDef | None = None):
    """Register the decorated function (``ctx`` → edits) as a completion; with
    ``only_with`` (a trait's handle), it runs only in compiles that have that trait."""
    def register(emit) -> CompletionDef:
        definition = CompletionDef(name, rank, since, emit.__doc__ or "", emit, only_with)
        if not definition.doc.strip():
            raise TypeError(f"completion {name!r} has no documentation")
        if name in _COMPLETIONS or any(c.rank == rank for c in _COMPLETIONS.values()):
            raise TypeError(f"completion {name!r}: its name or rank is taken")
        _COMPLETIONS[name] = definition
        _COMPLETIONS_OF.clear()
        defaults_version.cache_clear()
        return definition

    return register


@functools.lru_cache(maxsize=1)
def defaults_version() -> int:
    """This virtuned's defaults: the newest version any completion belongs to
    (asked by every compile; forgotten when a completion registers)."""
    return max((c.since for c in _COMPLETIONS.values()), default=0)


def completions(version: int) -> tuple[CompletionDef, ...]:
    """The completions of defaults ``version`` (0: none), in their order."""
    found = _COMPLETIONS_OF.get(version)
    if found is None:  # a compile asks for them every time; they change only here
        found = _COMPLETIONS_OF[version] = tuple(sorted(
            (c for c in _COMPLETIONS.values() if c.since <= version), key=lambda c: c.rank))
    return found


# completions() by version: a handful of versions at most, emptied on a registration.
_COMPLETIONS_OF: dict[int, tuple[CompletionDef, ...]] = {}


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
    """The current (newest) version of every trait, in canonical order (by rank)."""
    if not _REGISTRY:
        raise RuntimeError("no trait is registered: import virtuned.vocab first")
    return tuple(sorted((versions[max(versions)] for versions in _REGISTRY.values()),
                        key=lambda definition: definition.rank))


def lookup(phrase: str, version: int) -> TraitDef | None:
    return _REGISTRY.get(phrase, {}).get(version)


def slot(definition: TraitDef, name: str) -> Slot:
    """The slot called ``name`` in a definition's phrase."""
    found = next((s for s in definition.slots() if s.name == name), None)
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
    return slot_.parse(text)


_SLOT = re.compile(r"(?P<name>[a-z_]+):(?P<type>[^\s}]+)(?:\s+(?P<values>[^}]+))?")


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
            stack[-1].append(_compile_slot(piece[1:-1], phrase))
        else:
            stack[-1].append(piece)
    if len(stack) != 1:
        raise TypeError(f"unbalanced [ ] in trait phrase {phrase!r}")
    return tuple(stack[0])


def _compile_slot(text: str, phrase: str) -> Slot:
    match = _SLOT.fullmatch(text)
    if match is None:
        raise TypeError(f"bad slot {{{text}}} in trait phrase {phrase!r}")
    name, type_, taken = match.group("name", "type", "values")
    if type_ not in VALUE_TYPES and type_ not in _SLOT_TYPES:
        # Anything else is a choice of words, even of one ("virtio").
        return Slot(name, "choice", tuple(type_.split("|")))
    if taken is None:
        return Slot(name, type_)
    if type_ != "int":
        raise TypeError(f"only int slots take values, in trait phrase {phrase!r}")
    bounds = re.fullmatch(r"([0-9]+)\.\.([0-9]+)?", taken.strip())
    if bounds:
        high = bounds.group(2)
        return Slot(name, "int", low=int(bounds.group(1)),
                    high=int(high) if high is not None else None)
    if re.fullmatch(r"[0-9]+(\|[0-9]+)*", taken.strip()):
        return Slot(name, "int", tuple(taken.strip().split("|")))
    raise TypeError(f"bad values {taken!r} in trait phrase {phrase!r}")


# ---------------------------------------------------------------- matching

@frozen
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
    is_string = isinstance(item, ast.String)
    text = item.value if is_string else item.text
    if slot.type == "choice":
        if is_string and text in slot.choices:
            raise ValueError(f"expected {slot.describe()}, got the quoted string {item}; "
                             f"write it without quotes")
        if not is_string and not _is_word(item) and text in slot.choices:
            return text  # a choice of numbers would be written as a literal
        if not _is_word(item):
            raise ValueError(f"expected {slot.describe()}, got {quoted(text)}")
        return slot.parse(text)
    if slot.type == "word":
        if _is_word(item):
            return text
        raise ValueError(f"expected a word, got {quoted(text)}")
    if slot.type == "string":
        return text
    if is_string:
        raise ValueError(f"expected {slot.describe()}, got a quoted string")
    return slot.parse(text)


def _is_word(item) -> bool:
    return isinstance(item, ast.Word)


def _show(item) -> str:
    return repr(str(item))


def _render(tokens, choices: bool = False) -> str:
    """A phrase with each slot as its NAME, or with a choice's words (``a|b``)."""
    out = []
    for token in tokens:
        if isinstance(token, str):
            out.append(token)
        elif isinstance(token, Optional):
            out.append("[" + _render(token.tokens, choices) + "]")
        elif choices and token.type == "choice":
            out.append("|".join(token.choices))
        else:
            out.append(token.name.upper())
    return " ".join(out)


def usage(definition: TraitDef) -> str:
    """The phrase with its slots named: ``disk bus BUS`` (hints say it)."""
    return _render(definition.tokens)


def signature(definition: TraitDef) -> str:
    """The phrase as its users write it: ``disk bus virtio|sata|scsi|ide``,
    ``vcpus COUNT`` (listings and docs show it)."""
    return _render(definition.tokens, choices=True)


def suggest(words: list[str], names) -> list[str]:
    """Trait names close to the leading words of an unknown line ("did you mean"):
    each name is compared with as many leading words as it has."""
    names = sorted(set(names))
    candidates = set()
    for size in sorted({len(n.split()) for n in names}):
        candidates.update(suggestions(" ".join(words[:size]),
                                      [n for n in names if len(n.split()) == size], 3))
    return sorted(candidates, key=lambda n: (-similarity(" ".join(words[:len(n.split())]),
                                                         n), n))[:3]
