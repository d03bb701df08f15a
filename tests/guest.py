"""A tiny guest that proves a compiled domain runs, and reports what it sees.

    from tests.guest import boot

    reports = boot({"server/q35": xml, ...})   # {name: Report}, one checker run

The guest is Debian's cloud kernel (package linux-image-cloud-amd64) and an
initramfs built here from busybox (package busybox-static): its /init prints
``REPORT`` lines on the serial console (ACPI, the CPUs and the x86-64-v2 flags it
sees, every PCI device's vendor:device and class, its memory and NUMA nodes), then
powers off. The compiled domain is booted as it is but for what a boot on a test
machine needs (booting-a-guest.md in ../shared/background): the kernel, initramfs
and command line in <os>, its serial port writing to a file, every disk on one
small image (cdroms dropped), and none of what a CI machine has none of to give
(hugepages, locked memory, real-time scheduling, pinning to host CPUs and nodes). libvirt's embedded QEMU driver runs it (tests/libvirt_checker.py
--boot), under TCG where /dev/kvm is not usable; the domain must shut itself off.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

KERNELS = "/boot/vmlinuz-*-cloud-amd64"
BUSYBOX = "/bin/busybox"
APT_PACKAGES = "linux-image-cloud-amd64 busybox-static"
# 'quiet': the kernel's own messages would interleave with the report's lines. Under
# TCG the kernel's check of the IO-APIC timer can fail on a busy host and panic
# (no_timer_check, as libguestfs' appliance boots); panic=-1 reboots at once.
CMDLINE = "console=ttyS0 panic=-1 quiet no_timer_check"
BOOT_SECONDS = 240  # per guest: a boot takes 8-30 s under TCG, far longer on a loaded machine

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "REPORT begin"
if [ -d /sys/firmware/acpi/tables ]; then echo "REPORT acpi yes"; else echo "REPORT acpi no"; fi
echo "REPORT cpus $(grep -c ^processor /proc/cpuinfo)"
for flag in sse4_2 ssse3 popcnt; do
    grep -qw "$flag" /proc/cpuinfo && echo "REPORT flag $flag"
done
for device in /sys/bus/pci/devices/*; do
    echo "REPORT pci $(cat "$device/vendor"):$(cat "$device/device") $(cat "$device/class")"
done
echo "REPORT memory_kib $(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
echo "REPORT nodes $(ls -d /sys/devices/system/node/node* 2>/dev/null | wc -l)"
echo "REPORT end"
poweroff -f
"""


@dataclass(frozen=True)
class Report:
    """What the guest printed, and how its run ended."""

    booted: bool  # it powered itself off within the time allowed
    error: str | None
    seconds: float | None
    lines: tuple[str, ...] = ()  # the REPORT lines, "REPORT " taken off
    console: str = ""  # the whole serial log, for messages

    def value(self, name: str) -> str | None:
        return next((line.split(" ", 1)[1] for line in self.lines
                     if line.split(" ", 1)[0] == name), None)

    @property
    def complete(self) -> bool:
        return "begin" in self.lines and "end" in self.lines

    @property
    def acpi(self) -> bool:
        return self.value("acpi") == "yes"

    @property
    def cpus(self) -> int:
        return int(self.value("cpus") or 0)

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(line.split(" ", 1)[1] for line in self.lines
                         if line.startswith("flag "))

    @property
    def pci(self) -> tuple[str, ...]:
        """``vendor:device class`` of each PCI device, as sysfs writes them."""
        return tuple(line.split(" ", 1)[1] for line in self.lines if line.startswith("pci "))


def guest_unavailable() -> str | None:
    """Why no guest can be built here, or None."""
    if not glob.glob(KERNELS) or not os.path.isfile(BUSYBOX):
        return f"booting a guest needs {APT_PACKAGES} (apt-get install, or run .ci/run)"
    return None


def _cpio(entries) -> bytes:
    """A gzip'd newc cpio archive of (name, mode, data) entries."""
    out = io.BytesIO()
    for inode, (name, mode, data, rdev) in enumerate(entries + [("TRAILER!!!", 0, b"", 0)], 1):
        encoded = name.encode() + b"\0"
        header = "070701" + "".join(f"{value:08x}" for value in (
            inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev >> 8, rdev & 0xff,
            len(encoded), 0))
        out.write(header.encode() + encoded)
        out.write(b"\0" * (-(110 + len(encoded)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))
    return gzip.compress(out.getvalue(), mtime=0)


def build(folder: Path) -> tuple[Path, Path]:
    """The kernel and the initramfs, in ``folder`` (readable by the checker's user)."""
    kernel = folder / "vmlinuz"
    shutil.copyfile(sorted(glob.glob(KERNELS))[-1], kernel)
    entries = [(name, stat.S_IFDIR | 0o755, b"", 0) for name in ("bin", "proc", "sys", "dev")]
    entries += [("dev/console", stat.S_IFCHR | 0o600, b"", (5 << 8) | 1),
                ("bin/busybox", stat.S_IFREG | 0o755, Path(BUSYBOX).read_bytes(), 0),
                ("init", stat.S_IFREG | 0o755, INIT.encode(), 0)]
    initrd = folder / "initrd.gz"
    initrd.write_bytes(_cpio(entries))
    for path in (kernel, initrd):
        path.chmod(0o644)
    return kernel, initrd


def bootable(xml: str, kernel: Path, initrd: Path, image: Path, log: Path) -> str:
    """The compiled domain, as a test machine can boot it: direct kernel boot, its
    first serial port writing to ``log``, its disks on ``image``, no cdroms, and no
    host resources (memory backing, CPU tuning, NUMA binding)."""
    root = etree.fromstring(xml.encode())
    os_element = root.find("os")
    for tag, text in (("kernel", str(kernel)), ("initrd", str(initrd)),
                      ("cmdline", CMDLINE)):
        element = os_element.find(tag)
        if element is None:
            element = etree.SubElement(os_element, tag)
        element.text = text
    devices = root.find("devices")
    if devices is None:
        devices = etree.SubElement(root, "devices")
    for disk in devices.findall("disk"):
        if disk.get("device", "disk") != "disk":
            devices.remove(disk)
            continue
        disk.set("type", "file")
        for child in disk.findall("source") + disk.findall("driver"):
            disk.remove(child)
        disk.insert(0, etree.Element("source", file=str(image)))
        disk.insert(0, etree.Element("driver", name="qemu", type="raw"))
    for element in devices.findall("serial"):
        devices.remove(element)
    for tag in ("memoryBacking", "cputune", "numatune"):
        for element in root.findall(tag):
            root.remove(element)
    serial = etree.SubElement(devices, "serial", type="file")
    etree.SubElement(serial, "source", path=str(log))
    etree.SubElement(serial, "target", port="0")
    for console in devices.findall("console"):
        console.set("type", "file")
        for source in console.findall("source"):
            console.remove(source)
        etree.SubElement(console, "source", path=str(log))
    return etree.tostring(root, encoding="unicode")


def _reports(results, log_of) -> dict[str, Report]:
    """Each guest's report: libvirt's verdict and what its console says."""
    reports = {}
    for name, result in results.items():
        log = log_of[name]
        console = log.read_text(errors="replace") if log.exists() else ""
        # A line may begin with what the firmware or the kernel left on the console.
        lines = tuple(found.strip() for line in console.splitlines()
                      for found in re.findall(r"REPORT (.*)", line)[:1])
        problems = result.problems()
        reports[name] = Report(result.ok, "; ".join(problems) or None,
                               result.boot_seconds, lines, console)
    return reports


def boot(domains: dict[str, str], seconds: float = BOOT_SECONDS) -> dict[str, Report]:
    """Boot each compiled domain (name → XML); every guest's report, by name."""
    import pytest

    from tests.libvirt import check_with_libvirt, in_ci

    reason = guest_unavailable()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="virtuned-guest-", dir="/var/tmp"))
    try:
        folder.chmod(0o755)
        kernel, initrd = build(folder)
        image = folder / "disk.raw"
        with open(image, "wb") as handle:
            handle.truncate(1 << 20)
        image.chmod(0o666)  # QEMU runs as the checker's user
        logs = folder / "logs"
        logs.mkdir()
        logs.chmod(0o777)  # QEMU runs as the checker's user
        log_of = {name: logs / f"{index}.log" for index, name in enumerate(domains)}
        ready = {name: bootable(xml, kernel, initrd, image, log_of[name])
                 for name, xml in domains.items()}
        reports = _reports(check_with_libvirt(ready, boot=seconds), log_of)
        # A guest that never reached its init (no report at all, under TCG on a busy
        # host) boots once more: a domain that cannot boot fails both times, and the
        # message keeps the first console too.
        again = {name: ready[name] for name, report in reports.items()
                 if not report.booted and "begin" not in report.lines}
        for name in again:
            if log_of[name].exists():
                log_of[name].rename(log_of[name].with_suffix(".first"))
        if again:
            retried = _reports(check_with_libvirt(again, boot=seconds), log_of)
            for name, report in retried.items():
                first = log_of[name].with_suffix(".first")
                first = first.read_text(errors="replace") if first.exists() else ""
                reports[name] = report if report.booted else Report(
                    False, f"{report.error} (twice; the first time: {reports[name].error})",
                    report.seconds, report.lines,
                    f"{report.console}\n--- the first boot's console:\n{first}")
        return reports
    finally:
        shutil.rmtree(folder, ignore_errors=True)
