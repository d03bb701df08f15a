"""What the host's hypervisor offers (``--domcaps``), asked by the trait being
emitted: each check refuses the trait, naming the capability that is missing,
instead of letting it emit XML that fails when the domain starts. Without domain
capabilities nothing is checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtuned.diagnostics import Related, Span, error

if TYPE_CHECKING:  # names for annotations; the module loads only with --domcaps
    from virtuned.facts.domcaps import Capability, DomainCaps

def offer(ctx, path: str, enum: str, value: str, what: str, hint: str | None = None, *,
          if_listed: bool = False) -> None:
    """Refuse the trait being emitted unless the domain capabilities (when given)
    list ``value`` in the ``enum`` of ``path``: ``offer(ctx, "devices/tpm", "model",
    "tpm-crb", "TPM model")``. With ``if_listed``, capabilities that do not list
    ``path`` or that ``enum`` at all (libvirt reports it only in newer versions) are
    not checked."""
    caps = ctx.plan.domcaps
    if caps is None or (if_listed and caps.area(path) is None):
        return
    found = supported(ctx, path, what, hint)
    if if_listed and enum not in dict(found.enums):
        return
    offered = found.enum(enum)
    if value not in offered:
        listed = ", ".join(offered) if offered else "nothing"
        raise _refusal(ctx, caps, path, f"offer no {what} '{value}' "
                       f"(<{_tag(path)}> enum '{enum}' lists {listed})", hint)


def supported(ctx, path: str, what: str, hint: str | None = None) -> Capability | None:
    """Refuse the trait being emitted when the domain capabilities (when given) do
    not support ``path`` at all; returns its facts (None without capabilities)."""
    caps = ctx.plan.domcaps
    if caps is None:
        return None
    found = caps.area(path)
    if found is None:
        raise _refusal(ctx, caps, path, f"do not list <{_tag(path)}>, so {what} is not "
                       "known to be available", hint)
    if not found.supported:
        raise _refusal(ctx, caps, path, f"do not support {what} "
                       f"(<{_tag(path)} supported='no'>)", hint)
    return found


def _refusal(ctx, caps: DomainCaps, path: str, problem: str, hint: str | None):
    where = Span(caps.source, caps.line_of(path), 1, anchor=f"<{_tag(path)}")
    related = (Related(where, "the domain capabilities say so here"),) \
        if caps.area(path) is not None else ()
    return error(ctx.origin.span or where, f"{ctx.origin.label}: the domain capabilities "
                 f"({caps.source}) {problem}", related=related, hint=hint)


def _tag(path: str) -> str:
    return path.rsplit("/", 1)[-1]
