"""Trait lines → resolved traits → one trait per slot, in canonical order."""

from __future__ import annotations

import attrs

from virtuned.diagnostics import (Diagnostic, ExitCode, Related, VirtunedError, asking,
                                  error, quoted)
from virtuned.resolve import registry
from virtuned.resolve.model import Link, Origin, ResolvedTrait, overrides_its_include
from virtuned.syntax import ast


def match_line(line: ast.TraitLine, definitions, chain: tuple[Link, ...] = (),
               strength: str = "require") -> ResolvedTrait:
    """The one trait a line names, with typed arguments; or an error that says why not."""
    resolved = try_match(line, definitions, chain, strength)
    if resolved is None:
        raise unmatched(line, definitions)
    return resolved


def try_match(line: ast.TraitLine, definitions, chain: tuple[Link, ...] = (),
              strength: str = "require") -> ResolvedTrait | None:
    """The one trait of virtuned's a line names, with typed arguments (None: none)."""
    for item in line.items:
        if isinstance(item, ast.ParamRef):
            raise error(item.span, f"unknown parameter ${item.name}",
                        hint="parameters are declared with 'param NAME: TYPE'")
    for definition in definitions:
        result = registry.match(definition, line.items)
        if not isinstance(result, registry.Mismatch):
            origin = Origin(line.words, line.span, chain, strength)
            return ResolvedTrait(definition, definition.phrase,
                                 tuple(sorted(result.items())), origin)
    return None


def unmatched(line: ast.TraitLine, definitions, composites: tuple[str, ...] = ()):
    """Why a line names no trait (of virtuned's, or the ``composites`` phrases): the
    trait whose words it starts with and the value that does not fit, or the
    names it is close to."""
    items = line.items
    best: tuple[registry.TraitDef, registry.Mismatch] | None = None
    for definition in definitions:
        result = registry.match(definition, items)
        if result.matched and (best is None or result.matched > best[1].matched):
            best = (definition, result)
    if best is not None and best[1].matched >= len(best[0].name.split()):
        definition, mismatch = best
        span = items[mismatch.item_index].span if mismatch.item_index is not None \
            else line.span
        return error(span, f"{definition.name}: {mismatch.message}",
                     hint=f"usage: {registry.usage(definition)}")
    words = [str(i) for i in items]
    close = registry.suggest(words, [d.name for d in definitions] + list(composites))
    hint = asking(close) or "'virtuned traits' lists every trait"
    return error(line.span, f"unknown trait {quoted(line.words, 60)}", hint=hint)


def combine(traits: list[ResolvedTrait]) -> tuple[tuple[ResolvedTrait, ...],
                                                   tuple[Diagnostic, ...]]:
    """One trait per slot. Required traits of one slot must agree (else conflict). A
    preference only fills what nothing decides: it gives way to a required trait of
    its slot or of its name (a required 'video qxl' decides the video, so a preferred
    'video virtio' does not add a second card), and preferences of one slot or name
    that disagree all give way."""
    by_key: dict[tuple, list[ResolvedTrait]] = {}
    for trait in traits:
        if not trait.soft:
            by_key.setdefault(trait.key, []).append(trait)
    conflicts = [_conflict(t, group[0]) for group in by_key.values()
                 for t in group[1:] if t != group[0]]
    if conflicts:
        raise VirtunedError(conflicts, ExitCode.CONFLICT)
    kept = [group[0] for group in by_key.values()]
    deciding = _by_slot(kept)
    dropped: list[tuple[ResolvedTrait, str]] = []  # (preference, why)
    open_ = []
    for preference in (t for t in traits if t.soft):
        deciders = _deciders(deciding, kept, preference)
        decider = next((r for r in deciders if _values(r) != _values(preference)), None)
        if decider is None and deciders:
            continue  # the same as a required trait: one of them is enough
        if decider is None:
            open_.append(preference)
        elif not overrides_its_include(decider.origin, preference.origin):
            dropped.append((preference, f"'{decider.origin.label}' is required"))
    for group in _slots(open_):
        if len({_values(t) for t in group}) == 1:
            kept.append(group[0])
            continue
        others = ", ".join(sorted({f"'{t.origin.label}'" for t in group}))
        dropped += [(t, f"the preferences {others} disagree, so none applies")
                    for t in group]
    order = {id(t): i for i, t in enumerate(traits)}
    kept.sort(key=lambda t: order[id(t)])
    dropped.sort(key=lambda pair: order[id(pair[0])])
    return tuple(kept), tuple(_dropped(t, why) for t, why in dropped)


# Two traits decide the same thing when they share their slot or their name; the
# lookups below index both, so that combining stays linear in the number of traits.

def _decides(trait: ResolvedTrait) -> tuple[tuple, tuple]:
    return ("slot", trait.key), ("name", trait.definition.name)


def _by_slot(traits: list[ResolvedTrait]) -> dict[tuple, list[int]]:
    """What each trait decides → the positions of the traits that decide it."""
    index: dict[tuple, list[int]] = {}
    for position, trait in enumerate(traits):
        for decided in _decides(trait):
            index.setdefault(decided, []).append(position)
    return index


def _deciders(index: dict[tuple, list[int]], kept: list[ResolvedTrait],
              preference: ResolvedTrait) -> list[ResolvedTrait]:
    """The required traits (of ``kept``, indexed) that decide what ``preference``
    would, in their order."""
    positions = sorted({p for decided in _decides(preference) for p in index.get(decided, ())})
    return [kept[p] for p in positions]


def _slots(preferences: list[ResolvedTrait]) -> list[list[ResolvedTrait]]:
    """Preferences grouped by what they decide (sharing a slot or a name, directly
    or through another), each group in canonical order (union-find: linear)."""
    parent = list(range(len(preferences)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple, int] = {}
    for i, preference in enumerate(preferences):
        for decided in _decides(preference):
            parent[root(i)] = root(first.setdefault(decided, i))
    groups: dict[int, list[ResolvedTrait]] = {}
    for i, preference in enumerate(preferences):
        groups.setdefault(root(i), []).append(preference)
    return list(groups.values())


def _values(trait: ResolvedTrait) -> tuple:
    return (trait.phrase, trait.args)


def _conflict(trait: ResolvedTrait, other: ResolvedTrait) -> Diagnostic:
    related = (Related(other.origin.span, "the other one is here"),)
    related += chain_notes(other.origin.chain)
    notes = chain_notes(trait.origin.chain)
    return Diagnostic("error", f"'{trait.origin.label}' conflicts with "
                      f"'{other.origin.label}'", trait.origin.span, notes + related,
                      "keep one of the two, or make the weaker one a 'prefer'")


def _dropped(trait: ResolvedTrait, why: str) -> Diagnostic:
    return Diagnostic("warning", f"preference '{trait.origin.label}' dropped: {why}",
                      trait.origin.span, composite_notes(trait.origin.chain))


def own_order(trait: ResolvedTrait) -> tuple:
    custom = trait.definition.order
    return custom(trait.kwargs) if custom else ()


def sortable(args) -> tuple:
    def canon(value):
        if isinstance(value, frozenset):
            return ("cpus", tuple(sorted(value)))
        if hasattr(value, "bytes"):
            return ("size", value.bytes)
        return (type(value).__name__, value)

    return tuple((name, canon(value)) for name, value in args)


def chain_notes(chain) -> tuple[Related, ...]:
    return tuple(Related(link.span, link.note) for link in reversed(chain))


def composite_notes(chain) -> tuple[Related, ...]:
    """Where the composite traits in ``chain`` were used: a part's own line alone
    would not say which use a diagnostic is about."""
    return chain_notes([link for link in chain if link.composite])


def with_uses(warnings, traits) -> tuple[Diagnostic, ...]:
    """``warnings``, each one about a part of a composite trait noting where the
    composite was used."""
    if not warnings:  # the usual compile: nothing to look up
        return ()
    uses = {trait.origin.span: composite_notes(trait.origin.chain) for trait in traits}
    return tuple(attrs.evolve(w, related=w.related + uses[w.span])
                 if uses.get(w.span) else w for w in warnings)
