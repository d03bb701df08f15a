"""The ranges of the numbers a guest is made of, where they depend on the platform.

A trait's slot states the range that holds on every platform (``vcpus {count:int
1..4096}``, registry.py); what depends on the machine or the architecture is checked
here, once the platform is decided and before anything is sized from the numbers
(so an absurd count is refused before it is expanded into vCPU lists). Every bound
is listed, with where it comes from, in docs/security.md.
"""

from __future__ import annotations

import re

from virtuned import values
from virtuned.diagnostics import REQUEST, Span, error
from virtuned.domain import element_span
from virtuned.plan.requirements import (MAX_VCPUS, Hugepages, MemorySize, Topology,
                                        VcpuCount)
from virtuned.values import format_kib

# pc (i440fx): 255 in every QEMU version (hw/i386/pc_piix.c; 'query-machines' of
# QEMU 7.2 says cpu-max 255). q35: 255 up to pc-q35-2.6, 288 up to pc-q35-7.2
# (QEMU 7.2's 'query-machines'), 1024 for pc-q35-8.0 to 8.2, 4096 from pc-q35-9.0
# (hw/i386/pc_q35.c, docs/system/target-i386-pc.rst). An unversioned 'q35' is the
# newest machine of whichever QEMU runs it: --domcaps says which.
_PC_MAX_VCPUS = 255
_Q35_MAX_VCPUS = ((2, 6, 255), (7, 2, 288), (8, 2, 1024))  # up to (major, minor)

# libvirt stores memory in KiB and refuses more than LLONG_MAX bytes on 64-bit hosts
# (virMemoryMaxValue, src/util/virutil.c); QEMU boots no x86 guest in less than 1 MiB.
MIN_MEMORY_KIB = 1024
MAX_MEMORY_KIB = (2**63 - 1) // 1024

# The page sizes (KiB) each architecture's MMU has; 4KiB is the base page.
PAGE_SIZES = {
    "x86_64": (4, 2048, 1024 * 1024),
    "i686": (4, 2048, 4096),  # 4MiB: non-PAE 32-bit paging
    "aarch64": (4, 64, 2048, 32 * 1024, 512 * 1024, 1024 * 1024, 16 * 1024 * 1024),
    "ppc64": (4, 64, 2048, 16 * 1024, 1024 * 1024, 16 * 1024 * 1024),
    "ppc64le": (4, 64, 2048, 16 * 1024, 1024 * 1024, 16 * 1024 * 1024),
    "s390x": (4, 1024, 2 * 1024 * 1024),
}


def max_vcpus(machine: str, domcaps=None) -> tuple[int | None, str]:
    """The most vCPUs ``machine`` takes, and whose limit that is (for messages);
    None for a machine virtuned knows no limit of (the slot's range still holds)."""
    if domcaps is not None and domcaps.max_vcpus:
        return domcaps.max_vcpus, f"{domcaps.source}: <vcpu max='{domcaps.max_vcpus}'>"
    if machine == "pc" or machine.startswith("pc-i440fx") or \
            re.fullmatch(r"pc-[0-9.]+", machine):
        return _PC_MAX_VCPUS, "QEMU's limit for pc-i440fx"
    if machine == "q35":
        return MAX_VCPUS, "the newest QEMU's limit for q35; --domcaps gives this host's"
    version = re.fullmatch(r"pc-q35-([0-9]+)\.([0-9]+)", machine)
    if version:
        wanted = (int(version.group(1)), int(version.group(2)))
        limit = next((n for major, minor, n in _Q35_MAX_VCPUS if wanted <= (major, minor)),
                     MAX_VCPUS)
        return limit, f"QEMU's limit for {machine}"
    return None, ""


def check(needs: dict, asked_by: dict, platform, domcaps, root, filename: str) -> None:
    """Refuse (exit 2, at the trait or the input element) a vCPU count the machine
    cannot take, memory outside libvirt's range, a page size the architecture has
    not; before anything is sized from them."""
    _check_vcpus(needs, asked_by, platform, domcaps, root, filename)
    _check_input_memory(root, filename)
    if MemorySize in needs:
        _check_memory(asked_by[MemorySize])
    if Hugepages in needs:
        _check_page(asked_by[Hugepages], platform.arch)


def _check_vcpus(needs, asked_by, platform, domcaps, root, filename) -> None:
    limit, whose = max_vcpus(platform.machine, domcaps)
    if limit is None:
        return
    counted = [(needs[kind].count if kind is VcpuCount else needs[kind].vcpus,
                asked_by[kind].origin.span, f"'{asked_by[kind].origin.label}'")
               for kind in (VcpuCount, Topology) if kind in needs]
    vcpu = root.find("vcpu")
    text = (vcpu.text or "").strip() if vcpu is not None else ""
    if text.isascii() and text.isdigit() and len(text) < 30:
        counted.append((int(text), element_span(vcpu, filename), f"<vcpu>{text}</vcpu>"))
    for count, span, what in counted:
        if count > limit:
            raise error(span or Span(REQUEST, 1, 1),
                        f"{what}: {count} vCPUs, but vCPUs must be 1..{limit} on machine "
                        f"{platform.machine} ({whose})",
                        hint="fewer vCPUs, or a machine that takes more (q35)"
                        if limit == _PC_MAX_VCPUS else None)


def _check_input_memory(root, filename: str) -> None:
    """The input's <memory>, which the placement splits: none, or none libvirt
    takes, is refused (an unreadable one is requirements.py's to name)."""
    memory = root.find("memory")
    if memory is None:
        return
    text = (memory.text or "").strip()
    try:
        kib = values.kib(text, memory.get("unit"))
    except ValueError:
        return
    if not 0 < kib <= MAX_MEMORY_KIB:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise error(element_span(memory, filename), f"invalid <memory> size '{shown}' "
                    f"unit '{memory.get('unit') or 'KiB'}': memory must be more than 0 "
                    "and less than 8EiB (libvirt's limit)")


def _check_memory(asker) -> None:
    size = asker.kwargs["size"]
    if size.bytes % 1024 or not MIN_MEMORY_KIB <= size.kib <= MAX_MEMORY_KIB:
        raise error(asker.origin.span or Span(REQUEST, 1, 1),
                    f"'{asker.origin.label}': memory must be whole KiB, at least "
                    f"{format_kib(MIN_MEMORY_KIB)} and less than 8EiB (libvirt's limit)")


def _check_page(asker, arch: str) -> None:
    size = asker.kwargs["size"]
    sizes = PAGE_SIZES.get(arch)
    whole = size.bytes % 1024 == 0
    if sizes is None:  # an architecture virtuned knows no pages of: a power of two
        if whole and size.kib >= 4 and not size.kib & (size.kib - 1):
            return
        allowed = "a power of two from 4KiB"
    elif whole and size.kib in sizes:
        return
    else:
        allowed = ", ".join(format_kib(kib) for kib in sizes[:-1]) + \
            f" or {format_kib(sizes[-1])}"
    raise error(asker.origin.span or Span(REQUEST, 1, 1),
                f"'{asker.origin.label}': {size} is not a page size of {arch}: page "
                f"sizes must be {allowed}")
