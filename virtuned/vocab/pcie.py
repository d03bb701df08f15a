"""``pcie root ports N``: hotplug headroom on q35."""

from __future__ import annotations

from virtuned import devices
from virtuned.diagnostics import error
from virtuned.domain import int_attr
from virtuned.registry import trait


@trait("pcie root ports {count:int}", version=1)
def pcie_root_ports(ctx, count):
    """At least this many pcie-root-port controllers (q35), so devices can be
    hot-plugged later: on q35 every PCIe device needs a root port of its own, and
    libvirt adds only one spare.

    Root ports already in the input count; the missing ones are added with the next
    free PCI controller indexes.
    """
    if not ctx.platform.has_pcie:
        raise error(ctx.origin.span, f"pcie root ports: {ctx.platform.describe_machine()} "
                    "has no PCIe", hint="root ports need 'machine q35'")
    controllers = ctx.devices.findall("controller") if ctx.devices is not None else []
    pci = [c for c in controllers if c.get("type") == "pci"]
    present = sum(1 for c in pci if c.get("model") == "pcie-root-port")
    used = {int_attr(c, "index", -1, ctx.filename) for c in pci}
    edits, index = [], 1  # index 0 is the pcie-root itself
    for _ in range(max(count - present, 0)):
        while index in used:
            index += 1
        used.add(index)
        edits.append(devices.controller("pci", index, ctx.origin, model="pcie-root-port"))
    return edits
