"""The Python API: ``compile`` runs parse → resolve → plan → emit → merge."""

from __future__ import annotations

import sys
from typing import NamedTuple

# Everything below runs on every compile: imported once here, not per call.
import attrs

from virtuned import caching, domain, emit, inputs, merge, provenance
from virtuned import vocab  # noqa: F401  (registers the traits)
from virtuned import plan as planning
from virtuned.diagnostics import (CLI_OPTIONS, REQUEST, Diagnostic, ExitCode, OptionNames,
                                  Sources, Span, VirtunedError, error, real_path)
from virtuned.facts.devices import pci_address
from virtuned.facts.platform import stated_platform
from virtuned.frozen import frozen
from virtuned.plan import report
from virtuned.plan.requirements import PLACING, Realtime, described
from virtuned.resolve import Request, condition_facts, resolve
from virtuned.resolve import lock as locks
from virtuned.resolve.profiles import ProfileFile, load_reference, search_path
from virtuned.resolve import registry
from virtuned.resolve.registry import generation
from virtuned.resolve.traits import with_uses
from virtuned.version import __version__

# Inline trait text or a profile's text, with the name diagnostics use for it
# (a path, or ``<trait 1>``): ``TraitSource("<trait 1>", "video qxl")``.
TraitSource = ProfileFile


@frozen
class CompileResult:
    xml: str
    warnings: tuple[Diagnostic, ...] = ()
    lock: str | None = None  # the lock of this compile (JSON text), when asked for


def compile(domain_xml: str | bytes | None = None, *, profiles=(), traits=(), sources=(),
            settings=(), profile_path=(), name: str | None = None, lock: str | None = None,
            lock_name: str = "<lock>", write_lock: bool = False,
            domain_name: str = "<domain>", diagnostics_sources: Sources | None = None,
            domcaps: str | bytes | None = None, domcaps_name: str = "<domcaps>",
            device_nodes=(), host: str | bytes | None = None, host_name: str = "<host>",
            reserved_cpus: str | None = None, allocated_cpus: str | None = None,
            option_names: OptionNames = CLI_OPTIONS, override: bool = False,
            connect: str | None = None, shared_cpus: str | None = None
            ) -> CompileResult:
    """Compile traits onto a domain.

    Args:
        domain_xml: the input domain (complete, partial) or None for an empty one.
        profiles: profile names (found on the search path) or paths of ``.vt`` files.
        traits: inline trait texts, named ``<trait 1>``, ``<trait 2>``... in messages.
        sources: TraitSource values, for texts that have a name but no file.
        settings: ``(NAME or PROFILE.NAME, VALUE)`` pairs, as ``--set`` gives them.
        profile_path: more profile directories, highest priority last.
        name: the domain name to use when the input has none (default ``vm``).
        lock: a lock's JSON text: compile from it alone, reading no profile.
        lock_name: how diagnostics name the lock (its path).
        write_lock: also return the lock of this compile in ``CompileResult.lock``.
        domain_name: how diagnostics name the input domain (its path, or ``<stdin>``).
        diagnostics_sources: collects the texts so the caller can render context.
        domcaps: ``virsh domcapabilities`` XML of the host's hypervisor for this
            machine: traits refuse what it does not offer. None: nothing is checked.
        domcaps_name: how diagnostics name the domain capabilities (their path).
        device_nodes: ``{host PCI address: host NUMA node}`` (or pairs), for
            ``device numa affinity``; addresses as lspci writes them (0000:3b:00.0).
        host: ``virsh capabilities`` XML of the host, or a host snapshot (JSON,
            ``virtuned host snapshot``): placement traits pin vCPUs and bind memory
            on it. None: nothing host-specific is written (phase one).
        host_name: how diagnostics name the host capabilities (their path).
        connect: a libvirt URI (``qemu:///system``, ``test:///default``): the host
            is read live through it, with what its other guests hold and its
            domain capabilities (instead of ``host`` and ``domcaps``).
        shared_cpus: the host's CPUs for shared work (Nova's cpu_shared_set): an
            ``emulator threads shared`` emulator floats on them, dedicated vCPUs
            never take them; needs ``host``.
        reserved_cpus: host CPUs the guest must never use, in libvirt's syntax
            (``0-1``); needs ``host``.
        allocated_cpus: the host CPUs a node agent granted this guest; pinning stays
            inside them; needs ``host``.
        option_names: how diagnostics name ``name``, ``settings``, ``device_nodes``
            and the CPU lists: as the CLI's options (the default) or, with
            ``diagnostics.HTTP_OPTIONS``, as an HTTP request's fields.
        override: required traits replace values the input states instead of
            conflicting with them; each replaced value is a warning.

    Returns:
        CompileResult with the complete domain XML and the warnings (dropped
        preferences).

    Raises:
        VirtunedError: with diagnostics and the exit code (2 invalid, 3 conflict).
    """
    run = _run(_prepare(domain_xml, profiles=profiles, traits=traits, sources=sources,
                        settings=settings, profile_path=profile_path, lock=lock,
                        lock_name=lock_name, domain_name=domain_name,
                        diagnostics_sources=diagnostics_sources, domcaps=domcaps,
                        domcaps_name=domcaps_name, device_nodes=device_nodes, host=host,
                        host_name=host_name, reserved_cpus=reserved_cpus,
                        allocated_cpus=allocated_cpus, option_names=option_names,
                        connect=connect, shared_cpus=shared_cpus), name,
               override)
    written = None
    if write_lock:
        written = locks.dump(run.trait_set, request=run.request(), compiler=__version__,
                             defaults=run.defaults)
    return CompileResult(run.xml, run.warnings, written)


@frozen
class ExplainResult:
    """Every change a compile makes, and why; plus what was skipped or dropped."""

    xml: str
    input_xml: str | None
    changes: tuple  # merge.Change, in the order they were made
    skipped: tuple  # resolve.Skipped: when-blocks whose condition did not hold
    warnings: tuple[Diagnostic, ...]  # dropped preferences


def explain(domain_xml: str | bytes | None = None, **request) -> ExplainResult:
    """Compile as ``compile`` does (same keyword arguments, but no ``write_lock``) and
    return every change with the trait, source location and include chain behind it."""
    name, override = request.pop("name", None), request.pop("override", False)
    run = _run(_prepare(domain_xml, **request), name, override)
    original = domain_xml.decode("utf-8", "replace") if isinstance(domain_xml, bytes) \
        else domain_xml
    return ExplainResult(run.xml, original, run.changes(), run.trait_set.skipped,
                         run.warnings)


def explanation_text(result) -> str:
    """One line per change: ``PATH: OLD -> NEW  <- 'TRAIT' at FILE:L:C``, then the
    include chain, then the when-blocks skipped."""
    lines = []
    for change in result.changes:
        old = "(absent)" if change.old is None else change.old if change.new is None \
            else repr(change.old)  # an element removed shows as one added does
        new = "(removed)" if change.new is None else change.new \
            if change.old is None and change.new.startswith("<") else repr(change.new)
        lines.append(f"{change.path}: {old} -> {new}")
        lines.append("    " + _why(change.origin))
        if change.overridden:
            lines.append(f"    input had {old}; overridden (--override)")
        lines += [f"    through {link}" for link in reversed(change.origin.chain)]
    for skipped in result.skipped:
        lines.append(f"skipped: when {skipped.condition} at {skipped.span} "
                     "(the condition does not hold)")
    return "".join(line + "\n" for line in lines)


def _why(origin) -> str:
    if origin.span is None:
        return f"<- {origin.label}"
    strength = "prefer " if origin.soft else ""
    return f"<- {strength}'{origin.label}' at {origin.span}"


def explanation_json(result) -> dict:
    def span(s):
        return None if s is None else {"file": s.file, "line": s.line, "col": s.col}

    return {
        "changes": [{"path": c.path, "old": c.old, "new": c.new,
                     "trait": c.origin.label, "strength": c.origin.strength,
                     "at": span(c.origin.span), "overridden": c.overridden,
                     "chain": [{link.kind: link.name, "at": span(link.span)}
                               for link in c.origin.chain]}
                    for c in result.changes],
        "skipped": [{"when": s.condition, "at": span(s.span)} for s in result.skipped],
        "warnings": [{"message": w.message, "at": span(w.span)} for w in result.warnings],
    }


class _Run(NamedTuple):  # a tuple, as _Prepared is: one per request
    xml: str
    trait_set: object
    changes: object  # () -> tuple of merge.Change, computed only for explain
    warnings: tuple[Diagnostic, ...]
    request: object  # () -> the request as a lock records it
    defaults: int  # the defaults version the VM was completed with


def _run(prepared, name, override: bool = False) -> _Run:
    """plan → emit → merge on a prepared request, once, for compile and explain."""
    if name is not None:
        options = prepared.option_names
        inputs.refuse_control_characters(name, options.span(
            "name", inputs.escaped(name)), f"{options.lead('name')}the name")
    tree, trait_set, domain_name = prepared.tree, prepared.trait_set, prepared.domain_name
    try:
        the_plan = prepared.plan(override)
        # The plan's trait set: without preferred placing traits that could not hold.
        warnings = list(the_plan.traits.warnings) + phase_one_warnings(the_plan)
        edits = emit.emit(the_plan, tree, domain_name, name=name, warnings=warnings,
                          option_names=prepared.option_names, override=override)
        done = merge.apply(tree, edits, domain_name, warnings, override)
        if override:  # without it a value the input states is never replaced (a conflict)
            warnings += merge.overridden(done, domain_name)
    except VirtunedError as exc:  # name the composite behind a part, as resolve does
        raise VirtunedError(with_uses(exc.diagnostics, trait_set.traits),
                            exc.exit_code) from None
    warnings = with_uses(warnings, trait_set.traits)
    stamped = provenance.stamp(tree, trait_set.profiles, __version__, domain_name)
    return _Run(domain.serialize(tree, prepared.original), trait_set,
                lambda: tuple(merge.describe(tree, done)) + tuple(stamped()),
                warnings, prepared.request, the_plan.defaults)


class _Prepared(NamedTuple):
    """A request parsed and resolved, ready to be planned on any host. (Immutable; a
    NamedTuple rather than an attrs class because each request makes one, and a
    frozen attrs class sets its 13 fields one by one: 11.8k instructions, a tuple's
    constructor 2k.)"""

    tree: object
    original: object
    trait_set: object
    stated: object
    domcaps: object
    device_nodes: tuple
    seen: Sources
    domain_name: str
    request: object  # () -> the request as a lock records it
    host: object  # host.HostFacts or None
    option_names: OptionNames
    # (host summary) -> the request's trait set on such a host, and the domain
    # capabilities given with the request: for on_host (fit's hosts)
    traits_on: object = None
    given_domcaps: object = None

    def on_host(self, facts) -> _Prepared:
        """This request prepared for another host instead (made whole, not evolved:
        fit makes one for every host)."""
        return _Prepared(self.tree, self.original, self.traits_on(_host_summary(facts)),
                         self.stated, _capabilities(self.given_domcaps, facts),
                         self.device_nodes, self.seen, self.domain_name, self.request, facts,
                         self.option_names, self.traits_on, self.given_domcaps)

    @property
    def defaults(self) -> int:
        """The defaults version this compile completes the VM with: none for an
        input domain no trait touches (it passes unchanged), a lock's own, else this
        virtuned's."""
        if self.original is not None and not self.trait_set.traits:
            return 0
        recorded = self.trait_set.defaults
        return registry.defaults_version() if recorded is None else recorded

    def plan(self, override: bool = False):
        return planning.plan(self.trait_set, self.tree, self.stated, domcaps=self.domcaps,
                             device_nodes=self.device_nodes, host=self.host,
                             filename=self.domain_name, defaults=self.defaults,
                             override=override)


def _prepare(domain_xml, *, profiles=(), traits=(), sources=(), settings=(),
             profile_path=(), lock=None, lock_name="<lock>", domain_name="<domain>",
             diagnostics_sources=None, domcaps=None, domcaps_name="<domcaps>",
             device_nodes=(), host=None, host_name="<host>", reserved_cpus=None,
             allocated_cpus=None, option_names=CLI_OPTIONS, connect=None,
             shared_cpus=None) -> _Prepared:
    """parse and resolve: what every operation on a request starts with."""
    seen = diagnostics_sources or Sources()
    _refuse_control_characters(settings, option_names)
    if connect is not None:
        host, host_name = live_host(connect, host, option_names), connect
    facts = host_facts(host, host_name, reserved_cpus, allocated_cpus, seen, option_names,
                       shared_cpus)
    # A lock replays without reading any profile: they may have changed or be gone.
    roots = load_roots(profiles, traits, sources, profile_path) if lock is None else ()
    for root in roots:
        seen.add(root.source, root.text)
    if domain_xml is None:
        tree, original = domain.empty_domain(), None
    else:
        original = domain_xml  # a str is taken as already decoded, whatever it declares
        seen.add(domain_name, original)
        tree = domain.parse(original, domain_name)
    stated = stated_platform(tree.getroot())

    def request():
        return _request_record(profiles, traits, settings, domain_xml)

    if lock is not None:
        inputs.check(lock, lock_name, "lock")
        # Replaying needs no profile; any that are named must be the lock's own.
        recorded = request()
        named = {k: v for k, v in recorded.items() if v and k != "input_sha256"}
        trait_set = locks.load(lock, lock_name,
                               request={**named, "input_sha256": recorded["input_sha256"]})

        def traits_on(summary):
            return trait_set
    else:
        def traits_on(summary):
            return _resolve(roots, tuple(sorted(dict(settings).items())),
                            tuple(profile_path), stated, summary, option_names)

        trait_set = traits_on(_host_summary(facts))
    given = None
    if domcaps is not None:
        # Loaded only when asked for, like the host's facts (tests/test_layers.py).
        from virtuned.facts import domcaps as domain_capabilities

        seen.add(domcaps_name, domcaps)
        given = domain_capabilities.parse(domcaps, domcaps_name)

    # Nothing here refers to the _Prepared made of it: no cycle keeps the tree alive
    # after the request (it goes with its last reference, not at a collection).
    return _Prepared(tree, original, trait_set, stated, _capabilities(given, facts),
                     _device_nodes(device_nodes, option_names), seen, domain_name, request,
                     facts, option_names, _remembered(traits_on), given)


def _capabilities(given, facts):
    """The domain capabilities given with the request, else a live host's or a
    snapshot's (chosen by the platform), else none."""
    return given if given is not None or facts is None else facts.host.domcaps


def _remembered(traits_on):
    """``traits_on`` asked once per host summary: fit asks for many hosts."""
    resolved: dict = {}

    def remembered(summary):
        trait_set = resolved.get(summary)
        if trait_set is None:
            trait_set = resolved[summary] = traits_on(summary)
        return trait_set

    return remembered


@frozen
class PlanResult:
    """What the guest needs of a host (``requirements``) and, with a host, where it
    goes there (``placement``), as JSON values (virtuned/plan.schema.json)."""

    requirements: dict
    placement: dict | None
    warnings: tuple[Diagnostic, ...] = ()

    def json(self) -> dict:
        return {"requirements": self.requirements, "placement": self.placement}


def plan(domain_xml: str | bytes | None = None, **request) -> PlanResult:
    """What a compile of this request needs of a host, without compiling: the
    scheduler's phase one. Takes ``compile``'s keyword arguments; with ``host`` the
    answer includes the placement there (or raises: exit 3 when it is infeasible)."""
    request.pop("name", None), request.pop("override", None)
    prepared = _prepare(domain_xml, **request)
    the_plan = prepared.plan()
    wanted = described(the_plan, prepared.tree.getroot(), prepared.domain_name)
    return PlanResult(report.requirements_json(wanted, realtime=the_plan.asker(Realtime)
                                               is not None),
                      report.placement_json(the_plan.placement),
                      with_uses(the_plan.traits.warnings, the_plan.traits.traits))


def host_map(domain_xml: str | bytes | None = None, **request):
    """The picture of the request's host (``--map``, plan/hostmap.py): where the
    guest goes there, or the host alone when the guest does not fit it. Takes
    ``compile``'s keyword arguments; the host (``host`` or ``connect``) is needed."""
    from virtuned.plan import hostmap

    override = request.pop("override", False)
    for unused in ("name", "write_lock"):
        request.pop(unused, None)
    prepared = _prepare(domain_xml, **request)
    if prepared.host is None:
        options = prepared.option_names
        raise error(options.span("host", ""), f"a map needs the host to draw: give "
                    f"{options.name('host')} or {options.name('connect')}")
    try:
        the_plan = prepared.plan(override)
    except VirtunedError as exc:
        if exc.exit_code != ExitCode.CONFLICT:
            raise
        return hostmap.of(prepared.host, None, None)
    return hostmap.of(prepared.host, the_plan.requirements, the_plan.placement)


@frozen
class Fit:
    """Whether the guest fits one host, why not, and where it would go."""

    host: str  # the host's name (its path)
    fits: bool
    reason: str | None
    placement: dict | None
    score: float | None = None  # higher is better; None when it does not fit

    def json(self) -> dict:
        return {"host": self.host, "fits": self.fits, "reason": self.reason,
                "score": self.score, "placement": self.placement}

    def __reduce__(self):  # pickled as its fields: fit's helpers send back thousands
        return Fit, (self.host, self.fits, self.reason, self.placement, self.score)


def fit(domain_xml: str | bytes | None = None, *, hosts=(), host_names=(), progress=None,
        best: int | None = None, workers: int = 1, **request) -> tuple[Fit, ...]:
    """Which of ``hosts`` (``virsh capabilities`` XML or snapshot texts, or a parsed
    Host, named by ``host_names``, default ``<hosts/0>``...; with ``connect``, the
    live host first) the guest fits on, in the order given, each fitting one with
    its score (docs/placement.md#ranking-hosts).
    Takes ``compile``'s other keyword arguments. ``best``: only the N best-scored
    hosts that fit, best first (ties in the order given). ``workers``: processes
    to share the hosts among (a list of hosts only). ``progress`` (optional) is
    called with the number of hosts done after each one."""
    request.pop("name", None)
    request.pop("host_name", None)
    if request.pop("host", None) is not None:
        raise error(Span(REQUEST, 1, 1), "fit takes its hosts in 'hosts', not 'host'")
    connect = request.pop("connect", None)
    cpu_lists = {k: request.pop(k, None)
                 for k in ("reserved_cpus", "allocated_cpus", "shared_cpus")}
    # Parsed and resolved once; what holds on no host is refused once, not per host.
    base = _prepare(domain_xml, **request)
    base.plan()
    names = list(host_names) or [f"<hosts/{i}>" for i in range(len(hosts))]
    if connect is not None:  # the live host is answered first
        import itertools

        hosts, names = itertools.chain((live_host(connect),), hosts), [connect, *names]

    # trait sets → what their plan without a host requires (_placed_quickly)
    plans: dict = {}

    def answer(pairs):  # with best, the hosts it does not fit need no reason
        return [_fit_one(base, plans, cpu_lists, text, name, best is None)
                for text, name in pairs]

    if workers > 1 and isinstance(hosts, (list, tuple)) and len(hosts) >= PARALLEL_FROM:
        from virtuned import parallel

        answers = parallel.map_shared(answer, list(zip(hosts, names)), workers,
                                      HOST_DOCUMENTS)
    else:
        answers = []
        for done, pair in enumerate(zip(hosts, names), 1):
            answers += answer((pair,))
            if progress is not None:
                progress(done)
    if best is not None:
        ranked = sorted((i for i, a in enumerate(answers) if a.fits),
                        key=lambda i: (-answers[i].score, i))
        answers = [answers[i] for i in ranked[:best]]
    return tuple(answers)


# Hosts below which sharing them among processes costs more than it saves.
PARALLEL_FROM = 256


def _fit_one(base: _Prepared, plans: dict, cpu_lists: dict, host, host_name: str,
             explain: bool = True) -> Fit:
    facts = host_facts(host, host_name, cpu_lists["reserved_cpus"],
                       cpu_lists["allocated_cpus"], base.seen, base.option_names,
                       cpu_lists["shared_cpus"])
    # Resolved again per host: 'when host ...' may differ (the cache makes it cheap).
    prepared = base.on_host(facts)
    quick = _placed_quickly(base, prepared, plans, explain)
    if isinstance(quick, str):
        return Fit(host_name, False, quick, None)
    if quick is not None:
        return Fit(host_name, True, None, report.placement_json(quick[1]),
                   report.score(*quick, facts))
    try:
        the_plan = prepared.plan()
    except VirtunedError as exc:
        if exc.exit_code != ExitCode.CONFLICT:
            raise
        reason = exc.diagnostics[0].message.removeprefix(
            f"infeasible placement on {host_name}: ")
        return Fit(host_name, False, reason, None)
    return Fit(host_name, True, None, report.placement_json(the_plan.placement),
               report.score(the_plan.requirements, the_plan.placement, facts))


def _placed_quickly(base: _Prepared, prepared: _Prepared, plans: dict, explain: bool):
    """(requirements, placement) of a guest that fits the host as its traits ask,
    found without planning it all again: what the plan without a host found holds
    on every host of the same trait set (and domain capabilities); or why it does
    not fit (the reason the plan gives). None: plan it all (the first host of a
    trait set, its own domain capabilities, a preference that may give way)."""
    from virtuned.plan.placement import Infeasible, check_pools, place

    if prepared.domcaps is not base.domcaps and not getattr(prepared.domcaps, "empty", False):
        return None  # the host's own domain capabilities are checked per host
    hit = plans.get(id(prepared.trait_set))
    if hit is None:  # the first host of a trait set is planned in full
        traits = prepared.trait_set
        plans[id(traits)] = (traits, prepared._replace(
            host=None, domcaps=base.domcaps).plan().requirements,
            any(t.soft and t.definition.needs for t in traits.traits))
        return None
    _, wanted, may_give_way = hit
    try:
        if wanted.placed:
            return wanted, place(wanted, prepared.host, explain)
        if wanted.page_kib:
            check_pools(wanted, prepared.host)
    except Infeasible as exc:
        # The plan's reason, unless a preference would give way and place it after all.
        return None if may_give_way else str(exc)
    return wanted, None


def host_facts(host, host_name, reserved_cpus, allocated_cpus, seen: Sources,
               option_names: OptionNames = CLI_OPTIONS, shared_cpus=None):
    """``--host`` with ``--reserved-cpus``, ``--allocated-cpus`` and
    ``--shared-cpus`` applied, or None. ``host``: capabilities XML, a snapshot's
    JSON (told apart by their first character), or a Host read live."""
    if host is None:
        for option, given in (("reserved_cpus", reserved_cpus),
                              ("allocated_cpus", allocated_cpus),
                              ("shared_cpus", shared_cpus)):
            if given is not None:
                raise error(option_names.span(option, given),
                            f"{option_names.name(option)} needs the host it applies to",
                            hint="give the host's 'virsh capabilities' with "
                                 f"{option_names.name('host')}")
        return None
    # Loaded only with a host: a compile without one starts faster (tests/test_layers.py).
    from virtuned.facts import host as hosts

    if isinstance(host, hosts.Host):
        parsed = host.named(host_name)
    else:
        seen.add(host_name, host)
        parsed = host_document(host, host_name)
    # The lists checked against a host once per content (its memo, shared by its
    # names): fit checks the same ones against the same hosts on every request. A
    # list the host refuses is not remembered: its error names the host as asked.
    cpus = parsed.remember(("cpu lists", reserved_cpus, allocated_cpus, shared_cpus),
                           lambda: _cpu_sets(hosts.facts(parsed, reserved_cpus, allocated_cpus,
                                                         option_names, shared_cpus)))
    return hosts.HostFacts(parsed, *cpus)


def _cpu_sets(facts) -> tuple:
    return facts.reserved, facts.allocated, facts.shared


# Host documents (capabilities XML, snapshots) parsed, by the sha256 of their text: a
# scheduler asks about the same hosts again and again (docs/placement.md, "Fit over
# many hosts"). Bounded by the CPUs they hold (a parsed host takes some 300 bytes a
# CPU): about 450 MiB, 10,000 hosts of 150 CPUs.
HOST_DOCUMENTS = caching.Bounded(1_500_000, weight=lambda host: len(host.cpu_ids) or 1)


def document_bytes(text: str | bytes) -> bytes:
    """A host document's bytes: UTF-8 for text."""
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")


# The digests of the host documents seen last, by the text itself (a str or bytes
# object keeps its hash): a repeat compile is handed the same text again, often the
# same object, and finds its digest here without hashing its hundreds of KiB with
# sha256 each time. Bounded by the memory of the texts it keeps alive, and by count:
# each entry weighs at least 1/RECENT_COUNT of the bound; a text above 1/4 of the
# bound is not kept (it would push out all the others).
RECENT_BYTES, RECENT_COUNT = 16 * 1024 * 1024, 64
RECENT_DIGESTS = caching.Bounded(RECENT_BYTES, weight=lambda entry: entry[1])


def document_digest(text: str | bytes) -> str:
    """The sha256 (hex) a host document is known by: of its bytes, UTF-8 for text."""
    found = RECENT_DIGESTS.get(text)
    if found is not None:
        return found[0]
    digest = caching.sha256(document_bytes(text)).hexdigest()
    size = sys.getsizeof(text)
    if size <= RECENT_BYTES // 4:
        RECENT_DIGESTS.put(text, (digest, max(size, RECENT_BYTES // RECENT_COUNT)))
    return digest


def host_document(text: str | bytes, host_name: str):
    """A host document's Host, named ``host_name``: parsed once per content."""
    digest = document_digest(text)
    parsed = HOST_DOCUMENTS.get(digest)
    if parsed is None:
        from virtuned.facts import host as hosts, snapshot

        parsed = (snapshot.parse(text, host_name) if snapshot.is_snapshot(text)
                  else hosts.parse(text, host_name))
        HOST_DOCUMENTS.put(digest, parsed)
    return parsed.named(host_name)


def live_host(uri: str, host=None, option_names: OptionNames = CLI_OPTIONS, *,
              session=None, ignore: frozenset[str] = frozenset()):
    """The host ``uri`` names, read through libvirt now (facts/live.py): its
    snapshot, with the domain capabilities of the guest's platform asked of it.
    ``session``: a connection already open to it (``virtuned apply``'s); ``ignore``:
    guests that hold nothing for this one (itself, when it is defined again)."""
    if host is not None:
        raise error(option_names.span("connect", uri), f"give the host with "
                    f"{option_names.name('connect')} or {option_names.name('host')}, "
                    "not both")
    import attrs

    from virtuned.facts import live, snapshot

    session = session or live.Live(uri)
    return attrs.evolve(snapshot.host_of(session.snapshot(), uri, ignore),
                        domcaps=session.domcaps_for)


def _host_summary(facts):
    """What ``when host ...`` conditions test of the host (None without one)."""
    if facts is None:
        return None
    from virtuned.facts.host import HostSummary

    return HostSummary.of(facts)


def phase_one_warnings(the_plan) -> list[Diagnostic]:
    """A guest that wants placing, compiled with no host: say that nothing
    host-specific was written, once, at the trait that asked."""
    if the_plan.host is not None or not the_plan.requirements.placed:
        return []
    asker = the_plan.asker(*PLACING)
    return [Diagnostic("warning", f"'{asker.origin.label}': no --host given, so no host "
                       "CPUs or NUMA nodes were chosen and nothing host-specific was "
                       "written; 'virtuned plan' reports what a host must offer",
                       asker.origin.span)]


def _device_nodes(given, option_names: OptionNames) -> tuple[tuple[str, int], ...]:
    """``{address: node}`` or pairs → normalized pairs; a bad address or node is an
    input error naming the option that gave it."""
    if not given:
        return ()
    pairs = given.items() if hasattr(given, "items") else given
    nodes = {}
    for address, node in pairs:
        try:
            normalized = pci_address(str(address))
            if isinstance(node, bool) or not isinstance(node, int) or node < 0:
                raise ValueError(f"expected a host NUMA node (0, 1, ...), got {node!r}")
        except ValueError as exc:
            raise error(option_names.span("device_nodes", str(node), str(address)),
                        f"{option_names.lead('device_nodes', str(address))}{exc}") from None
        nodes[normalized] = node
    return tuple(nodes.items())


def _refuse_control_characters(settings, option_names: OptionNames) -> None:
    """A param's name or value (``--set``) with a control character is refused:
    libvirt takes none in names, XML 1.0 cannot write most of them."""
    for key, value in settings:
        for text, what in ((str(key), "the param name"), (str(value), "the value")):
            inputs.refuse_control_characters(text, option_names.span(
                "settings", inputs.escaped(str(value)), inputs.escaped(str(key))),
                f"{option_names.lead('settings', inputs.escaped(str(key)))}{what}")


def _request_record(profiles, traits, settings, domain_xml) -> dict:
    """What a lock records of the request (sorted: the order given never matters)."""
    return {"profiles": sorted(profiles), "traits": sorted(traits),
            "settings": sorted([list(pair) for pair in settings]),
            "input_sha256": locks.input_digest(domain_xml)}


def load_roots(profiles=(), traits=(), sources=(), profile_path=()) -> tuple[ProfileFile, ...]:
    """The profiles a request names: files by path, names from the search path,
    inline texts; in canonical order, so the order given never matters."""
    roots = [load_reference(reference, profile_path) for reference in profiles]
    # Inline texts are numbered in sorted order, not as given: their names reach the
    # provenance and the lock, which must not depend on the order of -t options.
    roots += [ProfileFile(f"<trait {i}>", text) for i, text in enumerate(sorted(traits), 1)]
    roots += list(sources)
    for root in roots:
        if _CHECKED_TEXTS.get(root.text) is None:
            _check_text(root)
            _CHECKED_TEXTS.put(root.text, len(root.text) + 1)
    return tuple(sorted(roots, key=lambda r: (r.source, r.text)))


# Profile texts found within their cap and free of control characters, each with its
# length: a long-lived process sees the same ones in request after request, and a
# check of a long text costs more than finding it here. At most 4 Mi characters.
_CHECKED_TEXTS = caching.Bounded(1 << 22, weight=int)


def _check_text(root) -> None:
    # Files were read with their cap, which is the same as a text's (and checking
    # it again costs little).
    inputs.check(root.text, root.source, "trait text")
    # A string in a trait line could carry them into the XML.
    inputs.refuse_control_characters_in_text(root.text, root.source, "trait text")


# Resolved trait sets by request: (result, the stamps of the files it read).
_RESOLVED = caching.Bounded(256)


def _resolve(roots, settings, profile_path, stated, host_summary=None,
             option_names: OptionNames = CLI_OPTIONS):
    """Resolve a request; a long-lived process (the server, a management app) sees
    the same profiles again and again, so the result is cached by content: the texts
    named in the request are part of the key, and the files they include are
    checked (their stamps), with the directories they were found in, before a
    cached result is used."""
    key = (roots, settings, profile_path, stated, host_summary, option_names, generation())
    hit = _RESOLVED.get(key)
    if hit is not None and caching.unchanged(hit[1]):
        return hit[0]
    request = Request(roots, settings, profile_path, option_names)
    result = resolve(request, lambda decided, preferred: condition_facts(
        stated, decided, host_summary, preferred))
    root_sources = {r.source for r in roots}
    included = tuple(str(real_path(p.source) or p.source) for p in result.profiles
                     if p.source not in root_sources)
    if included:  # a new version added to a directory could change what is picked
        included += tuple(str(d) for d in search_path(profile_path))
    _RESOLVED.put(key, (result, tuple((path, caching.stamp(path)) for path in included)))
    return result
