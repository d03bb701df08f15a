"""``hyperv enlightenments``: what Windows guests want from a Hyper-V-like host."""

from __future__ import annotations

from virtuned.merge import Add, el
from virtuned.registry import trait
from virtuned.vocab.platform import clock_edits

# The set virt-install and libvirt's documentation recommend for Windows guests.
ENLIGHTENMENTS = (
    el("relaxed", state="on"), el("vapic", state="on"),
    el("spinlocks", state="on", retries="8191"), el("vpindex", state="on"),
    el("runtime", state="on"), el("synic", state="on"), el("stimer", state="on"),
    el("reset", state="on"), el("frequencies", state="on"),
)


@trait("hyperv enlightenments", version=1)
def hyperv(ctx):
    """Hyper-V enlightenments (relaxed timing, virtual APIC, spinlocks, synthetic
    timers and interrupts...) and the Hyper-V reference clock: Windows runs markedly
    better with them. An input that already has a <hyperv> element keeps it as is.
    """
    features = ctx.root.find("features")
    edits = []
    if features is None or features.find("hyperv") is None:
        edits.append(Add("features", el("hyperv", *ENLIGHTENMENTS, mode="custom"),
                         ctx.origin, identity=("hyperv",)))
    return edits + clock_edits(ctx)
