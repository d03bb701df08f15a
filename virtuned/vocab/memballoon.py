"""``memory balloon on|off`` and ``free page reporting``: the one memballoon device."""

from __future__ import annotations


from virtuned.emit.kit import ExitCode, Related, SetAttr, devices, el, error, trait


def _wanted(ctx) -> tuple:
    """What all balloon traits of this compile ask for together: the on/off trait
    and the free page reporting trait (each None when absent)."""
    return (next(iter(ctx.of(memory_balloon)), None),
            next(iter(ctx.of(free_page_reporting)), None))


def _balloon(ctx) -> list:
    """The edits that give the domain the balloon every balloon trait asks for, so
    both traits emit the same thing and merge counts it once."""
    switch, reporting = _wanted(ctx)
    off = switch is not None and switch.kwargs["state"] == "off"
    if off and reporting is not None and reporting.soft and ctx.origin is not reporting.origin:
        reporting = None  # a preference 'off' overrides; its own emitter says it is dropped
    if off and reporting is not None:
        raise error(reporting.origin.span, "free page reporting needs the memory balloon, "
                    "but 'memory balloon off' turns it off", exit_code=ExitCode.CONFLICT,
                    related=(Related(switch.origin.span, "turned off here"),))
    model = "none" if off else "virtio"
    existing = next(iter(ctx.devices_of("memballoon")), None)
    if existing is None:
        attributes = {"model": model}
        if reporting:
            attributes["freePageReporting"] = "on"
        return [devices.add_device(el("memballoon", **attributes), ctx.origin)]
    edits = [SetAttr(existing, "model", model, ctx.origin)]
    if reporting:
        edits.append(SetAttr(existing, "freePageReporting", "on", ctx.origin))
    return edits


@trait("memory balloon {state:on|off}", version=1, rank=80, example="memory balloon on")
def memory_balloon(ctx, state):
    """The virtio memory balloon (on), or none at all (off: libvirt would add one).

    An input balloon of the other kind is a conflict.
    """
    return _balloon(ctx)



@trait("free page reporting", version=1, rank=90, example="free page reporting")
def free_page_reporting(ctx):
    """The guest returns freed memory to the host (virtio balloon, freePageReporting).

    Needs the balloon: with 'memory balloon off' it is a conflict.
    """
    return _balloon(ctx)
