"""``iommu``: a virtual Intel IOMMU, for device assignment inside the guest (DPDK, vfio)."""

from __future__ import annotations


from virtuned.emit.kit import Add, SetAttr, el, error, trait


@trait("iommu", version=1, rank=240, example="iommu")
def iommu(ctx):
    """A virtual Intel IOMMU with interrupt remapping (q35 only).

    A virtual Intel IOMMU with interrupt remapping (q35 only), and the split I/O
    APIC that interrupt remapping needs (``<features><ioapic driver='qemu'/>``).

    An input that has an IOMMU keeps it as it is.
    """
    if not ctx.platform.has_pcie:
        raise error(ctx.origin.span, f"iommu: {ctx.platform.describe_machine()} has no "
                    "Intel IOMMU", hint="the virtual IOMMU needs 'machine q35'")
    if ctx.devices_of("iommu"):
        return []
    edits = [Add("devices", el("iommu", el("driver", intremap="on", caching_mode="on"),
                               model="intel"), ctx.origin, identity=("iommu",))]
    features = ctx.find("features")
    ioapic = features.find("ioapic") if features is not None else None
    if ioapic is None:
        edits.append(Add("features", el("ioapic", driver="qemu"), ctx.origin,
                         identity=("ioapic",)))
    else:
        edits.append(SetAttr(ioapic, "driver", "qemu", ctx.origin))
    return edits
