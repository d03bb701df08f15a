"""The host snapshot's shape as types: what ``virtuned host snapshot`` writes
(virtuned/facts/live.py) and ``--host``/``--hosts`` read (virtuned/facts/snapshot.py).

``virtuned/host.schema.json`` is generated from them (documents.py, checked for
staleness by tests/server/test_documents.py), and tests/facts/test_live.py checks
every snapshot it takes against that schema. The core library reads snapshots
without these types (it does not need msgspec).
"""

from typing import Annotated, Literal, Optional

from msgspec import Meta, Struct

from virtuned.server.contract import CpuList

Whole = Annotated[int, Meta(ge=0)]
Kib = Annotated[int, Meta(ge=0, description="KiB")]


class _Snapshot(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """No field but its own (additionalProperties false)."""


class Pages(_Snapshot):
    """One page size's pool on a node."""

    size_kib: Annotated[int, Meta(ge=1)]
    total: Annotated[Whole, Meta(description="pages in the pool (virsh capabilities)")]
    free: Annotated[Optional[Whole], Meta(description=(
        "pages free now (virNodeGetFreePages); null when the driver does not say"))]


class Distance(_Snapshot):
    node: Whole
    value: Whole


class Cpu(_Snapshot):
    id: Whole
    socket: Whole
    die: Whole
    core: Whole
    siblings: Annotated[CpuList, Meta(description="the threads of its core")]


class Node(_Snapshot):
    """A host NUMA node."""

    id: Whole
    memory_kib: Annotated[Optional[Kib], Meta(description="its memory; null when the "
                                                          "host does not say")]
    free_memory_kib: Annotated[Optional[Kib], Meta(description=(
        "its free memory now (virNodeGetCellsFreeMemory); null when the driver does "
        "not say"))]
    pages: list[Pages]
    distances: list[Distance]
    cpus: list[Cpu]


class GuestMemory(_Snapshot):
    """The memory of one of a guest's cells (or of the whole guest, without cells)."""

    nodes: Annotated[Optional[CpuList], Meta(description=(
        "the host nodes it is bound to (<numatune>); null: not bound"))]
    kib: Kib
    page_kib: Annotated[Optional[Annotated[int, Meta(ge=1)]], Meta(description=(
        "its hugepage size; null: not backed by hugepages"))]


class Guest(_Snapshot):
    """Another guest on the host, that runs now or starts with it. A CPU it pins a
    thread to alone is held by it."""

    name: Annotated[str, Meta(min_length=1)]
    running: bool
    autostart: bool
    vcpus: Annotated[dict[str, CpuList], Meta(description="<vcpupin>: vCPU → CPUs")]
    vcpu_cpuset: Annotated[Optional[CpuList], Meta(description="<vcpu cpuset>")]
    emulator: Annotated[Optional[CpuList], Meta(description="<emulatorpin>")]
    iothreads: Annotated[dict[str, CpuList], Meta(description=(
        "<iothreadpin>: I/O thread → CPUs"))]
    memory: list[GuestMemory]


class DomainCapabilities(_Snapshot):
    """``virsh domcapabilities`` of one platform of the host."""

    arch: Annotated[str, Meta(min_length=1)]
    virt_type: Annotated[str, Meta(min_length=1)]
    machine: Annotated[str, Meta(min_length=1)]
    xml: Annotated[str, Meta(min_length=1)]


class HostSnapshot(_Snapshot):
    """What 'virtuned host snapshot' writes."""

    format: Literal["virtuned host snapshot"]
    version: Literal[1]
    uri: Annotated[str, Meta(description="the libvirt URI it was read through")]
    hostname: Optional[str]
    nodes: Annotated[list[Node], Meta(min_length=1)]
    guests: list[Guest]
    domcaps: list[DomainCapabilities]
