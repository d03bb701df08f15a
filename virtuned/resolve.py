"""Profiles (ASTs) → one TraitSet: every trait line matched against the registry,
typed, deduplicated and checked for conflicts, in a canonical order that does not
depend on the order the profiles were given in.
"""

from __future__ import annotations

import attrs

from virtuned import registry
from virtuned.diagnostics import (Diagnostic, ExitCode, Related, VirtunedError, error)
from virtuned.merge import Origin
from virtuned.syntax import ast


@attrs.frozen
class ResolvedTrait:
    definition: registry.TraitDef = attrs.field(eq=False)
    phrase: str  # the definition's phrase; stands in for it in equality
    args: tuple[tuple[str, object], ...]
    origin: Origin = attrs.field(eq=False)

    @property
    def kwargs(self) -> dict:
        return dict(self.args)

    @property
    def key(self) -> tuple:
        return self.definition.key(self.kwargs)


def _collect_facts(trait_set: TraitSet) -> dict:
    out: dict = {}
    for trait in trait_set.traits:
        out.update(trait.definition.facts(trait.kwargs))
    return out


@attrs.frozen
class TraitSet:
    traits: tuple[ResolvedTrait, ...]
    # The platform facts the traits fix, e.g. {"machine": "q35"}; computed once.
    facts: dict = attrs.field(init=False, eq=False, repr=False,
                              default=attrs.Factory(_collect_facts, takes_self=True))


def resolve(profiles: list[ast.Profile]) -> TraitSet:
    """Match every trait line; report every unknown trait, then every conflict."""
    definitions = registry.all_traits()
    resolved: list[ResolvedTrait] = []
    problems: list[Diagnostic] = []
    for profile in profiles:
        for statement in profile.statements:
            try:
                resolved += _statement(statement, definitions)
            except VirtunedError as exc:
                problems += exc.diagnostics
    if problems:
        raise VirtunedError(problems, ExitCode.INVALID_INPUT)
    order = {d.phrase: i for i, d in enumerate(definitions)}
    resolved.sort(key=lambda t: (order[t.phrase], _own_order(t), _sortable(t.args),
                                 t.origin.span))
    return TraitSet(_combine(resolved))


def _statement(statement: ast.Statement, definitions) -> list[ResolvedTrait]:
    if isinstance(statement, ast.Header):
        return []
    if isinstance(statement, ast.TraitLine):
        return [match_line(statement, definitions)]
    keyword = {ast.Include: "include", ast.Param: "param", ast.When: "when",
               ast.Prefer: "prefer"}[type(statement)]
    raise error(statement.span, f"'{keyword}' statements are not supported by this "
                f"version of virtuned yet",
                hint="write the traits directly, one per line")


def match_line(line: ast.TraitLine, definitions) -> ResolvedTrait:
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
            origin = Origin(line.words, line.span)
            return ResolvedTrait(definition, definition.phrase,
                                 tuple(sorted(result.items())), origin)
        if result.matched and (best is None or result.matched > best[1].matched):
            best = (definition, result)
    if best is not None and best[1].matched >= len(best[0].name.split()):
        definition, mismatch = best
        span = items[mismatch.item_index].span if mismatch.item_index is not None \
            else line.span
        return _raise(error(span, f"{definition.name}: {mismatch.message}",
                            hint=f"usage: {registry.usage(definition)}"))
    words = [str(i) for i in items]
    close = registry.suggest(words, definitions)
    hint = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else \
        "'virtuned traits' lists every trait"
    return _raise(error(line.span, f"unknown trait '{line.words}'", hint=hint))


def _raise(exc):
    raise exc


def _combine(traits: list[ResolvedTrait]) -> tuple[ResolvedTrait, ...]:
    """Drop repeats of one trait; two different values for one slot is a conflict."""
    by_key: dict[tuple, ResolvedTrait] = {}
    kept: list[ResolvedTrait] = []
    conflicts: list[Diagnostic] = []
    for trait in traits:
        other = by_key.get(trait.key)
        if other is None:
            by_key[trait.key] = trait
            kept.append(trait)
        elif other != trait:
            conflicts.append(Diagnostic(
                "error", f"'{trait.origin.label}' conflicts with '{other.origin.label}'",
                trait.origin.span, (Related(other.origin.span, "the other one is here"),),
                "keep one of the two"))
    if conflicts:
        raise VirtunedError(conflicts, ExitCode.CONFLICT)
    return tuple(kept)


def _own_order(trait: ResolvedTrait) -> tuple:
    custom = trait.definition.order
    return custom(trait.kwargs) if custom else ()


def _sortable(args) -> tuple:
    def canon(value):
        if isinstance(value, frozenset):
            return ("cpus", tuple(sorted(value)))
        if hasattr(value, "bytes"):
            return ("size", value.bytes)
        return (type(value).__name__, value)

    return tuple((name, canon(value)) for name, value in args)
