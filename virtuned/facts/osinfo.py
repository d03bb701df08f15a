"""Guest operating systems from osinfo-db, read as XML (no libosinfo, no GObject).

Debian's ``osinfo-db`` package ships one XML file per OS under
``/usr/share/osinfo/os/VENDOR/``. An OS inherits the devices and firmware of the
OSes it ``derives-from`` or ``clones`` (transitively), and the nearest statement
wins: ``<device id=... supported='false'/>`` in an OS hides a device an ancestor
lists, and a nearer ``supported='true'`` brings it back, as libosinfo does.
``OSINFO_SYSTEM_DIR`` points elsewhere (as it does for libosinfo).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from virtuned.diagnostics import did_you_mean
from virtuned.frozen import frozen

DEFAULT_DIR = "/usr/share/osinfo"

# PCI/USB/chipset ids of the devices a guest OS may have drivers for, by what they
# are (osinfo-db's device ids, as virtinst's osdict checks them).
DEVICES = {
    "virtio-net": ("http://pcisig.com/pci/1af4/1000", "http://pcisig.com/pci/1af4/1041"),
    "virtio-block": ("http://pcisig.com/pci/1af4/1001", "http://pcisig.com/pci/1af4/1042"),
    "virtio-balloon": ("http://pcisig.com/pci/1af4/1002", "http://pcisig.com/pci/1af4/1045"),
    "virtio-serial": ("http://pcisig.com/pci/1af4/1003", "http://pcisig.com/pci/1af4/1043"),
    "virtio-rng": ("http://pcisig.com/pci/1af4/1005", "http://pcisig.com/pci/1af4/1044"),
    "virtio-scsi": ("http://pcisig.com/pci/1af4/1004", "http://pcisig.com/pci/1af4/1048"),
    "virtio-gpu": ("http://pcisig.com/pci/1af4/1050",),
    "qemu-xhci": ("http://pcisig.com/pci/1b36/0004",),
    "q35": ("http://qemu.org/chipset/x86/q35",),
    "e1000e": ("http://pcisig.com/pci/8086/10d3",),
    "e1000": ("http://pcisig.com/pci/8086/100e",),
    "rtl8139": ("http://pcisig.com/pci/10ec/8139",),
}

# osinfo's <family> → the 'os family' fact of conditions.
FAMILIES = {"linux": "linux", "winnt": "windows", "win9x": "windows", "win16": "windows",
            "msdos": "windows", "freebsd": "bsd", "netbsd": "bsd", "openbsd": "bsd",
            "dragonflybsd": "bsd", "solaris": "solaris", "darwin": "darwin"}


@frozen
class Firmware:
    arch: str
    type: str  # bios, efi
    supported: bool


@frozen
class Resources:
    """What osinfo-db says an OS needs (minimum) and runs well with (recommended)."""

    arch: str
    minimum_ram: int | None = None  # bytes
    minimum_cpus: int | None = None
    recommended_ram: int | None = None
    recommended_cpus: int | None = None


@frozen
class OsInfo:
    id: str  # the osinfo URI, e.g. http://microsoft.com/win/11
    short_id: str  # as asked for, e.g. win11
    name: str
    family: str  # the 'os family' fact: linux, windows, bsd, solaris, darwin, other
    devices: frozenset[str]  # every supported device id, inheritance applied
    firmware: tuple[Firmware, ...]  # inheritance applied, nearest first
    resources: tuple[Resources, ...] = ()  # the OS's own, as libosinfo reads them

    def resources_for(self, arch: str = "x86_64") -> Resources:
        """Its resources for ``arch`` (that arch's, else those for every arch)."""
        return next((r for r in self.resources if r.arch == arch),
                    next((r for r in self.resources if r.arch == "all"), Resources("all")))

    def supports(self, kind: str) -> bool:
        """Whether the OS has drivers for a device kind of ``DEVICES``."""
        return any(device in self.devices for device in DEVICES[kind])

    def requires_uefi(self, arch: str = "x86_64") -> bool:
        """UEFI is supported and BIOS is not (virtinst's requires_firmware_efi)."""
        types = {f.type: f.supported for f in self.firmware if f.arch == arch}
        return types.get("efi") is True and types.get("bios") is False


class UnknownOs(ValueError):
    pass


def directory() -> Path:
    return Path(os.environ.get("OSINFO_SYSTEM_DIR") or DEFAULT_DIR)


def lookup(short_id: str) -> OsInfo:
    """The OS with this short id, or UnknownOs saying what is close."""
    return _lookup(short_id, str(directory()))


@functools.lru_cache(maxsize=64)
def _lookup(short_id: str, root: str) -> OsInfo:
    index = _index(root)
    if not index.by_short_id:
        raise UnknownOs(f"no osinfo database at {root}/os (Debian: apt-get install "
                        "osinfo-db)")
    path = index.by_short_id.get(short_id)
    if path is None:
        hint = did_you_mean(short_id, index.by_short_id, 3)
        raise UnknownOs(f"unknown OS '{short_id}' in osinfo-db" + (f" ({hint})" if hint else ""))
    own = _read(path)
    devices, firmware = _inherited(own, index)
    return OsInfo(own.id, short_id, own.name, FAMILIES.get(own.family or "", "other"),
                  frozenset(d for d, supported in devices.items() if supported),
                  tuple(firmware), own.resources)


def by_id(uri: str) -> OsInfo | None:
    """The OS with this osinfo URI (as libosinfo metadata names it), if known."""
    index = _index(str(directory()))
    path = index.by_id.get(uri)
    if path is None:
        return None
    own = _read(path)
    return lookup(own.short_ids[0]) if own.short_ids else None


@frozen
class _Index:
    by_short_id: dict
    by_id: dict


# Patterns are compiled when first used (re's own cache): a run needs few of them.
_SHORT_ID = rb"<short-id>([^<]+)</short-id>"
_OS_ID = rb"<os\s+id=\"([^\"]+)\""


@functools.lru_cache(maxsize=4)
def _index(root: str) -> _Index:
    """Short ids and URIs → files, from a quick scan of every file (reading all 800
    files' short ids takes about 40 ms; only the files an OS needs are parsed)."""
    by_short_id, by_id = {}, {}
    for path in sorted(Path(root, "os").glob("*/*.xml")):
        data = path.read_bytes()
        for uri in re.findall(_OS_ID, data):
            by_id[uri.decode()] = path
        for short_id in re.findall(_SHORT_ID, data):
            by_short_id.setdefault(short_id.decode().strip(), path)
    return _Index(by_short_id, by_id)


@frozen
class _Entry:
    """One OS as its own file states it, before inheritance."""

    id: str
    short_ids: tuple[str, ...]
    name: str
    family: str | None
    parents: tuple[str, ...]  # derives-from and clones URIs, in file order
    devices: tuple[tuple[str, bool], ...]
    firmware: tuple[Firmware, ...]
    resources: tuple[Resources, ...] = ()


@functools.lru_cache(maxsize=256)
def _read(path: Path) -> _Entry:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    element = etree.parse(str(path), parser).getroot().find("os")
    return _Entry(
        id=element.get("id"),
        short_ids=tuple((e.text or "").strip() for e in element.iterfind("short-id")),
        name=(element.findtext("name") or "").strip(),
        family=(element.findtext("family") or "").strip() or None,
        parents=tuple(e.get("id") for e in element if e.tag in ("derives-from", "clones")),
        devices=tuple((d.get("id"), d.get("supported", "true") != "false")
                      for d in element.iterfind("devices/device")),
        firmware=tuple(Firmware(f.get("arch", "all"), f.get("type"),
                                f.get("supported", "true") != "false")
                       for f in element.iterfind("firmware")),
        resources=tuple(_resources(r) for r in element.iterfind("resources")),
    )


def _resources(element) -> Resources:
    def number(path: str) -> int | None:
        text = (element.findtext(path) or "").strip()
        return int(text) if text.isascii() and text.isdigit() else None

    return Resources(element.get("arch", "all"), number("minimum/ram"),
                     number("minimum/n-cpus"), number("recommended/ram"),
                     number("recommended/n-cpus"))


def _inherited(own: _Entry, index: _Index) -> tuple[dict, list]:
    """Devices (id → supported) and firmware of an OS and its ancestors, nearest
    statement first (breadth-first, so a parent outranks a grandparent)."""
    devices: dict[str, bool] = {}
    firmware: list[Firmware] = []
    seen_firmware: set[tuple[str, str]] = set()
    queue, seen = [own], {own.id}
    while queue:
        entry = queue.pop(0)
        for device, supported in entry.devices:
            devices.setdefault(device, supported)
        for item in entry.firmware:
            if (item.arch, item.type) not in seen_firmware:
                seen_firmware.add((item.arch, item.type))
                firmware.append(item)
        for parent in entry.parents:
            path = index.by_id.get(parent)
            if parent not in seen and path is not None:
                seen.add(parent)
                queue.append(_read(path))
    return devices, firmware
