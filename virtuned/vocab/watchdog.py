"""``watchdog MODEL action ACTION``: a hardware watchdog the guest must keep feeding."""

from __future__ import annotations


from virtuned.emit.kit import (ExitCode, Related, SetAttr, devices, el, element_span,
                              error, trait)


# libvirt (9.0) allows one watchdog per domain: two watchdog traits are a conflict,
# whatever their models.
@trait("watchdog {model:i6300esb|ib700} action {action:reset|shutdown|poweroff|pause|"
       "none|dump|inject-nmi}", version=1, rank=230,
       example="watchdog i6300esb action reset", key=lambda args: ("watchdog",))
def watchdog(ctx, model, action):
    """A watchdog, and what the host does when the guest stops feeding it.

    A watchdog device (i6300esb: PCI; ib700: ISA) and what the host does when the
    guest stops feeding it (reset, poweroff, pause, dump, inject-nmi...).

    An input watchdog of this model gets this action; one stating another action is
    a conflict, and so is an input watchdog of another model (a domain has one).
    """
    other = next((w for w in ctx.devices_of("watchdog")
                  if w.get("model") != model), None)
    if other is not None:
        raise error(ctx.origin.span, f"{ctx.origin.label}: the input has a watchdog of "
                    f"model '{other.get('model')}', and a domain has only one",
                    exit_code=ExitCode.CONFLICT,
                    related=(Related(element_span(other, ctx.filename),
                                     "the input's watchdog"),),
                    hint="drop the trait, or the input's watchdog")
    existing = devices.find(ctx, "watchdog", model=model)
    if existing:
        return [SetAttr(existing[0], "action", action, ctx.origin)]
    return [devices.add_device(el("watchdog", model=model, action=action), ctx.origin)]
