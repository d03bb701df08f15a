"""Trait lines → resolved traits → one trait per slot, in canonical order."""

from __future__ import annotations

from virtuned.diagnostics import (Diagnostic, ExitCode, Related, VirtunedError, asking,
                                  error)
from virtuned.resolve import registry
from virtuned.resolve.model import Link, Origin, ResolvedTrait, overrides_its_include
from virtuned.syntax import ast


def match_line(line: ast.TraitLine, definitions, chain: tuple[Link, ...] = (),
               strength: str = "require") -> ResolvedTrait:
    """The one trait a line names, with typed arguments; or an error that says why not."""
    items = line.items
    for item in items:
        if isinstance(item, ast.ParamRef):
            raise error(item.span, f"unknown parameter ${item.name}",
                        hint="parameters are declared with 'param NAME: TYPE'")
    best: tuple[registry.TraitDef, registry.Mismatch] | None = None
    for definition in definitions:
        result = registry.match(definition, items)
        if not isinstance(result, registry.Mismatch):
            origin = Origin(line.words, line.span, chain, strength)
            return ResolvedTrait(definition, definition.phrase,
                                 tuple(sorted(result.items())), origin)
        if result.matched and (best is None or result.matched > best[1].matched):
            best = (definition, result)
    if best is not None and best[1].matched >= len(best[0].name.split()):
        definition, mismatch = best
        span = items[mismatch.item_index].span if mismatch.item_index is not None \
            else line.span
        raise error(span, f"{definition.name}: {mismatch.message}",
                    hint=f"usage: {registry.usage(definition)}")
    words = [str(i) for i in items]
    close = registry.suggest(words, definitions)
    hint = asking(close) or "'virtuned traits' lists every trait"
    raise error(line.span, f"unknown trait '{line.words}'", hint=hint)


def combine(traits: list[ResolvedTrait]) -> tuple[tuple[ResolvedTrait, ...],
                                                   tuple[Diagnostic, ...]]:
    """One trait per slot. Required traits must agree (else conflict); a preference
    fills a slot only no required trait decides, and only if preferences agree."""
    by_key: dict[tuple, list[ResolvedTrait]] = {}
    for trait in traits:
        by_key.setdefault(trait.key, []).append(trait)
    kept: list[ResolvedTrait] = []
    conflicts: list[Diagnostic] = []
    dropped: list[Diagnostic] = []
    for group in by_key.values():
        required = [t for t in group if not t.soft]
        preferred = [t for t in group if t.soft]
        if required:
            first = required[0]
            conflicts += [_conflict(t, first) for t in required[1:] if t != first]
            kept.append(first)
            dropped += [_dropped(t, f"'{first.origin.label}' is required") for t in preferred
                        if _values(t) != _values(first)
                        and not overrides_its_include(first.origin, t.origin)]
        elif len({_values(t) for t in preferred}) == 1:
            kept.append(preferred[0])
        else:
            others = ", ".join(sorted({f"'{t.origin.label}'" for t in preferred}))
            dropped += [_dropped(t, f"the preferences {others} disagree, so none applies")
                        for t in preferred]
    if conflicts:
        raise VirtunedError(conflicts, ExitCode.CONFLICT)
    order = {id(t): i for i, t in enumerate(traits)}
    kept.sort(key=lambda t: order[id(t)])
    return tuple(kept), tuple(dropped)


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
                      trait.origin.span)


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
    return tuple(Related(link.span, f"'{link.name}' is included here")
                 for link in reversed(chain))
