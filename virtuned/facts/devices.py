"""Host PCI device addresses: as lspci and sysfs write them (``--device-node``), and
as a domain's ``<hostdev>`` names them, both normalized to ``0000:3b:00.0``."""

from __future__ import annotations

import re


def pci_address(text: str) -> str:
    """A host PCI address as lspci and sysfs write it, ``[DDDD:]BB:SS.F`` in hex,
    normalized to ``0000:3b:00.0``; ValueError if it is not one."""
    match = re.fullmatch(r"(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})"
                         r"\.([0-7])", text.strip())
    if match is None:
        raise ValueError(f"expected a PCI address like 0000:3b:00.0, got {text!r}")
    domain, bus, slot, function = match.groups()
    return f"{int(domain or '0', 16):04x}:{int(bus, 16):02x}:{int(slot, 16):02x}." \
           f"{int(function, 16)}"


def hostdev_address(hostdev) -> str | None:
    """The host PCI address of a ``<hostdev type='pci'>``, normalized; None when it
    names none or names it in a way libvirt would refuse."""
    source = hostdev.find("source/address")
    if hostdev.get("type") != "pci" or source is None:
        return None
    try:
        parts = [int(source.get(name, "0"), 0) for name in ("domain", "bus", "slot",
                                                              "function")]
    except ValueError:
        return None
    return "{:04x}:{:02x}:{:02x}.{}".format(*parts)
