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
