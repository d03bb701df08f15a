"""Benchmark: the placement search against OpenStack Nova's own fitting code.

    python bench/bench_nova.py --nova-python /tmp/nova-venv/bin/python
        [--hosts 16,8,4,2] [--guests 1,2,4,8] [--budget SECONDS] [--rounds N]
        [--fresh N] [--cap SECONDS]

The scenarios of bench/bench_plan.py (hosts of 2, 4, 8 and 16 nodes of 16 cores x
2 threads, guests of 8 vCPUs in 1, 2, 4 and 8 cells with 'dedicated cpus threads
isolate', 'emulator threads isolated' and 1 GiB pages, free / busy / none), the
single-cell guests on 16-node hosts first: the case issue 15 names. For each, the
same host and guest are written as Nova's objects (a NUMATopology of NUMACells
with cpuset = pcpuset, the way Nova's libvirt driver states a host configured with
``vcpu_pin_set``, which is the only one its ``isolate`` policy accepts on a host
with threads; the core of CPU 0, reserved for the host OS, left out of them and of
the siblings as that driver does; the busy nodes' taken cores as pinned_cpus; the
hugepage pools as mempages) and an InstanceNUMATopology (cpu_policy dedicated,
cpu_thread_policy isolate, pagesize 1 GiB, emulator_threads_policy isolate).

Nova is not a dependency of virtuned: the bench runs only when given the python
of a virtualenv where Nova is installed (``python3 -m venv /tmp/nova-venv &&
/tmp/nova-venv/bin/pip install nova``). That python runs this same file with
``--child``: it reads the scenarios as JSON lines, times
``nova.virt.hardware.numa_fit_instance_to_host`` on fresh copies of the instance
topology (the copy not timed; Nova writes its pinning into them) and answers with
the times. Nova's debug and info messages are switched off there, as in a
scheduler logging at WARNING: none is formatted (at INFO it would pay for them).

Printed per scenario: whether each fits, the median times of ``placement.place``
(``warm``: on a parsed host it ran on before, which keeps what it worked out of
the host's nodes, as a repeat compile on a cached host or a fit on a kept one;
``nodes``: that worked out again on every call; ``first``: the first placement on
a host parsed anew, the parse not timed but the cores of each node found then,
which Nova's host object states ready-made as its sibling sets), Nova's median,
the ratios Nova / ours (> 1: virtuned is faster) and whether both agree on
fitting. The two processes are timed in turns, ``--rounds`` times per scenario, so
the load of the machine weighs on both. Nova stops after ``--cap`` seconds on a
scenario (printed ">CAP": it enumerates permutations of the host nodes). Numbers,
not assertions: the test suite never times anything.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- our side

def scenario(cells: int, guest_cells: int, situation: str):
    """bench_plan's host facts and requirements, and the same as plain data for
    the Nova child."""
    from bench.bench_plan import CORES, host_facts, requirements

    facts = host_facts(cells, situation)
    req = requirements(guest_cells, situation)
    host_os = {0, cells * CORES}  # the core of CPU 0, as bench_plan reserves it
    return facts, req, {"host": nova_host(facts, host_os), "guest": nova_guest(req)}


def nova_host(facts, host_os: set[int]) -> list[dict]:
    """Each node as Nova's libvirt driver would state it: the CPUs it may pin to
    (cpuset = pcpuset, no host-OS CPU), the sibling sets among them, the CPUs other
    guests hold, memory in MiB and the page pools."""
    nodes = []
    for cell in facts.host.cells:
        allowed = sorted(cell.cpu_ids - host_os)
        siblings = [sorted(set(core) - host_os) for core in cell.cores()]
        nodes.append({
            "id": cell.id, "cpus": allowed,
            "pinned": sorted((facts.reserved & cell.cpu_ids) - host_os),
            "siblings": [core for core in siblings if core],
            "memory_mib": cell.memory_kib // 1024,
            "pages": [[size, count] for size, count in cell.pages]})
    return nodes


def nova_guest(req) -> dict:
    return {"cells": [{"id": cell.id, "vcpus": list(cell.vcpus),
                       "memory_mib": cell.memory_kib // 1024} for cell in req.cells],
            "page_kib": req.page_kib, "emulator_isolated": req.emulator == "isolated"}


MEASURES = ("warm", "nodes", "first")  # of ours; see the module's docstring


def planner(req, facts, cold: bool = False):
    from virtuned.plan.placement import Infeasible, place

    if cold:  # the nodes place() works out once per parsed host
        facts.host.memo.clear()
    try:
        return place(req, facts)
    except Infeasible:
        return None


def ours_seconds(cells: int, facts, req, budget: float, fresh: int) -> list[list[float]]:
    """Times of our placement: warm and with its nodes worked out again, in turns
    for ``budget`` seconds; then on ``fresh`` hosts parsed anew (the parse not
    timed), where the cores of each node are found too."""
    from bench.bench_plan import CORES, THREADS, interleaved_seconds
    from tests.synthetic_hosts import capabilities
    from virtuned.facts import host

    warm, nodes = interleaved_seconds([lambda: planner(req, facts),
                                       lambda: planner(req, facts, cold=True)],
                                      budget, least=3, most=10**6)
    first = []
    xml, reserved = capabilities(cells, CORES, THREADS), ",".join(map(str, facts.reserved))
    for _ in range(fresh):  # bench_plan's host_facts would find the cores of some
        new = host.facts(host.parse(xml, f"{cells}-node"), reserved, None)
        begin = time.perf_counter()
        planner(req, new)
        first.append(time.perf_counter() - begin)
    return [warm, nodes, first]


class NovaChild:
    """The Nova venv's python running this file with --child."""

    def __init__(self, python: str):
        self.process = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--child"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self.version = self.ask({"hello": True})["nova"]

    def ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"bench_nova: the Nova child exited ({self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def compare(child: NovaChild, cells: int, guest_cells: int, situation: str,
            args) -> tuple[str, tuple[float, ...] | None]:
    """The printed row of a scenario, and its ratios (Nova / each of MEASURES) when
    both answered the same question."""
    facts, req, data = scenario(cells, guest_cells, situation)
    ours_fit = planner(req, facts) is not None
    first = child.ask({**data, "cap": args.cap, "budget": 0})  # warm-up, and the cap
    share = args.budget / args.rounds
    ours: list[list[float]] = [[] for _ in MEASURES]
    theirs: list[float] = []
    for _ in range(args.rounds):  # in turns: the machine's load weighs on both
        for samples, more in zip(ours, ours_seconds(cells, facts, req, share,
                                                    args.fresh)):
            samples += more
        if not first.get("timed_out"):
            theirs += child.ask({**data, "cap": args.cap, "budget": share})["samples"]
    medians = [statistics.median(samples) for samples in ours]
    where = (f"{cells:>3} x 16x2 {guest_cells:>3} c {situation:>5} "
             f"{'yes' if ours_fit else 'no':>4} "
             + " ".join(f"{m * 1e6:>7.0f} us" for m in medians))
    if first.get("timed_out"):
        ratios = tuple(args.cap / m for m in medians)
        return (f"{where} {'?':>4} {f'>{args.cap:g} s':>10} "
                + " ".join(f"{'>%.0fx' % r:>9}" for r in ratios) + f" {'?':>5}", ratios)
    nova_s = statistics.median(theirs)
    where += f" {'yes' if first['fits'] else 'no':>4} {nova_s * 1e6:>7.0f} us"
    if guest_cells > cells:  # Nova refuses before it looks: not the same question
        return where + "".join(f" {'-':>9}" for _ in MEASURES) + f" {'n/a':>5}", None
    ratios = tuple(nova_s / m for m in medians)
    agree = "yes" if first["fits"] == ours_fit else "NO"
    return where + "".join(f" {r:>8.2f}x" for r in ratios) + f" {agree:>5}", ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nova-python", metavar="PATH",
                        help="the python of a virtualenv where Nova is installed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hosts", default="16,8,4,2",
                        help="host node counts, in this order (default 16,8,4,2)")
    parser.add_argument("--guests", default="1,2,4,8",
                        help="guest cell counts, in this order (default 1,2,4,8)")
    parser.add_argument("--budget", type=float, default=0.6,
                        help="seconds of runs per side and scenario (default 0.6)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="turns of the two sides per scenario (default 3)")
    parser.add_argument("--fresh", type=int, default=15,
                        help="freshly parsed hosts per turn, for 'first' (default 15)")
    parser.add_argument("--cap", type=float, default=5.0,
                        help="seconds Nova may take on a scenario (default 5)")
    args = parser.parse_args()
    if args.child:
        return child_loop()
    if not args.nova_python:
        parser.error("--nova-python PATH is required: the python of a virtualenv "
                     "with Nova installed (Nova is no dependency of virtuned)")
    sys.path.insert(0, str(ROOT))
    child = NovaChild(args.nova_python)
    print(f"Nova {child.version} numa_fit_instance_to_host against virtuned "
          f"placement.place; ratio = Nova / ours (> 1: virtuned faster)")
    print(f"{'host':>10} {'guest':>5} {'case':>5} {'fits':>4} "
          + " ".join(f"{name:>10}" for name in MEASURES) + f" {'fits':>4} {'Nova':>10}"
          + "".join(f" {'/' + name:>9}" for name in MEASURES) + f" {'agree':>5}")
    hosts = [int(n) for n in args.hosts.split(",")]
    guests = [int(n) for n in args.guests.split(",")]
    compared = []
    for cells in hosts:
        for guest_cells in guests:
            for situation in ("free", "busy", "none"):
                row, ratios = compare(child, cells, guest_cells, situation, args)
                print(row, flush=True)
                compared += [ratios] if ratios else []
    child.close()
    print("n/a: more guest cells than host nodes: Nova refuses without a search (one "
          "cell per node), virtuned shares nodes")
    for index, name in enumerate(MEASURES):
        ratios = sorted(pair[index] for pair in compared)
        if ratios:
            print(f"Nova / ours {name}, {len(ratios)} scenarios: lowest "
                  f"{ratios[0]:.2f}x, median {statistics.median(ratios):.2f}x")


# ---------------------------------------------------------------- Nova's side

def child_loop() -> None:
    """Run by the Nova venv's python: never imports virtuned."""
    import logging
    import signal
    import warnings

    warnings.simplefilter("ignore")  # eventlet's deprecation notices, on stderr
    logging.disable(logging.INFO)  # as a scheduler at WARNING: no message built
    import nova.version
    from nova import objects
    objects.register_all()
    from nova.virt import hardware

    class TimedOut(Exception):
        pass

    def alarm(signum, frame):
        raise TimedOut

    signal.signal(signal.SIGALRM, alarm)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("hello"):
            answer = {"nova": nova.version.version_string()}
        else:
            host, guest = nova_objects(objects, request)
            answer = fit_times(hardware, host, guest, request, TimedOut)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def nova_objects(objects, request: dict):
    from nova.objects import fields

    host = objects.NUMATopology(cells=[
        objects.NUMACell(
            id=node["id"], cpuset=set(node["cpus"]), pcpuset=set(node["cpus"]),
            memory=node["memory_mib"], cpu_usage=0, memory_usage=0,
            pinned_cpus=set(node["pinned"]), siblings=[set(s) for s in node["siblings"]],
            mempages=[objects.NUMAPagesTopology(size_kb=size, total=count, used=0,
                                                reserved=0)
                      for size, count in node["pages"]],
            network_metadata=objects.NetworkMetadata(physnets=set(), tunneled=False),
            socket=node["id"])
        for node in request["host"]])
    guest = request["guest"]
    policy = (fields.CPUEmulatorThreadsPolicy.ISOLATE if guest["emulator_isolated"]
              else fields.CPUEmulatorThreadsPolicy.SHARE)
    instance = objects.InstanceNUMATopology(
        cells=[objects.InstanceNUMACell(
            id=cell["id"], cpuset=set(), pcpuset=set(cell["vcpus"]),
            memory=cell["memory_mib"], pagesize=guest["page_kib"],
            cpu_policy=fields.CPUAllocationPolicy.DEDICATED,
            cpu_thread_policy=fields.CPUThreadAllocationPolicy.ISOLATE)
            for cell in guest["cells"]],
        emulator_threads_policy=policy)
    return host, instance


def fit_times(hardware, host, instance, request: dict, timed_out) -> dict:
    """Nova's fit, each time on a fresh copy of the instance topology (it pins
    the copy), for ``budget`` seconds after a first run under the cap."""
    import signal

    def fit(copy):
        return hardware.numa_fit_instance_to_host(host, copy, provider_mapping=None)

    copy = instance.obj_clone()
    signal.setitimer(signal.ITIMER_REAL, request["cap"])
    try:
        begin = time.perf_counter()
        found = fit(copy)
        first = time.perf_counter() - begin
    except timed_out:
        return {"timed_out": True}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    samples = [first]
    start = time.perf_counter()
    while time.perf_counter() - start < request["budget"]:
        copy = instance.obj_clone()
        begin = time.perf_counter()
        fit(copy)
        samples.append(time.perf_counter() - begin)
    nodes = [cell.id for cell in found.cells] if found else None
    return {"fits": found is not None, "nodes": nodes, "samples": samples}


if __name__ == "__main__":
    main()
