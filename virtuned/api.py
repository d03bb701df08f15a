"""The Python API: ``compile`` runs parse → resolve → plan → emit → merge."""

from __future__ import annotations

import functools

import attrs

from virtuned.diagnostics import Sources


@attrs.frozen
class TraitSource:
    """Trait text and the name diagnostics use for it (a path, or ``<trait 1>``)."""

    name: str
    text: str


@attrs.frozen
class CompileResult:
    xml: str
    warnings: tuple[str, ...] = ()


def compile(domain_xml: str | bytes | None = None, *, sources=(), name: str | None = None,
            domain_name: str = "<domain>", diagnostics_sources: Sources | None = None
            ) -> CompileResult:
    """Compile traits onto a domain.

    Args:
        domain_xml: the input domain (complete, partial) or None for an empty one.
        sources: TraitSource values (profile files, inline trait text).
        name: the domain name to use when the input has none (default ``vm``).
        domain_name: how diagnostics name the input domain (its path, or ``<stdin>``).
        diagnostics_sources: collects the texts so the caller can render context.

    Returns:
        CompileResult with the complete domain XML.

    Raises:
        VirtunedError: with diagnostics and the exit code (2 invalid, 3 conflict).
    """
    from virtuned import domain, emit, merge, plan

    sources_seen = diagnostics_sources or Sources()
    for source in sources:
        sources_seen.add(source.name, source.text)
    traits = _resolve(tuple(sources))
    if domain_xml is None:
        tree, original = domain.empty_domain(), None
    else:
        original = domain_xml  # a str is taken as already decoded, whatever it declares
        sources_seen.add(domain_name, original)
        tree = domain.parse(original, domain_name)
    the_plan = plan.plan(traits, tree)
    edits = emit.emit(the_plan, tree, domain_name, name=name)
    merge.apply(tree, edits, domain_name)
    return CompileResult(domain.serialize(tree, original))


@functools.lru_cache(maxsize=256)
def _resolve(sources: tuple[TraitSource, ...]):
    """Parse and resolve trait texts; a long-lived process (the server, a management
    app) sees the same profiles again and again, so the result is cached by content."""
    from virtuned.resolve import resolve
    from virtuned.syntax.parser import parse

    return resolve([parse(source.text, source.name) for source in sources])
