"""What the host's hypervisor offers: ``virsh domcapabilities`` XML, read into facts.

The document is libvirt's answer for one emulator, arch, machine type and domain
type. It is parsed with the same hardening as domain XML (no DTD, no entity, no
network, size and depth limits) into frozen facts; traits ask these facts and refuse
what the hypervisor does not offer, naming the capability that is missing, instead of
emitting XML that fails when the domain starts. Without domain capabilities nothing
is checked: traits emit what libvirt's schema accepts.
"""

from __future__ import annotations

import functools

from virtuned import domain
from virtuned.diagnostics import Span, error
from virtuned.facts.platform import machine_family
from virtuned.frozen import frozen

KIND = "domain capabilities XML"


@frozen
class Capability:
    """One element of the document (``<tpm supported='yes'>`` and the like): whether
    it is supported and the values each of its ``<enum>`` lists."""

    supported: bool
    enums: tuple[tuple[str, tuple[str, ...]], ...] = ()
    line: int = 1  # where it is, for diagnostics

    def enum(self, name: str) -> tuple[str, ...]:
        return dict(self.enums).get(name, ())


@frozen
class Sev:
    """AMD SEV memory encryption, as ``<features><sev>`` describes it."""

    cbitpos: int | None
    reduced_phys_bits: int | None
    max_es_guests: int  # 0: SEV-ES (encrypted register state) is not available


@frozen
class DomainCaps:
    source: str  # how diagnostics name the document (its path)
    emulator: str | None
    domain_type: str | None  # kvm, qemu
    machine: str | None  # the full versioned name, e.g. pc-q35-7.2
    arch: str | None
    max_vcpus: int | None
    # Path from the root ("os", "os/loader", "devices/tpm", "features/sev") → facts.
    areas: tuple[tuple[str, Capability], ...]
    loaders: tuple[str, ...]  # firmware binaries libvirt knows
    cpu_modes: tuple[str, ...]  # the supported <cpu><mode> names
    sev: Sev | None  # None: SEV is not supported
    lines: tuple[tuple[str, int], ...] = ()  # top-level tag → its line, for messages

    def area(self, path: str) -> Capability | None:
        return dict(self.areas).get(path)

    def line_of(self, path: str) -> int:
        found = self.area(path)
        return found.line if found is not None else 1


def parse(data: bytes | str, filename: str) -> DomainCaps:
    """Read a ``virsh domcapabilities`` document, or raise VirtunedError (exit 2)."""
    return _parse_cached(data, filename)


@functools.lru_cache(maxsize=16)
def _parse_cached(data: bytes | str, filename: str) -> DomainCaps:
    root = domain.parse(data, filename, root_tag="domainCapabilities", kind=KIND).getroot()
    areas: list[tuple[str, Capability]] = []
    for path in ("os", "os/loader"):
        element = root.find(path)
        if element is not None:
            areas.append((path, _capability(element)))
    for group in ("devices", "features"):
        for element in root.iterfind(f"{group}/*"):
            if isinstance(element.tag, str):
                areas.append((f"{group}/{element.tag}", _capability(element)))
    return DomainCaps(
        source=filename,
        emulator=_text(root, "path"),
        domain_type=_text(root, "domain"),
        machine=_text(root, "machine"),
        arch=_text(root, "arch"),
        max_vcpus=_number(root.find("vcpu"), "max", filename),
        areas=tuple(areas),
        loaders=tuple((v.text or "").strip() for v in root.iterfind("os/loader/value")),
        cpu_modes=tuple(m.get("name") for m in root.iterfind("cpu/mode")
                        if m.get("supported") == "yes" and m.get("name")),
        sev=_sev(root.find("features/sev"), filename),
        lines=tuple((child.tag, child.sourceline or 1) for child in root
                    if isinstance(child.tag, str)),
    )


def _capability(element) -> Capability:
    enums = tuple((enum.get("name") or "", tuple((v.text or "").strip()
                                                 for v in enum.iterfind("value")))
                  for enum in element.iterfind("enum"))
    # <os> and <loader> list their values without a supported= in old libvirt.
    return Capability(element.get("supported", "yes") == "yes", enums,
                      element.sourceline or 1)


def _text(root, path: str) -> str | None:
    element = root.find(path)
    if element is None:
        return None
    return (element.text or "").strip() or None


def _number(element, attribute: str | None, filename: str) -> int | None:
    """An integer attribute (or, with ``attribute=None``, the element's text)."""
    if element is None:
        return None
    text = (element.text or "").strip() if attribute is None else element.get(attribute)
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        shown = f"<{element.tag}>{text}</{element.tag}>" if attribute is None \
            else f"<{element.tag} {attribute}='{text}'>"
        raise error(Span(filename, element.sourceline or 1, 1, anchor=f"<{element.tag}"),
                    f"{shown}: expected a whole number") from None


def _sev(element, filename: str) -> Sev | None:
    if element is None or element.get("supported") != "yes":
        return None
    return Sev(_number(element.find("cbitpos"), None, filename),
               _number(element.find("reducedPhysBits"), None, filename),
               _number(element.find("maxESGuests"), None, filename) or 0)


def check_platform(caps: DomainCaps, platform) -> None:
    """The capabilities must describe the domain's own platform: another machine
    family, arch or domain type has other devices and features."""
    if caps.machine and machine_family(caps.machine) != platform.family:
        raise _mismatch(caps, "machine", f"machine '{caps.machine}'",
                        f"has {platform.describe_machine()}",
                        f"virsh domcapabilities --machine {platform.machine}")
    if caps.arch and caps.arch != platform.arch:
        raise _mismatch(caps, "arch", f"arch '{caps.arch}'",
                        f"is for arch '{platform.arch}'",
                        f"virsh domcapabilities --arch {platform.arch}")
    if caps.domain_type and caps.domain_type != platform.domain_type:
        raise _mismatch(caps, "domain", f"domain type '{caps.domain_type}'",
                        f"is of type '{platform.domain_type}'",
                        f"virsh domcapabilities --virttype {platform.domain_type}")


def _mismatch(caps: DomainCaps, tag: str, described: str, actual: str, command: str):
    return error(Span(caps.source, _line_of_tag(caps, tag), 1, anchor=f"<{tag}>"),
                 f"the domain capabilities describe {described}, but the domain "
                 f"{actual}", hint=f"pass the capabilities of this domain's platform: "
                 f"{command}")


def _line_of_tag(caps: DomainCaps, tag: str) -> int:
    return dict(caps.lines).get(tag, 1)
