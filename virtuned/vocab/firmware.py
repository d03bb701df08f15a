"""``firmware bios|uefi [secure-boot]``: the guest firmware, chosen by libvirt.

libvirt (≥ 5.2) picks the firmware binaries itself from the descriptors that OVMF and
SeaBIOS install (``/usr/share/qemu/firmware/*.json``), at start, so a domain names
what it needs (``<os firmware='efi'>`` and features), never a path.
"""

from __future__ import annotations

from virtuned.emit.kit import (Add, Ensure, ExitCode, Related, SetAttr, conflict, el,
                              element_span, error, hypervisor, trait)
from virtuned.vocab.platform import feature_on


# 'firmware uefi' and 'firmware uefi secure-boot' go together (the second refines the
# first: a Windows profile and a secure profile can be combined); bios and uefi are
# told apart by the bios emitter, which refuses any uefi trait beside it.
@trait("firmware {kind:bios|uefi} [{secure:secure-boot}]", version=1, rank=200,
       example="firmware uefi",
       key=lambda args: ("firmware", args["kind"], args.get("secure") or ""))
def firmware(ctx, kind, secure=None):
    """The guest firmware: bios, uefi, or uefi with Secure Boot.

    The guest firmware: bios (SeaBIOS) or uefi (OVMF); uefi secure-boot adds Secure
    Boot with Microsoft's keys enrolled, and SMM, which it needs (q35 only).

    uefi sets ``<os firmware='efi'>`` (and ACPI, which UEFI needs); bios writes
    nothing, as SeaBIOS is QEMU's default. An input that states the other firmware
    is a conflict.
    """
    if secure and kind != "uefi":
        raise error(ctx.origin.span, "firmware bios secure-boot: Secure Boot needs UEFI",
                    hint="write 'firmware uefi secure-boot'")
    if secure and not ctx.platform.has_pcie:
        raise error(ctx.origin.span, f"firmware uefi secure-boot: "
                    f"{ctx.platform.describe_machine()} has no Secure Boot firmware: "
                    "OVMF's Secure Boot builds are for q35 only",
                    hint="Secure Boot needs 'machine q35'")
    os_element = ctx.find("os")
    if kind == "bios":
        refuse_firmware(ctx, "uefi", "BIOS",
                        hint="keep one of the two, or make the weaker one a 'prefer'")
        return _bios(ctx, os_element)
    if secure:
        hypervisor.offer(ctx, "os/loader", "secure", "yes", "Secure Boot loader")
    edits = uefi_edits(ctx)
    if secure:
        edits += _secure_boot_features(ctx, os_element)
        edits += feature_on(ctx, "smm")
    return edits


def refuse_firmware(ctx, kind: str, wanted: str, hint: str) -> None:
    """A conflict when a 'firmware KIND' trait is asked for beside the trait being
    emitted, which needs the ``wanted`` firmware."""
    other = next((t for t in ctx.of(firmware) if t.kwargs["kind"] == kind), None)
    if other is not None:
        raise conflict(ctx.origin, wanted, other.origin.span,
                       f"'{other.origin.label}' asks for {kind.upper()}", hint=hint)


def uefi_edits(ctx) -> list:
    """``<os firmware='efi'>`` and the ACPI that UEFI needs, for every trait that
    needs UEFI (they emit the same edits, which merge counts once)."""
    hypervisor.offer(ctx, "os", "firmware", "efi", "firmware",
                  hint="UEFI firmware for QEMU comes from OVMF (Debian: the ovmf package)")
    os_element = ctx.find("os")
    edits = [SetAttr(os_element, "firmware", "efi", ctx.origin)
             if os_element is not None else Ensure("os", "firmware", "efi", ctx.origin)]
    features = ctx.find("features")
    if features is None or features.find("acpi") is None:
        # libvirt: "UEFI requires ACPI on this architecture".
        edits.append(Add("features", el("acpi"), ctx.origin, identity=("acpi",)))
    return edits


SECURE_BOOT = ("enrolled-keys", "secure-boot")


def _secure_boot_features(ctx, os_element) -> list:
    """``<os><firmware>`` with Secure Boot and Microsoft's keys enabled; features the
    input already states are set (an input that disables one is a conflict)."""
    stated = os_element.find("firmware") if os_element is not None else None
    if stated is None:
        keys = el("firmware", *(el("feature", enabled="yes", name=n) for n in SECURE_BOOT))
        return [Add("os", keys, ctx.origin, identity=("os firmware",))]
    edits = []
    for name in SECURE_BOOT:
        feature = stated.find(f"feature[@name='{name}']")
        if feature is None:
            edits.append(Add(stated, el("feature", enabled="yes", name=name), ctx.origin,
                             identity=("feature", name)))
        else:
            edits.append(SetAttr(feature, "enabled", "yes", ctx.origin))
    return edits



def _bios(ctx, os_element) -> list:
    """BIOS is QEMU's own default on x86, so nothing is written; writing
    firmware='bios' would make libvirt look for a SeaBIOS descriptor, which Debian's
    seabios does not ship, and the domain would not start. An input that asks for
    UEFI is a conflict."""
    stated = os_element.get("firmware") if os_element is not None else None
    loader = os_element.find("loader") if os_element is not None else None
    if stated == "efi" or (loader is not None and loader.get("type") == "pflash"):
        return [SetAttr(os_element, "firmware", "bios", ctx.origin)] \
            if stated else _conflict_with_loader(ctx, loader)
    return []


def _conflict_with_loader(ctx, loader):
    raise error(ctx.origin.span, "firmware bios: the input loads UEFI firmware from "
                "flash", exit_code=ExitCode.CONFLICT,
                related=(Related(element_span(loader, ctx.filename), "the loader"),))
