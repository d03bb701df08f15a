"""``network model MODEL``: the NIC model of every interface."""

from __future__ import annotations

from virtuned.merge import Add, SetAttr, el
from virtuned.registry import trait


@trait("network model {model:virtio|e1000e|e1000|rtl8139}", version=1)
def network_model(ctx, model):
    """Every network interface gets this NIC model (virtio is paravirtual; e1000e and
    e1000 need no guest drivers on Windows; rtl8139 for very old guests).

    An interface with no model gets it; one whose input states another model is a
    conflict. Interfaces are never added: the management app decides the networks.
    """
    edits = []
    interfaces = ctx.devices.findall("interface") if ctx.devices is not None else []
    for index, interface in enumerate(interfaces, start=1):
        existing = interface.find("model")
        path = f"/domain/devices/interface[{index}]/model"
        if existing is None:
            edits.append(Add(interface, el("model", type_=model), ctx.origin))
        else:
            edits.append(SetAttr(existing, path, "type", model, ctx.origin))
    return edits


def _queues(ctx, count) -> list:
    """``<driver queues=N>`` on every interface, which must be virtio."""
    from virtuned.diagnostics import error
    from virtuned.domain import int_attr

    if count == "auto":
        vcpu = ctx.root.find("vcpu")
        count = int((vcpu.text or "1").strip()) if vcpu is not None and \
            (vcpu.text or "").strip().isdigit() else 1
    planned = next((t.kwargs["model"] for t in ctx.plan.traits.traits
                    if t.phrase == network_model_phrase), None)
    edits = []
    interfaces = ctx.devices.findall("interface") if ctx.devices is not None else []
    for index, interface in enumerate(interfaces, start=1):
        model = interface.find("model")
        kind = model.get("type") if model is not None else planned
        if kind != "virtio":
            raise error(ctx.origin.span, f"{ctx.origin.label}: multiqueue needs virtio "
                        f"NICs, and interface {index} is {kind or 'of no stated model'}",
                        hint="add 'network model virtio'")
        driver = interface.find("driver")
        if driver is None:
            edits.append(Add(interface, el("driver", queues=str(count)), ctx.origin,
                             identity=("driver",)))
        else:
            int_attr(driver, "queues", 0, ctx.filename)
            edits.append(SetAttr(driver, f"/domain/devices/interface[{index}]/driver",
                                 "queues", str(count), ctx.origin))
    return edits


network_model_phrase = "network model {model:virtio|e1000e|e1000|rtl8139}"


@trait("network queues {count:int}", version=1, key=lambda args: ("network queues",))
def network_queues(ctx, count):
    """virtio-net multiqueue: this many queue pairs on every interface, so packet
    processing spreads over vCPUs. Every interface must be virtio.
    """
    return _queues(ctx, count)


@trait("network queues {count:auto}", version=1, key=lambda args: ("network queues",))
def network_queues_auto(ctx, count):
    """virtio-net multiqueue with one queue pair per vCPU (from ``<vcpu>``)."""
    return _queues(ctx, count)
