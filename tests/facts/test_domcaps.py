"""Domain capabilities (``--domcaps``): parsed into facts, and traits refuse what the
hypervisor does not offer, naming the capability. (The CLI cases with the real
Debian 12 documents are golden cases under tests/golden/domcaps/.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_run import run
from virtuned.facts import domcaps
from virtuned.diagnostics import VirtunedError

SAMPLES = Path(__file__).parents[1] / "domcaps"
Q35 = (SAMPLES / "kvm-q35.xml").read_text()


def test_facts_of_a_real_document():
    caps = domcaps.parse(Q35.encode(), "kvm-q35.xml")
    assert (caps.emulator, caps.domain_type, caps.machine, caps.arch, caps.max_vcpus) == (
        "/usr/bin/qemu-system-x86_64", "kvm", "pc-q35-7.2", "x86_64", 288)
    assert caps.loaders == ("/usr/share/OVMF/OVMF_CODE_4M.ms.fd",
                            "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
                            "/usr/share/OVMF/OVMF_CODE_4M.fd")
    assert caps.cpu_modes == ("host-passthrough", "maximum", "host-model", "custom")
    assert caps.area("os").enum("firmware") == ("efi",)
    assert caps.area("os/loader").enum("secure") == ("yes", "no")
    assert caps.area("devices/tpm").enums == (("model", ("tpm-tis", "tpm-crb")),
                                              ("backendModel", ("passthrough",)))
    assert caps.area("devices/video").enum("modelType") == (
        "vga", "cirrus", "vmvga", "qxl", "virtio", "none", "bochs", "ramfb")
    assert caps.area("features/hyperv").enum("features") == ("spinlocks", "vendor_id")
    assert (caps.area("features/sev").supported, caps.sev) == (False, None)
    assert caps.area("devices/sound") is None


def test_sev_facts():
    caps = domcaps.parse((SAMPLES / "kvm-q35-sev.xml").read_bytes(), "sev.xml")
    assert caps.sev == domcaps.Sev(cbitpos=51, reduced_phys_bits=1, max_es_guests=0)


@pytest.mark.parametrize("text, message", [
    ("<domain/>", "bad.xml:1:1: expected a <domainCapabilities> root element, got <domain>"),
    ("<!DOCTYPE x [<!ENTITY a 'b'>]><domainCapabilities/>",
     "bad.xml:1:1: DTDs and entity declarations are not allowed in domain capabilities "
     "XML"),
    ("<domainCapabilities>", "bad.xml:1:21: malformed XML: Premature end of data in tag "
     "domainCapabilities line 1"),
    ("<domainCapabilities><vcpu max='many'/></domainCapabilities>",
     "bad.xml:1:1: <vcpu max='many'>: expected a whole number"),
])
def test_bad_documents_are_input_errors(text, message):
    with pytest.raises(VirtunedError) as caught:
        domcaps.parse(text, "bad.xml")
    assert (caught.value.exit_code, str(caught.value)) == (2, message)


def compile_with(tmp_path, caps_text: str, *traits: str) -> tuple[int, str, str]:
    (tmp_path / "caps.xml").write_text(caps_text)
    argv = ["compile", "--domcaps", "caps.xml"]
    for text in traits:
        argv += ["-t", text]
    return run(argv, cwd=tmp_path)


def test_a_video_model_the_hypervisor_lacks_is_refused(tmp_path):
    caps = Q35.replace("        <value>qxl</value>\n", "")
    assert compile_with(tmp_path, caps, "video qxl") == (2, "", """\
<trait 1>:1:1: error: video qxl: the domain capabilities (caps.xml) offer no video model \
'qxl' (<video> enum 'modelType' lists vga, cirrus, vmvga, virtio, none, bochs, ramfb)
    video qxl
    ^^^^^^^^^
caps.xml:199:5: note: the domain capabilities say so here
        <video supported='yes'>
        ^^^^^^
""")


def test_secure_boot_needs_a_secure_loader(tmp_path):
    caps = Q35.replace("      <enum name='secure'>\n        <value>yes</value>\n",
                       "      <enum name='secure'>\n")
    code, out, err = compile_with(tmp_path, caps, "firmware uefi secure-boot")
    assert (code, out, err.splitlines()[0]) == (2, "", (
        "<trait 1>:1:1: error: firmware uefi secure-boot: the domain capabilities "
        "(caps.xml) offer no Secure Boot loader 'yes' (<loader> enum 'secure' lists no)"))


def test_uefi_needs_efi_firmware(tmp_path):
    caps = Q35.replace("<enum name='firmware'>\n      <value>efi</value>\n    </enum>",
                       "<enum name='firmware'/>")
    code, out, err = compile_with(tmp_path, caps, "firmware uefi")
    assert (code, err.splitlines()[0], err.splitlines()[-1]) == (2, (
        "<trait 1>:1:1: error: firmware uefi: the domain capabilities (caps.xml) offer "
        "no firmware 'efi' (<os> enum 'firmware' lists nothing)"),
        "hint: UEFI firmware for QEMU comes from OVMF (Debian: the ovmf package)")


def test_unsupported_and_unlisted_capabilities(tmp_path):
    no_vmcoreinfo = Q35.replace("<vmcoreinfo supported='yes'/>",
                                "<vmcoreinfo supported='no'/>")
    code, _, err = compile_with(tmp_path, no_vmcoreinfo, "vmcoreinfo")
    assert (code, err.splitlines()[0]) == (2, (
        "<trait 1>:1:1: error: vmcoreinfo: the domain capabilities (caps.xml) do not "
        "support vmcoreinfo (<vmcoreinfo supported='no'>)"))
    no_rng = Q35.replace("<rng supported='yes'>", "<rng-gone supported='yes'>").replace(
        "</rng>", "</rng-gone>")
    code, _, err = compile_with(tmp_path, no_rng, "rng virtio")
    assert (code, err.splitlines()[0]) == (2, (
        "<trait 1>:1:1: error: rng virtio: the domain capabilities (caps.xml) do not list "
        "<rng>, so RNG model is not known to be available"))


def test_hyperv_features_are_checked_when_libvirt_lists_the_switches(tmp_path):
    # libvirt 9.0 lists only spinlocks and vendor_id: that says nothing of the rest.
    assert compile_with(tmp_path, Q35, "hyperv enlightenments")[0] == 0
    listed = "".join(f"        <value>{name}</value>\n" for name in (
        "relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "reset",
        "vendor_id", "frequencies"))
    caps = Q35.replace("        <value>spinlocks</value>\n        <value>vendor_id</value>\n",
                       listed)
    code, _, err = compile_with(tmp_path, caps, "hyperv enlightenments")
    assert (code, err.splitlines()[0]) == (2, (
        "<trait 1>:1:1: error: hyperv enlightenments: the domain capabilities (caps.xml) "
        "offer no Hyper-V enlightenment 'stimer' (<hyperv> enum 'features' lists relaxed, "
        "vapic, spinlocks, vpindex, runtime, synic, reset, vendor_id, frequencies)"))


def test_a_refused_preference_is_dropped_with_a_warning(tmp_path):
    code, out, err = compile_with(tmp_path, Q35, "prefer tpm")
    assert (code, "<tpm" in out, err.splitlines()[0]) == (0, False, (
        "<trait 1>:1:1: warning: preference 'tpm' dropped: it cannot hold: tpm: the "
        "domain capabilities (caps.xml) offer no TPM backend 'emulator' (<tpm> enum "
        "'backendModel' lists passthrough)"))


def test_the_api_takes_domain_capabilities():
    import virtuned

    with pytest.raises(VirtunedError) as caught:
        virtuned.compile(traits=["tpm"], domcaps=Q35, domcaps_name="q35.xml")
    assert str(caught.value).startswith("<trait 1>:1:1: tpm: the domain capabilities "
                                        "(q35.xml) offer no TPM backend 'emulator'")
    swtpm = (SAMPLES / "kvm-q35-swtpm.xml").read_text()
    assert "<tpm model=\"tpm-crb\">" in virtuned.compile(traits=["tpm"], domcaps=swtpm).xml
