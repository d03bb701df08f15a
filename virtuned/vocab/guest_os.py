"""``os ID`` and ``recommended``: the guest OS from osinfo-db, and what it recommends."""

from __future__ import annotations


from virtuned.emit import kit
from virtuned.emit.kit import (Add, E, Expansion, SetAttr, error, format_kib,
                              machine_family, slot_type, trait)


LIBOSINFO = "http://libosinfo.org/xmlns/libvirt/domain/1.0"


def _known_os(text: str) -> str:
    try:
        kit.osinfo.lookup(text)
    except kit.osinfo.UnknownOs as exc:
        raise ValueError(str(exc)) from None
    return text


slot_type("osinfo", _known_os, "an osinfo-db short id like win11 or fedora37")


def _facts(args) -> dict:
    return {"os": args["id"], "os family": kit.osinfo.lookup(args["id"]).family}


@trait("os {id:osinfo}", version=1, rank=280, example="os fedora37", facts=_facts)
def guest_os(ctx, id):
    """The guest operating system, by its osinfo-db short id (win11, fedora37, rhel9.0).

    Sets the facts 'os' and 'os family' (windows, linux, bsd, ...) that 'when'
    conditions test, and records the OS in <metadata> the way virt-install does
    (``<libosinfo:os id='http://microsoft.com/win/11'/>``), where virt-manager and
    other tools look for it. What the OS recommends is applied only with
    'recommended'. Input metadata naming another OS is a conflict.
    """
    uri = kit.osinfo.lookup(id).id
    record = ctx.find(f"metadata/{{{LIBOSINFO}}}libosinfo")
    if record is None:
        return [Add("metadata", E(f"{{{LIBOSINFO}}}libosinfo",
                                  children=(E(f"{{{LIBOSINFO}}}os", (("id", uri),)),)),
                    ctx.origin, identity=("libosinfo",))]
    stated = record.find(f"{{{LIBOSINFO}}}os")
    if stated is None:
        return [Add(record, E(f"{{{LIBOSINFO}}}os", (("id", uri),)), ctx.origin)]
    return [SetAttr(stated, "id", uri, ctx.origin)]


def recommendations(args, facts, origin) -> Expansion:
    """The traits the guest OS recommends (virt-install's choices, from the same
    osinfo-db data), for the machine type in effect."""
    short_id = facts.get("os")
    if short_id is None:
        raise error(origin.span, "recommended: no guest OS is known",
                    hint="name it with 'os ID', as in 'os win11' or 'os fedora37' (or "
                    "in the input's libosinfo metadata, as virt-install does)")
    info = kit.osinfo.lookup(short_id)
    q35 = machine_family(facts.get("machine") or "q35") == "q35"
    arch = facts.get("arch") or "x86_64"
    choices = _choices(info, q35, arch) + _resources(info, arch, facts)
    lines = [(text, f"recommended for {short_id}: {why}")
             for text, why in choices if text is not None]
    warnings = tuple(why for text, why in choices if text is None)
    if q35 and not _drives_q35(info):
        warnings += (f"recommended: osinfo-db does not list the q35 chipset for "
                     f"{info.name}; 'machine pc' may suit it better",)
    return Expansion(tuple(lines), warnings)


def _drives_q35(info: kit.osinfo.OsInfo) -> bool:
    """Whether the OS drives the q35 chipset; osinfo-db's 'unknown' OS is taken to be
    a modern one."""
    return info.supports("q35") or info.short_id == "unknown"


def _prefers(args, facts) -> dict:
    """The machine the guest OS drives, where nothing decides one: pc for an OS that
    osinfo-db does not list with q35 (winxp), as virt-install chooses."""
    short_id = facts.get("os")
    if short_id is None or _drives_q35(kit.osinfo.lookup(short_id)):
        return {}
    return {"machine": "pc"}


def _resources(info: kit.osinfo.OsInfo, arch: str, facts) -> list[tuple[str | None, str]]:
    """Memory and vCPUs: osinfo's recommendation (else its minimum) where the input
    states none; a warning (no trait) where it states less than the minimum."""
    wanted = info.resources_for(arch)
    out: list[tuple[str | None, str]] = []
    memory, vcpus = facts.get("input memory_kib"), facts.get("input vcpus")
    ram = wanted.recommended_ram or wanted.minimum_ram
    if memory is None and ram:
        out.append((f"memory {format_kib(ram // 1024)}", "osinfo-db's recommended memory"
                    if wanted.recommended_ram else "osinfo-db's minimum memory"))
    elif memory is not None and wanted.minimum_ram and memory * 1024 < wanted.minimum_ram:
        out.append((None, f"recommended: the input gives {info.name} "
                          f"{format_kib(memory)} of memory; osinfo-db's minimum is "
                          f"{format_kib(wanted.minimum_ram // 1024)}"))
    cpus = wanted.recommended_cpus or wanted.minimum_cpus
    if vcpus is None and cpus and cpus > 1:
        out.append((f"vcpus {cpus}", "osinfo-db's recommended vCPUs"
                    if wanted.recommended_cpus else "osinfo-db's minimum vCPUs"))
    elif vcpus is not None and wanted.minimum_cpus and vcpus < wanted.minimum_cpus:
        out.append((None, f"recommended: the input gives {info.name} {vcpus} vCPU"
                          f"{'s' * (vcpus != 1)}; osinfo-db's minimum is "
                          f"{wanted.minimum_cpus}"))
    return out


def _choices(info: kit.osinfo.OsInfo, q35: bool, arch: str) -> list[tuple[str, str]]:
    """(trait, why) for everything the OS decides: firmware, platform, drivers."""
    choices = []
    if info.requires_uefi(arch):
        choices += [("firmware uefi", "it boots only with UEFI"),
                    ("tpm", "UEFI guests get a TPM, as virt-install gives them")]
    if info.family in ("windows", "solaris"):
        choices.append(("clock localtime", "its clock keeps local time"))
    else:
        choices.append(("clock utc", "its clock keeps UTC"))
    if info.family == "windows":
        choices.append(("hyperv enlightenments", "a Windows guest"))
    choices += [_driver(info, "virtio-block", "disk bus virtio",
                        "disk bus sata" if q35 else "disk bus ide"),
                _driver(info, "virtio-net", "network model virtio",
                        "network model " + emulated_nic(info, q35)),
                _driver(info, "virtio-gpu", "video virtio", "video qxl"),
                _driver(info, "qemu-xhci", "usb controller qemu-xhci",
                        "usb controller ich9-ehci1")]
    for kind, text in (("virtio-serial", "guest agent"), ("virtio-rng", "rng virtio"),
                       ("virtio-balloon", "memory balloon on")):
        if info.supports(kind):
            choices.append((text, f"it has a {kind} driver"))
    return choices


def _driver(info: kit.osinfo.OsInfo, kind: str, with_driver: str, without: str):
    if info.supports(kind):
        return with_driver, f"it has a {kind} driver"
    return without, f"no {kind} driver"


def emulated_nic(info: kit.osinfo.OsInfo, q35: bool) -> str:
    """virt-install's NIC for an OS without virtio-net: e1000e on q35, else the
    first emulated NIC the OS has a driver for, else e1000."""
    if q35:
        return "e1000e"
    return next((kind for kind in ("e1000", "rtl8139") if info.supports(kind)), "e1000")


def os_info(ctx) -> kit.osinfo.OsInfo | None:
    """The guest OS of this compile ('os ID', or the input's libosinfo metadata)."""
    return kit.osinfo.lookup(ctx.plan.os) if ctx.plan.os else None


def drives(ctx, kind: str) -> bool:
    """Whether the guest OS has a driver for a device kind (osinfo-db); an OS no one
    names is taken to be a modern one, which drives virtio (as Nova and KubeVirt
    take it)."""
    info = os_info(ctx)
    return info is None or info.supports(kind)


@trait("recommended", version=1, rank=290, example="os fedora37\nrecommended",
       expand=recommendations, prefers=_prefers)
def recommended(ctx):
    """What the guest OS ('os ID') recommends, from osinfo-db, as preferences.

    What the guest OS ('os ID') recommends, from osinfo-db, as preferences: UEFI
    and a TPM where the OS boots only with UEFI (win11), localtime and Hyper-V
    enlightenments for Windows (UTC for the others), and virtio disks, NIC, video,
    USB 3, guest agent, RNG and balloon where the OS has the drivers (else SATA or
    IDE, e1000e or e1000, qxl, USB 2).

    Each recommendation fills only what no other trait of the request names (an
    explicit 'video vga' replaces 'video qxl'), and yields to the input, with a
    warning, like any preference. A q35 domain for an OS that osinfo-db does not
    list with q35 gets a warning. The OS is the one 'os ID' names, else the one the
    input's libosinfo metadata names; with neither it is an error.
    """
    return []  # its recommendations were resolved as traits of their own
