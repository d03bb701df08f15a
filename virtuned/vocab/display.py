"""``graphics spice|vnc|none`` and ``sound MODEL``."""

from __future__ import annotations

from virtuned.emit.kit import (Add, Remove, completion, conflict, devices, el, element_span,
                              hypervisor, trait)
from virtuned.vocab.usb import controller_for_usb_device, usb_off, usb_tablet

SPICE_CHANNEL = "com.redhat.spice.0"


@trait("graphics {type:spice|vnc|none}", version=1, rank=140, example="graphics spice")
def graphics(ctx, type):
    """The graphical console: spice, vnc, or none (headless).

    spice also gets the spicevmc channel (clipboard, resolution follow-up) and its
    virtio-serial controller. A display of this kind already in the input is kept as
    it is; one of another kind stays, and this one is added beside it (as 'video'
    does). With 'none', any display in the input is a conflict; with --override it
    is removed, with the SPICE channels, USB redirection and audio it served.
    """
    present = ctx.devices_of("graphics")
    if type == "none":
        if present and ctx.override and not ctx.origin.soft:
            return [Remove(element, ctx.origin) for element in _display_devices(ctx)]
        if present:
            raise conflict(ctx.origin, "no display",
                           element_span(present[0], ctx.filename),
                           f"the input has a <graphics type='{present[0].get('type')}'> "
                           "display", hint="remove it from the input, drop 'graphics "
                           "none', or let it win with --override")
        return []
    hypervisor.offer(ctx, "devices/graphics", "type", type, "graphics type")
    edits = []
    if not devices.find(ctx, "graphics", type=type):
        edits.append(devices.add_device(el("graphics", type_=type, autoport="yes"),
                                        ctx.origin))
    if type == "spice" and not devices.find(ctx, "channel", name=SPICE_CHANNEL):
        edits.append(devices.add_device(
            el("channel", el("target", type_="virtio", name=SPICE_CHANNEL), type_="spicevmc"),
            ctx.origin))
        if not devices.controller_indexes(ctx, "virtio-serial"):
            edits.append(devices.controller("virtio-serial", 0, ctx.origin))
    return edits


def _display_devices(ctx) -> list:
    """The input's displays and what only a SPICE display serves: its channels,
    USB redirection and audio (libvirt refuses them without one)."""
    return [device for device in ctx.devices_of(
                "graphics", "channel", "redirdev", "audio")
            if device.tag == "graphics" or device.get("type") in ("spicevmc", "spice")]


# Not ich7: libvirt 9.0 cannot place QEMU's ich7 sound device on pc or q35 ("Cannot
# automatically add a new PCI bus for a device with connect flags 00").
@trait("sound {model:ich9|ich6|ac97|es1370|sb16|usb}", version=1, rank=150,
       example="sound ich9")
def sound(ctx, model):
    """A sound card of this model.

    A sound card of this model (ich9 for q35 guests, ich6 or ac97 for older ones;
    usb is a USB audio device, which brings a USB controller as 'usb tablet' does).

    Added unless the input has a sound card of this model.
    """
    edits = controller_for_usb_device(ctx) if model == "usb" else []
    if devices.find(ctx, "sound", model=model):
        return edits
    return edits + [devices.add_device(el("sound", model=model), ctx.origin)]


def displays(ctx) -> list[str]:
    """The kinds of graphical display the guest will have: the input's and the
    'graphics' traits' (not 'none')."""
    kinds = [g.get("type") for g in ctx.devices_of("graphics")]
    return kinds + [t.kwargs["type"] for t in ctx.of(graphics) if t.kwargs["type"] != "none"]


@completion("a pointer for the display", rank=120, since=2)
def display_pointer(ctx):
    """With a graphical display on x86, as virt-install writes it: a USB tablet where
    the domain has none, so the guest's pointer follows the client's cursor; and with
    SPICE, ``<vmport state='off'/>`` where the input does not say (VMware's backdoor
    port is attack surface, and a second absolute pointer that fights SPICE's agent).
    A domain with USB turned off gets no tablet."""
    kinds = displays(ctx)
    if not ctx.platform.x86 or not kinds:
        return []
    edits = []
    if _lacks_tablet(ctx):
        edits += controller_for_usb_device(ctx)
        edits.append(devices.add_device(el("input", type_="tablet", bus="usb"), ctx.origin))
    if "spice" in kinds:
        features = ctx.find("features")
        if features is None or ctx.find_in(features, "vmport") is None:
            edits.append(Add("features", el("vmport", state="off"), ctx.origin,
                             identity=("vmport",)))
    return edits


def _lacks_tablet(ctx) -> bool:
    """No tablet in the domain or the traits, and USB not turned off by the input."""
    return not (devices.find(ctx, "input", type="tablet") or ctx.of(usb_tablet)
                or usb_off(ctx))
