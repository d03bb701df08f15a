"""Guest memory: its size, hugepages, and keeping it in RAM."""

from __future__ import annotations

from virtuned.emit.kit import (Hugepages, MemorySize, conflict, el, element_span,
                              format_kib, pinning, trait)


@trait("hugepages {size:size}", version=1, rank=410, example="hugepages 2MiB",
       needs=lambda args: Hugepages(args["size"].kib))
def hugepages(ctx, size):
    """Back the guest's memory with hugepages of one size (2MiB, 1GiB, ...).

    <memoryBacking><hugepages><page size>. The memory must be a whole number of
    pages; with --host the pages must be free in the pools of the host nodes the
    guest is placed on (those of the whole host when it is not placed), else the
    placement is infeasible (exit 3).
    """
    # The planner has checked the size (a power of two) and the memory's multiple.
    edit = pinning.child(ctx, "memoryBacking", el(
        "hugepages", el("page", size=str(size.kib), unit="KiB")))
    return ([edit] if edit else []) + pinning.edits(ctx)


@trait("locked memory", version=1, rank=420, example="locked memory")
def locked_memory(ctx):
    """The guest's memory stays in host RAM, never swapped (<memoryBacking><locked>).

    For real-time and packet-processing guests. (libvirt then needs a hard memory
    limit or lets QEMU lock everything: size the host accordingly.)
    """
    edit = pinning.child(ctx, "memoryBacking", el("locked"))
    return [edit] if edit else []


@trait("memory {size:size}", version=1, rank=430, example="memory 2GiB",
       needs=lambda args: MemorySize(args["size"].kib))
def memory(ctx, size):
    """The guest's memory (<memory>); an input that states another is a conflict."""
    wanted = ctx.plan.requirements.memory_kib
    if size.kib != wanted or size.bytes % 1024:
        element = ctx.root.find("memory")
        raise conflict(ctx.origin, f"{size} of memory",
                       element_span(element, ctx.filename) if element is not None else None,
                       f"the guest has {format_kib(wanted)}",
                       hint="a trait never overrides what the input states: change "
                            "the input, or drop the trait")
    return []
