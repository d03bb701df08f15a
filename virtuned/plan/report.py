"""The answers of ``plan`` and ``fit`` as JSON values, for schedulers.

Their shape is a contract: ``virtuned/plan.schema.json`` (JSON Schema 2020-12),
shipped with the package, describes both; it is generated from the types of
virtuned/server/contract.py (which the HTTP service answers with), and the tests
validate every answer against it. CPU and node lists use libvirt's syntax (``0-3,8``).
"""

from __future__ import annotations

from virtuned.values import format_cpulist

SCHEMA = "plan.schema.json"


def requirements_json(req, realtime: bool = False) -> dict:
    """What the guest needs of any host."""
    dedicated = req.vcpus if req.dedicated else 0
    isolated_emulator = int(req.emulator == "isolated")
    return {
        "vcpus": req.vcpus,
        "memory_kib": req.memory_kib,
        "cpus": {
            "policy": req.cpus,
            "threads": req.threads if req.dedicated else None,
            "threads_per_core": req.threads_per_core
            if req.dedicated and req.threads == "require" else None,
            "dedicated": dedicated + isolated_emulator,
            "shared": req.vcpus if not req.dedicated else 0,
            "realtime": realtime,
        },
        "emulator": {"policy": req.emulator, "dedicated_cpus": isolated_emulator},
        "iothreads": req.iothreads,
        "hugepages": None if not req.page_kib else {
            "page_kib": req.page_kib, "pages": req.memory_kib // req.page_kib},
        "host_node": req.host_node,
        "guest_numa": req.guest_numa,
        "cells": [{"id": cell.id, "vcpus": format_cpulist(cell.vcpus),
                   "cpus": len(cell.vcpus),
                   "dedicated_cpus": len(cell.vcpus) if req.dedicated else 0,
                   "memory_kib": cell.memory_kib,
                   "hugepages": req.pages(cell)}
                  for cell in req.cells],
        "needs_host": req.placed,
    }


def placement_json(placement) -> dict | None:
    """Where the guest goes on one host."""
    if placement is None:
        return None
    return {
        "nodes": format_cpulist(placement.nodes),
        "cpuset": format_cpulist(placement.cpuset),
        "cells": [{"cell": cell.cell, "host_node": cell.node,
                   "vcpus": {str(vcpu): format_cpulist(cpus) for vcpu, cpus in cell.pins}}
                  for cell in placement.cells],
        "emulator": format_cpulist(placement.emulator),
        "iothreads": format_cpulist(placement.iothreads) or None,
    }


def score(req, placement, facts) -> float:
    """How well a host the guest fits on suits it, 0 to 1, higher better, for a
    scheduler to sort by (docs/placement.md#ranking-hosts): 0.9 times the mean of
    the fractions of the host's CPUs and memory (or pages) this guest could use that
    stay free after it is placed, plus 0.1 when it is not bound to more than one
    host node. Rounded to 4 places."""
    usable = frozenset().union(*(facts.usable(cell, req.dedicated)
                                 for cell in facts.host.cells))
    taken: set[int] = set()
    if placement is not None and req.dedicated:
        used = placement.cpuset
        for cell in facts.host.cells:  # isolate leaves a used core's other threads idle
            if used.isdisjoint(cell.cpu_ids):  # its cores need not be worked out
                continue
            for core in cell.cores():
                if not used.isdisjoint(core):
                    taken.update(core if req.threads == "isolate" else used.intersection(core))
    free_cpus = _left(len(usable), len(taken & usable))
    cells = facts.host.cells
    if req.page_kib:
        free_memory = _left(sum(cell.pool(req.page_kib) for cell in cells),
                            req.memory_kib // req.page_kib)
    elif any(cell.memory_kib is None for cell in cells):  # unstated: not counted
        free_memory = 1.0
    else:
        free_memory = _left(sum(cell.memory_kib for cell in cells), req.memory_kib)
    spans = placement is not None and len(placement.nodes) > 1
    return round(0.9 * (free_cpus + free_memory) / 2 + 0.1 * (not spans), 4)


def _left(offered: int, taken: int) -> float:
    """The fraction of ``offered`` left after ``taken``; all of it when none is."""
    return max(offered - taken, 0) / offered if offered else 1.0
