"""The XML of a placement, shared by every trait that places the guest.

Placement is decided once, for all traits together (virtuned/plan/placement.py); its XML
touches ``<vcpu cpuset>``, ``<cputune>`` (vcpupin, emulatorpin, iothreadpin) and
``<numatune>``. Every placing trait returns all of it: the edits are equal, so merge
keeps one of each, and the places can never disagree with each other.

With --override (a guest placed again, as ``virtuned apply`` does) an input element
that says otherwise is made to say what the placement says, and one the placement
no longer writes (the pin of a vCPU the guest lost, the memnode of a cell that is
gone) is removed: each is listed, and no old pin is left to contradict the new ones.
"""

from __future__ import annotations

from virtuned.domain import element_span
from virtuned.emit.edits import Add, E, Ensure, Remove, SetAttr, SetText, conflict, el
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
    vcpupins = [el("vcpupin", vcpu=str(v), cpuset=format_cpulist(cpus)) for v, cpus in pins]
    if len({cpus for _, cpus in pins}) > 1:
        result += placed_all(ctx, "cputune", "vcpupin", vcpupins, "vcpu")
    else:  # <vcpu cpuset> says it all: an input <vcpupin> elsewhere is a conflict (a
        # guest placed again over its old pins, --override, has them removed)
        checked = placed_all(ctx, "cputune", "vcpupin", [] if _overriding(ctx) else vcpupins,
                             "vcpu")
        result += [edit for edit in checked if type(edit) is not Add]
    result += placed(ctx, "cputune", el("emulatorpin",
                                        cpuset=format_cpulist(placement.emulator)))
    result += placed_all(ctx, "cputune", "iothreadpin", [
        el("iothreadpin", iothread=str(i),
           cpuset=format_cpulist(placement.iothreads or placement.emulator))
        for i in _pinned_iothreads(ctx, wanted.iothreads)], "iothread")
    result += placed_all(ctx, "numatune", "memory", [
        el("memory", mode="strict", nodeset=format_cpulist(placement.nodes))
    ] if placement.nodes else [])
    result += placed_all(ctx, "numatune", "memnode", [
        el("memnode", cellid=str(cell.cell), mode="strict", nodeset=str(cell.node))
        for cell in placement.cells] if wanted.guest_numa and placement.nodes else [],
        "cellid")
    return result


def _pinned_iothreads(ctx, asked: int) -> range | list[int]:
    """The I/O threads the placement pins: those 'iothreads N' asks for; with
    --override and no such trait, those of the input's that it pins (the emulator's
    CPUs replace their old ones)."""
    if asked or not _overriding(ctx):
        return range(1, asked + 1)
    stated = (ctx.root.findtext("iothreads") or "").strip()
    count = int(stated) if values.is_whole(stated) else 0
    ids = (pin.get("iothread") or "" for pin in ctx.root.iterfind("cputune/iothreadpin"))
    return [int(i) for i in ids if values.is_whole(i) and 1 <= int(i) <= count]


def placed_all(ctx, parent: str, tag: str, specs: list, key: str | None = None) -> list:
    """``placed`` for each of ``specs`` (children ``tag`` of ``parent``); with
    --override, the input's others are removed: a pin of a placement that no longer
    has it (a vCPU the guest lost, a cell that is gone) would contradict the new one."""
    existing = ctx.find(parent) if parent else ctx.root
    children, matching = _matching(existing, tag, key)
    result, matched = [], set()
    for spec in specs:
        found = matching(spec)
        matched.update(found)
        result += _placed(ctx, parent, spec, key, found)
    if not _overriding(ctx):
        return result
    return result + [Remove(element, ctx.origin) for element in children
                     if element not in matched]


def placed(ctx, parent: str, spec: E, key: str | None = None) -> list:
    """``child``'s edit, as a list; with --override, an input element that says
    otherwise is made to say what ``spec`` says (merge lists each value replaced),
    where ``child`` would refuse it, and others of its key are removed."""
    existing = ctx.find(parent) if parent else ctx.root
    return _placed(ctx, parent, spec, key, _matching(existing, spec.tag, key)[1](spec))


def _placed(ctx, parent: str, spec: E, key: str | None, found: list) -> list:
    if _overriding(ctx) and found:
        edits = [] if _same(found[0], spec) else _replaced(ctx, found[0], spec)
        return edits + [Remove(element, ctx.origin) for element in found[1:]]
    edit = child(ctx, parent, spec, key, found)
    return [] if edit is None else [edit]


def _matching(existing, tag: str, key: str | None):
    """The input's children ``tag`` of ``existing``, and a function giving those a
    spec would be (by ``key``): looked up by the key as written, so that a guest of
    thousands of pins is matched in one pass; CPU lists, which match when they
    overlap, are compared one by one."""
    children = [] if existing is None else list(existing.iterchildren(tag))
    if key is None:
        return children, lambda spec: children
    if key in _LISTS:
        return children, lambda spec: [element for element in children
                                       if _same_key(key, element.get(key), spec.get(key))]
    by_key: dict = {}
    for element in children:
        by_key.setdefault(element.get(key), []).append(element)
    return children, lambda spec: by_key.get(spec.get(key), [])


def _overriding(ctx) -> bool:
    return ctx.override and ctx.origin.strength == "require"


def _replaced(ctx, element, spec: E) -> list:
    """The edits that make the input's ``element`` say what ``spec`` says: its
    attributes that mean otherwise (a size with the spec's unit), its text, and
    its children, paired by tag (the input's others removed). What the spec does
    not say (a cell's memAccess) stays."""
    have = _meaning(element.tag, dict(element.attrib)) or {}
    want = _meaning(spec.tag, dict(spec.attrib)) or {}
    size = _SIZES.get(spec.tag)
    edits = []
    for name, value in spec.attrib:
        if name == "unit" and size in want:
            continue  # set with its size, below
        if name not in have or not _same_value(name, have[name], want[name]):
            edits.append(SetAttr(element, name, value, ctx.origin))
            unit = spec.get("unit")
            if name == size and unit and (element.get("unit") or "KiB") != unit:
                edits.append(SetAttr(element, "unit", unit, ctx.origin))
    for name, value in _DEFAULTS.get(spec.tag, {}).items():  # placement='auto' goes
        if spec.get(name) is None and have.get(name, value) != value:
            edits.append(SetAttr(element, name, value, ctx.origin))
    if (element.text or "").strip() != (spec.text or ""):
        edits.append(SetText(element, spec.text or "", ctx.origin))
    children = list(element.iterchildren("*"))
    for child_spec in spec.children:
        match = next((c for c in children if c.tag == child_spec.tag), None)
        if match is None:
            edits.append(Add(element, child_spec, ctx.origin, identity=(child_spec.tag,)))
            continue
        children.remove(match)
        if not _same(match, child_spec):
            edits += _replaced(ctx, match, child_spec)
    return edits + [Remove(c, ctx.origin) for c in children]


def beyond(ctx, count: int, schedulers: bool = True) -> list:
    """With --override, what the input states of vCPUs from ``count`` on, which the
    guest no longer has, taken out: their <vcpupin> and <vcpus><vcpu> removed, a
    <vcpusched> of them only removed (one of others too keeps those)."""
    if not _overriding(ctx):
        return []
    if not ctx.plan.requirements.split:  # else 'guest numa nodes N' makes the cells anew
        _refuse_cells_beyond(ctx, count)
    stated = [(pin, pin.get("vcpu")) for pin in ctx.root.iterfind("cputune/vcpupin")] + [
        (vcpu, vcpu.get("id")) for vcpu in ctx.root.iterfind("vcpus/vcpu")]
    edits = [Remove(element, ctx.origin) for element, vcpu in stated
             if values.is_whole(vcpu or "") and int(vcpu) >= count]
    for sched in ctx.root.iterfind("cputune/vcpusched") if schedulers else ():
        try:
            stated = parse_cpulist(sched.get("vcpus") or "")
        except ValueError:
            continue
        kept = frozenset(v for v in stated if v < count)
        if kept != stated:
            edits.append(SetAttr(sched, "vcpus", format_cpulist(kept), ctx.origin) if kept
                         else Remove(sched, ctx.origin))
    return edits


def _refuse_cells_beyond(ctx, count: int) -> None:
    """A guest cell of the input that holds a vCPU from ``count`` on is a conflict:
    which cell the vCPUs left belong to is for the input or 'guest numa nodes N' to
    say (libvirt refuses cells with more vCPUs than the guest has)."""
    for cell in ctx.root.iterfind("cpu/numa/cell"):
        try:
            lost = sorted(v for v in parse_cpulist(cell.get("cpus") or "") if v >= count)
        except ValueError:
            continue  # libvirt says what is wrong with it
        if lost:
            raise conflict(ctx.origin, f"{count} vCPUs", element_span(cell, ctx.filename),
                           f"the input's guest NUMA cell {cell.get('id')} holds vCPU"
                           f"{'s' * (len(lost) > 1)} {format_cpulist(lost)}",
                           hint="add 'guest numa nodes N', which splits the vCPUs anew, "
                                "or change the input's cells")


def resized(ctx, tag: str, kib: int, keep=lambda stated_kib: False) -> list:
    """With --override, the edits that make the input's size element ``tag``
    (``<memory>``, ``<currentMemory>``) hold ``kib``: in its own unit when that writes
    it whole, else in KiB; none when it means that already (4194304 KiB is 4 GiB),
    or when ``keep`` says its size stays."""
    element = ctx.find(tag)
    if element is None or not _overriding(ctx):
        return []
    stated = size_of(element)
    if stated == kib or (stated is not None and keep(stated)):
        return []
    factor = values.unit_bytes(element.get("unit") or "KiB")
    if factor and kib * 1024 % factor == 0:
        return [SetText(element, str(kib * 1024 // factor), ctx.origin)]
    return [SetText(element, str(kib), ctx.origin)] + (
        [SetAttr(element, "unit", "KiB", ctx.origin)] if element.get("unit") else [])


def size_of(element) -> int | None:
    """The KiB a size element states, or None where libvirt would refuse it."""
    try:
        return values.kib((element.text or "").strip(), element.get("unit"))
    except ValueError:
        return None


def vcpu_attributes(ctx, **wanted: str) -> list:
    """Attributes of ``<vcpu>``: set on the input's, else on the one completion
    adds (completion always adds one when the guest is placed). An input value
    that means the same (``0,1,2`` for ``0-2``, no placement for static) stays."""
    vcpu = ctx.find("vcpu")
    if vcpu is None:
        return [Ensure("vcpu", name, value, ctx.origin) for name, value in wanted.items()]
    return [SetAttr(vcpu, name, value, ctx.origin)
            for name, value in wanted.items()
            if vcpu.get(name) is None or not _same_value(name, vcpu.get(name), value)]


def child(ctx, parent: str, spec: E, key: str | None, found: list) -> Add | None:
    """Add ``spec`` under the element at path ``parent``; at most one per ``key``
    value (one per tag when None; CPU lists match when they overlap): ``found``, the
    input's children that it would be. One the input has already must mean the same
    (then nothing changes; it may say more, such as a cell's memAccess): a different
    one is a conflict, never overridden."""
    if found:
        element = found[0]
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
_DEFAULTS = {"memory": {"mode": "strict", "placement": "static"},
             "memnode": {"mode": "strict"}}
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
