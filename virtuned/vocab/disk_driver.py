"""``disk cache MODE`` and ``disk io MODE``: how QEMU does I/O for every disk.

Both land on the same ``<driver>`` element, so they decide it together: each emits
the driver every disk needs for all of them, and merge counts it once.
"""

from __future__ import annotations


from virtuned.emit.kit import ExitCode, Related, devices, error, trait


# QEMU's native AIO needs O_DIRECT, which only these cache modes use.
DIRECT_CACHES = ("none", "directsync")


@trait("disk cache {mode:none|writeback|writethrough|directsync|unsafe}", version=1,
       rank=260, example="disk cache none")
def disk_cache(ctx, mode):
    """The host page cache mode of every disk.

    The host page cache mode of every disk (not cdroms): none (O_DIRECT, the usual
    choice for shared storage and migration), writeback, writethrough, directsync or
    unsafe. A disk whose input states another mode is a conflict.
    """
    return _driver_edits(ctx)


@trait("disk discard {mode:unmap|ignore}", version=1, rank=275,
       example="disk discard unmap")
def disk_discard(ctx, mode):
    """Whether a guest's discards (TRIM) reach every disk's image: unmap or ignore.

    unmap frees the blocks in the image, so thin provisioning stays thin (what Nova's
    hw_disk_discard=unmap asks for); ignore keeps them allocated. Every disk
    (not cdroms) gets ``<driver discard=...>``; an input stating another is a
    conflict.
    """
    return _driver_edits(ctx)


@trait("disk io {mode:native|threads|io_uring}", version=1, rank=270,
       example="disk io native")
def disk_io(ctx, mode):
    """The I/O backend of every disk: native, threads or io_uring.

    The I/O backend of every disk (not cdroms): native (Linux AIO), threads or
    io_uring. native needs O_DIRECT: with no 'disk cache' trait, disks get
    cache='none' as well; with another cache mode it is a conflict.
    """
    return _driver_edits(ctx)


def _wanted(ctx) -> dict:
    cache = next(iter(ctx.of(disk_cache)), None)
    io = next(iter(ctx.of(disk_io)), None)
    wanted = {}
    if cache is not None:
        wanted["cache"] = cache.kwargs["mode"]
    if io is not None:
        wanted["io"] = io.kwargs["mode"]
        if io.kwargs["mode"] == "native":
            if cache is None:
                wanted["cache"] = "none"
            elif wanted["cache"] not in DIRECT_CACHES:
                raise error(io.origin.span, f"disk io native needs cache none or "
                            f"directsync, but '{cache.origin.label}' asks for "
                            f"{wanted['cache']}", exit_code=ExitCode.CONFLICT,
                            related=(Related(cache.origin.span, "the cache mode"),))
    discard = next(iter(ctx.of(disk_discard)), None)
    if discard is not None:
        wanted["discard"] = discard.kwargs["mode"]
    return wanted


def _driver_edits(ctx) -> list:
    wanted = _wanted(ctx)
    edits = []
    disks = ctx.devices_of("disk")
    for disk in disks:
        if disk.get("device", "disk") != "disk":
            continue
        edits += devices.driver_edits(ctx, disk, wanted, name="qemu")
    return edits
