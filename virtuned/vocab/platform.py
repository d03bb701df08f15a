"""Platform traits that live outside ``<devices>``: vmcoreinfo, pvpanic, clock; and
what every x86 VM gets where nothing says otherwise: ACPI and the APIC, the guest
clock's timers, power management."""

from __future__ import annotations


from virtuned.emit.kit import (Add, Ensure, SetAttr, completion, devices, el, hypervisor,
                              trait)


def feature_on(ctx, name: str) -> list:
    """``<features><NAME state='on'/></features>``, or that state set on the input's."""
    features = ctx.find("features")
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
    if devices.find(ctx, "panic", model="isa"):
        return []
    return [devices.add_device(el("panic", model="isa"), ctx.origin)]


@trait("clock {offset:utc|localtime}", version=1, rank=70, example="clock utc")
def clock(ctx, offset):
    """The guest's hardware clock: utc (Linux and most guests) or localtime (Windows).

    Sets ``<clock offset=...>``; an input that states another offset is a conflict.
    """
    existing = ctx.find("clock")
    if existing is None:
        return [Ensure("clock", "offset", offset, ctx.origin)]
    return [SetAttr(existing, "offset", offset, ctx.origin)]


@completion("ACPI and the APIC", rank=10)
def acpi_and_apic(ctx):
    """ACPI and the local APIC on x86, where the input has no ``<features>``.

    Without ACPI, QEMU runs with -no-acpi: a pc guest sees one CPU whatever <vcpu>
    says, and powering off only halts it. An input that lists its features is left
    as it is (it says which it wants), with a warning when ``<acpi/>`` is not among
    them.
    """
    # The input's own element first: it usually decides, and x86 is a property call
    # (so in the guest clock and power management too).
    if ctx.find("features") is not None or not ctx.platform.x86:
        return []
    return [Add("features", el(name), ctx.origin, identity=(name,)) for name in ("acpi", "apic")]


# The timers virt-install, Nova and KubeVirt give an x86 guest: the RTC catches up
# after the guest was not scheduled, the PIT delays ticks rather than lose them, and
# no HPET (it costs more than it helps a modern guest).
TIMERS = (el("timer", name="rtc", tickpolicy="catchup"),
          el("timer", name="pit", tickpolicy="delay"),
          el("timer", name="hpet", present="no"))


@completion("the guest clock", rank=30)
def guest_clock(ctx):
    """The clock in UTC (unless 'clock' says otherwise) with the RTC catching up,
    the PIT delaying its ticks and no HPET, where the input has no ``<clock>``."""
    if ctx.find("clock") is not None or not ctx.platform.x86:
        return []
    edits = [Add("clock", timer, ctx.origin, identity=("timer", timer.get("name")))
             for timer in TIMERS]
    if not ctx.of(clock):
        edits.append(Ensure("clock", "offset", "utc", ctx.origin))
    return edits


@completion("power management", rank=40)
def power_management(ctx):
    """No suspend to memory or to disk for an x86 guest (``<pm>``), as virt-install
    writes: QEMU's S3/S4 are not what a server guest's power button should do and
    break live migration. An input with ``<pm>`` keeps its own."""
    if ctx.find("pm") is not None or not ctx.platform.x86:
        return []
    return [Add("", el("pm", el("suspend-to-mem", enabled="no"),
                       el("suspend-to-disk", enabled="no")), ctx.origin, identity=("pm",))]
