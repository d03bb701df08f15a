"""Requirements + host → Placement: the host node of each guest cell, and the host
CPUs its vCPUs, the emulator and the I/O threads run on.

The search is complete and fast. Guest cells with equal demands are
interchangeable, so it walks the host nodes once, deciding how many cells *of each
kind* each node takes (memoized on the node and the counts still to place), instead
of trying permutations of nodes as OpenStack Nova's fitting does. It finds a
placement whenever one exists, and always the same one: lower nodes take the bigger
cells first (the nodes of the guest's host devices before the others, under 'device
numa affinity'), the emulator sits with the first cell that has room for it, CPUs are
taken in (socket, die, core, thread) order.

The rules a placement keeps, which the property tests check:
- guest cells go on distinct host nodes (of 'place on host node N': that one),
  unless fewer nodes have a CPU the guest may use than there are cells (then nodes
  hold several cells, as evenly as they can: an allocated set on one node puts
  every cell there);
- no reserved CPU, none outside the allocated set;
- a core is the threads ``siblings`` links (whatever their core_id says);
- dedicated: one host CPU per vCPU, never shared; ``isolate``: one whole core per
  vCPU (every thread of the core usable, the other threads left unused); ``require``:
  vCPUs in groups of the threads per core (in vCPU order, a last short group
  allowed), each group on the threads of one whole core of exactly that many;
- shared: the vCPUs of a cell float over every usable CPU of its node, so a node
  with a cell that has vCPUs needs one usable CPU;
- an isolated emulator has one more CPU of its own (a whole core under isolate), on
  the node of one of the guest's cells (unbound shared guests: anywhere);
- a node's memory (or its pool of the guest's hugepage size) holds its cells;
  memory the host does not state is not checked. Unbound guests: the whole host's.
"""

from __future__ import annotations

from virtuned.facts.host import HostCell, HostFacts
# What a guest needs is the planner's (requirements.py); the search here only reads it.
from virtuned.frozen import frozen
from virtuned.plan.requirements import GuestCell, Requirements  # noqa: F401  (re-exported)
from virtuned.values import format_cpulist, format_kib


@frozen
class CellPlacement:
    cell: int
    node: int | None  # None: not bound to a node (shared CPUs over the whole host)
    pins: tuple[tuple[int, frozenset[int]], ...]  # (vCPU, the host CPUs it may use)


@frozen
class Placement:
    cells: tuple[CellPlacement, ...]
    emulator: frozenset[int]
    iothreads: frozenset[int]

    @property
    def nodes(self) -> frozenset[int]:
        return frozenset(c.node for c in self.cells if c.node is not None)

    @property
    def vcpu_pins(self) -> tuple[tuple[int, frozenset[int]], ...]:
        return tuple(sorted(pin for cell in self.cells for pin in cell.pins))

    @property
    def cpuset(self) -> frozenset[int]:
        """Every host CPU the guest runs anything on."""
        return frozenset().union(*(cpus for _, cpus in self.vcpu_pins), self.emulator,
                                 self.iothreads)


class Infeasible(Exception):
    """No placement exists; ``reasons`` name the binding constraint per host node."""

    def __init__(self, reasons: tuple[str, ...]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


# ---------------------------------------------------------------- host nodes

@frozen
class Node:
    """What one host node offers this guest."""

    cell: HostCell
    usable: tuple[int, ...]  # in (socket, die, core, id) order
    whole_cores: tuple[tuple[int, ...], ...]  # cores with every thread usable
    memory_kib: int | None  # None: the host does not say (not checked)
    pool: int  # free pages of the guest's hugepage size
    # For messages: the CPUs other guests hold here (describe_held), the pages or
    # memory kept for them (describe_kept). Fields, made with the node (which the
    # host remembers): a cached property does not survive pickling, so a host a
    # helper process parsed (parallel.py) would have them made again on every fit.
    held: str = ""
    kept: str = ""

    @property
    def id(self) -> int:
        return self.cell.id

    def cores_of(self, threads: int) -> tuple[tuple[int, ...], ...]:
        return tuple(core for core in self.whole_cores if len(core) == threads)


def _node(cell: HostCell, facts: HostFacts, req: Requirements) -> Node:
    usable = facts.usable(cell, req.dedicated)
    cores = cell.cores()
    whole = tuple(core for core in cores if usable.issuperset(core))
    return Node(cell, tuple(cpu for core in cores for cpu in core if cpu in usable),
                whole, cell.memory_kib, cell.pool(req.page_kib) if req.page_kib else 0,
                facts.describe_held(cell), facts.host.describe_kept(cell.id, req.page_kib))


# ---------------------------------------------------------------- demands

@frozen(order=True)
class Demand:
    """What one guest cell takes from a node: CPU units (CPUs, whole cores or cores
    of N threads, per the policy; shared: 1 when it has vCPUs, which float over the
    node's CPUs), memory, hugepages."""

    units: int
    memory_kib: int
    pages: int

    def size(self, req: Requirements) -> int:
        """What it takes of a node's hugepages (with a page size) or memory."""
        return self.pages if req.page_kib else self.memory_kib


def _cpu_units(req: Requirements, node: Node) -> int:
    """A node's dedicated CPU units: whole cores (isolate), cores of the guest's
    threads (require) or CPUs."""
    if req.threads == "isolate":
        return len(node.whole_cores)
    if req.threads == "require":
        return len(node.cores_of(req.threads_per_core))
    return len(node.usable)


def _offer(req: Requirements, node: Node) -> tuple[int, int]:
    """The most a node can give: CPU units (shared: room for every cell when it
    has a CPU) and hugepages or memory (unstated memory: all the guest's)."""
    units = _cpu_units(req, node) if req.dedicated else \
        len(req.cells) if node.usable else 0
    if req.page_kib:
        return units, node.pool
    if node.memory_kib is None:
        return units, sum(cell.memory_kib for cell in req.cells)
    return units, node.memory_kib


def _demand(req: Requirements, cell: GuestCell) -> Demand:
    count = len(cell.vcpus)
    if not req.dedicated:
        units = min(count, 1)
    elif req.threads == "require":  # a last group short of a core takes a whole one
        units = -(-count // req.threads_per_core)
    else:
        units = count
    return Demand(units, cell.memory_kib, req.pages(cell))


# What a node falls short in (_short): its CPUs, or its hugepages or memory.
CPUS, MEMORY = "cpus", "memory"


def _short(req: Requirements, node: Node, units: int, size: int, emulator: bool
           ) -> str | None:
    """What ``node`` falls short in for cells of ``units`` CPU units and ``size``
    hugepages or memory (Demand.size), and the emulator: CPUS or MEMORY, the first
    that binds; None when it holds them. Only numbers: the search asks it often."""
    usable = len(node.usable)
    if req.cpus == "dedicated":
        if req.threads == "require":
            if (len(node.cores_of(req.threads_per_core)) < units or
                    (emulator and usable - units * req.threads_per_core < 1)):
                return CPUS
        elif _cpu_units(req, node) < units + emulator:
            return CPUS
    elif usable < min(units, 1) + emulator:
        return CPUS
    if req.page_kib:
        return MEMORY if node.pool < size else None
    return MEMORY if node.memory_kib is not None and node.memory_kib < size else None


def _short_text(cells: _Cells, node: Node, short: str, units: int, size: int,
                emulator: bool, limits: str, who: str) -> str:
    """Why ``node`` cannot hold what _short found it short of: what it has
    (``limits`` are the host facts' describe_limits()), and ``who`` needs what."""
    req, extra = cells.req, " and 1 for the emulator" if emulator else ""
    if short == CPUS and req.dedicated:
        return f"{_cpu_units(req, node)} {cells.unit}{limits}{node.held}, {who} {units}{extra}"
    if short == CPUS:
        return f"{len(node.usable)} free CPUs{limits}{node.held}, {who} {min(units, 1)}{extra}"
    if req.page_kib:
        return f"{node.pool} free {cells.page_size} hugepages{node.kept}, {who} {size}"
    return f"{format_kib(node.memory_kib)} of memory{node.kept}, {who} {format_kib(size)}"


# ---------------------------------------------------------------- the search

def check_pools(wanted: Requirements, host: HostFacts) -> None:
    """Hugepages with nothing placed: the host's pools together must hold them."""
    pool = sum(cell.pool(wanted.page_kib) for cell in host.host.cells)
    pages = wanted.memory_kib // wanted.page_kib
    if pool < pages:
        raise Infeasible((f"the host has {pool} free {format_kib(wanted.page_kib)} "
                          f"hugepages, the guest needs {pages}",))


def place(req: Requirements, facts: HostFacts, explain: bool = True) -> Placement:
    """The placement of ``req`` on the host, or Infeasible (without its reasons
    unless ``explain``: they cost more than the search)."""
    host = facts.host
    if req.host_node is not None and host.cell(req.host_node) is None:
        raise Infeasible((f"the host has no node {req.host_node} (its nodes: "
                          f"{format_cpulist(c.id for c in host.cells)})",))
    # The host's nodes by id, kept with the host for the CPU lists of the request.
    every = facts.host.remember(
        ("nodes", facts.reserved, facts.allocated, facts.shared, req.dedicated, req.page_kib),
        lambda: {cell.id: _node(cell, facts, req)
                 for cell in sorted(host.cells, key=lambda cell: cell.id)})
    first = {node: rank for rank, node in enumerate(req.device_nodes)}
    nodes = ([every[req.host_node]] if req.host_node is not None else
             sorted(every.values(), key=lambda node: (first.get(node.id, len(first)),
                                                      node.id))
             if first else list(every.values()))
    if req.page_kib and not any(node.pool or any(size == req.page_kib
                                                 for size, _ in node.cell.pages)
                                for node in every.values()):
        raise Infeasible((f"the host has no {format_kib(req.page_kib)} hugepages "
                          f"(its page sizes: {_page_sizes(host)})",))
    if not req.bound:
        return _unbound(req, facts, nodes)
    counts = _assign(req, nodes, facts, explain)
    return _allocate(req, nodes, counts, facts.shared)


def _page_sizes(host) -> str:
    sizes = sorted({size for cell in host.cells for size, _ in cell.pages})
    return ", ".join(format_kib(size) for size in sizes) or "none listed"


def _kinds(req: Requirements) -> tuple[tuple[Demand, tuple[int, ...]], ...]:
    """Cells grouped by demand, biggest first: (demand, cell ids)."""
    groups: dict[Demand, list[int]] = {}
    for cell in req.cells:
        groups.setdefault(_demand(req, cell), []).append(cell.id)
    return tuple(sorted(((d, tuple(ids)) for d, ids in groups.items()), reverse=True))


class _Cells:
    """The guest's kinds of cells, and what a number of each takes together, worked
    out once for requirements that fit asks of many hosts (those of its last few
    trait sets: 'when host ...' may give hosts of another shape other ones)."""

    known: dict[int, _Cells] = {}  # by the id of the requirements, which it holds

    def __init__(self, req: Requirements):
        self.req, self.kinds = req, _kinds(req)
        self.demands = [d for d, _ in self.kinds]
        self._sizes: dict[tuple[int, ...], tuple[int, int]] = {}
        self._takes: dict[tuple[int, ...], tuple] = {}
        self._trials: dict[bool, list] = {}
        # For the reasons' messages
        self.unit = req.unit()
        self.page_size = format_kib(req.page_kib) if req.page_kib else None

    @classmethod
    def of(cls, req: Requirements) -> _Cells:
        found = cls.known.get(id(req))
        if found is None or found.req is not req:
            if len(cls.known) >= 64:
                cls.known.clear()
            found = cls.known[id(req)] = cls(req)
        return found

    def one_or_none(self, remaining: tuple[int, ...]) -> tuple:
        """_one_or_none's takes, each with what remains after it and whether it
        takes a cell."""
        found = self._takes.get(remaining)
        if found is None:
            found = self._takes[remaining] = tuple(
                (take, tuple(r - t for r, t in zip(remaining, take)), any(take))
                for take in _one_or_none(remaining))
        return found

    def trials(self, distinct: bool) -> list[tuple[int, int, str]]:
        """What _reasons tries each node with, in order: on distinct nodes the
        smallest cell, then the biggest; else the fewest smallest cells, one
        more each time. Each as (CPU units, hugepages or memory, who needs them)."""
        found = self._trials.get(distinct)
        if found is None:
            kinds = self.kinds
            cells = [(demand, ident) for demand, ids in reversed(kinds) for ident in ids]
            trials = ([[cells[0]]] + ([[(kinds[0][0], kinds[0][1][0])]] if len(kinds) > 1
                                      else [])
                      if distinct else [cells[:count] for count in range(1, len(cells) + 1)])
            found = self._trials[distinct] = [_trial(self.req, trial) for trial in trials]
        return found

    def size(self, counts: tuple[int, ...]) -> tuple[int, int]:
        """(CPU units, hugepages or memory) of ``counts`` cells of each kind."""
        found = self._sizes.get(counts)
        if found is None:
            req = self.req
            found = self._sizes[counts] = (
                sum(d.units * n for d, n in zip(self.demands, counts)),
                sum(d.size(req) * n for d, n in zip(self.demands, counts)))
        return found


def _assign(req: Requirements, nodes: list[Node], facts: HostFacts, explain: bool = True):
    """How many cells of each kind each node takes, and where the emulator goes:
    ``[(counts, emulator?) per node]``; Infeasible when nothing fits."""
    cells = _Cells.of(req)
    kinds, size = cells.kinds, cells.size
    distinct = sum(1 for node in nodes if node.usable) >= len(req.cells)
    emulator = req.emulator == "isolated"
    verdicts: dict = {}  # (node index, take, with the emulator) → whether it holds them

    def fits(index: int, take: tuple[int, ...], with_emulator: bool) -> bool:
        key = (index, take, with_emulator)
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = verdicts[key] = _short(req, nodes[index], *size(take),
                                             with_emulator) is None
        return verdict

    # What the nodes from each index on offer at most (CPU units, hugepages or
    # memory): a search whose cells want more cannot succeed and stops at once.
    offers = [_offer(req, node) for node in nodes] + [(0, 0)]
    for index in range(len(nodes) - 1, -1, -1):
        offers[index] = (offers[index][0] + offers[index + 1][0],
                         offers[index][1] + offers[index + 1][1])
    spare_unit = req.dedicated and req.threads != "require"  # the emulator's
    searched: dict = {}  # (index, remaining, emulator left) → what search found

    def search(index: int, remaining: tuple[int, ...], emulator_left: bool):
        key = (index, remaining, emulator_left)
        if key in searched:
            return searched[key]
        searched[key] = None  # unless found below (one memo and call a step, not two)
        if not any(remaining):
            found = searched[key] = () if not emulator_left else None
            return found
        if index == len(nodes):
            return None
        units, memory = size(remaining)
        if (units + (emulator_left and spare_unit) > offers[index][0]
                or memory > offers[index][1]):
            return None
        takes = (cells.one_or_none(remaining) if distinct else
                 ((take, tuple(r - t for r, t in zip(remaining, take)), any(take))
                  for take in _choices(remaining, len(nodes) - index,
                                       lambda take: fits(index, take, False))))
        for take, left, some in takes:
            for here in ((True, False) if emulator_left and some else (False,)):
                if not some or fits(index, take, here):
                    rest = search(index + 1, left, emulator_left and not here)
                    if rest is not None:
                        found = searched[key] = ((take, here),) + rest
                        return found
        return None

    found = search(0, tuple(len(ids) for _, ids in kinds), emulator)
    # search calls itself through this scope: let go of it here, or every placement
    # would be a reference cycle, left for the garbage collector to find.
    search = None
    if found is None:
        raise Infeasible(_reasons(cells, nodes, distinct, facts) if explain else ())
    per_node = list(found) + [(tuple(0 for _ in kinds), False)] * (len(nodes) - len(found))
    return kinds, per_node


def _one_or_none(remaining: tuple[int, ...]):
    """What one node may take on distinct nodes, best first: one cell (the biggest
    kind first) or none."""
    for k, count in enumerate(remaining):
        if count:
            yield tuple(int(i == k) for i in range(len(remaining)))
    yield tuple(0 for _ in remaining)


def _choices(remaining: tuple[int, ...], nodes_left: int, fits):
    """What one node may take when nodes hold several cells, best first, made as
    they are tried: near an even share of what is left (more first), then more of
    the bigger kinds. Only takes that ``fits`` (without the emulator) are made: a
    take that does not fit grows into none that does."""
    total = sum(remaining)
    even = -(-total // nodes_left)
    after = [sum(remaining[kind + 1:]) for kind in range(len(remaining))]

    def grow(take: tuple[int, ...], left: int):
        kind = len(take)
        if kind == len(remaining):
            yield take
            return
        for count in range(min(remaining[kind], left), max(left - after[kind], 0) - 1, -1):
            grown = take + (count,)
            if count and not fits(grown + (0,) * (len(remaining) - kind - 1)):
                continue
            yield from grow(grown, left - count)

    try:
        for size in sorted(range(total + 1), key=lambda size: (abs(size - even), -size)):
            yield from grow((), size)
    finally:  # grow calls itself through this scope: no cycle left behind when done
        grow = None


def _reasons(cells: _Cells, nodes, distinct, facts) -> tuple[str, ...]:
    """The binding constraint of each node. On distinct nodes: against the smallest
    cell if even that does not fit, else against the biggest; nodes that hold a cell
    say so. Nodes shared by cells: against the fewest smallest cells it cannot hold
    (the emulator with them)."""
    if not cells.kinds:
        return ("the guest has no cells to place the emulator with",)
    trials, limits = cells.trials(distinct), facts.describe_limits()
    reasons, smallest_fits = [], False
    for node in sorted(nodes, key=lambda n: n.id):
        reason = None
        for number, trial in enumerate(trials):
            reason, fits_alone = _shortfall_of(cells, node, trial, limits)
            smallest_fits = smallest_fits or (number == 0 and fits_alone)
            if reason:
                break
        reasons.append(f"host node {node.id}: " + (reason or "can hold one guest cell"))
    # Said only where it is the problem: nodes that hold a cell, too few of them.
    count = len(cells.req.cells)
    if distinct and count > 1 and smallest_fits:
        reasons.append(f"the guest's {count} cells need distinct host nodes")
    return tuple(reasons)


def _trial(req, cells) -> tuple[int, int, str]:
    """(CPU units, hugepages or memory, who needs them) of these (demand, cell id)."""
    ids = sorted(ident for _, ident in cells)
    who = (f"guest cell {ids[0]} needs" if len(ids) == 1 else
           f"guest cells {format_cpulist(ids)} need")
    return (sum(demand.units for demand, _ in cells),
            sum(demand.size(req) for demand, _ in cells), who)


def _shortfall_of(cells: _Cells, node, trial, limits: str) -> tuple[str | None, bool]:
    """Why ``node`` cannot hold a trial's cells alone, or with the emulator (None
    when it can), and whether it holds them alone."""
    req, (units, size, who) = cells.req, trial
    short = _short(req, node, units, size, False)
    if short:
        return _short_text(cells, node, short, units, size, False, limits, who), False
    if req.emulator == "isolated":
        short = _short(req, node, units, size, True)
        if short:
            return _short_text(cells, node, short, units, size, True, limits, who), True
    return None, True


# ---------------------------------------------------------------- CPUs

def _allocate(req: Requirements, nodes: list[Node], assignment,
              shared: frozenset[int] | None) -> Placement:
    kinds, per_node = assignment
    queues = [list(ids) for _, ids in kinds]
    cells = {cell.id: cell for cell in req.cells}
    placed, emulator = [], frozenset()
    for node, (take, with_emulator) in zip(nodes, per_node):
        ids = sorted(queue.pop(0) for queue, count in zip(queues, take)
                     for _ in range(count))
        taker = _Taker(req, node)
        for cell_id in ids:
            placed.append(CellPlacement(cell_id, node.id, taker.vcpus(cells[cell_id])))
        if with_emulator:
            emulator = taker.emulator()
            placed = [_without(p, emulator) if p.node == node.id else p for p in placed]
    placed.sort(key=lambda p: p.cell)
    return _finish(req, tuple(placed), emulator, shared)


def _without(cell: CellPlacement, emulator: frozenset[int]) -> CellPlacement:
    """Floating vCPUs keep off the isolated emulator's CPU."""
    return CellPlacement(cell.cell, cell.node, tuple(
        (v, cpus - emulator if len(cpus) > 1 else cpus) for v, cpus in cell.pins))


def _finish(req: Requirements, cells: tuple[CellPlacement, ...],
            emulator: frozenset[int], shared: frozenset[int] | None = None) -> Placement:
    vcpu_cpus = frozenset().union(*(cpus for cell in cells for _, cpus in cell.pins))
    if not emulator:  # shared: on the host's shared set when one is given (Nova's
        # cpu_shared_set), else (and when unsaid) where the vCPUs run
        emulator = shared if req.emulator == "shared" and shared else vcpu_cpus
    iothreads = emulator if req.iothreads else frozenset()
    return Placement(cells, emulator, iothreads)


class _Taker:
    """Hands out a node's CPUs in order, as the policy consumes them."""

    def __init__(self, req: Requirements, node: Node):
        self.req, self.node = req, node
        self.used: set[int] = set()
        self.cores = list(node.cores_of(req.threads_per_core) if req.threads == "require"
                          else node.whole_cores)

    def vcpus(self, cell: GuestCell) -> tuple[tuple[int, frozenset[int]], ...]:
        if not self.req.dedicated:
            return tuple((v, frozenset(self.node.usable)) for v in cell.vcpus)
        if self.req.threads == "prefer":
            cpus = self._free()[:len(cell.vcpus)]
        elif self.req.threads == "isolate":
            cpus = [self._core()[0] for _ in cell.vcpus]
        else:
            groups = -(-len(cell.vcpus) // self.req.threads_per_core)
            cpus = [cpu for _ in range(groups) for cpu in self._core()][:len(cell.vcpus)]
        self.used.update(cpus)
        return tuple((v, frozenset((cpu,))) for v, cpu in zip(cell.vcpus, cpus))

    def emulator(self) -> frozenset[int]:
        if self.req.dedicated and self.req.threads == "isolate":
            cpu = self._core()[0]
        else:  # keep whole cores whole: a CPU of a partly usable core first
            whole = {cpu for core in self.node.whole_cores for cpu in core}
            cpu = next((c for c in self._free() if c not in whole), None)
            cpu = self._free()[0] if cpu is None else cpu
        self.used.add(cpu)
        return frozenset((cpu,))

    def _free(self) -> list[int]:
        return [cpu for cpu in self.node.usable if cpu not in self.used]

    def _core(self) -> tuple[int, ...]:
        core = self.cores.pop(0)
        self.used.update(core)
        return core


def _unbound(req: Requirements, facts: HostFacts, nodes: list[Node]) -> Placement:
    """Shared CPUs with no node asked for: float over every usable CPU of the host."""
    usable = [cpu for node in nodes for cpu in node.usable]
    emulator_left = req.emulator == "isolated"
    if len(usable) < 1 + emulator_left:
        raise Infeasible((f"the host has {len(usable)} free CPUs"
                          f"{facts.describe_limits()}{facts.describe_held(None)}, "
                          "the guest needs "
                          f"{1 + emulator_left}",))
    if req.page_kib:
        pool = sum(node.pool for node in nodes)
        pages = sum(req.pages(cell) for cell in req.cells)
        if pool < pages:
            raise Infeasible((f"the host has {pool} free {format_kib(req.page_kib)} "
                              f"hugepages, the guest needs {pages}",))
    elif all(node.memory_kib is not None for node in nodes):
        memory = sum(node.memory_kib for node in nodes)
        wanted = sum(cell.memory_kib for cell in req.cells)
        if memory < wanted:
            raise Infeasible((f"the host has {format_kib(memory)} of memory, the guest "
                              f"needs {format_kib(wanted)}",))
    emulator = frozenset((usable[0],)) if emulator_left else frozenset()
    floating = frozenset(usable) - emulator
    cells = tuple(CellPlacement(cell.id, None, tuple((v, floating) for v in cell.vcpus))
                  for cell in req.cells)
    return _finish(req, cells, emulator, facts.shared)
