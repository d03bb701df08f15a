"""Complete means a good VM, and it boots: each shipped profile's guest, on pc and on
q35 (and with UEFI), runs under libvirt's QEMU driver and sees what a careful
administrator would give it: ACPI, every vCPU, an x86-64-v2 CPU, the disk and NIC
its profile chose (never libvirt's legacy models by accident), and it powers itself
off; each shipped composite trait, used alone, shows its effect in the guest.
tests/guest.py builds the tiny guest and reads its report."""

from __future__ import annotations

import os
import stat

import virtuned
from tests.guest import boot

# What the guest's report names a device by: vendor:device as sysfs writes them.
VIRTIO_NET = ("0x1af4:0x1000", "0x1af4:0x1041")  # transitional (pc), modern (q35)
VIRTIO_BLK = ("0x1af4:0x1001", "0x1af4:0x1042")
E1000E, RTL8139 = "0x8086:0x10d3", "0x10ec:0x8139"
VIRTIO_BALLOON = ("0x1af4:0x1002", "0x1af4:0x1045")
DISPLAY_CLASS = "0x03"  # PCI class 03: display controllers (VGA, QXL, virtio-gpu)
AHCI = "0x8086:0x2922"  # ICH9's, on q35 and added on pc for 'disk bus sata'
X86_64_V2 = {"sse4_2", "ssse3", "popcnt"}


def domain_type() -> str:
    """kvm where the checker's user (nobody, when root) may open /dev/kvm, else qemu:
    the guest is compiled for the accelerator it will run on."""
    try:
        mode = os.stat("/dev/kvm").st_mode
    except OSError:
        return "qemu"
    usable = mode & stat.S_IROTH and mode & stat.S_IWOTH if os.geteuid() == 0 else \
        os.access("/dev/kvm", os.R_OK | os.W_OK)
    return "kvm" if usable else "qemu"


# The input a management app would send: resources, one disk, one NIC.
INPUT = f"""<domain type="{domain_type()}">
  <name>boot</name>
  <memory unit="GiB">1</memory>
  <vcpu>2</vcpu>
  <devices>
    <disk type="file" device="disk">
      <source file="/var/lib/libvirt/images/boot.qcow2"/>
      <target dev="vda"/>
    </disk>
    <interface type="user">
      <mac address="52:54:00:12:34:56"/>
    </interface>
  </devices>
</domain>
"""
# (profile, machine, more traits) → the NIC and disk the guest must see.
CASES = {
    ("base", "pc", ()): (VIRTIO_NET, VIRTIO_BLK),
    ("base", "q35", ()): (VIRTIO_NET, VIRTIO_BLK),
    ("server", "pc", ()): (VIRTIO_NET, VIRTIO_BLK),
    ("server", "q35", ()): (VIRTIO_NET, VIRTIO_BLK),
    ("server", "q35", ("firmware uefi",)): (VIRTIO_NET, VIRTIO_BLK),
    ("desktop", "pc", ()): (VIRTIO_NET, VIRTIO_BLK),
    ("desktop", "q35", ()): (VIRTIO_NET, VIRTIO_BLK),
    ("windows", "q35", ()): ((E1000E,), (AHCI,)),
    ("secure", "q35", ()): (VIRTIO_NET, VIRTIO_BLK),
    ("nfv", "pc", ()): (VIRTIO_NET, VIRTIO_BLK),
    ("nfv", "q35", ()): (VIRTIO_NET, VIRTIO_BLK),
    ("realtime", "q35", ()): (VIRTIO_NET, VIRTIO_BLK),
    ("high-density", "pc", ()): (VIRTIO_NET, VIRTIO_BLK),
    ("high-density", "q35", ()): (VIRTIO_NET, VIRTIO_BLK),
    # The shipped composite traits on their own (traits/bundles.vt).
    ("", "q35", ("headless server",)): (VIRTIO_NET, VIRTIO_BLK),
    ("", "q35", ("nfv networking",)): (VIRTIO_NET, VIRTIO_BLK),
    ("", "q35", ("nfv memory",)): (VIRTIO_NET, VIRTIO_BLK),
    ("", "pc", ("windows guest",)): ((E1000E,), (AHCI,)),
}
# What a composite changes in the guest, beyond what every case checks. ('nfv
# networking' shows only as its virtio NIC: the test guest's user-mode network has
# no multiqueue, so libvirt starts it with one queue pair whatever <driver queues>.)
COMPOSITES = {
    "q35 headless server": lambda report: not any(
        pci.split()[1].startswith(DISPLAY_CLASS) for pci in report.pci),  # no video card
    "q35 nfv memory": lambda report: not any(
        pci.split()[0] in VIRTIO_BALLOON for pci in report.pci),  # no balloon
}


def name(case) -> str:
    profile, machine, traits = case
    return " ".join(part for part in (profile, machine, *traits) if part)


def test_every_shipped_profile_boots_a_good_vm():
    compiled = {name(case): virtuned.compile(
        INPUT, profiles=[case[0]] if case[0] else [],
        traits=(f"machine {case[1]}", *case[2])).xml for case in CASES}
    reports = boot(compiled)
    seen = {}
    for case, (nics, disks) in CASES.items():
        report = reports[name(case)]
        devices = [pci.split()[0] for pci in report.pci]
        seen[name(case)] = {
            "powered itself off": report.booted and report.complete,
            "acpi": report.acpi, "cpus": report.cpus,
            "x86-64-v2": X86_64_V2 <= report.flags,
            "nic": any(device in nics for device in devices),
            "disk": any(device in disks for device in devices),
            "rtl8139": RTL8139 in devices,
            "its composite's effect": COMPOSITES.get(name(case), lambda _: True)(report)}
    good = {"powered itself off": True, "acpi": True, "cpus": 2, "x86-64-v2": True,
            "nic": True, "disk": True, "rtl8139": False, "its composite's effect": True}
    wrong = {case: {k: v for k, v in found.items() if v != good[k]}
             for case, found in seen.items() if found != good}
    assert wrong == {}, f"{wrong}\n" + "\n".join(
        f"--- {case}: {reports[case].error}\n{reports[case].console}" for case in wrong)
