"""TraitSet + input domain (+ host) → Plan: the platform every emitter works
against, what the guest needs of any host, and where it goes on the one given.

The platform is facts/platform.py's; what the guest needs is requirements.py's;
where it goes on a host is placement.py's search. Everything here is decided once,
before anything is emitted, so every trait sees the same plan.
"""

from __future__ import annotations

from collections import Counter

import attrs

from virtuned.diagnostics import Diagnostic, ExitCode, error
from virtuned.facts.devices import hostdev_address
from virtuned.facts.platform import Platform, Stated, os_facts, platform_of, stated_platform
from virtuned.frozen import frozen
from virtuned.plan import limits
from virtuned.plan.requirements import (PLACING, DeviceAffinity, Hugepages, Requirements,
                                        check_cover, requirements)
from virtuned.resolve import TraitSet
from virtuned.resolve.model import preferred_facts


@frozen
class Plan:
    traits: TraitSet
    platform: Platform
    # What the host's hypervisor offers (``--domcaps``); None: nothing is checked.
    domcaps: object = None  # domcaps.DomainCaps
    # Host NUMA node of host PCI devices (``--device-node``), by normalized address.
    device_nodes: tuple[tuple[str, int], ...] = ()
    # The guest OS (osinfo short id) and its family, from 'os ID' or the input.
    os: str | None = None
    os_family: str | None = None
    # What the guest needs of any host, and where it goes on this one (None: no
    # --host, or nothing to place).
    requirements: Requirements | None = None
    placement: object = None  # placement.Placement
    host: object = None  # host.HostFacts, when --host is given
    # The type of a need (plan/requirements.py) → the trait that asked for it first.
    asked_by: tuple[tuple[type, object], ...] = ()
    # The defaults version the compile completes the VM with (registry.completions);
    # 0: none, as for an input domain compiled with no trait, which passes unchanged.
    defaults: int = 0

    def asker(self, *kinds: type):
        """The trait behind the first of the needs of ``kinds`` that a trait asked for."""
        asked = dict(self.asked_by)
        return next((asked[kind] for kind in kinds if kind in asked), None)


def plan(traits: TraitSet, tree, stated: Stated | None = None, *,
         domcaps=None, device_nodes=(), host=None, filename: str = "<domain>",
         defaults: int = 0, override: bool = False) -> Plan:
    """The plan of a compile. ``override`` (--override): the vCPUs the traits ask
    are the guest's, not those the input states (which 'vcpus N' replaces)."""
    root = tree.getroot()
    stated = stated or stated_platform(root)
    guest = os_facts(stated, traits.facts)
    platform = platform_of(stated, traits.facts,
                           preferred_facts(traits.traits, {**traits.facts, **guest}))
    if callable(domcaps):  # a live host's or a snapshot's: those of this platform
        domcaps, note = domcaps(platform)
        if note:
            traits = attrs.evolve(traits, warnings=traits.warnings + (note,))
    if domcaps is not None:
        # Loaded only with domain capabilities, like placement only with a host: a
        # compile that has neither starts faster (tests/test_layers.py).
        from virtuned.facts.domcaps import check_platform

        check_platform(domcaps, platform)
    needs, asked_by = _needs(traits)
    if needs:
        limits.check(needs, asked_by, platform, domcaps, root, filename)
    wanted = requirements(needs, asked_by, root, filename, override)
    if DeviceAffinity in needs and wanted.placed:
        wanted = attrs.evolve(wanted, device_nodes=_hostdev_nodes(root, device_nodes))
    placement = None
    if host is not None and (wanted.placed or wanted.page_kib):
        from virtuned.plan.placement import Infeasible, check_pools, place

        if wanted.placed and wanted.guest_numa and not wanted.split:
            check_cover(wanted.cells, wanted.vcpus, root, filename)
        try:
            placement = place(wanted, host) if wanted.placed else check_pools(wanted, host)
        except Infeasible as exc:
            problem = f"infeasible placement on {host.host.source}: {exc}"
            preferred = [t for t in traits.traits if t.soft and t.definition.needs]
            if preferred:  # placed again without them, and said so
                return plan(_without(traits, preferred, problem), tree, stated,
                            domcaps=domcaps, device_nodes=device_nodes, host=host,
                            filename=filename, defaults=defaults, override=override)
            asker = asked_by[next(f for f in PLACING if f in asked_by)]
            raise error(asker.origin.span, problem, exit_code=ExitCode.CONFLICT) from None
        if wanted.page_kib and host.host.pages_note:
            traits = _pages_warned(traits, asked_by[Hugepages], host.host)
    return Plan(traits, platform, domcaps, tuple(sorted(device_nodes)),
                guest.get("os"), guest.get("os family"), wanted, placement, host,
                tuple(asked_by.items()), defaults)


def _hostdev_nodes(root, device_nodes) -> tuple[int, ...]:
    """The known host nodes of the input's PCI host devices, most devices first."""
    known = dict(device_nodes)
    devices = root.find("devices")
    counts = Counter(known[address] for address in (
        hostdev_address(h) for h in (devices.iterchildren("hostdev")
                                     if devices is not None else ()))
        if address in known)
    return tuple(sorted(counts, key=lambda node: (-counts[node], node)))


def _pages_warned(traits: TraitSet, asker, host) -> TraitSet:
    """Hugepages placed on a host that states its pools' totals, not what is free:
    said, so nobody takes the placement for a promise of free pages."""
    note = host.pages_note.format(source=host.source)
    warning = Diagnostic("warning", f"'{asker.origin.label}': {note}", asker.origin.span)
    return attrs.evolve(traits, warnings=traits.warnings + (warning,))


def _without(traits: TraitSet, preferred, problem: str) -> TraitSet:
    """The trait set without the preferred placing traits, with a warning for each:
    when a placement cannot be found with them, they are what gives way."""
    dropped = tuple(Diagnostic("warning", f"preference '{t.origin.label}' dropped: it "
                               f"cannot hold: {problem}", t.origin.span) for t in preferred)
    kept = tuple(t for t in traits.traits if t not in preferred)
    return attrs.evolve(traits, traits=kept, warnings=traits.warnings + dropped)


def _needs(traits: TraitSet) -> tuple[dict, dict]:
    """What the traits ask of the planner (their typed needs, by type), and which
    trait asked for each first."""
    needs, asked_by = {}, {}
    for resolved in traits.traits:
        if resolved.definition.needs is None:
            continue
        asked = resolved.definition.needs(resolved.kwargs)
        for need in asked if isinstance(asked, tuple) else (asked,):
            needs[type(need)] = need
            asked_by.setdefault(type(need), resolved)
    return needs, asked_by
