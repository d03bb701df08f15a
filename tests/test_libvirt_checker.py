"""The libvirt checker really tells good domain XML from bad.

Everything libvirt has to judge goes through ONE checker run (module fixture),
so the whole module costs about one second once QEMU's capabilities are cached.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

from tests import libvirt as lv

CORPUS = Path(os.environ.get("VIRTUNED_CORPUS", "/work/shared/corpus")) / "libvirt-domains"
# From PASSING-qemu.txt: libvirt 9.0's own test inputs that QEMU 7.2 accepts. Four are
# named QEMUGuest1 (different UUIDs), so they also prove that names may repeat.
CORPUS_GOOD = [
    "qemuxml2argvdata/minimal.xml",                # i686, qemu-system-i386
    "qemuxml2argvdata/q35-pcie.xml",
    "qemuxml2argvdata/cpu-host-passthrough.xml",   # type='kvm', host-passthrough
    "qemuxml2argvdata/hugepages-numa-default.xml",
    "qemuxml2argvdata/numatune-memnode.xml",
]


def domain(devices: str = "", *, name: str = "virtuned-t", memory: str = "<memory unit='MiB'>256</memory>",
           machine: str = "q35", dtype: str = "kvm", cpu: str = "<cpu mode='host-passthrough'/>",
           uuid: str | None = None) -> str:
    return f"""<domain type='{dtype}'>
  <name>{name}</name>
  {f"<uuid>{uuid}</uuid>" if uuid else ""}
  {memory}
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='{machine}'>hvm</type></os>
  {cpu}
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
{devices}
  </devices>
</domain>
"""


VIRTIO_DISK = """    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/guest.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>"""
IDE_DISK = """    <disk type='file' device='disk'>
      <source file='/var/lib/libvirt/images/guest.img'/>
      <target dev='hda' bus='ide'/>
    </disk>"""
NET = """    <interface type='network'><source network='default'/><model type='virtio'/></interface>"""

DOCS = {
    "good/min-q35": domain(),
    "good/q35-devices": domain(VIRTIO_DISK + "\n" + NET + "\n    <video><model type='virtio'/></video>",
                               uuid="00000000-1111-2222-3333-444444444444"),
    # Same name as good/q35-devices, another UUID: only passes if each define is undone.
    "good/same-name": domain(VIRTIO_DISK, name="virtuned-t", uuid="00000000-1111-2222-3333-555555555555"),
    "good/pc-tcg": domain(VIRTIO_DISK, machine="pc", dtype="qemu", cpu=""),
    "bad/memory-nan": domain(memory="<memory>notanumber</memory>"),
    "bad/ide-on-q35": domain(IDE_DISK),
    "bad/bogus-video": domain("    <video><model type='bogusvga'/></video>"),
    "bad/not-well-formed": "<domain type='kvm'>\n  <name>broken</name>\n",
    "bad/unknown-element": domain("    <frobnicator/>"),
    "bad/double-pci-slot": domain(
        "    <controller type='usb' model='qemu-xhci'>"
        "<address type='pci' domain='0' bus='0' slot='5' function='0'/></controller>\n"
        "    <memballoon model='virtio'>"
        "<address type='pci' domain='0' bus='0' slot='5' function='0'/></memballoon>",
        machine="pc"),
}
for rel in CORPUS_GOOD:
    if (CORPUS / rel).is_file():
        DOCS["corpus/" + rel] = (CORPUS / rel).read_text()


@pytest.fixture(scope="module")
def results():
    return lv.check_with_libvirt(DOCS)


def test_every_document_gets_a_result(results):
    assert set(results) == set(DOCS)


def _kvm_usable_by_checker() -> bool:
    if os.geteuid() != 0:
        return os.access("/dev/kvm", os.R_OK | os.W_OK)
    try:  # as root the checker runs as nobody: only the "other" bits apply
        return os.stat("/dev/kvm").st_mode & 0o006 == 0o006
    except OSError:
        return False


@pytest.mark.parametrize("name", [n for n in DOCS if n.startswith("good/")])
def test_valid_domains_pass_both_checks(results, name):
    r = results[name]
    assert (r.rng, r.rng_error, r.qemu, r.qemu_error) == ("PASS", None, "PASS", None)
    assert r.ok


def test_kvm_is_checked_as_tcg_and_says_so(results):
    notes = results["good/min-q35"].notes
    if _kvm_usable_by_checker():
        pytest.skip("/dev/kvm is usable by the checking user: no rewrite needed")
    assert any("type kvm->qemu" in n and "cpu mode host-passthrough->maximum" in n
               for n in notes), notes
    assert results["good/pc-tcg"].notes == ()


def test_memory_not_a_number_fails_rng(results):
    r = results["bad/memory-nan"]
    assert r.rng == "FAIL"
    assert "Type unsignedLong doesn't allow value 'notanumber'" in r.rng_error
    # the file name in xmllint's messages is the caller's name, not a temp path
    assert re.match(r"bad/memory-nan:\d+: element memory: Relax-NG validity error", r.rng_error)
    assert r.qemu == "FAIL"
    assert r.qemu_error.startswith("XML document failed to validate against schema")


def test_ide_disk_on_q35_passes_rng_but_not_qemu(results):
    r = results["bad/ide-on-q35"]
    assert (r.rng, r.rng_error) == ("PASS", None)
    assert r.qemu == "FAIL"
    assert r.qemu_error == ("unsupported configuration: IDE controllers are unsupported "
                            "for this QEMU binary or machine type")


def test_bogus_video_model_fails(results):
    r = results["bad/bogus-video"]
    assert r.rng == "FAIL"
    assert "Extra element devices in interleave" in r.rng_error
    assert r.qemu == "FAIL"
    assert "Extra element devices in interleave" in r.qemu_error


def test_not_well_formed_fails_and_does_not_confuse_the_batch(results):
    r = results["bad/not-well-formed"]
    assert r.rng == "FAIL" and "Premature end of data" in r.rng_error
    assert r.qemu == "FAIL" and "Premature end of data" in r.qemu_error
    # the files after it in the batch still get their own verdicts
    assert results["bad/unknown-element"].rng_error.count("Relax-NG validity error") >= 1
    assert "Premature" not in results["bad/unknown-element"].rng_error


def test_unknown_element_is_not_silently_dropped(results):
    r = results["bad/unknown-element"]
    assert (r.rng, r.qemu) == ("FAIL", "FAIL")
    assert "XML document failed to validate against schema" in r.qemu_error


def test_qemu_driver_catches_what_the_schema_cannot(results):
    r = results["bad/double-pci-slot"]
    assert r.rng == "PASS"
    assert r.qemu == "FAIL"
    assert "Attempted double use of PCI Address 0000:00:05.0" in r.qemu_error


@pytest.mark.parametrize("rel", CORPUS_GOOD)
def test_known_good_corpus_files_pass(results, rel):
    if not (CORPUS / rel).is_file():
        pytest.skip(f"corpus not present at {CORPUS} (set VIRTUNED_CORPUS)")
    r = results["corpus/" + rel]
    assert r.ok, r.problems()


def test_assert_libvirt_accepts_passes_good_and_quotes_libvirt_on_bad():
    lv.assert_libvirt_accepts(DOCS["good/min-q35"])
    with pytest.raises(AssertionError) as exc:
        lv.assert_libvirt_accepts({"fine": DOCS["good/min-q35"], "ide": DOCS["bad/ide-on-q35"]})
    text = str(exc.value)
    assert text.startswith("libvirt rejected 1 of 2 domain XML document(s):")
    assert ("--- ide: qemu\nunsupported configuration: IDE controllers are unsupported "
            "for this QEMU binary or machine type") in text
    assert "fine" not in text


def test_start_boots_paused_under_tcg():
    # no disk; its network interface is rewritten to type='user' for the start only
    tiny = domain(NET, name="virtuned-boot", memory="<memory unit='MiB'>64</memory>")
    r = lv.check_with_libvirt({"tiny": tiny}, start=True)["tiny"]
    assert (r.qemu, r.qemu_error, r.start, r.start_error) == ("PASS", None, "PASS", None)
    assert "start on a copy: 1 interface(s) -> type='user'" in r.notes


# -------------------------------------------------------------- no libvirt here


def test_missing_libvirt_fails_in_ci_and_skips_locally(monkeypatch):
    monkeypatch.setattr(lv, "SYSTEM_PYTHON", "/nonexistent/python3")
    lv.libvirt_unavailable.cache_clear()
    try:
        monkeypatch.setenv("CI", "true")
        with pytest.raises(pytest.fail.Exception, match="CI is set but libvirt checks need"):
            lv.check_with_libvirt({"x": DOCS["good/min-q35"]})
        monkeypatch.delenv("CI")
        with pytest.raises(pytest.skip.Exception, match="/nonexistent/python3"):
            lv.check_with_libvirt({"x": DOCS["good/min-q35"]})
    finally:
        monkeypatch.undo()
        lv.libvirt_unavailable.cache_clear()


# -------------------------------------------------------------- the rewrite itself


def _checker_module():
    spec = importlib.util.spec_from_file_location("libvirt_checker", lv.CHECKER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tcg_rewrite_touches_only_domain_type_and_cpu_mode():
    to_tcg = _checker_module().to_tcg
    xml = ("<?xml version='1.0'?>\n<!-- type='kvm' -->\n<domain xmlns:qemu='x' type=\"kvm\" id='1'>"
           "<cputune mode='host-passthrough'/><cpu check='none' mode='host-passthrough'>"
           "<model>x</model></cpu><devices><interface type='kvm'/></devices></domain>")
    out, changes = to_tcg(xml)
    assert changes == ["type kvm->qemu", "cpu mode host-passthrough->maximum"]
    assert out == xml.replace('type="kvm"', 'type="qemu"').replace(
        "check='none' mode='host-passthrough'", "check='none' mode='maximum'")
    assert to_tcg("<domain type='qemu'><cpu mode='host-model'/></domain>")[1] == []
