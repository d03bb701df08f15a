"""The emit kit: the whole surface a trait module (``virtuned/vocab/``) imports.

A trait declares itself with ``trait`` and emits edits built from these pieces;
it reads the input tree and the plan through its context (``emit.Context``) and
never touches XML itself.
"""

from virtuned.diagnostics import ExitCode, Related, error  # noqa: F401
from virtuned.domain import element_span, int_attr  # noqa: F401
from virtuned.emit import devices, hypervisor, pinning  # noqa: F401
from virtuned.emit.edits import Add, E, Ensure, SetAttr, SetText, conflict, el  # noqa: F401
from virtuned.facts import osinfo  # noqa: F401
from virtuned.facts.platform import machine_family  # noqa: F401
from virtuned.plan.requirements import (CpuPolicy, DeviceAffinity, EmulatorPolicy,  # noqa: F401
                                        GuestCells, Hugepages, HostNode, IoThreads,
                                        MemorySize, Realtime, Topology, VcpuCount)
from virtuned.resolve.registry import Expansion, slot_type, trait  # noqa: F401
from virtuned.values import format_cpulist, format_kib, parse_cpulist  # noqa: F401
