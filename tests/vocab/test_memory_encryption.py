"""``memory encryption`` (AMD SEV). Its refusals are golden cases (tests/golden/
platform/); its output is checked here, because libvirt's QEMU driver accepts SEV
only on a host that has it: on any other host the schema check passes and the driver
refuses with exactly the capability that is missing."""

from __future__ import annotations

from pathlib import Path

from tests.cli_run import run

GOLDEN = Path(__file__).parents[1] / "golden"
INPUT = (GOLDEN / "devices/tpm-q35/input.xml").read_text()
SEV_CAPS = Path(__file__).parents[1] / "domcaps/kvm-q35-sev.xml"


def compile_sev(tmp_path, *extra: str) -> str:
    (tmp_path / "in.xml").write_text(INPUT)
    code, out, err = run(["compile", "in.xml", "-t", "memory encryption", *extra],
                         cwd=tmp_path)
    assert (code, err) == (0, "")
    return out


def test_with_the_hosts_sev_parameters(tmp_path):
    out = compile_sev(tmp_path, "--domcaps", str(SEV_CAPS))
    assert out[out.index("  <os"):] == """\
  <os firmware="efi">
    <type arch="x86_64" machine="q35">hvm</type>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode="host-passthrough" check="none" migratable="on"/>
  <clock offset="utc">
    <timer name="rtc" tickpolicy="catchup"/>
    <timer name="pit" tickpolicy="delay"/>
    <timer name="hpet" present="no"/>
  </clock>
  <pm>
    <suspend-to-mem enabled="no"/>
    <suspend-to-disk enabled="no"/>
  </pm>
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2"/>
      <source file="/var/lib/libvirt/images/guest.qcow2"/>
      <target dev="sda"/>
    </disk>
    <disk type="file" device="cdrom">
      <driver name="qemu" type="raw"/>
      <target dev="sdb" bus="sata"/>
      <readonly/>
    </disk>
    <controller type="scsi" index="0" model="virtio-scsi"/>
    <interface type="user">
      <mac address="52:54:00:12:34:56"/>
      <model type="virtio"/>
    </interface>
  </devices>
  <launchSecurity type="sev">
    <cbitpos>51</cbitpos>
    <reducedPhysBits>1</reducedPhysBits>
    <policy>0x0003</policy>
  </launchSecurity>
</domain>
"""


def test_without_domain_capabilities_libvirt_reads_the_host_at_start(tmp_path):
    out = compile_sev(tmp_path)
    assert out[out.index("  <launchSecurity"):] == """\
  <launchSecurity type="sev">
    <policy>0x0003</policy>
  </launchSecurity>
</domain>
"""


def test_with_uefi_and_secure_boot_it_is_one_firmware(tmp_path):
    out = compile_sev(tmp_path, "-t", "firmware uefi secure-boot")
    assert out.count('<os firmware="efi">') == 1 and out.count("<acpi/>") == 1


def test_libvirt_accepts_the_schema_and_names_the_missing_hardware(tmp_path):
    from tests.libvirt import check_with_libvirt

    outputs = {"with-domcaps": compile_sev(tmp_path, "--domcaps", str(SEV_CAPS)),
               "without": compile_sev(tmp_path),
               "secure-boot": compile_sev(tmp_path, "-t", "firmware uefi secure-boot")}
    verdicts = {name: (r.rng, r.qemu, r.qemu_error)
                for name, r in check_with_libvirt(outputs).items()}
    assert set(verdicts.values()) <= {SEV_REFUSED, ("PASS", "PASS", None)}
    assert len(set(verdicts.values())) == 1  # the host has SEV, or it has not


# What libvirt's QEMU driver says on a host without SEV (all but AMD EPYC hosts with
# SEV enabled): the only thing wrong with the domain is the missing hardware.
SEV_REFUSED = ("PASS", "FAIL", "unsupported configuration: SEV launch security is not "
               "supported with this QEMU binary")
