"""Host and guest NUMA: which host node the guest lives on, and the guest's own cells.

Like the CPU traits, these say what they need of the planner; the placement is
decided once for all (virtuned/plan/placement.py) and written by emit/pinning.py.
"""

from __future__ import annotations

from virtuned.emit.kit import GuestCells, HostNode, el, format_cpulist, pinning, trait


@trait("place on host node {node:int 0..1023}", version=1, rank=390,
       example="place on host node 0", needs=lambda args: HostNode(args["node"]))
def place_on_host_node(ctx, node):
    """vCPUs, emulator threads and memory on one host NUMA node.

    With --host: memory strictly on host node N (<numatune>), the vCPUs and the
    emulator on the node's CPUs that are not reserved and inside --allocated-cpus
    (<vcpu cpuset>, <cputune>). A node the host does not have, or one too small, is
    an infeasible placement (exit 3). Without --host nothing is written. N is 0 to
    1023 (Linux's most NUMA nodes, MAX_NUMNODES with NODES_SHIFT 10).
    """
    return pinning.edits(ctx)


@trait("guest numa nodes {count:int 1..128}", version=1, rank=400,
       example="vcpus 2\nguest numa nodes 2",
       needs=lambda args: GuestCells(args["count"]))
def guest_numa_nodes(ctx, count):
    """The guest sees N NUMA cells: vCPUs and memory split evenly (<cpu><numa>).

    With --host each guest cell is mapped to a host node of its own (several share
    a node only when the host has fewer usable nodes than cells): its memory bound
    there (<numatune><memnode>), its vCPUs on that node's CPUs. The cells' sizes
    follow the memory's granule: whole MiB, or whole hugepages with 'hugepages'.
    1 to 128 cells (QEMU's MAX_NODES), and no more than the guest has vCPUs.
    """
    cells = [el("cell", id=str(cell.id), cpus=format_cpulist(cell.vcpus),
                memory=str(cell.memory_kib), unit="KiB")
             for cell in ctx.plan.requirements.cells]
    return pinning.placed_all(ctx, "cpu/numa", "cell", cells, "id") + pinning.edits(ctx)
