"""Guest memory: its size, hugepages, and keeping it in RAM; and memory shared with
the host's vhost-user and virtiofs back ends, which need it."""

from __future__ import annotations

from virtuned.emit.kit import (Add, Hugepages, MemorySize, completion, conflict, el,
                              element_span, format_kib, pinning, trait)


@trait("hugepages {size:size}", version=1, rank=410, example="hugepages 2MiB",
       needs=lambda args: Hugepages(args["size"].kib))
def hugepages(ctx, size):
    """Back the guest's memory with hugepages of one size (2MiB, 1GiB, ...).

    A page size the architecture has: 4KiB, 2MiB or 1GiB on x86_64.

    <memoryBacking><hugepages><page size>. The memory must be a whole number of
    pages; with --host the pages must be free in the pools of the host nodes the
    guest is placed on (those of the whole host when it is not placed), else the
    placement is infeasible (exit 3).
    """
    # The planner has checked the size (a power of two) and the memory's multiple.
    return pinning.placed(ctx, "memoryBacking", el(
        "hugepages", el("page", size=str(size.kib), unit="KiB"))) + pinning.edits(ctx)


@trait("locked memory", version=1, rank=420, example="locked memory")
def locked_memory(ctx):
    """The guest's memory stays in host RAM, never swapped (<memoryBacking><locked>).

    For real-time and packet-processing guests. (libvirt then needs a hard memory
    limit or lets QEMU lock everything: size the host accordingly.)
    """
    return pinning.placed(ctx, "memoryBacking", el("locked"))


@trait("memory allocation {mode:immediate|ondemand}", version=1, rank=425,
       example="memory allocation immediate")
def memory_allocation(ctx, mode):
    """When the host backs the guest's memory: all of it at start, or as it is used.

    immediate: QEMU allocates (and so faults in) all of the guest's memory when it
    starts, so a latency-sensitive guest never waits for the host or finds it out of
    memory later; ondemand: as the guest touches it. Writes ``<memoryBacking><allocation mode=...>``; an input
    stating another is a conflict.
    """
    return pinning.placed(ctx, "memoryBacking", el("allocation", mode=mode))


@trait("memory {size:size}", version=1, rank=430, example="memory 2GiB",
       needs=lambda args: MemorySize(args["size"].kib))
def memory(ctx, size):
    """The guest's memory (<memory>); an input that states another is a conflict.

    Whole KiB, at least 1MiB and less than 8EiB (libvirt's limit: LLONG_MAX bytes).
    With --override it replaces the input's <memory>, and its <currentMemory> where
    that was all of the memory or would be more than the new size; guest NUMA cells
    the input states keep their sizes ('guest numa nodes N' splits it anew), and
    more than the input's <maxMemory> is a conflict.
    """
    wanted = ctx.plan.requirements
    if size.kib != wanted.memory_kib or size.bytes % 1024:
        raise _refused(ctx, size, "memory", f"the guest has {format_kib(wanted.memory_kib)}")
    cells = sum(cell.memory_kib for cell in wanted.cells)
    if cells != size.kib:  # libvirt would make <memory> their sum
        raise _refused(ctx, size, "cpu/numa",
                       f"the input's guest NUMA cells hold {format_kib(cells)}")
    ceiling = ctx.find("maxMemory")
    most = pinning.size_of(ceiling) if ceiling is not None else None
    if most is not None and most < size.kib:  # libvirt refuses more than it
        raise _refused(ctx, size, "maxMemory",
                       f"the input's <maxMemory> (memory hotplug) is {format_kib(most)}")
    memory = ctx.find("memory")
    stated = pinning.size_of(memory) if memory is not None else None
    return pinning.resized(ctx, "memory", size.kib) + pinning.resized(
        ctx, "currentMemory", size.kib, keep=lambda now: stated != now < size.kib)


def _refused(ctx, size, tag: str, other: str):
    element = ctx.find(tag)
    return conflict(ctx.origin, f"{size} of memory",
                    element_span(element, ctx.filename) if element is not None else None,
                    other, hint="a trait never overrides what the input states: change "
                                "the input, or drop the trait")


@completion("memory shared with vhost-user back ends", rank=110)
def shared_memory(ctx):
    """A guest with a vhost-user NIC or disk, or a virtiofs file system, shares its
    memory with the back end that serves it (``<memoryBacking><access
    mode='shared'/>``), and memory that is not hugepages comes from a memfd, which
    can be shared; without them QEMU refuses to start the device. What the input
    states of either stays."""
    if not _shares_memory(ctx):
        return []
    edits = []
    backing = ctx.find("memoryBacking")
    if ctx.find("memoryBacking/access") is None:
        edits.append(Add("memoryBacking", el("access", mode="shared"), ctx.origin,
                         identity=("access",)))
    own_pages = backing is not None and backing.find("hugepages") is not None
    stated_source = backing is not None and backing.find("source") is not None
    if not own_pages and not stated_source and not ctx.of(hugepages):
        edits.append(Add("memoryBacking", el("source", type_="memfd"), ctx.origin,
                         identity=("source",)))
    return edits


def _shares_memory(ctx) -> bool:
    """Whether a device shares the guest's memory: a vhost-user NIC or disk, or a
    virtiofs file system (each kind asked apart: other emitters asked for them)."""
    for kind in ("interface", "disk"):  # loops: no generator made for a kind
        for device in ctx.devices_of(kind):
            if device.get("type") == "vhostuser":
                return True
    for fs in ctx.devices_of("filesystem"):
        driver = ctx.find_in(fs, "driver")
        if driver is not None and driver.get("type") == "virtiofs":
            return True
    return False
