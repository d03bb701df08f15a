"""What the guest needs of any host: its vCPUs, memory and cells, and the CPU,
memory and thread policies its traits ask for (``virtuned plan`` reports them)."""

from __future__ import annotations

from collections import Counter

from virtuned.diagnostics import REQUEST, ExitCode, Span, VirtunedError, error
from virtuned.domain import element_span, int_attr
from virtuned import values
from virtuned.frozen import frozen
from virtuned.values import format_cpulist, format_kib, parse_cpulist

DEFAULT_MEMORY_KIB = 1024 * 1024
# The most vCPUs any machine takes (QEMU's pc-q35-9.0): plan/limits.py checks the
# machine's own limit, this one holds before the input's <vcpu> is expanded.
MAX_VCPUS = 4096


@frozen
class GuestCell:
    id: int
    vcpus: tuple[int, ...]
    memory_kib: int


@frozen
class Requirements:
    """What the guest needs, whatever host it lands on (``virtuned plan``)."""

    vcpus: int
    memory_kib: int
    cells: tuple[GuestCell, ...]  # one implicit cell unless 'guest numa nodes N'
    guest_numa: bool = False  # the cells are the guest's own (<cpu><numa>)
    split: bool = False  # ... made by 'guest numa nodes N' (else the input's)
    cpus: str | None = None  # "dedicated", "shared" or None (nothing asked)
    threads: str = "prefer"  # dedicated only: prefer | isolate | require
    threads_per_core: int = 2  # require: the guest topology's threads
    emulator: str | None = None  # "isolated", "shared" or None
    iothreads: int = 0
    page_kib: int | None = None  # hugepage size
    host_node: int | None = None  # 'place on host node N'
    # Host nodes of the guest's host devices ('device numa affinity'): tried first,
    # so the guest lands beside its devices when it fits there.
    device_nodes: tuple[int, ...] = ()

    @property
    def dedicated(self) -> bool:
        return self.cpus == "dedicated"

    @property
    def placed(self) -> bool:
        """Whether host CPUs or nodes are chosen at all (else the XML is the same on
        every host)."""
        return (self.cpus is not None or self.host_node is not None or self.split
                or self.emulator == "isolated")

    @property
    def bound(self) -> bool:
        """Whether cells are bound to host nodes: shared CPUs float over the whole
        host unless a node or guest cells are asked for."""
        return self.dedicated or self.host_node is not None or self.split

    def pages(self, cell: GuestCell) -> int:
        return cell.memory_kib // self.page_kib if self.page_kib else 0

    def unit(self) -> str:
        """What a dedicated vCPU consumes, for messages."""
        threads = f"{self.threads_per_core} thread" + "s" * (self.threads_per_core > 1)
        return {"isolate": "whole free cores",
                "require": f"free cores of {threads}"}.get(self.threads, "free CPUs")



# ---------------------------------------------------------------- needs
# What a trait asks of the planner (its declaration's ``needs``): one small typed
# value each, so the planner reads what the traits want without naming them.

@frozen
class CpuPolicy:
    """Host CPUs of the vCPUs' own ('dedicated cpus'), or shared ('shared cpus')."""

    dedicated: bool
    threads: str = "prefer"  # dedicated only: prefer | isolate | require


@frozen
class EmulatorPolicy:
    policy: str  # isolated | shared


@frozen
class IoThreads:
    count: int


@frozen
class Realtime:
    pass


@frozen
class Topology:
    sockets: int
    cores: int
    threads: int

    @property
    def vcpus(self) -> int:
        return self.sockets * self.cores * self.threads


@frozen
class VcpuCount:
    count: int


@frozen
class MemorySize:
    kib: int


@frozen
class Hugepages:
    page_kib: int


@frozen
class HostNode:
    node: int


@frozen
class GuestCells:
    count: int


@frozen
class DeviceAffinity:
    pass


# The needs that make a guest placed, the one named in errors first.
PLACING = (CpuPolicy, HostNode, GuestCells, EmulatorPolicy, Hugepages)


def requirements(needs: dict, asked_by: dict, root, filename: str,
                 override: bool = False) -> Requirements:
    """The guest's needs: vCPUs and memory from the input (else the traits, else
    the defaults; with ``override``, the vCPUs and memory the traits ask first), split into
    guest cells, with the CPU policy the traits ask. ``needs`` maps each need's
    type to the need; ``asked_by``, to its trait."""
    if not needs:  # nothing to place: completion's defaults (see ``described``)
        return NOTHING_NEEDED
    cpu, topology = needs.get(CpuPolicy), needs.get(Topology)
    dedicated = cpu is not None and cpu.dedicated
    asked_vcpus = _field(needs, VcpuCount, "count")  # 'vcpus N' (it sets <vcpu>)
    vcpus = ((_wins(override, asked_by, VcpuCount) and asked_vcpus)
             or _input_vcpus(root, filename) or asked_vcpus
             or (topology.vcpus if topology else None) or 1)
    asked_memory = _field(needs, MemorySize, "kib")  # 'memory SIZE' (it sets <memory>)
    memory = ((_wins(override, asked_by, MemorySize) and asked_memory)
              or _input_memory(root, filename) or asked_memory
              or DEFAULT_MEMORY_KIB)
    threads = cpu.threads if dedicated else "prefer"
    per_core = topology.threads if topology else 2
    if threads == "require" and per_core < 2:
        raise _refused(asked_by[CpuPolicy], "it needs 2 or more threads per core, and "
                       f"'{asked_by[Topology].origin.label}' gives the guest 1",
                       ExitCode.CONFLICT)
    if Realtime in needs and not dedicated:
        raise _refused(asked_by[Realtime], "it needs 'dedicated cpus': real-time vCPUs "
                       "must not share their host CPUs", hint="add 'dedicated cpus'")
    page = _field(needs, Hugepages, "page_kib")  # a page size (plan/limits.py)
    if page and memory % page:
        raise _refused(asked_by[Hugepages], f"the guest's memory ({format_kib(memory)}) "
                       f"is not a whole number of {format_kib(page)} pages",
                       ExitCode.CONFLICT)
    count = _field(needs, GuestCells, "count")
    granule = per_core if threads == "require" else 1
    if count:
        cells = _split_cells(count, vcpus, memory, granule, page or 1024,
                             asked_by[GuestCells])
    else:
        cells = _input_cells(root, filename) or (GuestCell(0, tuple(range(vcpus)), memory),)
        for cell in cells:
            if len(cell.vcpus) % granule:
                who = f"guest cell {cell.id}" if len(cells) > 1 else "the guest"
                raise _refused(asked_by[CpuPolicy], f"{who} has "
                               f"{len(cell.vcpus)} vCPUs, not a multiple of the "
                               f"{per_core} threads per core", ExitCode.CONFLICT)
    return Requirements(
        vcpus=vcpus, memory_kib=memory, cells=cells,
        guest_numa=bool(count) or root.find("cpu/numa/cell") is not None, split=bool(count),
        cpus=None if cpu is None else "dedicated" if dedicated else "shared",
        threads=threads, threads_per_core=per_core,
        emulator=_field(needs, EmulatorPolicy, "policy"),
        iothreads=_field(needs, IoThreads, "count") or 0,
        page_kib=page, host_node=_field(needs, HostNode, "node"))


def _wins(override: bool, asked_by: dict, kind: type) -> bool:
    """Whether the trait asking for ``kind`` replaces what the input states: with
    --override, a required one (a preference never does, so it is not planned for)."""
    return override and kind in asked_by and asked_by[kind].origin.strength == "require"


def _field(needs: dict, kind: type, name: str):
    """A field of the need of this kind, or None when no trait asks for it."""
    need = needs.get(kind)
    return None if need is None else getattr(need, name)


def check_cover(cells, vcpus: int, root, filename: str) -> None:
    """The input's guest cells, to be placed, hold every vCPU exactly once: a vCPU
    in no cell would be pinned nowhere, one in two cells on two nodes at once."""
    counts = Counter(v for cell in cells for v in cell.vcpus)
    missing = set(range(vcpus)) - set(counts)
    twice = {v for v, n in counts.items() if n > 1}
    beyond = {v for v in counts if v >= vcpus}
    def some(cpus) -> str:
        return (f"vCPU {format_cpulist(cpus)} is" if len(cpus) == 1 else
                f"vCPUs {format_cpulist(cpus)} are")

    problem = (f"{some(missing)} in no cell" if missing else
               f"{some(twice)} in two cells" if twice else
               f"{some(beyond)} beyond the guest's {vcpus}" if beyond else None)
    if problem:
        numa = root.find("cpu/numa")
        raise error(element_span(numa, filename), f"the input's guest NUMA cells cannot "
                    f"be placed: {problem}", hint="every vCPU must be in exactly one "
                    "<cell cpus=...>")


# What a guest no trait places needs: all completion asks is the defaults (it adds
# <vcpu> and <memory> only where the input has none), so the input is not read.
NOTHING_NEEDED = Requirements(vcpus=1, memory_kib=DEFAULT_MEMORY_KIB,
                              cells=(GuestCell(0, (0,), DEFAULT_MEMORY_KIB),))


def described(the_plan, root, filename: str) -> Requirements:
    """The plan's requirements, with a guest no trait places described from the
    input as far as it can be read (``virtuned plan`` reports its size)."""
    if the_plan.requirements is not NOTHING_NEEDED:
        return the_plan.requirements
    vcpus = _lenient(_input_vcpus, root, filename) or 1
    memory = _lenient(_input_memory, root, filename) or DEFAULT_MEMORY_KIB
    return Requirements(vcpus=vcpus, memory_kib=memory,
                        cells=(GuestCell(0, tuple(range(vcpus)), memory),))


def _lenient(read, root, filename: str):
    """What ``read`` finds, or None where the input says something this planner
    does not understand (libvirt may: a domain no trait places must pass as it is)."""
    try:
        return read(root, filename)
    except VirtunedError:
        return None


def _split_cells(count: int, vcpus: int, memory: int, cpu_granule: int,
                 memory_granule: int, asker) -> tuple[GuestCell, ...]:
    """``count`` guest cells, vCPUs and memory split as evenly as whole granules
    allow (threads of one core, hugepages or MiB), the first cells taking the rest."""
    cpu_parts = _split(vcpus, count, cpu_granule)
    memory_parts = _split(memory, count, memory_granule)
    if cpu_parts is None:
        unit = f"groups of {cpu_granule} threads" if cpu_granule > 1 else "vCPUs"
        raise _refused(asker, f"it needs {count} {unit} or more; the guest has {vcpus} "
                       "vCPUs", ExitCode.CONFLICT)
    if memory_parts is None:
        raise _refused(asker, f"cannot split {format_kib(memory)} of memory into "
                       f"{count} cells of whole {format_kib(memory_granule)}",
                       ExitCode.CONFLICT)
    cells, first = [], 0
    for index, (cpus, kib) in enumerate(zip(cpu_parts, memory_parts)):
        cells.append(GuestCell(index, tuple(range(first, first + cpus)), kib))
        first += cpus
    return tuple(cells)


def _split(total: int, parts: int, granule: int) -> list[int] | None:
    units, rest = divmod(total, granule)
    if rest or units < parts:
        return None
    base, extra = divmod(units, parts)
    return [(base + (i < extra)) * granule for i in range(parts)]


def _refused(asker, problem: str, exit_code=ExitCode.INVALID_INPUT, hint=None):
    return error(asker.origin.span or Span(REQUEST, 1, 1),
                 f"'{asker.origin.label}': {problem}", exit_code=exit_code, hint=hint)


def _input_vcpus(root, filename: str) -> int | None:
    vcpu = root.find("vcpu")
    if vcpu is None:
        return None
    text = (vcpu.text or "").strip()
    shown = text if len(text) <= 40 else text[:40] + "..."
    if not values.is_whole(text):
        raise error(element_span(vcpu, filename), f"invalid <vcpu> count '{shown}'")
    # The length first: int() of a megabyte of digits is slow, and never in range.
    if len(text.lstrip("0")) > len(str(MAX_VCPUS)) or not 1 <= int(text) <= MAX_VCPUS:
        raise error(element_span(vcpu, filename), f"invalid <vcpu> count '{shown}': "
                    f"vCPUs must be 1..{MAX_VCPUS}")
    return int(text)


def _input_memory(root, filename: str) -> int | None:
    memory = root.find("memory")
    return None if memory is None else _kib(memory, memory.get("unit"), filename)


def _kib(element, unit: str | None, filename: str, text: str | None = None) -> int:
    text = ((element.text if text is None else text) or "").strip()
    try:
        return values.kib(text, unit)
    except ValueError:
        raise error(element_span(element, filename),
                    f"invalid <{element.tag}> size '{text}' unit '{unit or 'KiB'}'") from None


def _input_cells(root, filename: str) -> tuple[GuestCell, ...] | None:
    """The guest cells the input defines (``<cpu><numa>``), placed as they are."""
    cells = []
    for cell in root.iterfind("cpu/numa/cell"):
        try:  # a cell without CPUs is memory only (libvirt allows it)
            cpus = parse_cpulist(cell.get("cpus")) if cell.get("cpus") else frozenset()
        except ValueError as exc:
            raise error(element_span(cell, filename), f"invalid guest cell: {exc}") from None
        cells.append(GuestCell(int_attr(cell, "id", len(cells), filename),
                               tuple(sorted(cpus)),
                               _kib(cell, cell.get("unit"), filename, cell.get("memory"))))
    return tuple(cells) or None
