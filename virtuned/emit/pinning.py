"""The XML of a placement, shared by every trait that places the guest.

Placement is decided once, for all traits together (virtuned/plan/placement.py); its XML
touches ``<vcpu cpuset>``, ``<cputune>`` (vcpupin, emulatorpin, iothreadpin) and
``<numatune>``. Every placing trait returns all of it: the edits are equal, so merge
keeps one of each, and the places can never disagree with each other.
"""

from __future__ import annotations

from virtuned.domain import element_span
from virtuned.emit.edits import Add, E, Ensure, SetAttr, conflict, el
from virtuned import values
from virtuned.values import format_cpulist, parse_cpulist

# Attributes whose values are CPU or node lists: "0-2" equals "0,1,2".
_LISTS = frozenset(("cpuset", "nodeset", "cpus", "vcpus"))


def edits(ctx) -> list:
    """The whole placement's XML (nothing without --host: phase one)."""
    placement = ctx.plan.placement
    if placement is None:
        return []
    wanted = ctx.plan.requirements
    pins = placement.vcpu_pins
    # <vcpu cpuset> is where vCPUs without a <vcpupin> run: the vCPUs' CPUs only, never
    # an isolated emulator's (which has its own <emulatorpin>).
    result = vcpu_attributes(ctx, placement="static", cpuset=format_cpulist(
        frozenset().union(*(cpus for _, cpus in pins))))
    vcpupins = [placed(ctx, "cputune", el("vcpupin", vcpu=str(v),
                                          cpuset=format_cpulist(cpus)), "vcpu")
                for v, cpus in pins]  # an input <vcpupin> elsewhere is a conflict...
    # ... but <vcpu cpuset> may say it all; a guest placed again over its old pins
    # (--override) has each of them replaced.
    if len({cpus for _, cpus in pins}) > 1 or (ctx.override and
                                               ctx.root.find("cputune/vcpupin") is not None):
        result += [edit for edits in vcpupins for edit in edits]
    result += placed(ctx, "cputune", el("emulatorpin",
                                        cpuset=format_cpulist(placement.emulator)))
    result += [edit for i in range(1, wanted.iothreads + 1)
               for edit in placed(ctx, "cputune", el(
                   "iothreadpin", iothread=str(i),
                   cpuset=format_cpulist(placement.iothreads)), "iothread")]
    if placement.nodes:
        result += placed(ctx, "numatune", el("memory", mode="strict",
                                             nodeset=format_cpulist(placement.nodes)))
    if wanted.guest_numa and placement.nodes:
        result += [edit for cell in placement.cells
                   for edit in placed(ctx, "numatune", el(
                       "memnode", cellid=str(cell.cell), mode="strict",
                       nodeset=str(cell.node)), "cellid")]
    return result


def placed(ctx, parent: str, spec: E, key: str | None = None) -> list:
    """``child``'s edit, as a list; with --override, an input element of the
    placement that says otherwise has the attributes that differ set (merge lists
    each as overridden), where ``child`` would refuse it."""
    if ctx.override and ctx.origin.strength == "require" and not spec.children:
        element = _keyed(ctx, parent, spec, key)
        if element is not None and not _same(element, spec):
            have = _meaning(element.tag, dict(element.attrib)) or {}
            return [SetAttr(element, name, value, ctx.origin) for name, value in spec.attrib
                    if have.get(name) is None or not _same_value(name, have[name], value)]
    edit = child(ctx, parent, spec, key)
    return [] if edit is None else [edit]


def _keyed(ctx, parent: str, spec: E, key: str | None):
    """The input's child of ``parent`` that ``spec`` would be, or None."""
    existing = ctx.root.find(parent) if parent else ctx.root
    if existing is None:
        return None
    return next((element for element in existing.iterchildren(spec.tag)
                 if key is None or element.get(key) == spec.get(key)), None)


def vcpu_attributes(ctx, **wanted: str) -> list:
    """Attributes of ``<vcpu>``: set on the input's, else on the one completion
    adds (completion always adds one when the guest is placed). An input value
    that means the same (``0,1,2`` for ``0-2``, no placement for static) stays."""
    vcpu = ctx.root.find("vcpu")
    if vcpu is None:
        return [Ensure("vcpu", name, value, ctx.origin) for name, value in wanted.items()]
    return [SetAttr(vcpu, name, value, ctx.origin)
            for name, value in wanted.items()
            if vcpu.get(name) is None or not _same_value(name, vcpu.get(name), value)]


def child(ctx, parent: str, spec: E, key: str | None = None) -> Add | None:
    """Add ``spec`` under the element at path ``parent``; at most one per ``key``
    value (one per tag when None; CPU lists match when they overlap). One the input
    has already must mean the same (then nothing changes; it may say more, such as
    a cell's memAccess): a different one is a conflict, never overridden."""
    existing = ctx.root.find(parent) if parent else ctx.root
    if existing is not None:
        for element in existing.iterchildren(spec.tag):
            if key is None or _same_key(key, element.get(key), spec.get(key)):
                if _same(element, spec):
                    return None
                where = f"/domain/{parent}/{spec.tag}".replace("//", "/")
                raise conflict(ctx.origin, f"{where} {_show(spec)}",
                               element_span(element, ctx.filename),
                               f"the input has {_show_element(element)}",
                               hint="a trait never overrides what the input states: "
                                    "change the input, or drop the trait")
    return Add(parent, spec, ctx.origin, identity=(spec.tag, spec.get(key) if key else None))


def _same_key(name: str, have: str | None, want: str | None) -> bool:
    if have is None or name not in _LISTS:
        return have == want
    try:
        return bool(parse_cpulist(have) & parse_cpulist(want))
    except ValueError:
        return False


# Attribute defaults libvirt applies (absent means this), by element tag.
_DEFAULTS = {"memory": {"mode": "strict"}, "memnode": {"mode": "strict"}}
# Sizes written with a unit attribute beside them, by element tag.
_SIZES = {"cell": "memory", "page": "size"}


def _same(element, spec: E) -> bool:
    """Whether the input's ``element`` says what ``spec`` says: each of the spec's
    attributes (sizes in any unit, libvirt's defaults filled in), its text and
    its children."""
    have = _meaning(element.tag, dict(element.attrib))
    want = _meaning(spec.tag, dict(spec.attrib))
    if (element.text or "").strip() != (spec.text or "") or have is None:
        return False
    if any(name not in have or not _same_value(name, have[name], value)
           for name, value in want.items()):
        return False
    children = list(element)
    return len(children) == len(spec.children) and all(
        _same(c, s) for c, s in zip(children, spec.children))


def _meaning(tag: str, attributes: dict) -> dict | None:
    """Attributes with libvirt's defaults, a size and its unit as one KiB count
    (None: a size libvirt would refuse)."""
    meant = {**_DEFAULTS.get(tag, {}), **attributes}
    size = _SIZES.get(tag)
    if size in meant:
        try:
            meant[size] = str(values.kib(meant[size], meant.pop("unit", None)))
        except ValueError:
            return None
    return meant


def _same_value(name: str, have: str, want: str) -> bool:
    if name in _LISTS:
        try:
            return parse_cpulist(have) == parse_cpulist(want)
        except ValueError:
            return False
    return have == want


def _show(spec: E) -> str:
    attributes = " ".join(f"{k}='{v}'" for k, v in spec.attrib)
    return f"<{spec.tag} {attributes}>" if attributes else f"<{spec.tag}>"


def _show_element(element) -> str:
    attributes = " ".join(f"{k}='{v}'" for k, v in element.attrib.items())
    return f"<{element.tag} {attributes}>" if attributes else f"<{element.tag}>"
