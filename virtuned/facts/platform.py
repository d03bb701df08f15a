"""The guest's platform: what the input domain states about it, and the platform
the traits and the defaults make of that.

The platform is decided before anything is emitted, so every trait sees the same
machine type whichever order it runs in: a ``machine`` trait wins, then what the
input states, then libvirt's own default (an ``<os><type>`` without a machine gets
QEMU's default, ``pc``), and a domain with no ``<os>`` at all becomes q35.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from virtuned import domain, values
from virtuned.frozen import frozen

DEFAULT_ARCH = "x86_64"
DEFAULT_MACHINE = "q35"
DEFAULT_DOMAIN_TYPE = "kvm"


def machine_family(machine: str) -> str:
    """``q35`` for q35 machines, ``pc`` for i440fx ones, else the machine itself."""
    if machine == "q35" or machine.startswith("pc-q35"):
        return "q35"
    if machine == "pc" or machine.startswith("pc-"):
        return "pc"
    return machine


@frozen
class Platform:
    """Facts about the machine the guest will have, as flags (sqlglot-dialect style)."""

    domain_type: str
    arch: str
    machine: str  # as written, e.g. "q35" or "pc-i440fx-7.2"
    # Where the machine came from, for messages: "a trait", "the input", ...
    machine_source: str = "the input"

    def describe_machine(self) -> str:
        return f"machine type '{self.machine}' ({self.machine_source})"

    @property
    def family(self) -> str:
        return machine_family(self.machine)

    @property
    def x86(self) -> bool:
        return self.arch in ("x86_64", "i686")

    @property
    def has_pcie(self) -> bool:
        return self.family == "q35"


class Stated(NamedTuple):
    """What the input domain says about its platform (None: it says nothing).
    (A NamedTuple: each request makes one and the cache of resolved requests hashes
    and compares it as part of its key, all in C for a tuple; a frozen attrs class
    takes ~10k instructions more to make, hash and compare.)"""

    domain_type: str | None
    machine: str | None
    arch: str | None
    has_os_type: bool
    # The osinfo URI of the guest OS in the input's libosinfo metadata, which
    # virt-install and virt-manager write.
    os_uri: str | None = None
    # The guest's <memory> (KiB) and <vcpu> count, where the input states them.
    memory_kib: int | None = None
    vcpus: int | None = None


# Inside <metadata>: <libosinfo:libosinfo><libosinfo:os id=URI/>, as virt-install
# writes it.
_LIBOSINFO = "{http://libosinfo.org/xmlns/libvirt/domain/1.0}libosinfo"
_LIBOSINFO_OS = "{http://libosinfo.org/xmlns/libvirt/domain/1.0}os"


def stated_platform(root) -> Stated:
    stated = domain.first_children(root)
    # Most inputs have no <metadata>, so the namespaced path is looked up only in one.
    metadata, os_element = stated.get("metadata"), stated.get("os")
    os_uri = _libosinfo_os(metadata) if metadata is not None else None
    os_type = next(os_element.iterchildren("type"), None) if os_element is not None \
        else None
    sizes = _stated_sizes(stated.get("memory"), stated.get("vcpu"))
    if os_type is None:
        return Stated(root.get("type"), None, None, False, os_uri, *sizes)
    return Stated(root.get("type"), os_type.get("machine"), os_type.get("arch"), True,
                  os_uri, *sizes)


def _libosinfo_os(metadata) -> str | None:
    """The osinfo URI the input's <metadata> names, if any (a search of the children
    per step, in lxml's C, costs less than a path through find)."""
    libosinfo = next(metadata.iterchildren(_LIBOSINFO), None)
    stated_os = next(libosinfo.iterchildren(_LIBOSINFO_OS), None) \
        if libosinfo is not None else None
    return stated_os.get("id") if stated_os is not None else None


def _stated_sizes(memory, vcpu) -> tuple[int | None, int | None]:
    """The input's memory (KiB) and vCPU count, where it states them readably (the
    planner reports what it cannot read)."""
    try:
        kib = values.kib((memory.text or "").strip(), memory.get("unit")) \
            if memory is not None else None
    except ValueError:
        kib = None
    count = (vcpu.text or "").strip() if vcpu is not None else ""
    return kib, values.whole_or_none(count)


def platform_of(stated: Stated, decided, preferred=None) -> Platform:
    """The platform: facts the traits decide (``machine``) over what the input states
    over what a trait prefers where neither says (``recommended`` for an OS without
    q35 drivers) over the defaults."""
    preferred = preferred or {}
    if decided.get("machine"):
        machine, source = decided["machine"], "set by a trait"
    elif stated.machine:
        machine, source = stated.machine, "stated by the input"
    elif preferred.get("machine"):
        machine, source = preferred["machine"], "preferred by a trait"
    elif stated.has_os_type:
        machine, source = "pc", "QEMU's default: the input's <os><type> names no machine"
    else:
        machine, source = DEFAULT_MACHINE, "virtuned's default: the input has no <os>"
    return _platform(stated.domain_type or DEFAULT_DOMAIN_TYPE, stated.arch or DEFAULT_ARCH,
                     machine, source)


# The few platforms requests have, each made once: a frozen attrs class sets its
# fields one by one, and every compile asks for one.
_platform = functools.lru_cache(maxsize=256)(Platform)



def os_facts(stated: Stated, decided) -> dict:
    """The guest OS facts: an 'os ID' trait's, else the OS the input's metadata
    names (when the local osinfo-db knows it), else none."""
    if decided.get("os"):
        return {"os": decided["os"], "os family": decided["os family"]}
    if stated.os_uri is None:
        return {}
    from virtuned.facts import osinfo  # here: few inputs name their OS (2 % of a CLI run)

    known = osinfo.by_id(stated.os_uri)
    return {} if known is None else {"os": known.short_id, "os family": known.family}

