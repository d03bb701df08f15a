"""TraitSet + input domain → Plan: the platform every emitter works against.

The platform is decided before anything is emitted, so every trait sees the same
machine type whichever order it runs in: a ``machine`` trait wins, then what the
input states, then libvirt's own default (an ``<os><type>`` without a machine gets
QEMU's default, ``pc``), and a domain with no ``<os>`` at all becomes q35.
"""

from __future__ import annotations

import attrs

from virtuned.values import format_kib, unit_bytes

from virtuned.diagnostics import REQUEST, ExitCode, Span, error
from virtuned.resolve import TraitSet

DEFAULT_ARCH = "x86_64"
DEFAULT_MACHINE = "q35"
DEFAULT_DOMAIN_TYPE = "kvm"
DEFAULT_MEMORY_KIB = 1024 * 1024


def machine_family(machine: str) -> str:
    """``q35`` for q35 machines, ``pc`` for i440fx ones, else the machine itself."""
    if machine == "q35" or machine.startswith("pc-q35"):
        return "q35"
    if machine == "pc" or machine.startswith("pc-"):
        return "pc"
    return machine


@attrs.frozen
class Platform:
    """Facts about the machine the guest will have, as flags (sqlglot-dialect style)."""

    domain_type: str
    arch: str
    machine: str  # as written, e.g. "q35" or "pc-i440fx-7.2"
    # Where the machine came from, for messages: "a trait", "the input", ...
    machine_source: str = "the input"

    def describe_machine(self) -> str:
        return f"machine type '{self.machine}' ({self.machine_source})"

    @property
    def family(self) -> str:
        return machine_family(self.machine)

    @property
    def has_pcie(self) -> bool:
        return self.family == "q35"

    @property
    def ide_allowed(self) -> bool:
        return self.family == "pc"


@attrs.frozen
class GuestCell:
    id: int
    vcpus: tuple[int, ...]
    memory_kib: int


@attrs.frozen
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


@attrs.frozen
class Plan:
    traits: TraitSet
    platform: Platform
    # What the host's hypervisor offers (``--domcaps``); None: nothing is checked.
    domcaps: object = None  # domcaps.DomainCaps
    # Host NUMA node of host PCI devices (``--device-node``), by normalized address.
    device_nodes: tuple[tuple[str, int], ...] = ()
    # The guest OS (osinfo short id) and its family, from 'os ID' or the input.
    os: str | None = None
    os_family: str | None = None
    # What the guest needs of any host, and where it goes on this one (None: no
    # --host, or nothing to place).
    requirements: Requirements | None = None
    placement: object = None  # placement.Placement
    host: object = None  # host.HostFacts, when --host is given
    # Requirements field → the trait that asked for it, for diagnostics.
    asked_by: tuple[tuple[str, object], ...] = ()

    def asker(self, *fields: str):
        """The trait behind the first of ``fields`` that a trait asked for."""
        asked = dict(self.asked_by)
        return next((asked[f] for f in fields if f in asked), None)


def plan(traits: TraitSet, tree, stated: Stated | None = None, *,
         domcaps=None, device_nodes=(), host=None,
         filename: str = "<domain>") -> Plan:
    root = tree.getroot()
    stated = stated or stated_platform(root)
    platform = platform_of(stated, traits.facts)
    if domcaps is not None:
        from virtuned.domcaps import check_platform

        check_platform(domcaps, platform)
    guest = os_facts(stated, traits.facts)
    needs, asked_by = _needs(traits)
    wanted = requirements(needs, asked_by, root, filename)
    if "device_affinity" in needs and wanted.placed:
        wanted = attrs.evolve(wanted, device_nodes=_hostdev_nodes(root, device_nodes))
    placement = None
    if host is not None and (wanted.placed or wanted.page_kib):
        if wanted.placed and wanted.guest_numa and not wanted.split:
            _check_cover(wanted.cells, wanted.vcpus, root, filename)
        from virtuned.placement import Infeasible, place

        try:
            placement = place(wanted, host) if wanted.placed else _check_pools(wanted, host)
        except Infeasible as exc:
            problem = f"infeasible placement on {host.host.source}: {exc}"
            preferred = [t for t in traits.traits if t.soft and t.definition.needs]
            if preferred:  # placed again without them, and said so
                return plan(_without(traits, preferred, problem), tree, stated,
                            domcaps=domcaps, device_nodes=device_nodes, host=host,
                            filename=filename)
            asker = asked_by[next(f for f in PLACING if f in asked_by)]
            raise error(asker.origin.span, problem, exit_code=ExitCode.CONFLICT) from None
    return Plan(traits, platform, domcaps, tuple(sorted(device_nodes)),
                guest.get("os"), guest.get("os family"), wanted, placement, host,
                tuple(asked_by.items()))


def _hostdev_nodes(root, device_nodes) -> tuple[int, ...]:
    """The known host nodes of the input's PCI host devices, most devices first."""
    from collections import Counter

    from virtuned.devices import hostdev_address

    known = dict(device_nodes)
    devices = root.find("devices")
    counts = Counter(known[address] for address in (
        hostdev_address(h) for h in (devices.iterchildren("hostdev")
                                     if devices is not None else ()))
        if address in known)
    return tuple(sorted(counts, key=lambda node: (-counts[node], node)))


def _without(traits: TraitSet, preferred, problem: str) -> TraitSet:
    """The trait set without the preferred placing traits, with a warning for each:
    when a placement cannot be found with them, they are what gives way."""
    from virtuned.diagnostics import Diagnostic

    dropped = tuple(Diagnostic("warning", f"preference '{t.origin.label}' dropped: it "
                               f"cannot hold: {problem}", t.origin.span) for t in preferred)
    kept = tuple(t for t in traits.traits if t not in preferred)
    return attrs.evolve(traits, traits=kept, warnings=traits.warnings + dropped)


def _check_pools(wanted: Requirements, host) -> None:
    """Hugepages with nothing placed: the host's pools together must hold them."""
    from virtuned.placement import Infeasible

    pool = sum(cell.pool(wanted.page_kib) for cell in host.host.cells)
    pages = wanted.memory_kib // wanted.page_kib
    if pool < pages:
        raise Infeasible((f"the host has {pool} free {format_kib(wanted.page_kib)} "
                          f"hugepages, the guest needs {pages}",))


# The requirement fields that make a guest placed, the one named in errors first.
PLACING = ("cpus", "host_node", "guest_cells", "emulator", "page_kib")


def _needs(traits: TraitSet) -> tuple[dict, dict]:
    """What the traits ask of the planner (their ``needs``), and who asked."""
    needs, asked_by = {}, {}
    for resolved in traits.traits:
        if resolved.definition.needs is None:
            continue
        for field, value in resolved.definition.needs(resolved.kwargs).items():
            needs[field] = value
            asked_by.setdefault(field, resolved)
    return needs, asked_by


def requirements(needs: dict, asked_by: dict, root, filename: str) -> Requirements:
    """The guest's needs: vCPUs and memory from the input (else the traits, else
    the defaults), split into guest cells, with the CPU policy the traits ask."""
    if not needs:  # nothing to place: completion's defaults (see ``described``)
        return NOTHING_NEEDED
    topology = needs.get("topology")
    vcpus = (_input_vcpus(root, filename) or needs.get("vcpus")
             or (topology[0] * topology[1] * topology[2] if topology else None) or 1)
    memory = _input_memory(root, filename) or needs.get("memory_kib") or DEFAULT_MEMORY_KIB
    threads = needs.get("threads", "prefer")
    per_core = topology[2] if topology else 2
    if threads == "require" and per_core < 2:
        raise _refused(asked_by["threads"], "it needs 2 or more threads per core, and "
                       f"'{asked_by['topology'].origin.label}' gives the guest 1",
                       ExitCode.CONFLICT)
    if "realtime" in needs and needs.get("cpus") != "dedicated":
        raise _refused(asked_by["realtime"], "it needs 'dedicated cpus': real-time vCPUs "
                       "must not share their host CPUs", hint="add 'dedicated cpus'")
    page = needs.get("page_kib")
    if page and (page < 4 or page & (page - 1)):
        raise _refused(asked_by["page_kib"], f"{format_kib(page)} is not a page size",
                       hint="page sizes are powers of two: 2MiB and 1GiB on x86_64")
    if page and memory % page:
        raise _refused(asked_by["page_kib"], f"the guest's memory ({format_kib(memory)}) "
                       f"is not a whole number of {format_kib(page)} pages",
                       ExitCode.CONFLICT)
    count = needs.get("guest_cells")
    granule = per_core if threads == "require" and needs.get("cpus") == "dedicated" else 1
    if count:
        cells = _split_cells(count, vcpus, memory, granule, page or 1024,
                             asked_by["guest_cells"])
    else:
        cells = _input_cells(root, filename) or (GuestCell(0, tuple(range(vcpus)), memory),)
        for cell in cells:
            if len(cell.vcpus) % granule:
                who = f"guest cell {cell.id}" if len(cells) > 1 else "the guest"
                raise _refused(asked_by["threads"], f"{who} has "
                               f"{len(cell.vcpus)} vCPUs, not a multiple of the "
                               f"{per_core} threads per core", ExitCode.CONFLICT)
    return Requirements(
        vcpus=vcpus, memory_kib=memory, cells=cells,
        guest_numa=bool(count) or root.find("cpu/numa/cell") is not None, split=bool(count),
        cpus=needs.get("cpus"), threads=threads, threads_per_core=per_core,
        emulator=needs.get("emulator"), iothreads=needs.get("iothreads", 0),
        page_kib=page, host_node=needs.get("host_node"))


def _check_cover(cells, vcpus: int, root, filename: str) -> None:
    """The input's guest cells, to be placed, hold every vCPU exactly once: a vCPU
    in no cell would be pinned nowhere, one in two cells on two nodes at once."""
    from collections import Counter

    from virtuned.domain import element_span
    from virtuned.values import format_cpulist

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


def described(the_plan: Plan, root, filename: str) -> Requirements:
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
    from virtuned.diagnostics import VirtunedError

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
    from virtuned.domain import element_span

    vcpu = root.find("vcpu")
    if vcpu is None:
        return None
    text = (vcpu.text or "").strip()
    if not text.isdigit() or int(text) < 1:
        raise error(element_span(vcpu, filename), f"invalid <vcpu> count '{text}'")
    return int(text)


def _input_memory(root, filename: str) -> int | None:
    memory = root.find("memory")
    return None if memory is None else _kib(memory, memory.get("unit"), filename)


def _kib(element, unit: str | None, filename: str, text: str | None = None) -> int:
    from virtuned.domain import element_span

    text = (element.text if text is None else text or "").strip()
    factor = unit_bytes(unit or "KiB")
    if not text.isdigit() or factor is None:
        raise error(element_span(element, filename),
                    f"invalid <{element.tag}> size '{text}' unit '{unit or 'KiB'}'")
    return int(text) * factor // 1024


def _input_cells(root, filename: str) -> tuple[GuestCell, ...] | None:
    """The guest cells the input defines (``<cpu><numa>``), placed as they are."""
    from virtuned.domain import element_span, int_attr
    from virtuned.values import parse_cpulist

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


@attrs.frozen
class Stated:
    """What the input domain says about its platform (None: it says nothing)."""

    domain_type: str | None
    machine: str | None
    arch: str | None
    has_os_type: bool
    # The osinfo URI of the guest OS in the input's libosinfo metadata, which
    # virt-install and virt-manager write.
    os_uri: str | None = None


# Inside <metadata>: <libosinfo:libosinfo><libosinfo:os id=URI/>, as virt-install
# writes it.
_LIBOSINFO_OS = "{http://libosinfo.org/xmlns/libvirt/domain/1.0}libosinfo/" \
                "{http://libosinfo.org/xmlns/libvirt/domain/1.0}os"


def stated_platform(root) -> Stated:
    # Most inputs have no <metadata>: the namespaced path is looked up only in one.
    metadata = next(root.iterchildren("metadata"), None)
    stated_os = metadata.find(_LIBOSINFO_OS) if metadata is not None else None
    os_uri = stated_os.get("id") if stated_os is not None else None
    os_element = next(root.iterchildren("os"), None)
    os_type = next(os_element.iterchildren("type"), None) if os_element is not None \
        else None
    if os_type is None:
        return Stated(root.get("type"), None, None, False, os_uri)
    return Stated(root.get("type"), os_type.get("machine"), os_type.get("arch"), True,
                  os_uri)


def platform_of(stated: Stated, decided) -> Platform:
    """The platform: facts the traits decide (``machine``) over what the input states
    over the defaults."""
    if decided.get("machine"):
        machine, source = decided["machine"], "set by a trait"
    elif stated.machine:
        machine, source = stated.machine, "stated by the input"
    elif stated.has_os_type:
        machine, source = "pc", "QEMU's default: the input's <os><type> names no machine"
    else:
        machine, source = DEFAULT_MACHINE, "virtuned's default: the input has no <os>"
    return Platform(
        domain_type=stated.domain_type or DEFAULT_DOMAIN_TYPE,
        arch=stated.arch or DEFAULT_ARCH,
        machine=machine,
        machine_source=source,
    )


def condition_facts(stated: Stated, decided, host: HostSummary | None = None) -> dict:
    """What ``when`` blocks may test: the platform, the guest OS, the host (when
    given), plus any other decided facts."""
    platform = platform_of(stated, decided)
    return {**decided, **os_facts(stated, decided), "machine": platform.machine,
            "arch": platform.arch, "type": platform.domain_type, "host": host}


@attrs.frozen
class HostSummary:
    """What ``when host ...`` conditions may test of the host (``--host``)."""

    nodes: int
    smt: bool
    page_pools: frozenset[int]  # hugepage sizes (KiB) with free pages on some node

    @classmethod
    def of(cls, facts) -> HostSummary:
        """Of a host.HostFacts: SMT counts only where the guest may use both threads."""
        cells = facts.host.cells
        usable = frozenset().union(*(facts.usable(cell) for cell in cells))
        smt = any(len(cpu.siblings & usable) > 1 for cell in cells for cpu in cell.cpus
                  if cpu.id in usable)
        pools = frozenset(size for cell in cells for size, count in cell.pages[1:] if count)
        return cls(len(cells), smt, pools)


def os_facts(stated: Stated, decided) -> dict:
    """The guest OS facts: an 'os ID' trait's, else the OS the input's metadata
    names (when the local osinfo-db knows it), else none."""
    if decided.get("os"):
        return {"os": decided["os"], "os family": decided["os family"]}
    if stated.os_uri is None:
        return {}
    from virtuned import osinfo

    known = osinfo.by_id(stated.os_uri)
    return {} if known is None else {"os": known.short_id, "os family": known.family}
