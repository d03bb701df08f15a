"""``memory encryption``: AMD SEV, the guest's memory encrypted with a key of its own."""

from __future__ import annotations

from virtuned.emit.kit import (Add, Remove, conflict, el, element_span, error,
                              hypervisor, trait)
from virtuned.vocab.firmware import refuse_firmware, uefi_edits

# No debugging (bit 0) and no key sharing with other guests (bit 1). SEV-ES (bit 2)
# is not asked for: it needs SEV-ES support in the guest kernel and in OVMF.
POLICY = "0x0003"


@trait("memory encryption", version=1, rank=300, example="memory encryption")
def memory_encryption(ctx):
    """AMD SEV: guest memory encrypted with a key the host cannot read.

    AMD SEV: the guest's memory is encrypted with a key the host cannot read
    (q35 and UEFI only; UEFI is set as 'firmware uefi' sets it).

    Writes ``<launchSecurity type='sev'>`` with policy 0x0003 (no debugging, no key
    sharing), and the host's cbitpos and reducedPhysBits when --domcaps gives them
    (else libvirt reads them from the host at start). With --domcaps, a host whose
    hypervisor does not offer SEV is refused. Virtio devices need no
    ``iommu='on'``: QEMU (>= 6.0) sets it for encrypted guests itself. An input
    that already has SEV launch security keeps it as it is; another kind is a
    conflict, which --override resolves by replacing it.
    """
    # A conflict between traits first, as resolution reports them.
    refuse_firmware(ctx, "bios", "UEFI", hint="drop 'firmware bios'")
    if not ctx.platform.has_pcie:
        raise error(ctx.origin.span, f"memory encryption: {ctx.platform.describe_machine()} "
                    "cannot have SEV: AMD SEV guests need q35 and UEFI",
                    hint="SEV needs 'machine q35'")
    hypervisor.supported(ctx, "features/sev", "AMD SEV memory encryption",
                      hint="SEV needs an AMD EPYC host with SEV enabled in its firmware "
                      "and in KVM (kvm_amd sev=1)")
    edits = uefi_edits(ctx)
    existing = ctx.find("launchSecurity")
    if existing is not None:
        if existing.get("type") != "sev" and ctx.override and not ctx.origin.soft:
            edits.append(Remove(existing, ctx.origin))  # replaced by SEV's, below
        elif existing.get("type") != "sev":
            raise conflict(ctx.origin, "AMD SEV launch security",
                           element_span(existing, ctx.filename),
                           f"the input has <launchSecurity type='{existing.get('type')}'>",
                           hint="remove it from the input, drop the trait, or let SEV "
                                "replace it with --override")
        else:
            return edits
    return edits + [Add("", el("launchSecurity", *_parameters(ctx), type_="sev"),
                        ctx.origin, identity=("launchSecurity",))]


def _parameters(ctx) -> tuple:
    """cbitpos and reducedPhysBits from the domain capabilities, then the policy."""
    sev = ctx.plan.domcaps.sev if ctx.plan.domcaps is not None else None
    known = ()
    if sev is not None and sev.cbitpos is not None and sev.reduced_phys_bits is not None:
        known = (el("cbitpos", text=str(sev.cbitpos)),
                 el("reducedPhysBits", text=str(sev.reduced_phys_bits)))
    return known + (el("policy", text=POLICY),)

