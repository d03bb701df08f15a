"""A host snapshot: what ``virtuned host snapshot --connect URI`` writes, read back
as the Host a guest is placed on (``--host``, ``--hosts``).

One versioned JSON document (its schema: virtuned/host.schema.json) holding what a
scheduler collects from each host once and then plans against offline: the NUMA
nodes with their CPUs, memory and hugepage pools (totals, and what is free when the
driver says), the other guests (running, or defined to start with the host) with
the CPUs they pin threads to and the memory they bind to nodes, and the
hypervisor's domain capabilities. Facts only: what a guest may take of them is
decided here, when the snapshot is read:

- a CPU another guest pins a thread to alone (a vcpupin, emulatorpin, iothreadpin
  or ``<vcpu cpuset>`` of one CPU) is held by it: never used; a guest floating over
  many CPUs holds none of them;
- a node's free pages and memory are what libvirt says is free
  (virNodeGetFreePages, virNodeGetCellsFreeMemory), less what guests that are not
  running but start with the host will take there; where the driver does not say,
  the totals less what every listed guest takes there;
- a guest cell bound to several nodes counts on each of them (its pages could be
  on any).
"""

from __future__ import annotations

import functools
import json

from virtuned import inputs
from virtuned.diagnostics import Span, error
from virtuned.facts.host import Host, HostCell, HostCpu, read_siblings, with_cpu
from virtuned.facts.platform import machine_family
from virtuned.frozen import frozen
from virtuned.values import parse_cpulist

FORMAT = "virtuned host snapshot"
VERSION = 1
KIND = "host snapshot"

# The warning of a snapshot whose driver did not tell what is free (Host.pages_note).
UNTOLD_NOTE = ("{source} does not say how many pages are free (its driver does not "
               "tell): the pools' totals less the other guests' pages were taken as free")


def is_snapshot(data: str | bytes) -> bool:
    """Whether a host document is a snapshot (JSON) rather than capabilities XML:
    its first non-space character."""
    head = data[:4096].lstrip()
    return head[:1] in ("{", b"{")


def parse(data: str | bytes, source: str) -> Host:
    """A snapshot's text → the Host this guest may use; errors name the field. Its
    cap is capabilities XML's (a file was read with it; a value is checked here)."""
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    if size > inputs.XML_BYTES:
        raise error(Span(source, 1, 1), f"{KIND} is larger than {inputs.XML_BYTES} bytes, "
                    "its limit", hint="docs/security.md lists the limit of every input")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
        raise error(Span(source, line, col),
                    f"invalid {KIND}: not JSON ({getattr(exc, 'msg', exc)})") from None
    return host_of(document, source)


def host_of(document: dict, source: str, ignore: frozenset[str] = frozenset()) -> Host:
    """The snapshot document (parsed JSON) → Host. ``ignore``: names of guests that
    hold nothing for this guest (the guest itself, when it is already defined there
    and is compiled again)."""
    read = _Reader(source)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise read.bad("", f"not a {KIND} (no \"format\": \"{FORMAT}\")")
    version = read.whole(document, "version", "")
    if version != VERSION:
        raise read.bad("version", f"version {version}; this virtuned reads version "
                       f"{VERSION}")
    guests = [guest for guest in (_guest(read, guest, f"guests[{i}]") for i, guest in
                                  enumerate(read.items(document, "guests", "")))
              if guest.name not in ignore]
    nodes = read.items(document, "nodes", "")
    if not nodes:
        raise read.bad("nodes", "no NUMA nodes")
    untold = any(page.get("free") is None for node in nodes if isinstance(node, dict)
                 for page in node.get("pages") or () if isinstance(page, dict))
    kept: dict[int, list] = {}  # per node: Host.kept's entries
    cells = tuple(sorted((_cell(read, node, f"nodes[{i}]", guests, kept)
                          for i, node in enumerate(nodes)), key=lambda c: c.id))
    ids = [cell.id for cell in cells]
    if len(set(ids)) != len(ids):
        raise read.bad("nodes", "a node id is listed twice")
    cpus = {cpu.id for cell in cells for cpu in cell.cpus}
    if len(cpus) != sum(len(cell.cpus) for cell in cells):
        raise read.bad("nodes", "a CPU id is listed twice")
    held: dict[int, list[str]] = {}
    for guest in guests:
        for cpu in sorted(guest.pinned & cpus):
            held.setdefault(cpu, []).append(guest.name)
    return Host(source, cells, pages_note=UNTOLD_NOTE if untold else None,
                held=tuple((cpu, tuple(sorted(names))) for cpu, names in sorted(held.items())),
                kept=tuple(entry for cell in cells for entry in kept[cell.id]),
                domcaps=_DomainCapabilities(source, _domcaps(read, document)))


@frozen
class _Guest:
    """Another guest, as the planner counts it."""

    name: str
    running: bool
    pinned: frozenset[int]  # the CPUs it pins a thread to alone
    memory: tuple  # (host nodes, KiB, page size in KiB or None)


def _guest(read, guest, path) -> _Guest:
    name = read.text(guest, "name", path)
    pins = [read.cpus(guest, "vcpu_cpuset", path, optional=True),
            read.cpus(guest, "emulator", path, optional=True)]
    for field in ("vcpus", "iothreads"):
        table = guest.get(field) or {}
        if not isinstance(table, dict):
            raise read.bad(f"{path}.{field}", "expected an object of CPU lists")
        pins += [read.cpus(table, key, f"{path}.{field}") for key in table]
    memory = []
    for i, part in enumerate(read.items(guest, "memory", path)):
        where = f"{path}.memory[{i}]"
        nodes = read.cpus(part, "nodes", where, optional=True) or frozenset()
        page = part.get("page_kib")
        memory.append((nodes, read.whole(part, "kib", where),
                       None if page is None else read.whole(part, "page_kib", where)))
    return _Guest(name, read.flag(guest, "running", path),
                  frozenset(next(iter(cpus)) for cpus in pins if cpus and len(cpus) == 1),
                  tuple(memory))


def _cell(read, node, path, guests, kept: dict) -> HostCell:
    """A node as this guest may use it; what other guests keep of it, and whose it
    is, go to ``kept`` (for messages)."""
    ident = read.whole(node, "id", path)
    entries = kept.setdefault(ident, [])

    def left(count: int, page_kib: int | None, told: bool) -> int:
        taken, names = _kept(guests, ident, page_kib, told)
        if taken:
            entries.append((ident, page_kib, taken, names))
        return max(count - taken // (page_kib or 1), 0)

    pages = []
    for i, pool in enumerate(read.items(node, "pages", path)):
        where = f"{path}.pages[{i}]"
        size, told = read.whole(pool, "size_kib", where), pool.get("free") is not None
        pages.append((size, left(read.whole(pool, "free" if told else "total", where),
                                 size, told)))
    memory = None
    if node.get("memory_kib") is not None or node.get("free_memory_kib") is not None:
        told = node.get("free_memory_kib") is not None
        memory = left(read.whole(node, "free_memory_kib" if told else "memory_kib", path),
                      None, told)
    cpus = tuple(sorted((_cpu(read, cpu, path, i)
                         for i, cpu in enumerate(read.items(node, "cpus", path))),
                        key=lambda cpu: cpu.id))
    distances = tuple(_distance(read, d, path, i)
                      for i, d in enumerate(read.items(node, "distances", path)))
    return HostCell(ident, memory, tuple(sorted(pages)), cpus, distances)


def _distance(read, distance, node_path: str, index: int) -> tuple[int, int]:
    """(other node, distance): a node lists one per node, so checked inline as _cpu
    checks a CPU."""
    if type(distance) is dict:
        other, value = distance.get("node"), distance.get("value")
        if type(other) is int and type(value) is int and 0 <= other < 2**63 \
                and 0 <= value < 2**63:
            return other, value
    path = f"{node_path}.distances[{index}]"
    return read.whole(distance, "node", path), read.whole(distance, "value", path)


def _kept(guests, node: int, page_kib: int | None, free_told: bool
          ) -> tuple[int, tuple[str, ...]]:
    """The KiB of memory (``page_kib`` None) or of hugepages of that size other guests
    take on ``node`` that its free count does not show yet, and their names: those of
    the guests that are not running (they start with the host), or of all of them
    when the driver did not say what is free."""
    parts = [(kib, guest.name) for guest in guests if not (free_told and guest.running)
             for nodes, kib, page in guest.memory if node in nodes and page == page_kib]
    return sum(kib for kib, _ in parts), tuple(sorted({name for _, name in parts}))


def _cpu(read, cpu, node_path: str, index: int) -> HostCpu:
    """One CPU. A snapshot holds hundreds: the common case is checked inline, and
    the reader's checks, which name the field, run only for a CPU that fails it."""
    if type(cpu) is dict:
        ident, socket, die, core = (cpu.get(key) for key in ("id", "socket", "die", "core"))
        siblings = cpu.get("siblings")
        if all(type(v) is int and 0 <= v < 2**63 for v in (ident, socket, die, core)) \
                and (siblings is None or type(siblings) is str):
            threads = frozenset() if siblings is None else read_siblings(siblings,
                                                                         read.threads)
            if threads is not None:
                return HostCpu(ident, socket, die, core, with_cpu(threads, ident))
    path = f"{node_path}.cpus[{index}]"
    ident = read.whole(cpu, "id", path)
    siblings = read.cpus(cpu, "siblings", path, optional=True) or frozenset()
    return HostCpu(ident, read.whole(cpu, "socket", path), read.whole(cpu, "die", path),
                   read.whole(cpu, "core", path), with_cpu(siblings, ident))


@functools.lru_cache(maxsize=4096)
def _cpulist(text: str) -> frozenset[int]:
    """A CPU list the reader checks (the other guests', a CPU's that needs its field
    named): the same few recur on every host."""
    return parse_cpulist(text)


def _domcaps(read, document) -> tuple[tuple[str, str, str, str], ...]:
    return tuple((read.text(entry, "arch", f"domcaps[{i}]"),
                  read.text(entry, "virt_type", f"domcaps[{i}]"),
                  read.text(entry, "machine", f"domcaps[{i}]"),
                  read.text(entry, "xml", f"domcaps[{i}]"))
                 for i, entry in enumerate(read.items(document, "domcaps", "")))


class _DomainCapabilities:
    """The snapshot's domain capabilities of a guest's platform: (DomainCaps or
    None, no note), as Plan takes them (plan/__init__.py)."""

    def __init__(self, source: str, entries):
        self.source, self.entries = source, entries

    def named(self, source: str):
        return _DomainCapabilities(source, self.entries)

    @property
    def empty(self) -> bool:
        """None for any platform: checking a guest against them checks nothing."""
        return not self.entries

    def __call__(self, platform):
        for arch, virt_type, machine, xml in self.entries:
            if (arch, virt_type) == (platform.arch, platform.domain_type) and \
                    machine_family(machine) == platform.family:
                from virtuned.facts import domcaps

                return domcaps.parse(xml, f"{self.source} domcaps {virt_type} {arch} "
                                          f"{machine}"), None
        return None, None


class _Reader:
    """Typed fields of the JSON, or an error naming the field (exit 2)."""

    def __init__(self, source: str):
        self.source = source
        self.threads: dict = {}  # the CPUs' sibling lists read (host.read_siblings)

    def bad(self, path: str, what: str):
        return error(Span(self.source, 1, 1),
                     f"invalid {KIND}: {path + ': ' if path else ''}{what}",
                     hint="write it with 'virtuned host snapshot --connect URI -o FILE'")

    def _field(self, obj, key, path):
        if not isinstance(obj, dict):
            raise self.bad(path, "expected an object")
        return obj.get(key), f"{path}.{key}" if path else key

    def whole(self, obj, key, path) -> int:
        value, where = self._field(obj, key, path)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise self.bad(where, f"expected a whole number, got {json.dumps(value)}")
        return value

    def text(self, obj, key, path) -> str:
        value, where = self._field(obj, key, path)
        if not isinstance(value, str) or not value:
            raise self.bad(where, f"expected text, got {json.dumps(value)[:40]}")
        return value

    def flag(self, obj, key, path) -> bool:
        value, where = self._field(obj, key, path)
        if not isinstance(value, bool):
            raise self.bad(where, f"expected true or false, got {json.dumps(value)[:40]}")
        return value

    def items(self, obj, key, path) -> list:
        value, where = self._field(obj, key, path)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.bad(where, "expected an array")
        return value

    def cpus(self, obj, key, path, optional: bool = False) -> frozenset[int] | None:
        value, where = self._field(obj, key, path)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.bad(where, f"expected a CPU list like \"0-3,8\", got "
                           f"{json.dumps(value)[:40]}")
        try:
            return _cpulist(value)
        except ValueError as exc:
            raise self.bad(where, str(exc)) from None
