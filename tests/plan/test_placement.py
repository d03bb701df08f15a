"""The placement search (virtuned/plan/placement.py) against the rules of its module
docstring: hypothesis draws hosts (1-16 nodes, SMT on and off, 1-4 threads per core,
odd numberings, hugepage pools, reserved and allocated CPUs) and requests, and every
placement keeps every rule. Completeness: on small hosts a brute force, written here
from the rules alone, finds a placement exactly when ``place`` does. Then the
reasons of infeasible placements, word for word."""

from __future__ import annotations

import itertools
import types
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from lxml import etree

from tests.synthetic_hosts import capabilities
from virtuned.facts import host as host_module
from virtuned.diagnostics import Span, VirtunedError
from virtuned.facts.host import Host, HostCell, HostCpu, HostFacts
from virtuned.plan.placement import (CellPlacement, GuestCell, Infeasible, Placement,
                                Requirements, place)
from virtuned.plan.requirements import CpuPolicy, GuestCells, Hugepages, Topology
from virtuned.plan.requirements import requirements as plan_requirements

HOSTS = Path(__file__).resolve().parents[2] / "examples" / "hosts"
GIB, MIB = 1024 * 1024, 1024
PAGE_SIZES = (2048, 1048576)

# Deterministic in CI: the same examples every run; no deadline (no timing).
SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------ strategies

@st.composite
def hosts(draw, max_cells: int = 16, max_cores: int = 4):
    """A host built directly: nodes of cores of 1, 2 or 4 threads (mixed in a node,
    like hybrid P/E cores; a node may have no CPUs at all), CPU ids in a random
    order, core_ids sometimes disagreeing with siblings (as lxc.xml's do)."""
    shapes = draw(st.lists(st.lists(st.sampled_from((1, 2, 2, 4)), min_size=1, max_size=max_cores)
                           | st.just([]),
                           min_size=1, max_size=max_cells))
    total = sum(sum(cores) for cores in shapes)
    ids = iter(draw(st.permutations(range(total))))
    scrambled = draw(st.booleans())
    cells = []
    for node, cores in enumerate(shapes):
        cpus = []
        for core, threads in enumerate(cores):
            threads_ids = frozenset(next(ids) for _ in range(threads))
            cpus += [HostCpu(cpu, node, 0, cpu if scrambled else core, threads_ids)
                     for cpu in threads_ids]
        memory = draw(st.sampled_from((None, 0, 1 * GIB, 2 * GIB, 4 * GIB, 8 * GIB, 8 * GIB)))
        pages = tuple((size, draw(st.sampled_from(pools)))
                      for size, pools in ((2048, (0, 512, 1024, 4096)), (1048576, (0, 1, 2, 8)))
                      if draw(st.sampled_from((True, True, True, False))))
        cells.append(HostCell(node, memory, pages, tuple(sorted(cpus, key=lambda c: c.id))))
    return Host("random.xml", tuple(cells))


@st.composite
def host_facts(draw, max_cells: int = 16, max_cores: int = 4):
    """A host with a few reserved CPUs and, half the time, an allocated set made of
    whole cores and a few odd threads (as a node agent grants them)."""
    host = draw(hosts(max_cells, max_cores))
    ids = sorted(host.cpu_ids)
    if not ids:
        return HostFacts(host, frozenset(), draw(st.none() | st.just(frozenset())))
    reserved = draw(st.frozensets(st.sampled_from(ids), max_size=max(len(ids) // 4, 1)))
    allocated = None
    if draw(st.booleans()):
        cores = sorted({cpu.siblings for cell in host.cells for cpu in cell.cpus}, key=min)
        granted = draw(st.lists(st.booleans(), min_size=len(cores), max_size=len(cores)))
        odd = draw(st.frozensets(st.sampled_from(ids), max_size=2))
        allocated = frozenset().union(odd, *(c for c, g in zip(cores, granted) if g))
    return HostFacts(host, reserved, allocated)


@st.composite
def requests(draw, max_cells: int = 4, max_vcpus: int = 4, max_node: int = 4,
             per_core=(1, 2, 2, 4)):
    """Requirements built directly (every policy, input cells of any sizes,
    memory-only cells too); their vCPUs are numbered in cell order."""
    page = draw(st.sampled_from((None, None, 2048, 1048576)))
    sizes = draw(st.lists(st.integers(0, max_vcpus), min_size=1, max_size=max_cells)
                 .filter(any))
    memories = draw(st.lists(st.integers(1, 3), min_size=len(sizes), max_size=len(sizes)))
    unit = page or 512 * MIB
    cells, first = [], 0
    for index, (size, memory) in enumerate(zip(sizes, memories)):
        cells.append(GuestCell(index, tuple(range(first, first + size)), memory * unit))
        first += size
    split = draw(st.booleans())
    return Requirements(
        vcpus=first, memory_kib=sum(c.memory_kib for c in cells), cells=tuple(cells),
        guest_numa=split or len(cells) > 1, split=split,
        cpus=draw(st.sampled_from(("dedicated", "dedicated", "shared", None))),
        threads=draw(st.sampled_from(("prefer", "isolate", "require"))),
        threads_per_core=draw(st.sampled_from(per_core)),
        emulator=draw(st.sampled_from((None, "shared", "isolated"))),
        iothreads=draw(st.integers(0, 2)), page_kib=page,
        host_node=draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, max_node))))


# ------------------------------------------------------------------ the rules

def cores_of(cell: HostCell) -> dict[int, frozenset[int]]:
    """CPU → its core: the threads ``siblings`` links, closed over, in this cell."""
    mine = {cpu.id: cpu.siblings for cpu in cell.cpus}
    core = {}
    for start in mine:
        group, todo = {start}, [start]
        while todo:
            for other in mine[todo.pop()] & mine.keys():
                if other not in group:
                    group.add(other)
                    todo.append(other)
        core[start] = frozenset(group)
    return core


def candidates(req: Requirements, host: Host) -> list[HostCell]:
    if req.host_node is not None:
        return [c for c in host.cells if c.id == req.host_node]
    return list(host.cells)


def bound(req: Requirements) -> bool:
    return req.cpus == "dedicated" or req.host_node is not None or req.split


def groups(req: Requirements, cell: GuestCell) -> list[tuple[int, ...]]:
    per = req.threads_per_core
    return [cell.vcpus[i:i + per] for i in range(0, len(cell.vcpus), per)]


def memory_holds(req: Requirements, node: HostCell, cells) -> bool:
    if req.page_kib:
        return node.pool(req.page_kib) >= sum(c.memory_kib // req.page_kib for c in cells)
    return node.memory_kib is None or node.memory_kib >= sum(c.memory_kib for c in cells)


def node_fits(req: Requirements, facts: HostFacts, node: HostCell, cells,
              emulator: bool) -> bool:
    """Whether some choice of this node's CPUs holds ``cells`` (and the emulator)."""
    if not memory_holds(req, node, cells):
        return False
    usable = sorted(facts.usable(node))
    vcpus = sum(len(c.vcpus) for c in cells)
    if req.cpus != "dedicated":  # floating: one CPU to float over, one for the emulator
        return len(usable) >= int(vcpus > 0) + emulator
    core = cores_of(node)
    if req.threads == "require":
        whole = {core[cpu] for cpu in usable if core[cpu] <= set(usable)
                 and len(core[cpu]) == req.threads_per_core}
        wanted = sum(len(groups(req, c)) for c in cells)
        for chosen in itertools.combinations(sorted(whole, key=min), wanted):
            taken = frozenset().union(*chosen)
            if not emulator or set(usable) - taken:
                return True
        return False
    for chosen in itertools.combinations(usable, vcpus + emulator):
        if req.threads == "prefer" or all(
                core[cpu] <= set(usable) and core[cpu] & set(chosen) == {cpu}
                for cpu in chosen):
            return True
    return False


def brute_force(req: Requirements, facts: HostFacts) -> bool:
    """Whether any placement keeps the rules: every map of guest cells to candidate
    nodes (one-to-one when enough have usable CPUs), every node for the emulator
    among those with a cell, every choice of CPUs on each node."""
    emulator = req.emulator == "isolated"
    nodes = candidates(req, facts.host)
    if not nodes:
        return False
    if not bound(req):
        usable = frozenset().union(*(facts.usable(c) for c in facts.host.cells))
        pages = sum(c.memory_kib // req.page_kib for c in req.cells) if req.page_kib else 0
        pool = sum(c.pool(req.page_kib) for c in facts.host.cells) if req.page_kib else 0
        memory = [c.memory_kib for c in facts.host.cells]
        return (len(usable) >= 1 + emulator and pool >= pages and
                (bool(req.page_kib) or None in memory or sum(memory) >= req.memory_kib))
    distinct = sum(1 for node in nodes if facts.usable(node)) >= len(req.cells)
    for assignment in itertools.product(range(len(nodes)), repeat=len(req.cells)):
        if distinct and len(set(assignment)) < len(assignment):
            continue
        for here in (sorted(set(assignment)) if emulator else [None]):
            if all(node_fits(req, facts, node,
                             [c for c, n in zip(req.cells, assignment) if n == index],
                             here == index)
                   for index, node in enumerate(nodes)):
                return True
    return False


def check_rules(req: Requirements, facts: HostFacts, placement: Placement) -> None:
    """Every rule of placement.py's docstring, on one placement."""
    host = facts.host
    cells = {c.id: c for c in host.cells}
    nodes = candidates(req, host)
    usable_anywhere = frozenset().union(*(facts.usable(c) for c in nodes))
    isolated = req.emulator == "isolated"
    # Each guest cell once, in order, every vCPU pinned.
    assert [p.cell for p in placement.cells] == [c.id for c in req.cells]
    for wanted, placed in zip(req.cells, placement.cells):
        assert [v for v, _ in placed.pins] == list(wanted.vcpus)
        assert all(cpus for _, cpus in placed.pins)
    # Never a reserved CPU, none outside the allocated set (nor off the candidates).
    assert placement.cpuset <= usable_anywhere
    assert not placement.cpuset & facts.reserved
    if facts.allocated is not None:
        assert placement.cpuset <= facts.allocated
    vcpu_cpus = [cpus for _, cpus in placement.vcpu_pins]
    if isolated:
        assert len(placement.emulator) == 1
        assert not placement.emulator & frozenset().union(*vcpu_cpus)
    else:
        assert placement.emulator == frozenset().union(*vcpu_cpus)
    assert placement.iothreads == (placement.emulator if req.iothreads else frozenset())
    if not bound(req):
        assert placement.nodes == frozenset()
        floating = usable_anywhere - (placement.emulator if isolated else frozenset())
        assert all(cpus == floating for cpus in vcpu_cpus)
        return
    # Cells on candidate nodes, distinct when enough have usable CPUs.
    on = {p.cell: p.node for p in placement.cells}
    assert set(on.values()) <= {c.id for c in nodes}
    if sum(1 for node in nodes if facts.usable(node)) >= len(req.cells):
        assert len(set(on.values())) == len(on)
    own = placement.emulator if isolated else frozenset()
    for placed in placement.cells:
        node_cpus = facts.usable(cells[placed.node])
        assert all(cpus <= node_cpus for _, cpus in placed.pins)
        if req.cpus != "dedicated":  # floating over the node, off the emulator's CPU
            assert all(cpus == node_cpus - own for _, cpus in placed.pins)
    if isolated:  # the emulator sits with a cell
        assert any(placement.emulator <= facts.usable(cells[n]) for n in on.values())
    # Memory and hugepages per node.
    for node in {n for n in on.values()}:
        assert memory_holds(req, cells[node], [c for c in req.cells if on[c.id] == node])
    if req.cpus != "dedicated":
        return
    # Dedicated: one CPU per vCPU, never shared (nor with an isolated emulator).
    assert all(len(cpus) == 1 for cpus in vcpu_cpus)
    dedicated = [cpu for cpus in vcpu_cpus for cpu in cpus]
    assert len(set(dedicated)) == len(dedicated)
    core = {cpu: c for cell in host.cells for cpu, c in cores_of(cell).items()}
    usable_all = frozenset().union(*(facts.usable(c) for c in host.cells))
    if req.threads == "isolate":  # whole cores, other threads unused by the guest
        for cpu in dedicated + sorted(placement.emulator):
            assert core[cpu] <= usable_all
            assert core[cpu] & placement.cpuset == {cpu}
    if req.threads == "require":  # each group of vCPUs on one whole core's threads
        pins = dict(placement.vcpu_pins)
        used_cores = []
        for wanted in req.cells:
            for group in groups(req, wanted):
                cpus = frozenset().union(*(pins[v] for v in group))
                (first,) = pins[group[0]]
                assert cpus <= core[first] <= usable_all
                assert len(core[first]) == req.threads_per_core
                used_cores.append(core[first])
        assert len(set(used_cores)) == len(used_cores)


def attempt(req: Requirements, facts: HostFacts) -> Placement | None:
    try:
        return place(req, facts)
    except Infeasible as exc:
        assert exc.reasons and all(isinstance(r, str) and r for r in exc.reasons)
        return None


# ------------------------------------------------------------------ properties

def sized_requests(facts: HostFacts, **limits):
    """Requests about the size of the host's nodes (so that about as many fit as
    not): up to two cells more than the host has nodes, of up to the usable CPUs of
    a median node, 'require' mostly with a thread count the host's cores have."""
    free = sorted(len(facts.usable(cell)) for cell in facts.host.cells)
    threads = sorted({len(cpu.siblings) for c in facts.host.cells for cpu in c.cpus})
    return requests(max_cells=len(free) + 2, max_vcpus=max(free[len(free) // 2], 1),
                    max_node=len(free), per_core=tuple(threads) * 3 + (1, 2, 4), **limits)


@pytest.mark.parametrize("max_cells, max_cores, examples", [(4, 3, 400), (2, 2, 600)])
def test_complete_and_sound_against_brute_force(max_cells, max_cores, examples):
    """place() finds a placement exactly when the brute force does, and it keeps
    every rule; the same input always gives the same placement. Tiny hosts find
    the edges (a node that holds a cell but not the emulator too) most often."""

    @settings(max_examples=examples, **SETTINGS)
    @given(facts=host_facts(max_cells, max_cores), data=st.data())
    def check(facts, data):
        agree_with_brute_force(facts, data.draw(sized_requests(facts)))

    check()


def agree_with_brute_force(facts: HostFacts, req: Requirements) -> None:
    note(f"{facts!r}\n{req!r}")
    placement = attempt(req, facts)
    note(repr(placement))
    assert (placement is not None) == brute_force(req, facts)
    if placement is not None:
        check_rules(req, facts, placement)
        assert place(req, facts) == placement
        return
    nodes = candidates(req, facts.host)
    sizes = {size for cell in facts.host.cells for size, _ in cell.pages}
    if bound(req) and nodes and (not req.page_kib or req.page_kib in sizes):
        with pytest.raises(Infeasible) as caught:  # a reason for every node, in order
            place(req, facts)
        assert [r.split(":")[0] for r in caught.value.reasons[:len(nodes)]] == [
            f"host node {node.id}" for node in nodes]


@settings(max_examples=300, **SETTINGS)
@given(facts=host_facts(max_cells=4, max_cores=3), data=st.data())
def test_cpus_other_guests_hold_are_never_used(facts, data):
    """CPUs other guests hold (a live host, a snapshot) are never used; a placement
    exists exactly when the brute force finds one with those CPUs reserved instead,
    and it is the same placement."""
    ids = sorted(facts.host.cpu_ids)
    held = data.draw(st.frozensets(st.sampled_from(ids), max_size=len(ids)) if ids
                     else st.just(frozenset()))
    names = {cpu: (data.draw(st.sampled_from(("db02", "web01"))),) for cpu in held}
    busy = attrs.evolve(facts, host=attrs.evolve(facts.host, held=tuple(sorted(
        names.items()))))
    as_reserved = attrs.evolve(facts, reserved=facts.reserved | held)
    req = data.draw(sized_requests(as_reserved))
    note(f"held {sorted(held)}\n{req!r}")
    placement = attempt(req, busy)
    assert (placement is not None) == brute_force(req, as_reserved)
    assert placement == attempt(req, as_reserved)
    if placement is not None:
        assert not placement.cpuset & held


@settings(max_examples=150, **SETTINGS)
@given(facts=host_facts(max_cells=16, max_cores=4),
       req=requests(max_cells=8, max_vcpus=6, max_node=16))
def test_rules_hold_on_big_hosts(facts, req):
    note(f"{facts!r}\n{req!r}")
    placement = attempt(req, facts)
    if placement is not None:
        check_rules(req, facts, placement)
        assert place(req, facts) == placement


@settings(max_examples=60, **SETTINGS)
@given(cells=st.integers(1, 16), cores=st.integers(1, 8), threads=st.sampled_from((1, 2)),
       guest_cells=st.integers(1, 8), per_cell=st.integers(1, 8),
       policy=st.sampled_from(("prefer", "isolate", "require")), data=st.data())
def test_rules_hold_on_parsed_synthetic_hosts(cells, cores, threads, guest_cells, per_cell,
                                              policy, data):
    """The same, through the parser: regular hosts as libvirt numbers them, with
    reserved CPUs given as a CPU list, and requests split as 'guest numa nodes'."""
    parsed = host_module.parse(capabilities(cells, cores, threads), "synthetic.xml")
    ids = sorted(parsed.cpu_ids)
    reserved = data.draw(st.frozensets(st.sampled_from(ids), max_size=len(ids) // 2))
    facts = host_module.facts(parsed, ",".join(map(str, sorted(reserved))), None)
    per_cell -= per_cell % 2 if policy == "require" and per_cell > 1 else 0
    req = Requirements(
        vcpus=guest_cells * per_cell, memory_kib=guest_cells * GIB,
        cells=tuple(GuestCell(i, tuple(range(i * per_cell, (i + 1) * per_cell)), GIB)
                    for i in range(guest_cells)),
        guest_numa=True, split=True, cpus="dedicated", threads=policy,
        emulator="isolated", page_kib=2048)
    placement = attempt(req, facts)
    if placement is not None:
        check_rules(req, facts, placement)


ASKER = types.SimpleNamespace(origin=types.SimpleNamespace(span=Span("<t>", 1, 1),
                                                           label="trait"))


@settings(max_examples=200, **SETTINGS)
@given(vcpus=st.integers(1, 64), memory_mib=st.integers(1, 64 * 1024),
       count=st.none() | st.integers(1, 16),
       policy=st.sampled_from(("prefer", "isolate", "require")),
       cpus=st.sampled_from(("dedicated", "shared")),
       per_core=st.sampled_from((2, 4)), page=st.sampled_from((None, 2048, 1048576)))
def test_requirements_cells_add_up(vcpus, memory_mib, count, policy, cpus, per_core, page):
    """plan.requirements: the guest cells partition the vCPUs and the memory, in
    whole pages and whole groups of threads (or the request is refused)."""
    root = etree.fromstring(f"<domain><vcpu>{vcpus}</vcpu>"
                            f"<memory unit='MiB'>{memory_mib}</memory></domain>")
    needs = {CpuPolicy: CpuPolicy(cpus == "dedicated", policy),
             Topology: Topology(1, vcpus, per_core)}
    if count:
        needs[GuestCells] = GuestCells(count)
    if page:
        needs[Hugepages] = Hugepages(page)
    try:
        req = plan_requirements(needs, dict.fromkeys(needs, ASKER), root, "d.xml")
    except VirtunedError as exc:
        granule = per_core if policy == "require" and cpus == "dedicated" else 1
        memory = memory_mib * MIB
        assert (vcpus % granule or (count and vcpus // granule < count)
                or (page and memory % page)
                or (count and memory // (page or MIB) < count)), str(exc)
        return
    assert (req.vcpus, req.memory_kib) == (vcpus, memory_mib * MIB)
    assert [v for cell in req.cells for v in cell.vcpus] == list(range(vcpus))
    assert sum(cell.memory_kib for cell in req.cells) == req.memory_kib
    assert len(req.cells) == (count or 1)
    for cell in req.cells:
        assert cell.memory_kib % (page or (MIB if count else 1)) == 0
        if policy == "require" and cpus == "dedicated":
            assert len(cell.vcpus) % per_core == 0
    sizes = [len(cell.vcpus) for cell in req.cells]
    assert max(sizes) - min(sizes) <= (per_core if policy == "require" else 1)


@settings(max_examples=100, **SETTINGS)
@given(facts=host_facts(max_cells=4, max_cores=3), req=requests())
def test_deterministic_whatever_the_document_order(facts, req):
    """The same host with its cells and CPUs listed in another order (and parsed
    again from nothing) places the same way."""
    shuffled = Host(facts.host.source, tuple(
        HostCell(c.id, c.memory_kib, tuple(reversed(c.pages)), tuple(reversed(c.cpus)))
        for c in reversed(facts.host.cells)))
    again = HostFacts(shuffled, facts.reserved, facts.allocated)
    try:
        first = place(req, facts)
    except Infeasible as exc:
        with pytest.raises(Infeasible) as caught:
            place(req, again)
        assert caught.value.reasons == exc.reasons
        return
    assert place(req, again) == first


# ------------------------------------------------------------------ exact cases

SMT = host_module.parse((HOSTS / "two-node-smt.xml").read_bytes(), "two-node-smt.xml")
DRIVER = host_module.parse((HOSTS / "test-driver.xml").read_bytes(), "test-driver.xml")


def request(vcpus: int, cells: int = 1, memory_kib: int = 4 * GIB, **fields) -> Requirements:
    per, memory = vcpus // cells, memory_kib // cells
    return Requirements(
        vcpus=vcpus, memory_kib=memory_kib,
        cells=tuple(GuestCell(i, tuple(range(i * per, (i + 1) * per)), memory)
                    for i in range(cells)),
        guest_numa=cells > 1, split=cells > 1, **fields)


def reasons(req: Requirements, host: Host, reserved: str | None = None,
            allocated: str | None = None) -> tuple[str, ...]:
    with pytest.raises(Infeasible) as caught:
        place(req, host_module.facts(host, reserved, allocated))
    return caught.value.reasons


def pins(placement: Placement) -> list[tuple[int, int, str]]:
    from virtuned.values import format_cpulist

    return [(cell.cell, cell.node, ",".join(format_cpulist(cpus) for _, cpus in cell.pins))
            for cell in placement.cells]


def test_isolate_two_cells_with_the_emulator():
    facts = host_module.facts(SMT, "0,8", None)
    placement = place(request(4, 2, cpus="dedicated", threads="isolate",
                              emulator="isolated"), facts)
    assert pins(placement) == [(0, 0, "1,2"), (1, 1, "4,5")]
    assert (placement.emulator, placement.iothreads) == (frozenset({3}), frozenset())


def test_require_takes_thread_pairs():
    placement = place(request(4, cpus="dedicated", threads="require", emulator="isolated",
                              iothreads=1), host_module.facts(SMT, "0", None))
    assert pins(placement) == [(0, 0, "1,9,2,10")]
    assert placement.emulator == placement.iothreads == frozenset({8})


def test_prefer_packs_siblings_and_shared_floats():
    placement = place(request(3, cpus="dedicated"), host_module.facts(SMT, None, "4-15"))
    assert pins(placement) == [(0, 0, "8,9,10")]
    shared = place(request(2, host_node=1, emulator="isolated"),
                   host_module.facts(SMT, "4", None))
    assert pins(shared) == [(0, 1, "5-7,13-15,5-7,13-15")]
    assert shared.emulator == frozenset({12})


def test_the_emulator_goes_where_there_is_room():
    """Node 0 holds a cell but not the emulator too: the emulator goes to node 1."""
    placement = place(request(8, 2, memory_kib=GIB, cpus="dedicated", emulator="isolated"),
                      host_module.facts(DRIVER, "0-3", None))
    assert pins(placement) == [(0, 0, "4,5,6,7"), (1, 1, "8,9,10,11")]
    assert placement.emulator == frozenset({12})


def test_require_keeps_a_cpu_for_the_emulator():
    """Two whole cores and nothing else usable: the emulator has no CPU left."""
    assert reasons(request(4, cpus="dedicated", threads="require", emulator="isolated"),
                   SMT, None, "0-1,8-9") == (
        "host node 0: 2 free cores of 2 threads inside allocated 0-1,8-9, guest cell 0 "
        "needs 2 and 1 for the emulator",
        "host node 1: 0 free cores of 2 threads inside allocated 0-1,8-9, guest cell 0 "
        "needs 2")


def test_a_node_too_small_for_the_big_cell_takes_small_ones():
    """Three cells on two nodes: node 0 (3 free CPUs) cannot hold the 4-vCPU cell
    but holds both 1-vCPU ones; node 1 (5 free) could not hold all three."""
    req = Requirements(vcpus=6, memory_kib=3 * GIB, cells=(
        GuestCell(0, (0, 1, 2, 3), GIB), GuestCell(1, (4,), GIB), GuestCell(2, (5,), GIB)),
        guest_numa=True, cpus="dedicated")
    placement = place(req, host_module.facts(DRIVER, "0-4,8-10", None))
    assert pins(placement) == [(0, 1, "11,12,13,14"), (1, 0, "5"), (2, 0, "6")]


def test_cells_share_the_only_node_with_allocated_cpus():
    placement = place(request(4, 2, cpus="dedicated", threads="isolate"),
                      host_module.facts(SMT, None, "4-7,12-15"))
    assert pins(placement) == [(0, 1, "4,5"), (1, 1, "6,7")]


def test_more_cells_than_nodes_share_them_evenly():
    """The test driver's node 0 has 2 GiB: two cells of 512 MiB fit there."""
    placement = place(request(6, 3, memory_kib=3 * 512 * MIB, cpus="dedicated"),
                      host_module.facts(DRIVER, None, None))
    assert pins(placement) == [(0, 0, "0,1"), (1, 0, "2,3"), (2, 1, "8,9")]


def test_lxc_numbering_isolates_real_cores():
    """lxc.xml's threads 0 and 1 are siblings with different core_ids."""
    lxc = Host("lxc.xml", (HostCell(0, GIB, (), tuple(
        HostCpu(cpu, 0, 0, core, frozenset(pair))
        for cpu, core, pair in ((0, 0, (0, 1)), (1, 1, (0, 1)), (2, 6, (2, 5)),
                                (3, 2, (3, 4)), (4, 3, (3, 4)), (5, 7, (2, 5))))),))
    placement = place(request(3, memory_kib=GIB, cpus="dedicated", threads="isolate"),
                      HostFacts(lxc))
    assert pins(placement) == [(0, 0, "0,3,2")]


@pytest.mark.parametrize("req, host, reserved, allocated, expected", [
    (request(8, cpus="dedicated"), capabilities(1, 4, 2), "0-1", None,
     ("host node 0: 6 free CPUs after reserved 0-1, guest cell 0 needs 8",)),
    (request(8, 2, cpus="dedicated", threads="isolate", emulator="isolated"),
     "smt", "0,8", None,
     ("host node 0: 3 whole free cores after reserved 0,8, guest cell 0 needs 4",
      "host node 1: 4 whole free cores after reserved 0,8, guest cell 0 needs 4 and 1 "
      "for the emulator",
      "the guest's 2 cells need distinct host nodes")),
    (request(8, cpus="dedicated", threads="require"), "smt", "1", "0-11", (
        "host node 0: 3 free cores of 2 threads after reserved 1 and inside allocated "
        "0-11, guest cell 0 needs 4",
        "host node 1: 0 free cores of 2 threads after reserved 1 and inside allocated "
        "0-11, guest cell 0 needs 4")),
    (request(2, cpus="dedicated"), "smt", None, "", (
        "host node 0: 0 free CPUs with no CPUs allocated, guest cell 0 needs 2",
        "host node 1: 0 free CPUs with no CPUs allocated, guest cell 0 needs 2")),
    (request(16, 2, cpus="dedicated", emulator="isolated"), "driver", None, None, (
        "host node 0: 8 free CPUs, guest cell 0 needs 8 and 1 for the emulator",
        "host node 1: 8 free CPUs, guest cell 0 needs 8 and 1 for the emulator",
        "the guest's 2 cells need distinct host nodes")),
    (request(2, memory_kib=8 * GIB, host_node=1, page_kib=1048576), "smt", None, None,
     ("host node 1: 4 free 1GiB hugepages, guest cell 0 needs 8",)),
    (request(2, 2, memory_kib=40 * GIB, cpus="dedicated"), "smt", None, None, (
        "host node 0: 16GiB of memory, guest cell 0 needs 20GiB",
        "host node 1: 16GiB of memory, guest cell 0 needs 20GiB")),
    (request(9, 3, cpus="dedicated", emulator="isolated"), "driver", "0-2,8-10", None, (
        "host node 0: 5 free CPUs after reserved 0-2,8-10, guest cells 0-1 need 6",
        "host node 1: 5 free CPUs after reserved 0-2,8-10, guest cells 0-1 need 6")),
    (request(2, host_node=5), "smt", None, None, ("the host has no node 5 (its nodes: 0-1)",)),
    (request(2, page_kib=16384), "smt", None, None,
     ("the host has no 16MiB hugepages (its page sizes: 4KiB, 2MiB, 1GiB)",)),
    (request(2, cpus="shared", emulator="isolated"), "smt", "1-15", None,
     ("the host has 1 free CPUs after reserved 1-15, the guest needs 2",)),
    (request(2, memory_kib=40 * GIB, cpus="shared", emulator="isolated"), "smt", None, None,
     ("the host has 32GiB of memory, the guest needs 40GiB",)),
    (request(2, cpus="dedicated", threads="require", threads_per_core=4), "smt", None, None,
     ("host node 0: 0 free cores of 4 threads, guest cell 0 needs 1",
      "host node 1: 0 free cores of 4 threads, guest cell 0 needs 1")),
])
def test_infeasible_reasons(req, host, reserved, allocated, expected):
    host = {"smt": SMT, "driver": DRIVER}.get(host) or host_module.parse(host, "h.xml")
    assert reasons(req, host, reserved, allocated) == expected
