"""``video MODEL``: the upstream rule every implementation must honour; and the video
model a display gets where no trait names one."""

from __future__ import annotations


from virtuned.emit.kit import (Add, ExitCode, SetAttr, completion, devices, el, error,
                              hypervisor, trait)
from virtuned.vocab.display import displays, graphics
from virtuned.vocab.guest_os import drives


# The video models of libvirt's schema that QEMU on x86 can have.
MODELS = ("vga", "cirrus", "vmvga", "qxl", "virtio", "bochs", "ramfb", "none")
# libvirt accepts only qxl and virtio as a second video device; the others can
# only be the primary (first) one, so two of them can never go together.
SECONDARY_OK = ("qxl", "virtio")


def _key(args):
    model = args["model"]
    return ("video", model) if model in SECONDARY_OK else ("video", "primary")


_PHRASE = "video {model:" + "|".join(MODELS) + "}"
_DECLARED = {"rank": 20, "example": "video qxl", "key": _key,
             "order": lambda args: (args["model"] in SECONDARY_OK,)}


@trait(_PHRASE, version=1, **_DECLARED)
def video_v1(ctx, model):
    """A video device of this model, by libvirt's upstream rule (add, fill or add a second).

    As version 2, but a preferred video model too adds a second video device beside
    the input's.
    """
    return _video(ctx, model, preference_fills=False, headless_empty=False)


@trait(_PHRASE, version=2, **_DECLARED)
def video_v2(ctx, model):
    """A video device of this model, by libvirt's upstream rule (add, fill or add a second).

    As version 3, but a preferred video model adds a video device to a guest with
    'graphics none' too.
    """
    return _video(ctx, model, preference_fills=True, headless_empty=False)


@trait(_PHRASE, version=3, **_DECLARED)
def video(ctx, model):
    """A video device of this model, by libvirt's upstream rule (add, fill or add a second).

    No video device → add one. A video device with no model → set the model on it.
    A video device of another model → add a second one. Already there → no change.
    With several video traits, the first in canonical order fills a model-less
    video and the others are added; models other than qxl and virtio can only be
    the primary video, so at most one of them is asked for and it comes first.
    'video none' means no display adapter at all and goes with no other video. A
    preferred video only fills: beside an input video of another model it gives way
    rather than add a second device no one asked for, and with 'graphics none' it
    adds no video device at all.
    """
    return _video(ctx, model, preference_fills=True, headless_empty=True)


def _video(ctx, model, preference_fills: bool, headless_empty: bool) -> list:
    videos = ctx.devices_of("video")
    if headless_empty and ctx.origin.soft and not videos and _headless(ctx):
        return []  # a preferred model (recommended's) adds no card to a headless guest
    hypervisor.offer(ctx, "devices/video", "modelType", model, "video model")
    wanted = [t.kwargs["model"] for t in ctx.of(video)]
    present = [kind for v in videos if (kind := _model_type(ctx, v))]
    if model in present:
        return []
    _check_combination(ctx, model, wanted, present)
    fillable = [v for v in videos if not _model_type(ctx, v)]
    missing = [m for m in wanted if m not in present]
    if fillable and missing.index(model) < len(fillable):
        target = fillable[missing.index(model)]
        model_element = ctx.find_in(target, "model")
        if model_element is None:
            return [Add(target, el("model", type_=model), ctx.origin)]
        return [SetAttr(model_element, "type", model, ctx.origin)]
    if preference_fills and ctx.origin.soft and present:
        raise error(ctx.origin.span, f"video {model}: the input's video is "
                    f"{', '.join(present)}, and a preference adds no second one",
                    exit_code=ExitCode.CONFLICT)
    return [devices.add_device(_DEVICES[model], ctx.origin)]


# The video device of each model, as a trait adds it (made once, not per compile).
_DEVICES = {model: el("video", el("model", type_=model)) for model in MODELS}


def _model_type(ctx, video) -> str | None:
    """The model type a video device of the input states, or None."""
    model = ctx.find_in(video, "model")
    return model.get("type") if model is not None else None


def _headless(ctx) -> bool:
    return any(t.kwargs["type"] == "none" and not t.soft for t in ctx.of(graphics))


# With a display and no 'video' trait: the model a careful administrator names.
@completion("the video model", rank=60)
def video_model(ctx):
    """An explicit video model wherever the guest has a display and no 'video' trait
    says which: virtio when the guest OS drives virtio-gpu (or no OS is named), else
    qxl for a SPICE display and vga for another, as virt-install chooses. A video
    device of the input without a model gets it too. Never libvirt's default by
    accident; with no display (or 'graphics none') no video device is added."""
    if ctx.of(video):
        return []
    videos = ctx.devices_of("video")
    kinds = displays(ctx)
    if not videos and not kinds:
        return []
    chosen = el("model", type_="virtio" if drives(ctx, "virtio-gpu") else
                "qxl" if "spice" in kinds else "vga")
    edits = []
    for device in videos:
        stated = ctx.find_in(device, "model")
        if stated is None:
            edits.append(Add(device, chosen, ctx.origin, identity=("model",)))
        elif not stated.get("type"):
            edits.append(SetAttr(stated, "type", chosen.get("type"), ctx.origin))
    if not videos:
        edits.append(devices.add_device(el("video", chosen), ctx.origin))
    return edits


def _check_combination(ctx, model, wanted, present):
    """Refuse what libvirt would: a primary-only model behind another video, or
    'none' beside anything else."""
    others = sorted(set(wanted + present) - {model})
    if model == "none" and others:
        raise error(ctx.origin.span, f"video none: the domain would still have video "
                    f"{', '.join(others)}", exit_code=ExitCode.CONFLICT,
                    hint="'video none' means no video device; drop the other video")
    if "none" in present and model != "none":
        raise error(ctx.origin.span, f"video {model}: the input has a video of model "
                    "'none', which must be the only one", exit_code=ExitCode.CONFLICT)
    if model not in SECONDARY_OK and present:
        raise error(ctx.origin.span, f"video {model}: libvirt allows {model} only as the "
                    f"primary video, and the input's primary video is {present[0]}",
                    exit_code=ExitCode.CONFLICT,
                    hint="use qxl or virtio as a second video, or change the input's")

