"""``pcie root ports N``: hotplug headroom on q35."""

from __future__ import annotations

import itertools

from virtuned.emit.kit import devices, error, trait


@trait("pcie root ports {count:int 1..240}", version=1, rank=250,
       example="pcie root ports 4")
def pcie_root_ports(ctx, count):
    """At least this many PCIe root ports, for hotplug (q35 only).

    At least this many pcie-root-port controllers (q35), so devices can be
    hot-plugged later: on q35 every PCIe device needs a root port of its own, and
    libvirt adds only one spare.

    Root ports already in the input count; the missing ones are added with the next
    free PCI controller indexes. 1 to 240: libvirt plugs root ports into pcie-root's
    slots 1 to 0x1e, 8 functions each (slot 0 is the host bridge, 0x1f the ICH9).
    """
    if not ctx.platform.has_pcie:
        raise error(ctx.origin.span, f"pcie root ports: {ctx.platform.describe_machine()} "
                    "has no PCIe", hint="root ports need 'machine q35'")
    indexes = devices.free_pci_indexes(ctx)
    return [devices.controller("pci", index, ctx.origin, model="pcie-root-port")
            for index in itertools.islice(indexes, root_ports_to_add(ctx))]


def root_ports_to_add(ctx) -> int:
    """How many root ports 'pcie root ports N' adds: it takes the lowest free PCI
    controller indexes, and other traits that add PCI controllers ('device numa
    affinity') skip that many."""
    wanted = next((t.kwargs["count"] for t in ctx.of(pcie_root_ports)), 0)
    present = sum(1 for c in ctx.devices_of("controller")
                  if c.get("type") == "pci" and c.get("model") == "pcie-root-port")
    return max(wanted - present, 0)
