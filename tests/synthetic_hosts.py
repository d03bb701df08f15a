"""Synthetic ``virsh capabilities`` documents: hosts of any shape, written the way
libvirt writes them (Linux numbering: the first thread of every core first, then
the second threads), for tests and the planner benchmark."""

from __future__ import annotations


def capabilities(cells: int, cores: int, threads: int = 2, *, memory_gib: int = 64,
                 pages_2m: int = 4096, pages_1g: int = 16, sockets_per_cell: int = 1) -> str:
    """A host of ``cells`` NUMA nodes, each one socket of ``cores`` cores with
    ``threads`` threads per core; per node ``memory_gib`` of memory and hugepage
    pools of ``pages_2m`` 2 MiB and ``pages_1g`` 1 GiB pages."""
    per_cell = cores * threads
    total_cores = cells * cores
    lines = ["<capabilities>", "  <host>", "    <uuid>00000000-0000-0000-0000-000000000001</uuid>",
             "    <cpu>", "      <arch>x86_64</arch>", "      <model>Skylake-Server</model>",
             "      <vendor>Intel</vendor>",
             f"      <topology sockets='{cells * sockets_per_cell}' dies='1' "
             f"cores='{cores // sockets_per_cell}' threads='{threads}'/>",
             "      <pages unit='KiB' size='4'/>", "      <pages unit='KiB' size='2048'/>",
             "      <pages unit='KiB' size='1048576'/>", "    </cpu>",
             "    <topology>", f"      <cells num='{cells}'>"]
    for cell in range(cells):
        memory = memory_gib * 1024 * 1024
        small = (memory - pages_2m * 2048 - pages_1g * 1024 * 1024) // 4
        lines += [f"        <cell id='{cell}'>",
                  f"          <memory unit='KiB'>{memory}</memory>",
                  f"          <pages unit='KiB' size='4'>{max(small, 0)}</pages>",
                  f"          <pages unit='KiB' size='2048'>{pages_2m}</pages>",
                  f"          <pages unit='KiB' size='1048576'>{pages_1g}</pages>",
                  "          <distances>"]
        lines += [f"            <sibling id='{other}' value='{10 if other == cell else 21}'/>"
                  for other in range(cells)]
        lines += ["          </distances>", f"          <cpus num='{per_cell}'>"]
        cpus = []
        for thread in range(threads):
            for core in range(cores):
                global_core = cell * cores + core
                ident = thread * total_cores + global_core
                siblings = ",".join(str(t * total_cores + global_core) for t in range(threads))
                socket = cell * sockets_per_cell + core // (cores // sockets_per_cell)
                cpus.append((ident, f"            <cpu id='{ident}' socket_id='{socket}' "
                                    f"die_id='0' core_id='{core}' siblings='{siblings}'/>"))
        lines += [line for _, line in sorted(cpus)]
        lines += ["          </cpus>", "        </cell>"]
    lines += ["      </cells>", "    </topology>", "  </host>", "</capabilities>"]
    return "\n".join(lines) + "\n"
