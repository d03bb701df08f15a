"""``device numa affinity``: host PCI devices beside the guest NUMA cell of their node.

A device passed through from host NUMA node N does its DMA to and from node N's
memory and raises interrupts there. A guest that knows which of its NUMA cells that
is schedules the driver and its buffers there: the device sits behind a PCI
expander bus (QEMU's pxb) whose ``<node>`` is that guest cell.
"""

from __future__ import annotations

import itertools

from virtuned.emit.kit import (Add, DeviceAffinity, ExitCode, Remove, conflict, devices, el,
                              element_span, error, frozen, int_attr, parse_cpulist, trait)
from virtuned.vocab.pcie import root_ports_to_add

# PCI bus numbers end at 255, and libvirt gives an expander bus 1 to 254. Each new
# expander bus takes the numbers below those the input's expander buses have (and
# the buses below them use): its own, and on q35 one per root port behind it.
LAST_BUS, LAST_EXPANDER_BUS = 255, 254


@frozen
class Placement:
    """The host devices that go behind one expander bus: those of one guest cell."""

    cell: int
    hostdevs: tuple  # (element, normalized host address), in document order


@trait("device numa affinity", version=1, rank=440, example="device numa affinity",
       needs=lambda args: DeviceAffinity())
def device_numa_affinity(ctx):
    """Host PCI devices beside the guest NUMA cell of their host node.

    Each PCI host device whose host NUMA node is known (--device-node
    ADDRESS=NODE) goes behind a PCI expander bus bound to the guest NUMA cell whose
    memory is on that host node (``<numatune><memnode cellid nodeset>``): on q35 a
    pcie-expander-bus with one pcie-root-port per device, on pc a pci-expander-bus,
    with bus numbers counted down from 254 (below those of the input's expanders).

    With --host the planner places the guest beside its devices when it fits: the
    nodes of the devices are tried first. A guest with no NUMA cells placed on one
    node then needs no expander bus (its devices must all be on that node).

    Devices already behind an expander bus of the right cell stay where they are;
    one the input puts anywhere else is a conflict (with --override it moves, its old
    address removed), and so is a device whose host node no guest cell is bound to. Devices whose node is not known are left alone,
    but at least one must be known when the domain has PCI host devices.
    """
    placements = _placements(ctx)
    indexes = devices.free_pci_indexes(ctx)
    # 'pcie root ports N' takes the lowest ones (vocab/pcie.py): skip those.
    indexes = itertools.islice(indexes, root_ports_to_add(ctx), None)
    # --override: the guest addresses that were elsewhere give way to the new ones
    edits = [Remove(address, ctx.origin) for placement in placements
             for hostdev, _ in placement.hostdevs
             if (address := hostdev.find("address")) is not None]
    free_up_to = _lowest_bus_number(ctx) - 1
    for placement in placements:
        needed = 1 + (len(placement.hostdevs) if ctx.platform.has_pcie else 0)
        bus = min(free_up_to - needed + 1, LAST_EXPANDER_BUS)
        edits += _expander(ctx, placement, indexes, bus)
        free_up_to = bus - 1
    return edits


def _placements(ctx) -> list[Placement]:
    """The devices to move, grouped by guest cell; errors for what cannot be."""
    known = dict(ctx.plan.device_nodes)
    hostdevs = [(h, devices.hostdev_address(h)) for h in
                ctx.devices_of("hostdev")]
    hostdevs = [(h, address) for h, address in hostdevs if address is not None]
    if not hostdevs:
        return []
    placed = [(h, address, known[address]) for h, address in hostdevs if address in known]
    if not placed:
        address = hostdevs[0][1]
        raise error(ctx.origin.span, f"device numa affinity: the host NUMA node of "
                    f"hostdev {address} is not known",
                    hint=f"give it with --device-node {address}=NODE (the host's "
                    f"/sys/bus/pci/devices/{address}/numa_node)")
    if _beside_the_whole_guest(ctx, placed):
        return []
    cells = _guest_cells(ctx, placed[0][1], placed[0][2])
    groups: dict[int, list] = {}
    for hostdev, address, node in placed:
        cell = cells.get(node)
        if cell is None:
            raise error(ctx.origin.span, f"device numa affinity: hostdev {address} is on "
                        f"host node {node}, and no guest cell's memory is bound to host "
                        f"node {node} (<numatune><memnode>)", exit_code=ExitCode.CONFLICT,
                        hint="bind a guest cell to that node, or leave the device's node "
                        "out of --device-node")
        if not _already_beside(ctx, hostdev, address, cell):
            groups.setdefault(cell, []).append((hostdev, address))
    return [Placement(cell, tuple(group)) for cell, group in sorted(groups.items())]


def _beside_the_whole_guest(ctx, placed) -> bool:
    """A guest with no NUMA cells of its own, placed on one host node (--host), has
    its devices beside it when they are all on that node; one elsewhere is refused."""
    placement, wanted = ctx.plan.placement, ctx.plan.requirements
    if placement is None or wanted.guest_numa or len(placement.nodes) != 1:
        return False
    (node,) = placement.nodes
    nodes = {device_node for _, _, device_node in placed}
    for _, address, device_node in placed:
        if device_node != node:
            hint = (f"the devices are on {len(nodes)} host nodes: give the guest as many "
                    f"NUMA cells ('guest numa nodes {len(nodes)}')" if len(nodes) > 1 else
                    "the guest does not fit on that node; give it NUMA cells ('guest "
                    "numa nodes N') to span nodes, or free CPUs there")
            raise error(ctx.origin.span, f"device numa affinity: hostdev {address} is on "
                        f"host node {device_node}, and the guest (no NUMA cells) is placed "
                        f"on host node {node}", exit_code=ExitCode.CONFLICT, hint=hint)
    return True


def _guest_cells(ctx, address: str, node: int) -> dict[int, int]:
    """Host node → the lowest guest cell whose memory is bound to exactly that node:
    where the planner put the guest's cells (--host), else what the input's
    ``<cpu><numa>`` and ``<numatune><memnode>`` say."""
    placement, wanted = ctx.plan.placement, ctx.plan.requirements
    if placement is not None and wanted.guest_numa and placement.nodes:
        cells: dict[int, int] = {}
        for cell in placement.cells:
            cells[cell.node] = min(cell.cell, cells.get(cell.node, cell.cell))
        return cells
    ids = {int_attr(c, "id", -1, ctx.filename) for c in ctx.root.iterfind("cpu/numa/cell")}
    if not ids:
        raise error(ctx.origin.span, f"device numa affinity: the guest has no NUMA cells "
                    f"(<cpu><numa>) to put hostdev {address} (host node {node}) beside",
                    hint="give the guest NUMA cells bound to host nodes "
                    "(<numatune><memnode>), or drop the trait")
    cells: dict[int, int] = {}
    for memnode in ctx.root.iterfind("numatune/memnode"):
        cell = int_attr(memnode, "cellid", -1, ctx.filename)
        try:
            nodes = parse_cpulist(memnode.get("nodeset") or "")
        except ValueError:
            continue  # libvirt refuses it anyway; no cell is bound by it
        if cell in ids and len(nodes) == 1:
            (host_node,) = nodes
            cells[host_node] = min(cell, cells.get(host_node, cell))
    return cells


def _already_beside(ctx, hostdev, address: str, cell: int) -> bool:
    """Whether the input puts the device behind an expander bus of this cell (so a
    second compile changes nothing); an input address anywhere else is a conflict."""
    guest = hostdev.find("address")
    if guest is None:
        return False
    controllers = devices.controller_indexes(ctx, "pci")
    bus = controllers.get(int_attr(guest, "bus", 0, ctx.filename))
    if bus is not None and bus.get("model") == "pcie-root-port":
        parent = bus.find("address")
        bus = controllers.get(int_attr(parent, "bus", 0, ctx.filename)) \
            if parent is not None else None
    if bus is not None and bus.get("model") in ("pcie-expander-bus", "pci-expander-bus") \
            and bus.findtext("target/node", "").strip() == str(cell):
        return True
    if ctx.override and not ctx.origin.soft:
        return False  # moved like a device without an address; the old one removed
    raise conflict(ctx.origin, f"hostdev {address} behind an expander bus of guest cell "
                   f"{cell}", element_span(guest, ctx.filename),
                   "the input gives it a guest PCI address elsewhere",
                   hint="remove the hostdev's <address>, drop the trait, or let it move "
                        "with --override")


def _lowest_bus_number(ctx) -> int:
    """Expander buses the input has keep their bus numbers; new ones go below."""
    numbers = [int_attr(target, "busNr", LAST_BUS + 1, ctx.filename)
               for target in (ctx.devices.iterfind("controller[@type='pci']/target")
                              if ctx.devices is not None else ())]
    return min(numbers, default=LAST_BUS + 1)


def _expander(ctx, placement: Placement, indexes, bus_number: int) -> list:
    """The expander bus of one guest cell and its devices' addresses: on q35 a root
    port per device (a PCIe endpoint cannot sit on the expander's root bus itself),
    on pc the devices straight on the expander's PCI bus."""
    pcie = ctx.platform.has_pcie
    expander = next(indexes)
    model = "pcie-expander-bus" if pcie else "pci-expander-bus"
    edits = [devices.controller(
        "pci", expander, ctx.origin,
        el("target", el("node", text=str(placement.cell)), busNr=str(bus_number)),
        model=model)]
    for slot, (hostdev, _) in enumerate(placement.hostdevs):
        if pcie:
            port = next(indexes)
            edits.append(devices.controller("pci", port, ctx.origin, _pci(expander, slot),
                                            model="pcie-root-port"))
            edits.append(Add(hostdev, _pci(port, 0), ctx.origin, identity=("address",)))
        else:
            edits.append(Add(hostdev, _pci(expander, slot), ctx.origin,
                             identity=("address",)))
    return edits


def _pci(bus: int, slot: int):
    return el("address", type_="pci", domain="0x0000", bus=f"0x{bus:02x}",
              slot=f"0x{slot:02x}", function="0x0")
