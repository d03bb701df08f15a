"""The host a guest is placed on: ``virsh capabilities`` XML, read into facts.

Only ``<host><topology><cells>`` matters to placement: each NUMA cell's memory and
hugepage pools, its CPUs with their socket, die, core and sibling threads. The
document gets the same hardening as domain XML. CPUs the guest may use are the
host's, minus ``--reserved-cpus`` (kept for the host OS), and only those in
``--allocated-cpus`` (what a node agent granted this guest) when that is given.
"""

from __future__ import annotations

import functools
import operator
import re

import attrs

from virtuned import domain
from virtuned.diagnostics import CLI_OPTIONS, OptionNames, Span, error
from virtuned.domain import element_span
from virtuned import values
from virtuned.frozen import frozen
from virtuned.values import format_cpulist, format_kib, parse_cpulist

KIND = "host capabilities XML"
# A capabilities document states each pool's total, not what other guests left.
TOTALS_NOTE = ("{source} is a capabilities document: its page counts are the pools' "
               "totals, so they were taken as free (free pages unknown); a host snapshot "
               "('virtuned host snapshot') or --connect says what is free")


@frozen
class HostCpu:
    id: int
    socket: int
    die: int
    core: int
    siblings: frozenset[int]  # the hardware threads of its core, itself included


# A CPU's place in the cell's order: socket, die, core, id (a key made in C).
_IN_ORDER = operator.attrgetter("socket", "die", "core", "id")


@frozen
class HostCell:
    id: int
    memory_kib: int | None  # None: the host does not say (old libvirt, Xen)
    pages: tuple[tuple[int, int], ...]  # (page size in KiB, pages in the pool)
    cpus: tuple[HostCpu, ...]  # by id
    distances: tuple[tuple[int, int], ...] = ()  # (other cell, distance)

    def pool(self, page_kib: int) -> int:
        return dict(self.pages).get(page_kib, 0)

    @functools.cached_property
    def cpu_ids(self) -> frozenset[int]:
        return frozenset(cpu.id for cpu in self.cpus)

    @functools.cached_property
    def _cores(self) -> tuple[tuple[int, ...], ...]:
        return self._find_cores()

    def cores(self) -> tuple[tuple[int, ...], ...]:
        """The cell's cores as the CPU ids of their threads (see _find_cores),
        worked out once per cell."""
        return self._cores

    def _find_cores(self) -> tuple[tuple[int, ...], ...]:
        """The cell's cores as the CPU ids of their threads, in (socket, die, core,
        id) order. Threads are of one core when ``siblings`` links them, whatever
        their core_id says (some hosts number the threads of one core apart), and
        siblings another cell lists are not part of this cell's cores."""
        # Both find a core's threads in order, and the cores in the order of their
        # first threads: they group the CPUs taken in order.
        cores = self._cores_by_sibling_sets()
        return cores if cores is not None else self._linked_cores()

    def _cores_by_sibling_sets(self) -> tuple[tuple[int, ...], ...] | None:
        """The usual host: each CPU's siblings are exactly the CPUs of this cell that
        list the same siblings, so the distinct sibling sets are the cores (one
        dictionary pass; parsing gives the threads of a core one set). None when
        they are not (siblings elsewhere, lists that disagree)."""
        groups: dict[frozenset, list[int]] = {}
        for cpu in sorted(self.cpus, key=_IN_ORDER):
            groups.setdefault(cpu.siblings, []).append(cpu.id)
        for siblings, ids in groups.items():
            if len(siblings) != len(ids) or not siblings.issuperset(ids):
                return None
        return tuple(map(tuple, groups.values()))

    def _linked_cores(self) -> tuple[tuple[int, ...], ...]:
        """The cores as the threads ``siblings`` links, in any way (union-find)."""
        ids = {cpu.id for cpu in self.cpus}
        parent = {ident: ident for ident in ids}

        def root(ident: int) -> int:
            while parent[ident] != ident:
                parent[ident] = parent[parent[ident]]
                ident = parent[ident]
            return ident

        for cpu in self.cpus:
            for sibling in cpu.siblings & ids:
                parent[root(sibling)] = root(cpu.id)
        groups: dict[int, list[int]] = {}
        for cpu in sorted(self.cpus, key=_IN_ORDER):
            groups.setdefault(root(cpu.id), []).append(cpu.id)
        return tuple(map(tuple, groups.values()))


@frozen
class Host:
    source: str  # how diagnostics name the document (its path)
    cells: tuple[HostCell, ...]  # by id
    # Why the cells' page counts may not be what is free (a warning's text, with
    # {source}); None: they are (a snapshot or a live host, facts/snapshot.py).
    pages_note: str | None = TOTALS_NOTE
    # CPUs other guests have pinned a thread to alone: (CPU, their names).
    held: tuple[tuple[int, tuple[str, ...]], ...] = ()
    # What the cells' page and memory counts already leave to other guests that the
    # host's own free counts do not show (a snapshot): (node, page size in KiB or
    # None for memory, KiB, their names).
    kept: tuple[tuple[int, int | None, int, tuple[str, ...]], ...] = ()
    # The hypervisor's domain capabilities the snapshot holds: a function of the
    # guest's platform → (DomainCaps or None, a note when there are none).
    domcaps: object = None
    # What requests work out of the host again and again (remember), shared by the
    # host's names (named).
    memo: dict = attrs.field(factory=dict, eq=False, repr=False)

    @functools.cached_property
    def held_cpus(self) -> frozenset[int]:
        return frozenset(cpu for cpu, _ in self.held)

    @functools.cached_property
    def cpu_ids(self) -> frozenset[int]:
        return frozenset().union(*(cell.cpu_ids for cell in self.cells))

    def cell(self, node: int) -> HostCell | None:
        return next((c for c in self.cells if c.id == node), None)

    def remember(self, key, make):
        """``make()``, worked out once for this host and ``key`` (what it depends on:
        the request's CPU lists...): fit asks the same of the same parsed hosts again
        and again. The last few kinds of request's are kept."""
        found = self.memo.get(key)
        if found is None:
            if len(self.memo) >= 64:
                self.memo.clear()
            found = self.memo[key] = make()
        return found

    def named(self, source: str) -> Host:
        """The same host under another name: a document parsed once (api.py caches
        them by content) is named as each request names it."""
        if source == self.source:
            return self
        rename = getattr(self.domcaps, "named", None)
        return attrs.evolve(self, source=source,
                            domcaps=self.domcaps if rename is None else rename(source))

    def describe_kept(self, node: int, page_kib: int | None) -> str:
        """" after 2 for other guests (db02)" (pages; memory: "after 2GiB") for
        messages about a node's pool or memory; "" when nothing is kept there."""
        for where, size, kib, names in self.kept:
            if (where, size) == (node, page_kib):
                amount = kib // page_kib if page_kib else format_kib(kib)
                return f" after {amount} for other guests ({', '.join(names)})"
        return ""


@frozen
class HostFacts:
    """The host and the constraints a compile places on it."""

    host: Host
    reserved: frozenset[int] = frozenset()
    allocated: frozenset[int] | None = None  # None: every CPU not reserved
    shared: frozenset[int] | None = None  # --shared-cpus: the host's shared set

    @functools.cached_property
    def _usable(self) -> dict:
        return {}

    def usable(self, cell: HostCell, dedicated: bool = False) -> frozenset[int]:
        """The CPUs of a cell this guest may use: never one another guest holds,
        and a dedicated vCPU never one of the host's shared set (worked out once)."""
        found = self._usable.get((cell.id, dedicated))
        if found is None:
            cpus = cell.cpu_ids - self.reserved - self.host.held_cpus
            if dedicated and self.shared:
                cpus -= self.shared
            found = cpus if self.allocated is None else cpus & self.allocated
            self._usable[cell.id, dedicated] = found
        return found

    def describe_held(self, cell: HostCell) -> str:
        """", CPUs 9-14 held by other guests (db02, web01)" for messages about a
        node (a whole host: None); "" when no other guest holds one there."""
        if not self.host.held:
            return ""
        ids = cell.cpu_ids if cell is not None else self.host.cpu_ids
        held = [(cpu, names) for cpu, names in self.host.held
                if cpu in ids and cpu not in self.reserved]
        if not held:
            return ""
        names = sorted({name for _, guests in held for name in guests})
        which = "CPUs" if len(held) > 1 else "CPU"
        return (f", {which} {format_cpulist(cpu for cpu, _ in held)} held by other "
                f"guests ({', '.join(names)})")

    def describe_limits(self) -> str:
        """"after reserved 0-1" / "inside allocated 4-11" for messages."""
        parts = []
        if self.reserved:
            parts.append(f"after reserved {format_cpulist(self.reserved)}")
        if self.allocated is not None:
            parts.append(f"inside allocated {format_cpulist(self.allocated)}"
                         if self.allocated else "with no CPUs allocated")
        return f" {' and '.join(parts)}" if parts else ""


def parse(data: str | bytes, source: str) -> Host:
    """``virsh capabilities`` → Host; errors name the file, line and column."""
    root = domain.parse(data, source, root_tag="capabilities", kind=KIND).getroot()
    cells = root.findall("host/topology/cells/cell")
    if not cells:
        raise error(Span(source, root.sourceline or 1, 1),
                    "the host capabilities describe no NUMA cells "
                    "(<host><topology><cells>)",
                    hint="give the output of 'virsh capabilities' of the host itself")
    threads: dict = {}
    parsed = sorted((_cell(cell, source, threads) for cell in cells),
                    key=lambda c: c.id)
    _check_unique([c.id for c in parsed], "cell id", source, root)
    _check_unique([cpu.id for c in parsed for cpu in c.cpus], "CPU id", source, root)
    return Host(source, tuple(parsed))


def _cell(cell, source: str, threads: dict) -> HostCell:
    memory = cell.find("memory")
    pages = tuple(sorted((_kib(p, p.get("unit"), _int(p, "size", source), source),
                          _int_text(p, source)) for p in cell.iterfind("pages")))
    distances = tuple((_int(s, "id", source), _int(s, "value", source))
                      for s in cell.iterfind("distances/sibling"))
    memory_kib = _kib(memory, memory.get("unit"), _int_text(memory, source), source) \
        if memory is not None else None
    return HostCell(_int(cell, "id", source), memory_kib, pages,
                    _cell_cpus(cell, source, threads), distances)


def _cell_cpus(cell, source: str, threads: dict) -> tuple[HostCpu, ...]:
    """A cell's CPUs, by id. ``threads``: read_siblings's lists of the document."""
    elements = cell.findall("cpus/cpu")
    cpus = _plain_cpus(cell, len(elements), threads)
    if cpus is None:  # something unusual, or wrong: CPU by CPU, with messages
        cpus = [_cpu(cpu, source) for cpu in elements]
    return tuple(sorted(cpus, key=lambda cpu: cpu.id))


# A CPU's attributes, as _cpu reads them, each a column of a cell's CPUs.
_CPU_ATTRIBUTES = ("id", "socket_id", "die_id", "core_id", "siblings")


def _plain_cpus(cell, count: int, threads: dict) -> list[HostCpu] | None:
    """A cell's CPUs, read a column at a time (XPath, then checks and int() in C:
    a big host has a thousand CPUs, too many to read one by one in Python), when
    each attribute is on all of its ``count`` CPUs or on none (old libvirt states
    no die_id) and each number is a few plain digits; otherwise None, for _cpu to
    read them one by one (an absent attribute means what it means to _cpu)."""
    ids, sockets, dies, cores, siblings = (_column(name)(cell) for name in _CPU_ATTRIBUTES)
    if not count or len(ids) != count or any(len(column) not in (0, count) for column in
                                             (sockets, dies, cores, siblings)):
        return None
    if not all(_short_wholes(column) for column in (ids, sockets, dies, cores) if column):
        return None
    ids = list(map(int, ids))
    if max(ids) >= values.MAX_CPU_IDS:
        return None
    if siblings:
        siblings = [read_siblings(text, threads) for text in siblings]
        if None in siblings:
            return None
    else:
        siblings = [frozenset((ident,)) for ident in ids]
    zeros = [0] * count
    return [HostCpu(ident, socket, die, core, with_cpu(threads_of, ident))
            for ident, socket, die, core, threads_of in zip(
                ids, list(map(int, sockets)) or zeros, list(map(int, dies)) or zeros,
                list(map(int, cores)) or ids, siblings)]


@functools.cache
def _column(name: str):
    """The XPath of one attribute of a cell's CPUs, compiled when first used."""
    from lxml import etree

    return etree.XPath(f"cpus/cpu/@{name}", smart_strings=False)


# A number int() reads at once, what _int would read without its messages; and a
# list of them.
_short_whole = re.compile("[0-9]{1,18}").fullmatch
_short_whole_list = re.compile("[0-9]{1,18}(?:,[0-9]{1,18})*").fullmatch


def _short_wholes(texts: list[str]) -> bool:
    """Whether each of ``texts`` is a number int() reads at once: one pattern over
    them all, joined by commas (and the count of commas says none held one)."""
    joined = ",".join(texts)
    return _short_whole_list(joined) is not None and joined.count(",") == len(texts) - 1


def read_siblings(text: str, threads: dict) -> frozenset[int] | None:
    """A CPU's siblings ("3,515", "6-7"): parse_cpulist's ids, read once per
    document (``threads``: the lists read so far: the threads of a core state one
    list, and share one set); None for a list parse_cpulist refuses (the caller's
    checks say why)."""
    found = threads.get(text, False)
    if found is False:
        found = threads[text] = _cpulist_or_none(text)
    return found


def _cpulist_or_none(text: str) -> frozenset[int] | None:
    """parse_cpulist's ids, quicker for a plain list; None where it refuses."""
    if _short_whole_list(text):
        ids = frozenset(map(int, text.split(",")))
        return ids if max(ids) < values.MAX_CPU_IDS else None
    try:
        return parse_cpulist(text)
    except ValueError:
        return None


def with_cpu(threads: frozenset[int], ident: int) -> frozenset[int]:
    """A CPU's siblings, itself included: the list's own set when it names the CPU,
    so that the threads of one core share one set."""
    return threads if ident in threads else threads | {ident}


def _cpu(cpu, source: str) -> HostCpu:
    ident = _int(cpu, "id", source)
    if ident >= values.MAX_CPU_IDS:
        raise _bad(cpu, source, f"id='{ident}' (CPU ids are 0..{values.MAX_CPU_IDS - 1}, "
                   "libvirt's limit)")
    siblings = cpu.get("siblings")
    try:
        threads = parse_cpulist(siblings) if siblings else frozenset((ident,))
    except ValueError as exc:
        raise _bad(cpu, source, f"siblings: {exc}") from None
    # A CPU without core_id (old libvirt) is its own core, in the order of the ids.
    core = _int(cpu, "core_id", source) if cpu.get("core_id") is not None else ident
    return HostCpu(ident, _int(cpu, "socket_id", source, 0), _int(cpu, "die_id", source, 0),
                   core, threads | {ident})


def _kib(element, unit: str | None, value: int, source: str) -> int:
    """``value`` in ``unit`` (libvirt writes KiB) → KiB."""
    try:
        return values.kib(str(value), unit)
    except ValueError:
        raise _bad(element, source, f"unit '{unit}' (expected a unit like KiB, MiB or "
                   "GiB)") from None


def _int(element, name: str, source: str, default: int | None = None) -> int:
    value = element.get(name)
    if value is not None and _short_whole(value):  # the usual case, read at once
        return int(value)
    if value is None and default is not None:
        return default
    if value is None or not values.is_whole(value):
        raise _bad(element, source, f"{name}='{value}' (expected a whole number)"
                   if value is not None else f"no {name}")
    return _whole(element, source, value)


def _int_text(element, source: str) -> int:
    text = (element.text or "").strip()
    if _short_whole(text):  # the usual case, read at once
        return int(text)
    if not values.is_whole(text):
        raise _bad(element, source, f"'{text}' (expected a whole number)")
    return _whole(element, source, text)


def _whole(element, source: str, digits: str) -> int:
    try:  # values refuses absurd lengths before int() reads them
        return values.parse_int(digits)
    except ValueError as exc:
        raise _bad(element, source, str(exc)) from None


def _bad(element, source: str, what: str):
    return error(element_span(element, source), f"invalid <{element.tag}> in the host "
                 f"capabilities: {what}")


def _check_unique(values, what: str, source: str, root) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise error(Span(source, root.sourceline or 1, 1),
                        f"the host capabilities list {what} {value} twice")
        seen.add(value)


def facts(host: Host, reserved: str | None, allocated: str | None,
          option_names: OptionNames = CLI_OPTIONS, shared: str | None = None) -> HostFacts:
    """The host with ``--reserved-cpus``, ``--allocated-cpus`` and ``--shared-cpus``
    applied; CPUs the host does not have are an error (the list was meant for
    another host)."""
    return HostFacts(host, _cpus(reserved, "reserved_cpus", host, option_names)
                     or frozenset(), _cpus(allocated, "allocated_cpus", host, option_names),
                     _cpus(shared, "shared_cpus", host, option_names))


def _cpus(text: str | None, field: str, host: Host, option_names: OptionNames
          ) -> frozenset[int] | None:
    if text is None:
        return None
    if not text.strip():
        return frozenset()
    where, option = option_names.span(field, text), option_names.name(field)
    try:  # ids beyond libvirt's are refused before a range is expanded
        cpus = _cpu_list(text.strip())
    except ValueError as exc:
        raise error(where, f"{option}: {exc}") from None
    known = host.cpu_ids
    unknown = cpus - known
    if unknown:
        which = (f"CPUs {format_cpulist(unknown)} are" if len(unknown) > 1
                 else f"CPU {format_cpulist(unknown)} is")
        raise error(where, f"{option}: {which} not on the host "
                    f"({host.source} has CPUs {format_cpulist(known)})")
    return cpus


@functools.lru_cache(maxsize=256)
def _cpu_list(text: str) -> frozenset[int]:
    """A request's CPU list, read once however many hosts it is checked against."""
    return parse_cpulist(text)


@frozen
class HostSummary:
    """What ``when host ...`` conditions may test of the host (``--host``)."""

    nodes: int
    smt: bool
    page_pools: frozenset[int]  # hugepage sizes (KiB) with free pages on some node

    @classmethod
    def of(cls, facts: HostFacts) -> HostSummary:
        """Of the host and its constraints: SMT counts only where the guest may use
        both threads. Kept with the host for the constraints of the last few
        requests: fit asks it of the same parsed hosts again and again."""
        return facts.host.remember(("summary", facts.reserved, facts.allocated,
                                    facts.shared), lambda: cls._of(facts))

    @classmethod
    def _of(cls, facts: HostFacts) -> HostSummary:
        cells = facts.host.cells
        usable = frozenset().union(*(facts.usable(cell) for cell in cells))
        smt = any(len(cpu.siblings & usable) > 1 for cell in cells for cpu in cell.cpus
                  if cpu.id in usable)
        pools = frozenset(size for cell in cells for size, count in cell.pages[1:] if count)
        return cls(len(cells), smt, pools)

