"""TraitSet + input domain → Plan: the platform every emitter works against.

The platform is decided before anything is emitted, so every trait sees the same
machine type whichever order it runs in: a ``machine`` trait wins, then what the
input states, then libvirt's own default (an ``<os><type>`` without a machine gets
QEMU's default, ``pc``), and a domain with no ``<os>`` at all becomes q35.
"""

from __future__ import annotations

import attrs

from virtuned.resolve import TraitSet

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


@attrs.frozen
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
    def has_pcie(self) -> bool:
        return self.family == "q35"

    @property
    def ide_allowed(self) -> bool:
        return self.family == "pc"


@attrs.frozen
class Plan:
    traits: TraitSet
    platform: Platform


def plan(traits: TraitSet, tree) -> Plan:
    root = tree.getroot()
    os_type = root.find("os/type")
    facts = traits.facts
    if os_type is None:
        input_machine, input_arch = None, None
    else:
        input_machine, input_arch = os_type.get("machine"), os_type.get("arch")
    if facts.get("machine"):
        machine, source = facts["machine"], "set by a trait"
    elif input_machine:
        machine, source = input_machine, "stated by the input"
    elif os_type is not None:
        machine, source = "pc", "QEMU's default: the input's <os><type> names no machine"
    else:
        machine, source = DEFAULT_MACHINE, "virtuned's default: the input has no <os>"
    platform = Platform(
        domain_type=root.get("type") or DEFAULT_DOMAIN_TYPE,
        arch=input_arch or DEFAULT_ARCH,
        machine=machine,
        machine_source=source,
    )
    return Plan(traits, platform)
