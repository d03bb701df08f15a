"""The emit kit: the whole surface a trait module (``virtuned/vocab/``) imports.

A trait declares itself with ``trait`` and emits edits built from these pieces;
it reads the input tree and the plan through its context (``emit.Context``, whose
``find``, ``find_in`` and ``devices_of`` find the input's elements once per compile
for every emitter) and never touches XML itself.
"""

from virtuned.diagnostics import ExitCode, Related, error
from virtuned.domain import element_span, int_attr
from virtuned.emit import devices, hypervisor, pinning
from virtuned.emit.edits import Add, E, Ensure, Remove, SetAttr, SetText, conflict, el
from virtuned.facts.platform import machine_family
from virtuned.frozen import frozen
from virtuned.plan.requirements import (CpuPolicy, DeviceAffinity, EmulatorPolicy,
                                        GuestCells, Hugepages, HostNode, IoThreads,
                                        MemorySize, Realtime, Topology, VcpuCount)
from virtuned.resolve.registry import Expansion, completion, slot_type, trait
from virtuned.values import format_cpulist, format_kib, parse_cpulist, whole_or_none

__all__ = [
    "Add", "CpuPolicy", "DeviceAffinity", "E", "EmulatorPolicy", "Ensure", "ExitCode",
    "Expansion", "GuestCells", "HostNode", "Hugepages", "IoThreads", "MemorySize",
    "Realtime", "Related", "Remove", "SetAttr", "SetText", "Topology", "VcpuCount",
    "completion", "conflict", "devices", "el", "element_span", "error",
    "format_cpulist", "format_kib", "frozen", "hypervisor", "int_attr",
    "machine_family", "osinfo", "parse_cpulist", "pinning", "slot_type", "trait",
    "whole_or_none"]


def __getattr__(name: str):
    """``osinfo`` (virtuned/facts/osinfo.py), imported when a trait first reads it:
    only an 'os' trait needs osinfo-db, and importing it cost every CLI compile 2 %."""
    if name == "osinfo":
        from virtuned.facts import osinfo

        return osinfo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
