"""Locks: the fully resolved trait set, written once and replayed byte for byte.

``--write-lock FILE`` stores what resolution produced: every trait with its typed
arguments, strength, origin and semantics version; every profile used with its
version and sha256; the compiler version; and what the request was (the profiles
named, the input domain's sha256). ``--lock FILE`` compiles from the lock alone,
without reading any profile, so editing or deleting a profile changes nothing; each
trait runs at the semantics version recorded, so a newer virtuned that changed what
a trait emits still replays the old behaviour (or refuses, if it no longer has it).
"""

from __future__ import annotations

from virtuned import caching
from virtuned.diagnostics import Span, error
from virtuned.resolve import registry
from virtuned.resolve.model import Link, Origin, ResolvedTrait, TraitSet, UsedProfile

FORMAT = 1


def input_digest(domain_xml: str | bytes | None) -> str | None:
    if domain_xml is None:
        return None
    raw = domain_xml.encode("utf-8") if isinstance(domain_xml, str) else domain_xml
    return caching.sha256(raw).hexdigest()


def dump(trait_set: TraitSet, *, request: dict, compiler: str, defaults: int) -> str:
    """The lock as JSON text (keys sorted, so equal locks are equal bytes)."""
    import json  # here: only a compile with a lock needs it (1 % of a CLI run)

    document = {
        "virtuned_lock": FORMAT,
        "compiler": compiler,
        "defaults": defaults,
        "request": request,
        "profiles": [_profile(p) for p in trait_set.profiles],
        "traits": [_trait(t) for t in trait_set.traits],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def load(text: str, source: str, *, request: dict) -> TraitSet:
    """A TraitSet from a lock; the request must be the one the lock was written for."""
    import json  # (as in dump)

    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(Span(source, exc.lineno, exc.colno), f"not a lock: {exc.msg}") from None
    if not isinstance(document, dict) or document.get("virtuned_lock") != FORMAT:
        raise error(Span(source, 1, 1), f"not a virtuned lock of format {FORMAT}")
    try:
        _check_request(document["request"], request, text, source)
        profiles = tuple(UsedProfile(p["name"], p["version"], p["sha256"], p["source"])
                         for p in document["profiles"])
        traits = tuple(_read_trait(t, Span(source, _line_of(
            text, f'"label": {json.dumps(t["label"])}'), 7)) for t in document["traits"])
    except (KeyError, TypeError) as exc:
        raise error(Span(source, 1, 1), f"malformed lock: missing or wrong field {exc}") \
            from None
    return TraitSet(traits, profiles, defaults=_defaults(document, text, source))


def _defaults(document: dict, text: str, source: str) -> int:
    """The defaults version the lock was compiled with: a lock written before
    virtuned had defaults (no field) replays with none."""
    recorded = document.get("defaults", 0)
    have = registry.defaults_version()
    if type(recorded) is not int or not 0 <= recorded <= have:
        raise error(Span(source, _line_of(text, '"defaults"'), 3),
                    f"the lock needs defaults version {recorded!r}, which this virtuned "
                    f"does not have (it has 0 to {have})",
                    hint="replay with the virtuned that wrote the lock, or write a new one")
    return recorded


def _line_of(text: str, needle: str, after: str = "") -> int:
    """The line of a lock field, so an error points at it (1 if not found)."""
    index = text.find(needle, max(text.find(after), 0) if after else 0)
    return text.count("\n", 0, index) + 1 if index >= 0 else 1


def _check_request(recorded: dict, given: dict, text: str, source: str) -> None:
    for field, what in (("profiles", "profiles"), ("traits", "inline traits"),
                        ("settings", "--set values"),
                        ("input_sha256", "input domain (sha256)")):
        if field in given and given[field] is not None and given[field] != recorded[field]:
            span = Span(source, _line_of(text, f'"{field}"', after='"request"'), 5)
            raise error(span, f"this lock was written for other {what}: "
                        f"{recorded[field]!r}, not {given[field]!r}",
                        hint="write a new lock with --write-lock for this request")


def _profile(profile: UsedProfile) -> dict:
    return {"name": profile.name, "version": profile.version, "sha256": profile.sha256,
            "source": profile.source}


def _trait(trait: ResolvedTrait) -> dict:
    origin = trait.origin
    return {
        "phrase": trait.phrase,
        "version": trait.definition.version,
        "args": {name: registry.to_text(value) for name, value in trait.args},
        "strength": origin.strength,
        "label": origin.label,
        "at": _span(origin.span),
        "chain": [{link.kind: link.name, "at": _span(link.span)} for link in origin.chain],
    }


def _read_trait(data: dict, span: Span) -> ResolvedTrait:
    definition = registry.lookup(data["phrase"], data["version"])
    if definition is None:
        newest = next((d.version for d in registry.all_traits()
                       if d.phrase == data["phrase"]), None)
        raise error(span, f"the lock needs trait '{data['phrase']}' "
                    f"version {data['version']}, which this virtuned does not have" +
                    (f" (it has version {newest})" if newest else ""),
                    hint="replay with the virtuned that wrote the lock, or write a new one")
    try:
        args = tuple(sorted((name, registry.from_text(registry.slot(definition, name), text))
                            for name, text in data["args"].items()))
    except (KeyError, ValueError) as exc:
        raise error(span, f"lock trait '{data['label']}': {exc}") from None
    origin = Origin(data["label"], _read_span(data["at"]),
                    tuple(_read_link(link) for link in data["chain"]), data["strength"])
    return ResolvedTrait(definition, definition.phrase, args, origin)


def _read_link(data: dict) -> Link:
    """A chain step: ``{"include": NAME, "at": ...}`` or ``{"trait": PHRASE, ...}``."""
    kind = "trait" if "trait" in data else "include"
    return Link(data[kind], _read_span(data["at"]), kind)


def _span(span: Span | None) -> list | None:
    return None if span is None else [span.file, span.line, span.col]


def _read_span(data) -> Span | None:
    return None if data is None else Span(data[0], data[1], data[2])
