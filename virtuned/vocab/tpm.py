"""``tpm``: a TPM 2.0 emulated by swtpm."""

from __future__ import annotations


from virtuned.emit.kit import devices, el, hypervisor, trait


@trait("tpm", version=1, rank=210, example="tpm")
def tpm(ctx):
    """A TPM 2.0, emulated by swtpm: tpm-crb on q35, tpm-tis otherwise.

    Added unless the input has a TPM already (of any model), which is kept as it is.
    """
    if ctx.devices_of("tpm"):
        return []
    model = "tpm-crb" if ctx.platform.has_pcie else "tpm-tis"
    hypervisor.offer(ctx, "devices/tpm", "model", model, "TPM model")
    hypervisor.offer(ctx, "devices/tpm", "backendModel", "emulator", "TPM backend",
                  hint="the emulator backend is swtpm: install swtpm and swtpm-tools "
                  "on the host, then ask libvirt again")
    hypervisor.offer(ctx, "devices/tpm", "backendVersion", "2.0", "TPM version",
                  if_listed=True)
    return [devices.add_device(
        el("tpm", el("backend", type_="emulator", version="2.0"), model=model), ctx.origin)]
