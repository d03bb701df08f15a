"""``usb controller MODEL`` and ``usb tablet``."""

from __future__ import annotations


from virtuned.emit.kit import SetAttr, devices, el, error, trait


DEFAULT_MODEL = "qemu-xhci"


def usb_controller_edits(ctx, model: str, companions: bool = True) -> list:
    """The USB controller, index 0, of ``model``: added (a USB 2 one with its
    companions), or filled in on the input's."""
    existing = devices.controller_indexes(ctx, "usb").get(0)
    if existing is None:
        # Only the XHCI models have a port count; QEMU refuses it on the others.
        ports = {"ports": "15"} if model.endswith("-xhci") else {}
        return [devices.controller("usb", 0, ctx.origin, model=model, **ports),
                *(_companions(ctx, model) if companions else ())]
    return [SetAttr(existing, "model", model, ctx.origin)]


# An EHCI controller serves only high-speed (USB 2) devices: full- and low-speed ones
# (keyboards, mice, tablets, most sticks) need its UHCI companions, on the same bus,
# each taking two of its six ports (libvirt's "usb2" set, as virt-install writes it).
COMPANIONS = {"ich9-ehci1": (("ich9-uhci1", "0"), ("ich9-uhci2", "2"), ("ich9-uhci3", "4"))}


def _companions(ctx, model: str) -> list:
    return [devices.controller("usb", 0, ctx.origin, el("master", startport=port),
                               model=companion)
            for companion, port in COMPANIONS.get(model, ())]


_USB_CONTROLLER = "usb controller {model:qemu-xhci|nec-xhci|ich9-ehci1|piix3-uhci}"


@trait(_USB_CONTROLLER, version=1, rank=110, example="usb controller qemu-xhci")
def usb_controller_v1(ctx, model):
    """The USB controller model (qemu-xhci: USB 3, 15 ports, fine on pc and q35).

    As version 2, but ich9-ehci1 comes alone, without the companions that serve
    USB 1.1 devices.
    """
    return usb_controller_edits(ctx, model, companions=False)


@trait(_USB_CONTROLLER, version=2, rank=110, example="usb controller qemu-xhci")
def usb_controller(ctx, model):
    """The USB controller model (qemu-xhci: USB 3, 15 ports, fine on pc and q35).

    An input USB controller with no model gets this one; one of another model is a
    conflict. ich9-ehci1 (USB 2, for guests without an XHCI driver) comes with its
    three ich9-uhci companions, which serve USB 1.1 devices.
    """
    return usb_controller_edits(ctx, model)


@trait("usb tablet", version=1, rank=120, example="usb tablet")
def usb_tablet(ctx):
    """A USB tablet, so the pointer follows the host's cursor in a graphical console.

    Adds ``<input type='tablet' bus='usb'/>`` and, when the domain has no USB
    controller, a qemu-xhci one (the same one 'usb controller qemu-xhci' adds).
    """
    edits = controller_for_usb_device(ctx)
    if not devices.find(ctx, "input", type="tablet", bus="usb"):
        edits.append(devices.add_device(el("input", type_="tablet", bus="usb"), ctx.origin))
    return edits


def controller_for_usb_device(ctx) -> list:
    """What a trait that adds a USB device needs: the qemu-xhci controller when the
    domain has none and no 'usb controller' trait chooses one; an input that turns
    USB off is an error."""
    if usb_off(ctx):
        raise error(ctx.origin.span, f"{ctx.origin.label}: the input has USB turned off "
                    "(<controller type='usb' model='none'/>)")
    if devices.controller_indexes(ctx, "usb") or ctx.of(usb_controller):
        return []
    return usb_controller_edits(ctx, DEFAULT_MODEL)


def usb_off(ctx) -> bool:
    """Whether the input turns USB off (``<controller type='usb' model='none'/>``)."""
    controllers = devices.controller_indexes(ctx, "usb")
    return any(c.get("model") == "none" for c in controllers.values())
