"""``machine q35`` / ``machine pc``: the chipset, which every device trait adapts to."""

from __future__ import annotations


from virtuned.emit.kit import SetAttr, machine_family, trait


@trait("machine {type:q35|pc}", version=1, rank=10, example="machine q35",
       facts=lambda args: {"machine": args["type"]})
def machine(ctx, type):
    """Machine type: q35 (PCIe, SATA, no IDE) or pc (i440fx: PCI, IDE).

    The planner makes every other trait work against this machine. An input that
    already names a machine of the same family (``pc-q35-7.2`` for q35) is kept as
    it is; one of the other family is a conflict.
    """
    os_type = ctx.find("os/type")
    if os_type is None:
        return []  # completion writes <os><type> with the planned machine
    current = os_type.get("machine")
    if current is not None and machine_family(current) == type:
        return []
    return [SetAttr(os_type, "machine", type, ctx.origin)]
