"""``watchdog MODEL action ACTION``: a hardware watchdog the guest must keep feeding."""

from __future__ import annotations

from virtuned import devices
from virtuned.merge import SetAttr, el
from virtuned.registry import trait


@trait("watchdog {model:i6300esb|ib700} action {action:reset|shutdown|poweroff|pause|"
       "none|dump|inject-nmi}", version=1, key=lambda args: ("watchdog", args["model"]))
def watchdog(ctx, model, action):
    """A watchdog device (i6300esb: PCI; ib700: ISA) and what the host does when the
    guest stops feeding it (reset, poweroff, pause, dump, inject-nmi...).

    An input watchdog of this model gets this action; one stating another action is
    a conflict.
    """
    existing = devices.find(ctx.devices, "watchdog", model=model)
    if existing:
        return [SetAttr(existing[0], f"/domain/devices/watchdog[@model='{model}']",
                        "action", action, ctx.origin)]
    return [devices.add_device(el("watchdog", model=model, action=action), ctx.origin)]
