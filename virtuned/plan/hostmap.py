"""A picture of the host and where the guest goes on it (``--map``): its NUMA nodes,
each core with its sibling threads, and for every CPU what it is to this guest; the
memory and hugepages of each node.

A CPU is, first, what this guest runs there (``vCPU 3``, ``vCPUs 0-3`` where they
float, ``emulator``, ``I/O threads``) or keeps idle (the other threads of a core
under ``threads isolate``); else held by other guests (named), reserved
(``--reserved-cpus``), of the host's shared set (``--shared-cpus``), outside the
CPUs a node agent granted (``--allocated-cpus``), or free. The picture is plain data
(``HostMap``), drawn as text for a terminal (``text``) or as an SVG a web console
can show (``svg``).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from virtuned.frozen import frozen
from virtuned.values import format_cpulist, format_kib

# What a CPU is to the guest, in the order a legend lists them.
GUEST, IDLE, HELD, RESERVED, SHARED, OUTSIDE, FREE = (
    "guest", "idle", "held", "reserved", "shared", "outside", "free")
KINDS = (GUEST, IDLE, HELD, RESERVED, SHARED, OUTSIDE, FREE)
LEGEND = {GUEST: "this guest", IDLE: "kept idle for it", HELD: "held by other guests",
          RESERVED: "reserved", SHARED: "the host's shared set",
          OUTSIDE: "not allocated to it", FREE: "free"}


@frozen
class Cpu:
    id: int
    kind: str  # one of KINDS
    label: str  # "vCPU 0", "held: db02", "free"


@frozen
class Pages:
    size_kib: int
    free: int  # what this guest may take (after what others keep)
    kept: int  # what other guests keep that the free count does not show yet
    kept_by: tuple[str, ...]
    guest: int  # what this guest takes here


@frozen
class NodeMap:
    id: int
    cores: tuple[tuple[Cpu, ...], ...]  # each core's threads, in the host's order
    memory_kib: int | None  # what this guest may take (None: the host does not say)
    guest_memory_kib: int  # what this guest takes here (not in hugepages)
    pages: tuple[Pages, ...]  # hugepage sizes only (not the base page)


@frozen
class HostMap:
    source: str
    nodes: tuple[NodeMap, ...]
    note: str | None = None  # why the page counts may not be what is free


def of(facts, requirements, placement) -> HostMap:
    """The picture of ``facts`` (HostFacts) with ``placement`` (None: the guest is
    not placed; the host as it is)."""
    roles = _guest_roles(placement)
    held = dict(facts.host.held)
    # 'threads isolate' leaves the other threads of the cores the guest uses idle
    isolating = requirements is not None and requirements.dedicated and \
        requirements.threads == "isolate"
    taken_pages, taken_memory = _guest_memory(requirements, placement)
    nodes = []
    for cell in facts.host.cells:
        cores = tuple(tuple(_cpu(cpu, facts, roles, held, isolating and
                                 any(other in roles for other in core)) for cpu in core)
                      for core in cell.cores())
        kept = {size: (kib, names) for node, size, kib, names in facts.host.kept
                if node == cell.id}
        base = min((size for size, _ in cell.pages), default=None)  # never a hugepage
        pages = tuple(Pages(size, free, kept.get(size, (0, ()))[0] // size,
                            kept.get(size, (0, ()))[1], taken_pages.get((cell.id, size), 0))
                      for size, free in cell.pages if size != base)
        nodes.append(NodeMap(cell.id, cores, cell.memory_kib,
                             taken_memory.get(cell.id, 0), pages))
    note = facts.host.pages_note.format(source=facts.host.source) \
        if facts.host.pages_note else None
    return HostMap(facts.host.source, tuple(nodes), note)


def _guest_roles(placement) -> dict[int, list[str]]:
    """Host CPU → what this guest runs on it."""
    roles: dict[int, list[str]] = {}
    if placement is None:
        return roles
    vcpus: dict[int, list[int]] = {}
    for vcpu, cpus in placement.vcpu_pins:
        for cpu in cpus:
            vcpus.setdefault(cpu, []).append(vcpu)
    for cpu, which in vcpus.items():
        roles.setdefault(cpu, []).append(
            f"vCPU {which[0]}" if len(which) == 1 else f"vCPUs {format_cpulist(which)}")
    for cpu in placement.emulator:
        roles.setdefault(cpu, []).append("emulator")
    for cpu in placement.iothreads:
        roles.setdefault(cpu, []).append("I/O threads")
    return roles


def _guest_memory(requirements, placement) -> tuple[dict, dict]:
    """(node, page size) → pages, and node → KiB, that this guest takes."""
    pages: dict[tuple[int, int], int] = {}
    memory: dict[int, int] = {}
    if placement is None or requirements is None:
        return pages, memory
    cells = {cell.id: cell for cell in requirements.cells}
    for placed in placement.cells:
        cell = cells.get(placed.cell)
        if cell is None or placed.node is None:
            continue
        if requirements.page_kib:
            key = (placed.node, requirements.page_kib)
            pages[key] = pages.get(key, 0) + requirements.pages(cell)
        else:
            memory[placed.node] = memory.get(placed.node, 0) + cell.memory_kib
    return pages, memory


def _cpu(ident: int, facts, roles, held, idle: bool) -> Cpu:
    if ident in roles:
        label = ", ".join(roles[ident])
        if facts.shared and ident in facts.shared:
            label += " (shared set)"
        return Cpu(ident, GUEST, label)
    if idle:  # a thread of a core an isolated vCPU has to itself
        return Cpu(ident, IDLE, "idle (isolate)")
    if ident in held:
        return Cpu(ident, HELD, f"held: {', '.join(held[ident])}")
    if ident in facts.reserved:
        return Cpu(ident, RESERVED, "reserved")
    if facts.shared and ident in facts.shared:
        return Cpu(ident, SHARED, "shared set")
    if facts.allocated is not None and ident not in facts.allocated:
        return Cpu(ident, OUTSIDE, "not allocated")
    return Cpu(ident, FREE, "free")


# ---------------------------------------------------------------- text

# ANSI colours of each kind (bold green for the guest's own).
_COLOURS = {GUEST: "1;32", IDLE: "32", HELD: "31", RESERVED: "2", SHARED: "36", OUTSIDE: "2",
            FREE: ""}


def text(picture: HostMap, colour: bool = False) -> str:
    """The picture for a terminal: a block per node, a line per core with its
    threads side by side; ``colour``: each CPU's label in its kind's colour."""
    width = max((len(cpu.label) for node in picture.nodes for core in node.cores
                 for cpu in core), default=4)
    digits = max((len(str(cpu.id)) for node in picture.nodes for core in node.cores
                  for cpu in core), default=1)
    lines = [f"host {picture.source}: {len(picture.nodes)} NUMA "
             f"node{'s' * (len(picture.nodes) != 1)}, "
             f"{sum(len(core) for node in picture.nodes for core in node.cores)} CPUs"]
    for node in picture.nodes:
        memory = _memory_lines(node)
        lines.append(f"node {node.id}: {_shape(node)}"
                     + (f", memory {memory[0]}" if node.memory_kib is not None or
                        node.guest_memory_kib else ""))
        lines += [f"  {line}" for line in memory[1:]]
        for index, core in enumerate(node.cores):
            cells = [f"cpu {cpu.id:<{digits}} {_painted(cpu, width, colour)}"
                     for cpu in core]
            lines.append(f"  core {index:<3} " + "  ".join(cells).rstrip())
    if picture.note and _shows_pages(picture):
        lines.append(f"note: {picture.note}")
    return "".join(line + "\n" for line in lines)


def _shows_pages(picture: HostMap) -> bool:
    """Whether the picture has a hugepage count the note is about."""
    return any(len(_memory_lines(node)) > 1 for node in picture.nodes)


def _painted(cpu: Cpu, width: int, colour: bool) -> str:
    padded = f"{cpu.label:<{width}}"
    code = _COLOURS[cpu.kind]
    if not colour or not code:
        return padded
    return f"\x1b[{code}m{cpu.label}\x1b[0m{' ' * (width - len(cpu.label))}"


def _shape(node: NodeMap) -> str:
    """"4 cores × 2 threads", or "5 cores, 9 CPUs" where cores differ."""
    threads = {len(core) for core in node.cores}
    cpus = sum(len(core) for core in node.cores)
    if len(threads) != 1:
        return f"{len(node.cores)} cores, {cpus} CPUs"
    count = threads.pop()
    return (f"{len(node.cores)} core{'s' * (len(node.cores) != 1)} × {count} "
            f"thread{'s' * (count != 1)}")


def _memory_lines(node: NodeMap) -> list[str]:
    """The node's memory (first: "" when the host does not say), then each
    hugepage pool that holds or gives anything."""
    lines = [""]
    if node.memory_kib is not None or node.guest_memory_kib:
        free = "not told" if node.memory_kib is None else format_kib(node.memory_kib)
        lines[0] = f"{free} free"
        if node.guest_memory_kib:
            lines[0] += f", {format_kib(node.guest_memory_kib)} for this guest"
    for pool in node.pages:
        if not (pool.free or pool.kept or pool.guest):
            continue
        line = f"{format_kib(pool.size_kib)} pages: {pool.free} free"
        if pool.kept:
            line += f", {pool.kept} kept for other guests ({', '.join(pool.kept_by)})"
        if pool.guest:
            line += f", {pool.guest} for this guest"
        lines.append(line)
    return lines


def colour_wanted(stream, environ) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (no-color.org)."""
    if environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# ---------------------------------------------------------------- SVG

_FILLS = {GUEST: "#2e7d32", IDLE: "#a5d6a7", HELD: "#c62828", RESERVED: "#9e9e9e", SHARED: "#00838f",
          OUTSIDE: "#cfd8dc", FREE: "#ffffff"}
_INKS = {GUEST: "#ffffff", IDLE: "#000000", HELD: "#ffffff", RESERVED: "#000000", SHARED: "#ffffff",
         OUTSIDE: "#000000", FREE: "#000000"}
_BOX_W, _BOX_H, _GAP, _PAD, _LINE = 120, 34, 6, 12, 16


def svg(picture: HostMap) -> str:
    """The same picture as a standalone SVG document: a panel per node, a row per
    core, a box per CPU filled by its kind, and a legend."""
    threads = max((len(core) for node in picture.nodes for core in node.cores), default=1)
    box_w = max([_BOX_W] + [len(cpu.label) * 7 + 12 for node in picture.nodes
                            for core in node.cores for cpu in core])
    widest = max((len(line) * 7 for node in picture.nodes for line in
                  [f"node {node.id}: {_shape(node)}", *_memory_lines(node)]), default=0)
    panel_w = max(_PAD * 2 + 60 + threads * (box_w + _GAP), widest + _PAD * 3)
    body, y = [], _PAD + _LINE
    body.append(_text(_PAD, y, f"host {picture.source}", bold=True))
    y += _GAP
    for node in picture.nodes:
        memory = [line for line in _memory_lines(node) if line]
        height = (_LINE * (1 + len(memory)) + len(node.cores) * (_BOX_H + _GAP) + _PAD * 2)
        body.append(f'<rect x="{_PAD}" y="{y}" width="{panel_w - _PAD}" height="{height}" '
                    'rx="6" fill="#fafafa" stroke="#607d8b"/>')
        line_y = y + _PAD + _LINE - 4
        body.append(_text(_PAD * 2, line_y, f"node {node.id}: {_shape(node)}", bold=True))
        for line in memory:
            line_y += _LINE
            body.append(_text(_PAD * 2, line_y, line))
        row_y = line_y + _GAP
        for index, core in enumerate(node.cores):
            body.append(_text(_PAD * 2, row_y + _BOX_H // 2 + 4, f"core {index}"))
            for column, cpu in enumerate(core):
                x = _PAD * 2 + 60 + column * (box_w + _GAP)
                title = escape(f"cpu {cpu.id}: {cpu.label}")
                body.append(f'<g class="cpu {cpu.kind}"><title>{title}</title>'
                            f'<rect x="{x}" y="{row_y}" width="{box_w}" '
                            f'height="{_BOX_H}" rx="3" fill="{_FILLS[cpu.kind]}" '
                            'stroke="#455a64"/>')
                body.append(_text(x + 6, row_y + 14, f"cpu {cpu.id}", ink=_INKS[cpu.kind]))
                body.append(_text(x + 6, row_y + 28, cpu.label, ink=_INKS[cpu.kind],
                                  size=11) + "</g>")
            row_y += _BOX_H + _GAP
        y += height + _GAP
    y += _LINE
    for index, kind in enumerate(KINDS):
        x = _PAD + index * 130
        body.append(f'<rect x="{x}" y="{y - 11}" width="12" height="12" '
                    f'fill="{_FILLS[kind]}" stroke="#455a64"/>')
        body.append(_text(x + 16, y, LEGEND[kind], size=11))
    if picture.note and _shows_pages(picture):
        y += _LINE + 4
        body.append(_text(_PAD, y, f"note: {picture.note}", size=11))
    width = max(panel_w + _PAD, _PAD + len(KINDS) * 130)
    height = y + _PAD
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">\n'
            + "".join(f"  {part}\n" for part in body) + "</svg>\n")


def _text(x: int, y: int, content: str, *, bold: bool = False, ink: str = "#000000",
          size: int = 12) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (f'<text x="{x}" y="{y}" fill={quoteattr(ink)} font-size="{size}"{weight}>'
            f"{escape(content)}</text>")
