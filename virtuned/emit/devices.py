"""What counts as "the same device", and the controllers devices need.

``IDENTITY`` is the one table every device trait uses to decide whether a device it
wants is already there (refine it, or leave it) or must be added. It follows
virtinst's ``compare_device`` and strategic-merge's ``patchMergeKey``: devices merge
by these keys, never by their position in ``<devices>``.
"""

from __future__ import annotations

import functools

from virtuned.domain import int_attr
from virtuned.emit.edits import Add, E, SetAttr, el
from virtuned.facts.devices import hostdev_address
from virtuned.resolve.model import Origin

__all__ = ["IDENTITY", "identity", "spec_identity", "find", "add_device", "controller",
           "free_pci_indexes", "hostdev_address", "driver_edits", "controller_indexes",
           "disk_name", "disk_index"]

# device tag → the XPaths (relative to the device) whose values identify it.
IDENTITY: dict[str, tuple[str, ...]] = {
    "disk": ("target/@dev",),
    # A USB companion shares its master's index; its start port tells it apart.
    "controller": ("@type", "@index", "master/@startport"),
    "video": ("model/@type",),
    "channel": ("target/@name",),
    "interface": ("mac/@address",),
    "hostdev": ("source/address/@domain", "source/address/@bus", "source/address/@slot",
                "source/address/@function"),
    "input": ("@type", "@bus"),
    "graphics": ("@type",),
    "sound": ("@model",),
    "rng": ("@model", "backend/@model"),
    "tpm": ("@model",),
    "watchdog": ("@model",),
    "memballoon": (),  # at most one
    "panic": ("@model",),
    "console": ("target/@type", "target/@port"),
    "serial": ("target/@port",),
    "filesystem": ("target/@dir",),
}


def _split(path: str) -> tuple[str, str]:
    """``"target/@dev"`` → ``("target", "dev")``; ``"@type"`` → ``("", "type")``."""
    element_path, _, attr = path.rpartition("@")
    return element_path.rstrip("/"), attr


def _lookups(paths: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Key name → (element path, attribute). A key is the attribute's name; when two
    paths end in the same name (rng: ``@model``, ``backend/@model``), the nested one
    is named by its path too (``backend_model``), so neither hides the other."""
    lookups: dict[str, tuple[str, str]] = {}
    for path in paths:
        element, attr = _split(path)
        key = attr if attr not in lookups else f"{element.replace('/', '_')}_{attr}"
        lookups[key] = (element, attr)
    return lookups


# The table, split once: tag → {key name: (element path, attribute)}.
_LOOKUPS = {tag: _lookups(paths) for tag, paths in IDENTITY.items()}


def identity(device) -> tuple:
    """The identity of an input device element (or an ``E`` spec), per ``IDENTITY``."""
    lookups = _LOOKUPS.get(device.tag)
    if lookups is None:
        raise KeyError(f"no identity rule for <{device.tag}>")
    return (device.tag,) + tuple(_value(device, *lookup) for lookup in lookups.values())


@functools.lru_cache(maxsize=1024)
def spec_identity(spec: E) -> tuple:
    """The identity of a device about to be added (an ``E`` answers the same lookups)."""
    return identity(spec)


def find(ctx, tag: str, **wanted: str | None) -> list:
    """The input's devices of one kind whose identity fields equal ``wanted`` (by key
    name). Keys name the last step of the identity path:
    ``find(ctx, "video", type="qxl")``."""
    found = ctx.devices_of(tag)
    if not found:  # often: a kind a trait adds (a channel) is rarely in the input
        return []
    lookups = _LOOKUPS[tag]
    matches = []
    for device in found:  # loops, not a generator for each device: called often
        for key, value in wanted.items():
            path, attr = lookups[key]
            element = ctx.find_in(device, path) if path else device
            if (element.get(attr) if element is not None else None) != value:
                break
        else:
            matches.append(device)
    return matches


def _value(device, path: str, attr: str) -> str | None:
    element = device.find(path) if path else device
    return element.get(attr) if element is not None else None


# ---------------------------------------------------------------- controllers

def add_device(spec: E, origin: Origin) -> Add:
    """Add a device under <devices>; equal additions from several traits become one."""
    return Add("devices", spec, origin, spec_identity(spec))


def controller(type_: str, index: int, origin: Origin, *children: E, **attrib: str) -> Add:
    return add_device(_controller_spec(type_, index, children, tuple(attrib.items())),
                      origin)


@functools.lru_cache(maxsize=256)
def _controller_spec(type_: str, index: int, children: tuple, attrib: tuple) -> E:
    """A controller's spec, made once for each (the same few recur in every compile)."""
    return el("controller", *children, type_=type_, index=str(index), **dict(attrib))


def free_pci_indexes(ctx):
    """PCI controller indexes the input leaves free, lowest first (0 is the root
    bus). Traits that add PCI controllers take them in canonical order (see
    vocab/pcie.py), so two traits never pick the same index."""
    used = {int_attr(ctl, "index", -1, ctx.filename)
            for ctl in ctx.once(_controllers).get("pci", ())}
    index = 1
    while True:
        if index not in used:
            yield index
        index += 1


def driver_edits(ctx, device, wanted: dict, **when_added: str) -> list:
    """A device's ``<driver>`` with the ``wanted`` attributes: added (with the
    ``when_added`` ones first) when the input has none, else each set on the input's
    (where a different value is a conflict)."""
    driver = ctx.find_in(device, "driver")
    if driver is None:
        return [Add(device, el("driver", **when_added, **wanted), ctx.origin,
                    identity=("driver",))]
    return [SetAttr(driver, name, value, ctx.origin)
            for name, value in wanted.items()]


def controller_indexes(ctx, type_: str) -> dict[int, object]:
    """Existing controllers of one type by index (a USB companion, which shares its
    master's index, is not one of them)."""
    return {int_attr(ctl, "index", 0, ctx.filename): ctl
            for ctl in ctx.once(_controllers).get(type_, ())
            if ctx.find_in(ctl, "master") is None}


def _controllers(ctx) -> dict:
    """The input's controllers by type: type → those controllers in document order,
    each type read once per compile (several traits look for controllers of their
    type, and most find none: then nothing is walked)."""
    by_type: dict = {}
    for ctl in ctx.devices_of("controller"):
        type_ = ctl.get("type")
        if type_ in by_type:
            by_type[type_].append(ctl)
        else:  # setdefault would make a list for every controller
            by_type[type_] = [ctl]
    return by_type


# ---------------------------------------------------------------- disk names

def disk_name(prefix: str, index: int) -> str:
    """libvirt's virIndexToDiskName: 0 → a, 25 → z, 26 → aa."""
    if index < 26:  # one letter: nearly every disk
        return prefix + _LETTERS[index]
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return prefix + letters


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def disk_index(name: str) -> int | None:
    """libvirt's virDiskNameToIndex: the letters after the prefix, as a number."""
    letters = name.lstrip(_LETTERS)
    if letters:
        return None  # digits or partitions: libvirt would refuse this name anyway
    for prefix in ("fd", "hd", "vd", "sd", "xvd", "ubd"):
        if name.startswith(prefix) and len(name) > len(prefix):
            index = 0
            for ch in name[len(prefix):]:
                index = index * 26 + (ord(ch) - ord("a") + 1)
            return index - 1
    return None
