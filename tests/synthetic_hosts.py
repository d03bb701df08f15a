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
