"""Synthetic ``virsh capabilities`` documents: hosts of any shape, written the way
libvirt writes them (Linux numbering: the first thread of every core first, then
the second threads), for tests and the planner benchmark."""

from __future__ import annotations

import attrs


@attrs.frozen
class CellShape:
    """One NUMA node: ``cores`` cores of ``threads`` threads in ``sockets`` sockets,
    ``memory_kib`` of memory and hugepage pools ``{page size KiB: pages}``."""

    cores: int
    threads: int = 2
    memory_kib: int = 64 * 1024 * 1024
    pages: tuple[tuple[int, int], ...] = ((2048, 4096), (1048576, 16))
    sockets: int = 1


def capabilities(cells: int, cores: int, threads: int = 2, *, memory_gib: int = 64,
                 pages_2m: int = 4096, pages_1g: int = 16, sockets_per_cell: int = 1) -> str:
    """A host of ``cells`` NUMA nodes, each one socket of ``cores`` cores with
    ``threads`` threads per core; per node ``memory_gib`` of memory and hugepage
    pools of ``pages_2m`` 2 MiB and ``pages_1g`` 1 GiB pages."""
    shape = CellShape(cores, threads, memory_gib * 1024 * 1024,
                      ((2048, pages_2m), (1048576, pages_1g)), sockets_per_cell)
    return shaped([shape] * cells)


def shaped(cells: list[CellShape]) -> str:
    """A host of these nodes, which may differ from each other. The host-wide
    <topology> states the first node's shape (libvirt states one for the host)."""
    first = cells[0]
    total_cores = sum(cell.cores for cell in cells)
    lines = ["<capabilities>", "  <host>", "    <uuid>00000000-0000-0000-0000-000000000001</uuid>",
             "    <cpu>", "      <arch>x86_64</arch>", "      <model>Skylake-Server</model>",
             "      <vendor>Intel</vendor>",
             f"      <topology sockets='{sum(cell.sockets for cell in cells)}' dies='1' "
             f"cores='{first.cores // first.sockets}' threads='{first.threads}'/>",
             "      <pages unit='KiB' size='4'/>", "      <pages unit='KiB' size='2048'/>",
             "      <pages unit='KiB' size='1048576'/>", "    </cpu>",
             "    <topology>", f"      <cells num='{len(cells)}'>"]
    first_core = first_socket = 0
    for index, cell in enumerate(cells):
        pools = dict(cell.pages)
        small = (cell.memory_kib - sum(size * count for size, count in pools.items())) // 4
        lines += [f"        <cell id='{index}'>",
                  f"          <memory unit='KiB'>{cell.memory_kib}</memory>",
                  f"          <pages unit='KiB' size='4'>{max(small, 0)}</pages>"]
        lines += [f"          <pages unit='KiB' size='{size}'>{count}</pages>"
                  for size, count in sorted(pools.items())]
        lines += ["          <distances>"]
        lines += [f"            <sibling id='{other}' value='{10 if other == index else 21}'/>"
                  for other in range(len(cells))]
        lines += ["          </distances>", f"          <cpus num='{cell.cores * cell.threads}'>"]
        cpus = []
        per_socket = max(cell.cores // cell.sockets, 1)
        for thread in range(cell.threads):
            for core in range(cell.cores):
                global_core = first_core + core
                ident = thread * total_cores + global_core
                siblings = ",".join(str(t * total_cores + global_core)
                                    for t in range(cell.threads))
                socket = first_socket + core // per_socket
                cpus.append((ident, f"            <cpu id='{ident}' socket_id='{socket}' "
                                    f"die_id='0' core_id='{core}' siblings='{siblings}'/>"))
        lines += [line for _, line in sorted(cpus)]
        lines += ["          </cpus>", "        </cell>"]
        first_core += cell.cores
        first_socket += cell.sockets
    lines += ["      </cells>", "    </topology>", "  </host>", "</capabilities>"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- host snapshots

GIB_KIB = 1024 * 1024


def snapshot(cores: list[int], threads: int = 2, *, memory_gib: int = 64,
             pages_1g: int = 16, held: dict[str, list[int]] | None = None,
             used_1g: dict[int, int] | None = None, name: str = "host") -> dict:
    """A host snapshot (virtuned host snapshot's JSON, as a dict) of one node per
    entry of ``cores``, each that many cores of ``threads`` threads, numbered the
    Linux way (the first thread of every core first); per node ``memory_gib`` and
    ``pages_1g`` 1 GiB pages. ``held``: running guests by name → the CPUs each pins
    a vCPU to (alone, so they are held); ``used_1g``: node → 1 GiB pages not free."""
    total_cores, first = sum(cores), 0
    nodes = []
    for index, count in enumerate(cores):
        cpus = [{"id": thread * total_cores + first + core, "socket": index, "die": 0,
                 "core": core, "siblings": ",".join(str(t * total_cores + first + core)
                                                    for t in range(threads))}
                for thread in range(threads) for core in range(count)]
        cpus.sort(key=lambda cpu: cpu["id"])
        first += count
        small = (memory_gib - pages_1g) * GIB_KIB
        nodes.append({
            "id": index, "memory_kib": memory_gib * GIB_KIB, "free_memory_kib": small // 2,
            "pages": [{"size_kib": 4, "total": small // 4, "free": small // 8},
                      {"size_kib": 1048576, "total": pages_1g,
                       "free": max(pages_1g - (used_1g or {}).get(index, 0), 0)}],
            "distances": [{"node": other, "value": 10 if other == index else 21}
                          for other in range(len(cores))],
            "cpus": cpus})
    guests = [{"name": guest, "running": True, "autostart": True,
               "vcpus": {str(v): str(cpu) for v, cpu in enumerate(sorted(pinned))},
               "vcpu_cpuset": None, "emulator": None, "iothreads": {}, "memory": []}
              for guest, pinned in sorted((held or {}).items())]
    return {"format": "virtuned host snapshot", "version": 1,
            "uri": f"qemu+ssh://{name}/system", "hostname": name, "nodes": nodes,
            "guests": guests, "domcaps": []}


def fleet(count: int, seed: int = 0, *, nodes=(2, 16), cores=(16, 32), threads: int = 2,
          cores_per_node: bool = False):
    """``count`` host snapshots (dicts) of random shapes, the same ones for the same
    seed: ``nodes`` NUMA nodes and ``cores`` cores (inclusive ranges) of ``threads``
    threads, the cores of the host spread over its nodes as evenly as whole cores
    allow (at least one each), or ``cores_per_node``; on each host up to 4 running
    guests hold random CPUs (up to an eighth of them each), and up to 12 of each
    node's 16 1 GiB pages are in use."""
    import random

    rng = random.Random(seed)
    for index in range(count):
        cells, drawn = rng.randint(*nodes), rng.randint(*cores)
        per_node = ([drawn] * cells if cores_per_node else
                    [max(drawn // cells + (i < drawn % cells), 1) for i in range(cells)])
        cpus = sum(per_node) * threads
        held = {f"vm{g}": rng.sample(range(cpus), rng.randint(1, max(cpus // 8, 1)))
                for g in range(rng.randint(0, 4))}
        used = {node: rng.randint(0, 12) for node in range(cells)}
        yield snapshot(per_node, threads, held=held, used_1g=used, name=f"host{index:05d}")
