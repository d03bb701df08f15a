"""``os ID`` + ``recommended`` makes virt-install's device choices.

virt-install 4.1 (Debian 12) completed the same OSes against the same KVM q35
domain capabilities: ``../shared/corpus/virt-install-samples/magic-kvm-*.xml`` (see
its MANIFEST: ``--disk none --import``, one ``--network default`` NIC, q35). We
compile a domain with that NIC, ``os ID``, ``recommended`` and ``machine q35``
against the same ``virsh domcapabilities`` and compare what the OS decides:
machine, firmware, clock, Hyper-V, NIC, video, USB controller, TPM, RNG, balloon and
the guest agent channel.

Deliberate differences (docs/language.md, "os ID and recommended"):

- ``recommended`` carries only what the guest OS decides. virt-install also adds
  what a desktop tool wants whatever the OS: SPICE graphics and its channel, sound,
  a USB tablet, USB redirection, a console, 14 PCIe root ports, ``vmport off``,
  ``pm``, ``host-passthrough`` and RTC/PIT/HPET timers. In virtuned those are other
  traits and profiles (``desktop``, ``pcie root ports N``, ``serial console``).
- Windows gets more Hyper-V enlightenments (vpindex, runtime, synic, stimer, reset,
  frequencies besides relaxed, vapic and spinlocks), as newer virt-manager and
  libvirt's documentation recommend, and tlbflush and ipi, as Nova and KubeVirt add.
- An OS without qemu-xhci drivers gets ``ich9-ehci1`` alone; virt-install adds the
  three UHCI companion controllers for USB 1.1 devices.
- ``unknown`` (osinfo-db's id for no particular OS) stands for virt-install's
  ``generic``, which is virtinst's own placeholder, not in osinfo-db.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

import virtuned

SAMPLES = Path(__file__).resolve().parents[2] / "shared/corpus/virt-install-samples"
INPUT = """<domain type="kvm">
  <name>t1</name>
  <memory>1048576</memory>
  <vcpu>2</vcpu>
  <devices>
    <interface type="network">
      <source network="default"/>
      <mac address="00:11:22:33:44:55"/>
    </interface>
  </devices>
</domain>
"""
# The enlightenments virtuned gives Windows (virt-install: relaxed, vapic, spinlocks).
WINDOWS_HYPERV = ["relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer",
                  "reset", "frequencies", "tlbflush", "ipi"]
# sample → (os id, what virtuned decides differently, as {choice: virtuned's value})
CASES = {
    "fedora37": ("fedora37", {}),
    "win10": ("win10", {"hyperv": WINDOWS_HYPERV}),
    "win11": ("win11", {"hyperv": WINDOWS_HYPERV}),
    "generic-q35": ("unknown", {"usb": ["ich9-ehci1"]}),
}


def corpus(name: str) -> str:
    if not SAMPLES.is_dir():
        message = f"no virt-install samples at {SAMPLES}"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return (SAMPLES / name).read_text()


def choices(xml: str) -> dict:
    """What the guest OS decides in a domain, comparable across tools."""
    root = etree.fromstring(xml.encode())
    devices = root.find("devices")

    def models(tag, path, attribute):
        return [(d.find(path) if path else d).get(attribute)
                for d in devices.iterchildren(tag)]

    hyperv = root.find("features/hyperv")
    clock = root.find("clock")
    return {
        "machine": root.find("os/type").get("machine"),
        "firmware": root.find("os").get("firmware", "bios"),
        "clock": None if clock is None else clock.get("offset"),
        "hyperv": [] if hyperv is None else [e.tag for e in hyperv],
        "hypervclock": root.find("clock/timer[@name='hypervclock']") is not None,
        "nic": models("interface", "model", "type"),
        "video": models("video", "model", "type"),
        "usb": [c.get("model") for c in devices.iterchildren("controller")
                if c.get("type") == "usb"],
        "tpm": models("tpm", None, "model"),
        "rng": models("rng", None, "model"),
        "balloon": models("memballoon", None, "model"),
        "agent": [c.get("type") for c in devices.iterchildren("channel")
                  if c.find("target[@name='org.qemu.guest_agent.0']") is not None],
    }


def compile_like_virt_install(os_id: str, domcaps: str) -> virtuned.CompileResult:
    """As virt-install was run (MANIFEST): 1 GiB of memory, 4 GiB for win11."""
    memory = "<memory>4194304</memory>" if os_id == "win11" else "<memory>1048576</memory>"
    return virtuned.compile(INPUT.replace("<memory>1048576</memory>", memory),
                            traits=[f"os {os_id}", "recommended", "machine q35"],
                            domcaps=corpus(f"caps/{domcaps}"), domcaps_name=domcaps)


@pytest.mark.parametrize("sample", list(CASES))
def test_recommended_makes_virt_install_choices(sample):
    os_id, differences = CASES[sample]
    theirs = choices(corpus(f"magic-kvm-{sample}.xml"))
    ours = choices(compile_like_virt_install(os_id, "qemu72-kvm-x86_64-q35-domcaps.xml").xml)
    assert ours == {**theirs, **differences}
    assert all(theirs[name] != value for name, value in differences.items())


def test_win11_gets_a_tpm_exactly_when_the_host_has_swtpm():
    """virt-install adds <tpm model='tpm-crb'><backend type='emulator'/> to a UEFI
    guest when the domain capabilities offer the emulator backend (swtpm)."""
    without = compile_like_virt_install("win11", "qemu72-kvm-x86_64-q35-domcaps.xml")
    assert [w.message for w in without.warnings] == [
        "preference 'tpm (recommended for win11: UEFI guests get a TPM, as virt-install "
        "gives them)' dropped: it cannot hold: tpm (recommended for win11: UEFI guests "
        "get a TPM, as virt-install gives them): the domain capabilities "
        "(qemu72-kvm-x86_64-q35-domcaps.xml) offer no TPM backend 'emulator' (<tpm> enum "
        "'backendModel' lists passthrough)"]
    with_swtpm = compile_like_virt_install("win11", "qemu72-kvm-x86_64-q35-domcaps-swtpm.xml")
    assert (with_swtpm.warnings, choices(with_swtpm.xml)["tpm"]) == ((), ["tpm-crb"])
