"""``rng virtio``: entropy for the guest from the host."""

from __future__ import annotations


from virtuned.emit.kit import devices, el, hypervisor, trait


@trait("rng {model:virtio}", version=1, rank=100, example="rng virtio")
def rng(ctx, model):
    """A virtio RNG fed from the host's /dev/urandom.

    Adds ``<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>``
    unless the input has a virtio RNG already (whatever its backend).
    """
    hypervisor.offer(ctx, "devices/rng", "model", model, "RNG model")
    hypervisor.offer(ctx, "devices/rng", "backendModel", "random", "RNG backend")
    if devices.find(ctx, "rng", model=model):
        return []
    return [devices.add_device(
        el("rng", el("backend", text="/dev/urandom", model="random"), model=model),
        ctx.origin)]
