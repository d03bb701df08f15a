"""Benchmark: the HTTP service under load, on loopback, with a typical compile request.

    python bench/bench_server.py [--seconds 60] [--workers 2] [--clients 4] [--cpu-affinity]

Starts the real server (``virtuned serve``: uvicorn, its worker processes, the JSON
access log on), then keeps it busy for ``--seconds`` with one compile request: the
2.4 KB example domain and the 4 traits of examples/profiles/server.vt, sent inline (the
request bench/bench_compile.py times in-process). Each of ``--clients`` processes
holds one keep-alive connection and sends the next request as soon as the answer is
in: raw sockets and a prepared request, so that the load generator costs a fraction
of what the server does. Prints requests/s, latency percentiles and errors (any
answer but 200 with the expected XML, or a broken connection). Target on a 2-core
machine: >= 1,000 compiles/s, p99 < 25 ms, no errors.

And the server's cost per request beside its floor, measured in the same run: the
in-process compile of the same request (timed as bench/bench_compile.py times it,
before the load starts and again after it; the lower counts, as other work on the
machine only ever slows it), the CPU time the server's processes (the supervisor and
its workers: user + system, from /proc/PID/stat) spent over the measured period
divided by the requests answered in it, and their ratio (target <= 1.3). CPU time,
not wall time: the load generator shares the machine's cores with the server. The
in-process compile is timed both ways, and the ratio takes its CPU time too: on a
machine that other work keeps busy, its wall time also counts the time it waited
for a core (at a load of 10 on 2 cores, 2-5 times its CPU time), which the
server's CPU time does not.

Beside that floor, a diagnostic one: the same compile started each time with the
last-level cache flushed (twice its size read in between, outside the timing). A
warm loop of compiles keeps its working set in the caches; an operation process
finds its own evicted by whatever ran since its last request. On the 2-core VM the
flushed compile takes ~2x the warm one's CPU, and the server's CPU a request falls
between the two: the distance to 1.3x is mostly where the compile's data is when a
request arrives, not instructions (the service's are ~1.15x the compile's,
bench/count_server.py).

And a third floor, the least any server could spend a request on this machine under
this load: ``--workers`` processes forked from the benchmark, each reading a request by
hand and compiling it in the same process (no event loop, no operation process, no
deadline, memory limit, validation, access log or metrics), under the same clients
for the same time. What stands between it and the in-process compile is the machine
(the clients and the other processes evicting each other's caches), not the server;
what stands between the server and it is the server's own work and its isolation.

Numbers, not assertions: the test suite never times anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_compile import median_seconds

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = ROOT / "examples" / "domains" / "web-server.xml"
PROFILE = ROOT / "examples" / "profiles" / "server.vt"
HOST = "127.0.0.1"


def request_bytes(port: int) -> bytes:
    body = json.dumps({"domain": DOMAIN.read_text(), "traits": [PROFILE.read_text()]})
    body = body.encode()
    return (f"POST /v1/compile HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def read_response(sock: socket.socket, pending: bytearray) -> tuple[int, bytes]:
    """One response from a keep-alive connection: status and body."""
    head, body = read_message(sock, pending)
    return int(head[0].split(b" ", 2)[1]), body


def read_message(sock: socket.socket, pending: bytearray) -> tuple[list[bytes], bytes]:
    """One HTTP message from a keep-alive connection: its head's lines and its body (by
    Content-Length; neither side sends chunked here). ``pending`` holds bytes read past
    it. ConnectionError when the peer closes the connection."""
    while (end := pending.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        pending += chunk
    head = bytes(pending[:end]).split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head[1:]
                  if line[:15].lower() == b"content-length:")
    start = end + 4
    while len(pending) < start + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        pending += chunk
    body = bytes(pending[start:start + length])
    del pending[:start + length]
    return head, body


def client(port: int, request: bytes, expected: bytes, start_at: float, measure_from: float,
           stop_at: float, results) -> None:
    """One connection, one request at a time, from ``start_at`` to ``stop_at``; the
    latencies of requests sent after ``measure_from`` (the warm-up is not counted)."""
    latencies, errors, first_error = [], 0, None
    sock, pending = None, bytearray()
    while time.time() < start_at:
        time.sleep(0.001)
    cpu = time.process_time()
    while (now := time.time()) < stop_at:
        began = time.perf_counter()
        try:
            if sock is None:
                sock = socket.create_connection((HOST, port))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                pending.clear()
            sock.sendall(request)
            status, body = read_response(sock, pending)
            ok = status == 200 and body == expected
            if not ok and first_error is None:
                first_error = f"{status}: {body[:300]!r}"
        except OSError as exc:
            ok = False
            first_error = first_error or repr(exc)
            if sock is not None:
                sock.close()
            sock = None
        if now >= measure_from:
            latencies.append(time.perf_counter() - began)
            errors += not ok
    if sock is not None:
        sock.close()
    results.put((latencies, errors, first_error, time.process_time() - cpu))


def least_server(listener: socket.socket) -> None:
    """Answer the benchmark's requests on ``listener`` as cheaply as a server can: one
    connection at a time, the request read by hand (``read_message``), compiled in this
    process, answered as ``virtuned serve`` answers it. A floor to measure against,
    not a server: it trusts its clients and never stops."""
    import msgspec

    import virtuned
    from virtuned.api import TraitSource

    decode, encode = msgspec.json.Decoder().decode, msgspec.json.Encoder().encode
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = bytearray()
        with sock, contextlib.suppress(ConnectionError):
            while True:
                asked = decode(read_message(sock, pending)[1])
                sources = [TraitSource(f"<trait {number}>", text)
                           for number, text in enumerate(asked["traits"], 1)]
                answer = encode({"xml": virtuned.compile(asked["domain"], sources=sources).xml,
                                 "warnings": []})
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%b" % (len(answer), answer))


def start_server(port: int, workers: int, log: Path, access_log: bool,
                 *options: str) -> subprocess.Popen:
    """``virtuned serve`` on ``port``, with more ``options``, once it answers."""
    command = [sys.executable, "-m", "virtuned", "serve", "--host", HOST, "--port",
               str(port), "--workers", str(workers), *options]
    if not access_log:
        command.append("--no-access-log")
    with open(log, "wb") as sink:
        server = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server stopped:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                if read_response(sock, bytearray())[0] == 200:
                    return server
        except OSError:
            time.sleep(0.05)
    server.terminate()
    sys.exit("the server did not answer within 60 s")


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (uvicorn's workers, multiprocessing's
    helpers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # gone meanwhile
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def cpu_by_role(root: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of the server's processes by what they do:
    the supervisor, the workers (HTTP, routing, logs, metrics; multiprocessing's idle
    helper counts here too) and the operation processes (the requests themselves),
    with those that ended and were collected (in their parent's children's time). As
    with ``cpu_seconds``, read at both ends of a period and subtracted."""
    ticks = os.sysconf("SC_CLK_TCK")
    roles = ("supervisor", "workers", "operations", "operations")
    spent = dict.fromkeys(roles, 0.0)
    depth = {root: 0}
    for pid in process_tree(root):  # parents before their children
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        level = depth.setdefault(pid, depth.get(int(fields[1]), 0) + 1)
        utime, stime, cutime, cstime = (int(f) / ticks for f in fields[11:15])
        spent[roles[min(level, 3)]] += utime + stime
        spent[roles[min(level + 1, 3)]] += cutime + cstime
    return spent


def cpu_seconds(pids: list[int]) -> dict[int, tuple[float, float]]:
    """User and system CPU time of each process so far, with that of its children
    that have ended and been collected (a worker's operation processes, replaced as
    they go; the tree is read again each time, so each is counted once: while it
    runs as itself, after it ends in its parent). A process gone is left out."""
    ticks = os.sysconf("SC_CLK_TCK")
    spent = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(f) / ticks for f in fields[11:15])
        spent[pid] = (utime + cutime, stime + cstime)
    return spent


def last_level_cache_bytes() -> int:
    """The size of this CPU's largest cache (sysfs), or 32 MiB when it says none."""
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = entry.read_text().strip()
        units = {"K": 1 << 10, "M": 1 << 20}
        sizes.append(int(text.rstrip("KM")) * units.get(text[-1:], 1))
    return max(sizes, default=32 << 20)


def cold_cpu_seconds(function, rounds: int = 101) -> float:
    """Median CPU time of one call of ``function`` that starts with the last-level
    cache flushed: a buffer twice its size read, a byte a cache line, before each
    call and outside its timing. What a call costs when other processes ran on the
    machine since the last one (in the server: the clients, the kernel's network
    path, the other operation processes and workers) and evicted its working set."""
    sweep = bytearray(b"\x01" * 2 * last_level_cache_bytes())  # its pages made
    samples = []
    for _ in range(rounds):
        sweep[::64]  # read, not written: no dirty lines left to write back meanwhile
        start = time.process_time()
        function()
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def load(port: int, request: bytes, expected: bytes, args, measure) -> tuple:
    """``args.clients`` clients sending ``request`` to ``port`` for ``args.warmup`` and
    then ``args.seconds`` seconds: what each reports (``client``), and what ``measure()``
    returned when the measured period began and when it ended, as a tuple of three."""
    start_at = time.time() + 0.5
    measure_from = start_at + args.warmup
    stop_at = measure_from + args.seconds
    results = multiprocessing.Queue()
    clients = [multiprocessing.Process(target=client, args=(
        port, request, expected, start_at, measure_from, stop_at, results))
        for _ in range(args.clients)]
    for process in clients:
        process.start()
    time.sleep(max(0.0, measure_from - time.time()))
    before = measure()
    time.sleep(max(0.0, stop_at - time.time()))
    after = measure()
    outcomes = [results.get() for _ in clients]
    for process in clients:
        process.join()
    return outcomes, before, after


def least_server_cpu(expected: bytes, args) -> tuple[float, int, int]:
    """The third floor: ``args.workers`` processes of ``least_server`` under the same
    load; their CPU seconds over the measured period, the requests answered in it and
    the answers that were not the expected one."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        servers = [multiprocessing.Process(target=least_server, args=(listener,), daemon=True)
                   for _ in range(args.workers)]
        for process in servers:
            process.start()
        try:
            pids = [process.pid for process in servers]
            outcomes, before, after = load(port, request_bytes(port), expected, args,
                                           lambda: cpu_seconds(pids))
        finally:
            for process in servers:
                process.kill()
                process.join()
    spent = sum(map(sum, after.values())) - sum(map(sum, before.values()))
    return (spent, sum(len(outcome[0]) for outcome in outcomes),
            sum(outcome[1] for outcome in outcomes))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how long to measure (default: 60)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of load before measuring (default: 2)")
    parser.add_argument("--workers", type=int, default=2,
                        help="server worker processes (default: 2, one per core here)")
    parser.add_argument("--clients", type=int, default=4,
                        help="client processes, one connection each (default: 4)")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false",
                        help="run the server without its access log")
    parser.add_argument("--cpu-affinity", action="store_true",
                        help="run the server with --cpu-affinity (each worker and its "
                        "operation processes on one CPU)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    import virtuned

    domain, traits = DOMAIN.read_text(), [PROFILE.read_text()]
    expected = json.dumps({"xml": virtuned.compile(domain, traits=traits).xml,
                           "warnings": []}, ensure_ascii=False, separators=(",", ":"))
    # The floor: the same request compiled in-process, warm, on a machine not yet busy.
    def compile_once():
        virtuned.compile(domain, traits=traits)

    compile_before = median_seconds(compile_once, 51)
    compile_cpu_before = median_seconds(compile_once, 51, clock=time.process_time)
    compile_cold_before = cold_cpu_seconds(compile_once)
    port = free_port()
    request = request_bytes(port)
    with tempfile.TemporaryDirectory(prefix="virtuned-bench-") as scratch:
        log = Path(scratch) / "server.log"
        server = start_server(port, args.workers, log, args.access_log,
                              *(["--cpu-affinity"] if args.cpu_affinity else []))
        try:
            outcomes, (cpu_before, roles_before), (cpu_after, roles_after) = load(
                port, request, expected.encode(), args,
                lambda: (cpu_seconds(process_tree(server.pid)), cpu_by_role(server.pid)))
        finally:
            server.terminate()
            server.wait(timeout=30)
        least = least_server_cpu(expected.encode(), args)
        compile_after = median_seconds(compile_once, 51)
        compile_cpu_after = median_seconds(compile_once, 51, clock=time.process_time)
        compile_cold_after = cold_cpu_seconds(compile_once)
        log_lines = sum(1 for _ in log.open("rb"))

    latencies = sorted(t for outcome in outcomes for t in outcome[0])
    errors = sum(outcome[1] for outcome in outcomes)
    first_errors = [outcome[2] for outcome in outcomes if outcome[2]]
    client_cpu = sum(outcome[3] for outcome in outcomes) / (args.warmup + args.seconds)
    print(f"request: POST /v1/compile, {DOMAIN.relative_to(ROOT)} + the 4 traits of "
          f"{PROFILE.relative_to(ROOT)} ({len(request)} bytes), answer {len(expected)} bytes")
    print(f"server: {args.workers} worker(s), access log {'on' if args.access_log else 'off'}"
          f"{', each on one CPU' if args.cpu_affinity else ''}"
          f" ({log_lines} log lines); load: {args.clients} keep-alive connection(s), "
          f"{os.cpu_count()} CPUs; the clients used {client_cpu:.2f} CPUs")
    print(f"measured: {len(latencies)} requests in {args.seconds:g} s "
          f"(after {args.warmup:g} s of warm-up)")
    print(f"throughput: {len(latencies) / args.seconds:8.0f} requests/s   (target >= 1000)")
    if latencies:
        print(f"latency:    p50 {percentile(latencies, 0.50) * 1e3:6.2f} ms   "
              f"p90 {percentile(latencies, 0.90) * 1e3:6.2f} ms   "
              f"p99 {percentile(latencies, 0.99) * 1e3:6.2f} ms   (target < 25)   "
              f"max {latencies[-1] * 1e3:6.2f} ms   "
              f"mean {statistics.fmean(latencies) * 1e3:6.2f} ms")
    print(f"errors:     {errors}" + (f"   first: {first_errors[0]}" if first_errors else ""))
    user, system = (sum(spent[n] for spent in cpu_after.values()) -
                    sum(spent[n] for spent in cpu_before.values()) for n in (0, 1))
    served = max(len(latencies), 1)
    per_request = (user + system) / served
    in_process = min(compile_cpu_before, compile_cpu_after)
    print(f"in-process compile of the same request: {in_process * 1e6:8.1f} us CPU   "
          f"(before the load {compile_cpu_before * 1e6:.1f}, after "
          f"{compile_cpu_after * 1e6:.1f}; wall {compile_before * 1e6:.1f} and "
          f"{compile_after * 1e6:.1f})")
    print(f"server CPU per request:                 {per_request * 1e6:8.1f} us   "
          f"(user {user / served * 1e6:.1f} + system {system / served * 1e6:.1f}; "
          f"{user + system:.1f} CPU s in {len(cpu_after)} processes)")
    print("  of which: " + ", ".join(
        f"{role} {(roles_after[role] - roles_before[role]) / served * 1e6:.1f} us"
        for role in ("workers", "operations", "supervisor")))
    print(f"ratio server CPU / in-process compile:  {per_request / in_process:8.2f} x   "
          f"(target <= 1.3x)")
    cold = min(compile_cold_before, compile_cold_after)
    print(f"in-process compile, cache flushed first: {cold * 1e6:7.1f} us CPU   (before the "
          f"load {compile_cold_before * 1e6:.1f}, after {compile_cold_after * 1e6:.1f}; "
          f"{2 * last_level_cache_bytes() >> 20} MiB read before each); the server's "
          f"CPU a request is {per_request / cold:.2f}x that")
    spent, answered, wrong = least
    print(f"the least server ({args.workers} process(es), each reading a request by hand "
          f"and compiling it itself; no isolation, deadline, limits, checks or log), same "
          f"load: {answered / args.seconds:.0f} requests/s, {wrong} errors, "
          f"{spent / max(answered, 1) * 1e6:.1f} us CPU a request, "
          f"{spent / max(answered, 1) / in_process:.2f}x the in-process compile; the "
          f"server's CPU a request is {per_request * max(answered, 1) / spent:.2f}x that")


if __name__ == "__main__":
    main()
