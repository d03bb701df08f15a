"""Benchmark: a typical compile request, against the floor of parsing and writing XML.

    python bench/bench_compile.py [--rounds N]

Prints the median in-process time of one compile (a ~2.5 KB domain, 4 traits), the
median time of the floor (a bare lxml parse + serialize of the same XML, in the same
process), their ratio, and the median wall time of one ``virtuned compile`` run as a
separate process (with the CLI's cache of parsed profiles warm, as on a user's machine
after the first run, and without it) against its own floor, a process that only
imports lxml, and their ratio. Numbers, not assertions: the test suite never times
anything.

    python bench/bench_compile.py --instructions [--calls N]

counts instead the CPU instructions of one compile and of one floor (valgrind's
callgrind: a run of N calls less a run of none, so start-up cancels out), and their
ratio: unlike times, the same on a loaded machine, so a change's effect can be seen
where other work shares the cores. (Python code runs fewer instructions per cycle
than libxml2's, so this ratio is lower than the time ratio.)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = ROOT / "examples" / "domains" / "web-server.xml"
PROFILE = ROOT / "examples" / "profiles" / "server.vt"


def median_seconds(function, rounds: int, inner: int = 20,
                   clock=time.perf_counter) -> float:
    """Median over ``rounds`` of the mean time of ``inner`` back-to-back calls, by
    ``clock`` (wall time; bench_server.py also takes CPU time, time.process_time)."""
    samples = []
    for _ in range(rounds):
        start = clock()
        for _ in range(inner):
            function()
        samples.append((clock() - start) / inner)
    return statistics.median(samples)


def interleaved_medians(first, second, rounds: int) -> tuple[float, float]:
    """Medians of two timings (functions that return seconds), measured in
    alternating rounds so that load from other processes hits both alike and the
    ratio stays meaningful."""
    a, b = [], []
    for _ in range(rounds):
        a.append(first())
        b.append(second())
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=51)
    parser.add_argument("--cli-runs", type=int, default=21)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions (valgrind) instead of timing")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--run", nargs=2, metavar=("WHAT", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        return run_calls(args.run[0], int(args.run[1]))
    if args.instructions:
        return count_instructions(args.calls)

    floor, compile_once = request()
    compile_once()  # warm caches (grammar, registry) as a long-lived process would
    base, ours = interleaved_medians(lambda: median_seconds(floor, 1),
                                     lambda: median_seconds(compile_once, 1), args.rounds)
    print(f"request: {DOMAIN.relative_to(ROOT)} ({DOMAIN.stat().st_size} bytes) + "
          f"{PROFILE.relative_to(ROOT)} (4 traits)")
    print(f"floor (lxml parse + serialize): {base * 1e6:8.1f} us")
    print(f"virtuned compile (in-process):  {ours * 1e6:8.1f} us")
    print(f"ratio compile / floor:          {ours / base:8.2f} x   (target <= 3x)")

    command = [sys.executable, "-m", "virtuned", "compile", str(DOMAIN), "-p", str(PROFILE)]
    # As a user's machine runs it: with bytecode caches and the cache of parsed
    # profiles (both written by the first run).
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=environment)

    uncached = statistics.median(
        wall_once(command, {**environment, "VIRTUNED_CACHE_DIR": ""})
        for _ in range(max(args.cli_runs // 3, 1)))
    # The CLI's floor: a process that only imports lxml, in the same interpreter and
    # environment (bytecode caches written), timed alternately with the CLI.
    floor_command = [sys.executable, "-c", "import lxml.etree"]
    subprocess.run(floor_command, check=True, env=environment)
    cli_floor, cli = interleaved_medians(lambda: wall_once(floor_command, environment),
                                         lambda: wall_once(command, environment),
                                         args.cli_runs)
    print(f"floor (python -c 'import lxml.etree'), wall: {cli_floor * 1e3:.1f} ms")
    print(f"CLI wall time, one compile:     {cli * 1e3:8.1f} ms "
          f"(median of {args.cli_runs}; without the cache of parsed profiles "
          f"{uncached * 1e3:.1f} ms)")
    print(f"ratio CLI / floor:              {cli / cli_floor:8.2f} x   (target <= 2x)")


def request():
    """The floor and the compile of the benchmark's request, as functions."""
    sys.path.insert(0, str(ROOT))
    from lxml import etree

    import virtuned
    from virtuned.api import TraitSource

    xml = DOMAIN.read_bytes()
    sources = [TraitSource(str(PROFILE), PROFILE.read_text())]

    def floor():
        etree.tostring(etree.fromstring(xml), encoding="unicode")

    def compile_once():
        virtuned.compile(xml, sources=sources)

    return floor, compile_once


def run_calls(what: str, calls: int) -> None:
    """The child that callgrind counts: warm up, then ``calls`` calls of one function."""
    floor, compile_once = request()
    function = compile_once if what == "compile" else floor
    compile_once()
    floor()
    for _ in range(calls):
        function()


def count_instructions(calls: int) -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("--instructions needs valgrind (apt-get install valgrind)")

    def collected(what: str, n: int) -> int:
        done = subprocess.run(
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             __file__, "--run", what, str(n)],
            capture_output=True, text=True, check=True, cwd=ROOT)
        return int(re.search(r"Collected : (\d+)", done.stderr).group(1))

    per_call = {what: (collected(what, calls) - collected(what, 0)) / calls
                for what in ("floor", "compile")}
    print(f"instructions, floor (lxml parse + serialize): {per_call['floor']:12,.0f}")
    print(f"instructions, virtuned compile:              {per_call['compile']:12,.0f}")
    print(f"ratio compile / floor, instructions:         "
          f"{per_call['compile'] / per_call['floor']:12.2f} x")


def wall_once(command, env) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=env)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
