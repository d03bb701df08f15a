"""Plan + input domain → edits: completion first (what libvirt needs; then, in a
compile that completes a VM, the good-VM defaults of the vocabulary's completions),
then every trait's own emitter.

Emitters read the (unchanged) input tree and the plan, and return edits; they never
see each other's output, so the result cannot depend on the order they run in.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from virtuned.diagnostics import CLI_OPTIONS, Diagnostic, OptionNames, VirtunedError
from virtuned.domain import element_span, first_children
from virtuned.emit.edits import Add, SetAttr, conflict, el
from virtuned.plan import Plan
from virtuned.resolve import registry
from virtuned.resolve.model import Origin, overrides_its_include

DEFAULT_NAME = "vm"
COMPLETION = Origin("completion")


class Context(NamedTuple):
    """What an emitter may look at. (Immutable; a NamedTuple rather than an attrs
    class because a compile makes one for every emitter, and a tuple is made in a
    third of the time.)

    Emitters find the input's elements through it (``find``, ``find_in``,
    ``devices_of``): what one emitter found, the next gets from ``memo`` without
    walking the tree again (lxml makes a Python object for each element it hands
    out, and every emitter asks for the same few)."""

    root: object  # the input <domain> element; read-only by convention
    devices: object  # its <devices> element, or None
    plan: Plan
    filename: str  # the input domain's name in diagnostics
    origin: Origin  # the trait being emitted
    # --override: a required trait may replace what the input states (the placement
    # of a guest placed again: emit/pinning.py)
    override: bool
    # The elements found so far in this compile, shared by its emitters: a path from
    # the root → the element found or None (every child of the root is there from
    # the start, under its tag: emit's one walk); (element, path) → the same under
    # another element; a tuple of device tags → those devices.
    memo: dict
    platform: object  # plan.platform, which most emitters ask
    # ``of(handle)``: the resolved traits of one trait (by its handle) in this
    # compile; plan.traits.of itself, as emitters ask it often (a method of the
    # Context that passed it on would be a second Python call each time).
    of: object

    def find(self, path: str):
        """The input's first element at ``path`` from the root (child steps:
        ``features``, ``features/kvm``), or None."""
        memo = self.memo
        if path in memo:
            return memo[path]
        # The root's children are all in the memo: a first step that is not there
        # finds nothing (a step with a namespace or a predicate is lxml's to read).
        step = path.split("/", 1)[0]
        found = memo[path] = (None if step not in memo and "{" not in step
                              and "[" not in step else self.find_in(self.root, path))
        return found

    def find_in(self, element, path: str):
        """The first element at ``path`` (child steps) under ``element`` of the
        input, or None."""
        key = (element, path)
        memo = self.memo
        if key in memo:
            return memo[key]
        # A bare tag straight from lxml; anything else (steps, a predicate) as a path.
        found = memo[key] = (element.find(path) if "/" in path or "[" in path
                             else next(element.iterchildren(path), None))
        return found

    def devices_of(self, *tags: str) -> tuple:
        """The input's devices of these kinds (tags), in document order."""
        memo = self.memo
        if tags in memo:
            return memo[tags]
        if len(tags) == 1:  # every kind's, from one walk (emitters ask for most)
            groups = memo.get(_GROUPS)
            if groups is None:
                groups = memo[_GROUPS] = _grouped(self.devices)
            found = memo[tags] = tuple(groups.get(tags[0], ()))
            return found
        found = memo[tags] = (() if self.devices is None
                              else tuple(self.devices.iterchildren(*tags)))
        return found

    def once(self, derive):
        """``derive(ctx)``, worked out once per compile: what several emitters
        derive from the input alike (read it only: every caller gets the same)."""
        memo = self.memo
        if derive in memo:
            return memo[derive]
        found = memo[derive] = derive(self)
        return found


def emit(plan: Plan, tree, filename: str, *, name: str | None = None,
         warnings: list | None = None, option_names: OptionNames = CLI_OPTIONS,
         override: bool = False) -> list:
    """Every edit the plan asks for. A preference that cannot hold (its emitter
    refuses it) is dropped with a warning appended to ``warnings``."""
    root = tree.getroot()
    # One memo for the compile (what an emitter finds, the next reuses), begun with
    # the root's children, found in one pass.
    memo = first_children(root)
    devices = memo.get("devices")
    of = plan.traits.of
    completing = _context((root, devices, plan, filename, COMPLETION, False, memo,
                           plan.platform, of))
    edits = complete(completing, name, option_names)
    for default, origin in _with_origins(registry.completions(plan.defaults)):
        if default.only_with is not None and not of(default.only_with):
            continue
        edits += default.emit(_context((root, devices, plan, filename, origin, False, memo,
                                        plan.platform, of)))
    if plan.defaults and warnings is not None:
        warnings += _without_acpi(completing)
    for trait in plan.traits.traits:
        context = _context((root, devices, plan, filename, trait.origin, override, memo,
                            plan.platform, of))
        try:
            edits += trait.definition.emit(context, **trait.kwargs)
        except VirtunedError as exc:
            if not trait.soft or warnings is None:
                raise
            if _overridden(exc.diagnostics[0], trait.origin, plan.traits.traits):
                continue
            warnings.append(Diagnostic(
                "warning", f"preference '{trait.origin.label}' dropped: it cannot hold: "
                f"{exc.diagnostics[0].message}", trait.origin.span))
    return edits


_GROUPS = "devices by kind"  # in a Context's memo: what _grouped found


def _grouped(devices) -> dict:
    """The input's devices by kind, in one walk: tag → those devices in document
    order (a list, made into devices_of's tuple when a kind is asked for)."""
    groups: dict = {}
    for device in devices if devices is not None else ():
        tag = device.tag
        if tag in groups:
            groups[tag].append(device)
        else:  # setdefault would make a list for every device
            groups[tag] = [device]
    return groups


# A Context from its fields in order, made by tuple's own constructor in C: a
# NamedTuple's __new__ is a Python call, and a compile makes one per emitter.
_context = functools.partial(tuple.__new__, Context)


def _with_origins(completions: tuple) -> tuple:
    """Each completion with its origin, made once: every compile asks for the same."""
    found = _COMPLETION_ORIGINS.get(completions)
    if found is None:
        found = _COMPLETION_ORIGINS[completions] = tuple(
            (default, _origin_of(default)) for default in completions)
    return found


def _origin_of(default) -> Origin:
    return Origin(f"completion: {default.name}", strength="default")


_COMPLETION_ORIGINS: dict = {}  # registry.completions(...) → with their origins


def _without_acpi(ctx: Context) -> list[Diagnostic]:
    """An x86 input that lists its ``<features>`` without ``<acpi/>`` keeps them as
    stated (the input wins), but a compile that completes the VM says what it costs."""
    features = ctx.find("features")
    if not ctx.platform.x86 or features is None or ctx.find_in(features, "acpi") is not None:
        return []
    return [Diagnostic("warning", "the input's <features> has no <acpi/>: QEMU runs the "
                       "guest without ACPI, so it may see only one vCPU and cannot power "
                       "itself off; add <acpi/> and <apic/> unless that is intended",
                       element_span(features, ctx.filename))]


def _overridden(refusal: Diagnostic, preference, traits) -> bool:
    """A preference refused because of a trait (its diagnostic's related place) in
    a profile that includes the preference's profile gives way silently."""
    origins = {trait.origin.span: trait.origin for trait in traits}
    return any(overrides_its_include(origins.get(related.span, Origin("", related.span)),
                                     preference)
               for related in refusal.related)


def complete(ctx: Context, name: str | None,
             option_names: OptionNames = CLI_OPTIONS) -> list:
    """Only what libvirt needs and the input lacks; never a change to what it states."""
    root, plan, filename, platform = ctx.root, ctx.plan, ctx.filename, ctx.platform
    edits: list = []
    if root.get("type") is None:
        edits.append(SetAttr(root, "type", platform.domain_type, COMPLETION))
    # The children it looks at, found before it in emit's one pass.
    stated = ctx.memo.get
    existing_name = stated("name")
    if existing_name is None:
        edits.append(Add("", el("name", text=name or DEFAULT_NAME), COMPLETION))
    elif name is not None and (existing_name.text or "").strip() != name:
        option = option_names.name("name")
        raise conflict(Origin(option_names.given("name", name)), f"the name '{name}'",
                       element_span(existing_name, filename),
                       f"the input names the domain '{(existing_name.text or '').strip()}'",
                       hint=f"{option} only names a domain whose input has no <name>; "
                            f"drop {option} or change the input")
    wanted = plan.requirements
    cpu, os_element = stated("cpu"), stated("os")
    no_memory = stated("memory") is None and (
        cpu is None or ctx.find_in(cpu, "numa/cell") is None)
    if no_memory:
        edits.append(Add("", el("memory", text=str(wanted.memory_kib), unit="KiB"),
                         COMPLETION))
    # libvirt's default is one vCPU; a <vcpu> is written when the memory is, when
    # the traits ask for more, or when placement needs one to pin.
    if stated("vcpu") is None and (no_memory or wanted.vcpus != 1
                                 or plan.placement is not None):
        edits.append(Add("", el("vcpu", text=str(wanted.vcpus)), COMPLETION))
    no_os_type = os_element is None or ctx.find_in(os_element, "type") is None
    if no_os_type and platform.domain_type in ("kvm", "qemu"):
        edits.append(Add("os", el("type", text="hvm", arch=platform.arch,
                                  machine=platform.machine), COMPLETION))
    return edits
