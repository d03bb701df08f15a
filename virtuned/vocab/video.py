"""``video MODEL``: the upstream rule every implementation must honour."""

from __future__ import annotations

from virtuned import devices
from virtuned.merge import Add, SetAttr, el
from virtuned.registry import trait

# The video models of libvirt's schema that QEMU on x86 can have.
MODELS = ("vga", "cirrus", "vmvga", "qxl", "virtio", "bochs", "ramfb", "none")


@trait("video {model:" + "|".join(MODELS) + "}", version=1,
       key=lambda args: ("video", args["model"]))
def video(ctx, model):
    """A video device of this model.

    No video device → add one. A video device with no model → set the model on it.
    A video device of another model → add a second one. Already there → no change.
    """
    videos = ctx.devices.findall("video") if ctx.devices is not None else []
    if not videos:
        return [devices.add_device(el("video", el("model", type_=model)), ctx.origin)]
    if devices.find(ctx.devices, "video", type=model):
        return []
    for index, existing in enumerate(videos, start=1):
        model_element = existing.find("model")
        path = f"/domain/devices/video[{index}]"
        if model_element is None:
            return [Add(existing, el("model", type_=model), ctx.origin)]
        if model_element.get("type") is None:
            return [SetAttr(model_element, path + "/model", "type", model, ctx.origin)]
    return [devices.add_device(el("video", el("model", type_=model)), ctx.origin)]
