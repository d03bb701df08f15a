"""``hyperv enlightenments``: what Windows guests want from a Hyper-V-like host."""

from __future__ import annotations

from virtuned.emit.kit import Add, Ensure, el, hypervisor, trait
from virtuned.vocab.platform import clock

# The set virt-install and libvirt's documentation recommend for Windows guests.
ENLIGHTENMENTS = (
    el("relaxed", state="on"), el("vapic", state="on"),
    el("spinlocks", state="on", retries="8191"), el("vpindex", state="on"),
    el("runtime", state="on"), el("synic", state="on"), el("stimer", state="on"),
    el("reset", state="on"), el("frequencies", state="on"),
)
# Version 2 adds what Nova and KubeVirt give Windows too: paravirtual TLB flushes
# and IPIs, which save exits on every multi-vCPU guest (libvirt's order: last).
ENLIGHTENMENTS_V2 = ENLIGHTENMENTS + (el("tlbflush", state="on"), el("ipi", state="on"))
# QEMU emulates these only with KVM: under TCG (type 'qemu') the domain would not
# start ("kernel doesn't allow setting HyperV VP_INDEX"); synic needs vpindex and
# stimer needs synic, tlbflush and ipi need vpindex, so they go together.
KVM_ONLY = ("vpindex", "synic", "stimer", "tlbflush", "ipi")


def enlightenments(domain_type: str, wanted: tuple = ENLIGHTENMENTS_V2) -> tuple:
    """The enlightenments of ``wanted`` a domain of this type can have."""
    if domain_type == "kvm":
        return wanted
    return tuple(e for e in wanted if e.tag not in KVM_ONLY)


@trait("hyperv enlightenments", version=1, rank=220, example="hyperv enlightenments")
def hyperv_v1(ctx):
    """The Hyper-V enlightenments and clock that Windows runs much better with.

    As version 2, without tlbflush and ipi.
    """
    return _hyperv(ctx, ENLIGHTENMENTS)


@trait("hyperv enlightenments", version=2, rank=220, example="hyperv enlightenments")
def hyperv(ctx):
    """The Hyper-V enlightenments and clock that Windows runs much better with.

    Hyper-V enlightenments (relaxed, vapic, spinlocks with 8191 retries, vpindex,
    runtime, synic, stimer, reset, frequencies: the set virt-install and libvirt's
    documentation recommend; and tlbflush and ipi, as Nova and KubeVirt add) and the
    Hyper-V reference clock (``<timer name='hypervclock'>``): Windows runs markedly
    better with them. An input that already has a <hyperv> element keeps it as is.
    A TCG domain (type 'qemu') gets those QEMU emulates without KVM: no vpindex,
    synic, stimer, tlbflush or ipi.
    """
    return _hyperv(ctx, ENLIGHTENMENTS_V2)


def _hyperv(ctx, wanted: tuple) -> list:
    _check_offered(ctx, wanted)
    features = ctx.find("features")
    edits = []
    if features is None or features.find("hyperv") is None:
        edits.append(Add("features", el("hyperv", *enlightenments(ctx.platform.domain_type,
                                                                  wanted), mode="custom"),
                         ctx.origin, identity=("hyperv",)))
    return edits + _reference_clock(ctx)


def _reference_clock(ctx) -> list:
    """The Hyper-V reference clock in the guest's ``<clock>``; a clock this adds
    keeps UTC unless a 'clock' trait says otherwise."""
    existing = ctx.find("clock")
    timer = el("timer", name="hypervclock", present="yes")
    if existing is None:
        edits = [Add("clock", timer, ctx.origin, identity=("hypervclock",))]
        return edits if ctx.of(clock) else edits + [Ensure("clock", "offset", "utc",
                                                           ctx.origin)]
    if existing.find("timer[@name='hypervclock']") is None:
        return [Add(existing, timer, ctx.origin, identity=("hypervclock",))]
    return []


def _check_offered(ctx, wanted: tuple) -> None:
    """Hyper-V must be supported. libvirt 9.0 lists in its 'features' enum only the
    enlightenments that take a value (spinlocks, vendor_id) plus those the host CPU
    model turns on by itself, so a list without any on/off enlightenment says
    nothing about them; a list that has some (newer libvirt) must have them all."""
    found = hypervisor.supported(ctx, "features/hyperv", "Hyper-V enlightenments")
    if found is None:
        return
    listed = found.enum("features")
    wanted = enlightenments(ctx.platform.domain_type, wanted)
    switches = [e.tag for e in ENLIGHTENMENTS if e.tag != "spinlocks"]
    if "features" in dict(found.enums) and any(name in listed for name in switches):
        for element in wanted:
            hypervisor.offer(ctx, "features/hyperv", "features", element.tag,
                             "Hyper-V enlightenment")
    else:
        hypervisor.offer(ctx, "features/hyperv", "features", "spinlocks",
                         "Hyper-V enlightenment", if_listed=True)
