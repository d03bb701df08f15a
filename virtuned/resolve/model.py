"""What resolution produces and the stages after it read: resolved traits with
their origins, the trait set, and the request it was resolved from."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from virtuned.diagnostics import CLI_OPTIONS, Diagnostic, OptionNames, Span
from virtuned.frozen import frozen
from virtuned.resolve import registry
from virtuned.resolve.profiles import ProfileFile


@frozen
class Link:
    """One step of the chain that led to a trait: profile ``name`` included at
    ``span``; or the composite trait ``name`` used at ``span`` (kind "trait"), or
    declared there (kind "declaration": ``virtuned check`` expands it alone)."""

    name: str
    span: Span
    kind: str = "include"

    def __str__(self) -> str:
        return f"{self.kind} {self.name} at {self.span}"

    @property
    def note(self) -> str:
        """What a diagnostic's note says at ``span``."""
        done = {"include": "included", "trait": "used", "declaration": "declared"}
        return f"'{self.name}' is {done[self.kind]} here"

    @property
    def composite(self) -> bool:
        return self.kind != "include"


@frozen
class Origin:
    """What asked for an edit: a trait with its source location, or completion."""

    label: str  # the trait text, e.g. "video qxl", or "completion"
    span: Span | None = None
    # How the trait got here: the includes that led to it, outermost first.
    chain: tuple[Link, ...] = ()
    # "require"; "prefer": dropped with a warning when it cannot hold; "default": a
    # completion, which gives way without a word
    strength: str = "require"

    @property
    def soft(self) -> bool:
        return self.strength == "prefer"

    @property
    def home(self) -> str | None:
        """The file whose profile stated the trait: for a part of a composite trait,
        where the composite was used (a composite stands for its parts there)."""
        home = self.span.file if self.span is not None else None
        for link in reversed(self.chain):
            if not link.composite:
                break
            home = link.span.file
        return home


@frozen
class ResolvedTrait:
    definition: registry.TraitDef = attrs.field(eq=False)
    phrase: str  # the definition's phrase; stands in for it in equality
    args: tuple[tuple[str, object], ...]
    origin: Origin = attrs.field(eq=False)
    # The arguments as keywords, made once: every compile passes them to the trait's
    # emitter, and a resolved trait set is cached from request to request. Read-only
    # by convention (a MappingProxyType would enforce it, but ``**`` of one costs more).
    kwargs: dict = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self):
        object.__setattr__(self, "kwargs", dict(self.args))

    @property
    def key(self) -> tuple:
        return self.definition.key(self.kwargs)

    @property
    def soft(self) -> bool:
        return self.origin.soft

    def is_trait(self, handle: registry.TraitDef) -> bool:
        """Whether this is the trait of ``handle`` (at any semantics version)."""
        return self.phrase == handle.phrase


@frozen(cache_hash=True)
class UsedProfile:
    """A profile that contributed, for provenance and locks."""

    name: str  # the header's name, or the source for a file of bare trait lines
    version: str | None
    sha256: str
    source: str


@frozen
class Skipped:
    """A ``when`` block whose condition did not hold, for ``explain``."""

    span: Span
    condition: str
    chain: tuple[Link, ...]


def _collect_facts(trait_set: TraitSet) -> dict:
    out: dict = {}
    for trait in trait_set.traits:
        out.update(trait.definition.facts(trait.kwargs))
    return out


def _by_phrase(trait_set: TraitSet) -> dict:
    found: dict = {}
    for trait in trait_set.traits:
        found.setdefault(trait.phrase, []).append(trait)
    return {phrase: tuple(traits) for phrase, traits in found.items()}


@frozen
class TraitSet:
    traits: tuple[ResolvedTrait, ...]
    profiles: tuple[UsedProfile, ...] = ()
    warnings: tuple[Diagnostic, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    # The defaults version (registry.completions) a lock recorded; None: this
    # virtuned's own.
    defaults: int | None = None
    # The platform facts the traits fix, e.g. {"machine": "q35"}; computed once.
    facts: dict = attrs.field(init=False, eq=False, repr=False,
                              default=attrs.Factory(_collect_facts, takes_self=True))
    # The traits by phrase, for ``of``: emitters ask it a dozen times a compile.
    _of: dict = attrs.field(init=False, eq=False, repr=False,
                            default=attrs.Factory(_by_phrase, takes_self=True))

    def of(self, handle: registry.TraitDef) -> tuple[ResolvedTrait, ...]:
        """The resolved traits of one trait (by its handle), in canonical order."""
        return self._of.get(handle.phrase, ())


@frozen
class Request:
    """What the caller asked for: root profiles and ``--set`` values (raw text)."""

    roots: tuple[ProfileFile, ...]
    settings: tuple[tuple[str, str], ...] = ()  # (NAME or PROFILE.NAME, VALUE)
    profile_path: tuple[str, ...] = ()
    option_names: OptionNames = CLI_OPTIONS  # how messages name the settings


# (facts the traits decide, facts they prefer) → every fact conditions may test.
FactsFor = Callable[[Mapping, Mapping], Mapping]


def preferred_facts(traits, known: Mapping) -> dict:
    """The facts ``traits`` prefer (their declarations' ``prefers``), given the facts
    ``known`` (the guest OS among them); they hold only where nothing decides."""
    preferred: dict = {}
    for trait in traits:
        if trait.definition.prefers is not None:
            preferred.update(trait.definition.prefers(trait.kwargs, known))
    return preferred


def overrides_its_include(decider: Origin, preference: Origin) -> bool:
    """Whether ``decider`` sits in a profile that includes (directly or not) the
    profile of ``preference``: specializing what an included profile prefers is what
    includes are for, so that preference gives way without a warning."""
    home = decider.home
    return home is not None and any(link.span.file == home for link in preference.chain)
