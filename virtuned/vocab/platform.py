"""Platform traits that live outside ``<devices>``: vmcoreinfo, pvpanic, clock."""

from __future__ import annotations


from virtuned.emit.kit import Add, Ensure, SetAttr, devices, el, hypervisor, trait


def feature_on(ctx, name: str) -> list:
    """``<features><NAME state='on'/></features>``, or that state set on the input's."""
    features = ctx.root.find("features")
    existing = features.find(name) if features is not None else None
    if existing is None:
        return [Add("features", el(name, state="on"), ctx.origin, identity=(name,))]
    return [SetAttr(existing, "state", "on", ctx.origin)]


@trait("vmcoreinfo", version=1, rank=50, example="vmcoreinfo")
def vmcoreinfo(ctx):
    """The vmcoreinfo device, so a guest kernel crash dump can be read from the host.

    Writes ``<features><vmcoreinfo state='on'/></features>``; an input that turns it
    off is a conflict.
    """
    hypervisor.supported(ctx, "features/vmcoreinfo", "vmcoreinfo")
    return feature_on(ctx, "vmcoreinfo")


@trait("pvpanic", version=1, rank=60, example="pvpanic")
def pvpanic(ctx):
    """A pvpanic device, so the host learns of a guest kernel panic (on_crash applies).

    Adds ``<panic model='isa'/>``, libvirt's name for the ISA pvpanic device (on pc and
    q35 alike), unless the input has one.
    """
    if devices.find(ctx.devices, "panic", model="isa"):
        return []
    return [devices.add_device(el("panic", model="isa"), ctx.origin)]


@trait("clock {offset:utc|localtime}", version=1, rank=70, example="clock utc")
def clock(ctx, offset):
    """The guest's hardware clock: utc (Linux and most guests) or localtime (Windows).

    Sets ``<clock offset=...>``; an input that states another offset is a conflict.
    """
    existing = ctx.root.find("clock")
    if existing is None:
        return [Ensure("clock", "offset", offset, ctx.origin)]
    return [SetAttr(existing, "offset", offset, ctx.origin)]
