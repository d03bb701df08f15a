"""Slow clients against the real server: does /healthz keep answering?

Starts ``virtuned serve`` on loopback, opens N connections (default 20,000, from 4
client processes: one process cannot hold them all under a 20,000 descriptor limit)
that each send the start of a request head and nothing more, then, while they hang
on, times /healthz on new connections. Prints how many the server closed to make
room, the sockets and RSS it holds, and the probes' latencies.

    .venv/bin/python bench/slow_clients.py [--clients 20000] [-- serve options...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("serve", nargs="*", help="more options for virtuned serve")
    args = parser.parse_args()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "virtuned", "serve", "--port", str(port), "--no-access-log",
         "--header-timeout", "3600", *args.serve],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port)
        ready, release = multiprocessing.Queue(), multiprocessing.Event()
        share = args.clients // args.processes
        clients = [multiprocessing.Process(target=_hold, args=(port, share, ready, release))
                   for _ in range(args.processes)]
        start = time.perf_counter()
        for client in clients:
            client.start()
        for _ in clients:
            ready.get()
        opened = time.perf_counter() - start
        latencies = []
        for _ in range(args.probes):
            before = time.perf_counter()
            status = _probe(port)
            latencies.append((time.perf_counter() - before) * 1000)
            assert status == b"200", status
        sockets, rss = _sockets(server.pid), _rss_mib(server.pid)
        release.set()
        closed = sum(ready.get() for _ in clients)
        for client in clients:
            client.join()
        latencies.sort()
        print(f"serve options: {' '.join(args.serve) or '(defaults)'}")
        print(f"slow clients: {args.clients} opened in {opened:.1f} s; the server closed "
              f"{closed} of them to make room")
        print(f"server while they hang on: {sockets} sockets, RSS {rss:.1f} MiB")
        print(f"/healthz on a new connection, {args.probes} probes: p50 "
              f"{statistics.median(latencies):.2f} ms, p99 "
              f"{latencies[int(len(latencies) * 0.99) - 1]:.2f} ms, max {latencies[-1]:.2f} "
              f"ms, all 200")
    finally:
        server.terminate()
        server.wait()


def _hold(port: int, count: int, ready, release) -> None:
    """Open ``count`` slow connections, hold them until released; report how many
    the server closed meanwhile."""
    held = []
    for number in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow-%d: " % number)
        held.append(sock)
    ready.put(0)
    release.wait()
    closed = 0
    for sock in held:
        sock.setblocking(False)
        try:
            closed += bool(sock.recv(1, socket.MSG_PEEK)) or 1
        except BlockingIOError:
            pass  # still open, nothing said
        except OSError:
            closed += 1
        sock.close()
    ready.put(closed)


def _probe(port: int) -> bytes:
    """GET /healthz on a new connection (a raw socket: httpx makes an SSL context
    per call, which costs more than the answer); its status."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer.split(b" ", 2)[1]


def _sockets(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("the server did not start")


if __name__ == "__main__":
    main()
