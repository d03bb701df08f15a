"""``network model MODEL``, ``network queues N|auto``, ``network ring size N``: the
NIC model and the virtio-net driver of every interface."""

from __future__ import annotations


from virtuned.emit.kit import (Add, SetAttr, completion, devices, el, error, whole_or_none,
                              trait)
from virtuned.vocab.guest_os import drives, emulated_nic, os_info


@trait("network model {model:virtio|e1000e|e1000|rtl8139}", version=1, rank=160,
       example="network model virtio")
def network_model(ctx, model):
    """Every network interface gets this NIC model.

    Every network interface gets this NIC model (virtio is paravirtual; e1000e and
    e1000 need no guest drivers on Windows; rtl8139 for very old guests).

    An interface with no model gets it; one whose input states another model is a
    conflict. Interfaces are never added: the management app decides the networks.
    """
    edits = []
    interfaces = ctx.devices_of("interface")
    for interface in interfaces:
        existing = ctx.find_in(interface, "model")
        if existing is None:
            edits.append(Add(interface, el("model", type_=model), ctx.origin,
                             identity=("model",)))
        else:
            edits.append(SetAttr(existing, "type", model, ctx.origin))
    return edits


# The kernel's tap device has at most 256 queues (MAX_TAP_QUEUES): the range of
# 'network queues', and the most 'network queues auto' asks for.
MAX_QUEUES = 256


def _driver_edits(ctx) -> list:
    """The ``<driver>`` of every interface as all driver traits of this compile ask
    for it together (queues, ring sizes), so each of them emits the same edits and
    merge counts them once. Every interface must be virtio."""
    traits = ctx.of(network_queues) + ctx.of(network_queues_auto) + ctx.of(network_ring_size)
    planned = next((t.kwargs["model"] for t in ctx.of(network_model)), None)
    edits = []
    interfaces = ctx.devices_of("interface")
    for index, interface in enumerate(interfaces, start=1):
        model = ctx.find_in(interface, "model")
        kind = model.get("type") if model is not None else planned
        if kind is None:  # no model stated: virtio is what these traits need
            edits.append(Add(interface, VIRTIO, ctx.origin, identity=("model",)))
        elif kind not in VIRTIO_MODELS:
            raise error(ctx.origin.span, f"{ctx.origin.label}: needs virtio NICs, and "
                        f"interface {index} is {kind}", hint="add 'network model virtio'")
        wanted = {}
        for resolved in traits:
            wanted.update(_attributes(ctx, resolved, interface))
        edits += devices.driver_edits(ctx, interface, wanted)
    return edits


VIRTIO = el("model", type_="virtio")
# virtio-net in each of libvirt's flavours: the transitional and modern-only
# (non-transitional) devices take the same driver settings (KubeVirt writes the latter).
VIRTIO_MODELS = ("virtio", "virtio-transitional", "virtio-non-transitional")
# Interfaces whose model is the host device's own, or that a NIC model cannot be
# given to.
_MODELLESS = ("hostdev", "vdpa")


@completion("the network interface models", rank=50)
def interface_models(ctx):
    """An explicit NIC model on every interface that has none, where no 'network
    model' says which: virtio when the guest OS drives it (or no OS is named, as Nova
    and KubeVirt choose), else e1000e on q35 and e1000 on pc, as virt-install
    chooses. Never libvirt's rtl8139 by accident."""
    if ctx.of(network_model):
        return []
    modelless = [interface for interface in ctx.devices_of("interface")
                 if ctx.find_in(interface, "model") is None
                 and interface.get("type") not in _MODELLESS]
    if not modelless:  # the model is chosen only for an interface that lacks one
        return []
    model = VIRTIO if drives(ctx, "virtio-net") else \
        el("model", type_=emulated_nic(os_info(ctx), ctx.platform.has_pcie))
    return [Add(interface, model, ctx.origin, identity=("model",)) for interface in modelless]


def _attributes(ctx, resolved, interface) -> dict:
    """The driver attributes one trait asks for on one interface."""
    if resolved.is_trait(network_ring_size):
        size = resolved.kwargs["size"]
        # QEMU honours a transmit ring above 256 only for vhost-user backends.
        if interface.get("type") == "vhostuser":
            return {"rx_queue_size": str(size), "tx_queue_size": str(size)}
        return {"rx_queue_size": str(size)}
    count = resolved.kwargs["count"]
    if count == "auto":
        vcpu = ctx.find("vcpu")
        text = (vcpu.text or "").strip() if vcpu is not None else ""
        count = min(whole_or_none(text) or 1, MAX_QUEUES)
    return {"queues": str(count)}


@trait("network queues {count:int 1..256}", version=1, rank=170,
       example="network model virtio\nnetwork queues 2",
       key=lambda args: ("network queues",))
def network_queues(ctx, count):
    """virtio-net multiqueue: this many queue pairs on every interface.

    virtio-net multiqueue: this many queue pairs (1 to 256) on every interface,
    so packet processing spreads over vCPUs. Every interface must be virtio.
    """
    return _driver_edits(ctx)


@trait("network queues {count:auto}", version=1, rank=180,
       example="network model virtio\nnetwork queues auto",
       key=lambda args: ("network queues",))
def network_queues_auto(ctx, count):
    """virtio-net multiqueue with one queue pair per vCPU (from ``<vcpu>``)."""
    return _driver_edits(ctx)


@trait("network ring size {size:int 256|512|1024}", version=1, rank=190,
       example="network model virtio\nnetwork ring size 512")
def network_ring_size(ctx, size):
    """The virtio ring size of every interface: 256, 512 or 1024.

    The virtio ring size of every interface: 256, 512 or 1024 descriptors (more
    absorb bursts of packets; QEMU's default is 256). Every interface must be virtio.

    Sets ``rx_queue_size``, and ``tx_queue_size`` too on vhost-user interfaces (QEMU
    honours a larger transmit ring only there). An input stating another size is a
    conflict.
    """
    return _driver_edits(ctx)
