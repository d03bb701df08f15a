"""Soak: the HTTP service under a mixed valid, invalid and hostile load for minutes,
printing its memory each minute. Target: flat after the first minute (< 5% growth).

    .venv/bin/python bench/soak_server.py [--minutes 10] [--clients 3] [-- serve options]

Starts ``virtuned serve`` (2 workers, access log on, to /dev/null) on loopback; each
of ``--clients`` processes sends, round and round, a mix of requests: compiles,
explains and plans that succeed; requests the compiler refuses (an unknown trait, a
conflict, bad XML, JSON that fails validation); and hostile ones: XXE, billion
laughs, 10,000-deep JSON, a 100,000-digit number, NULs, path traversal in profile
names, a body over the limit, a head over 64 KiB, broken HTTP, a head abandoned
half-way, random paths and request ids. Every answer must be what its kind expects
(a 2xx, or the 4xx of the problem), never a 5xx.

Each minute it prints the requests answered and the memory of the server's whole
tree (the supervisor, its workers and their operation processes): RSS summed, and
PSS (pages shared between processes counted once), which is the one that says what
the server costs; at the end, the growth of each since the end of the first minute.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = (ROOT / "examples" / "domains" / "web-server.xml").read_text()
HOST_CAPS = (ROOT / "examples" / "hosts" / "two-node-smt.xml").read_text()
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' +
          "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 or "")) * 10}">'
                  for i in range(1, 10)) + ']><domain><name>&lol9;</name></domain>')
XXE = ('<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY xxe SYSTEM '
       '"file:///etc/passwd">]><domain><name>&xxe;</name></domain>')


def json_post(path: str, value, expect: tuple[int, ...]):
    return ("POST", path, json.dumps(value).encode(), expect)


# (method, path, body, the statuses it may get); a body of None: raw bytes follow
MIX = [
    # valid
    json_post("/v1/compile", {"domain": DOMAIN, "profiles": ["server"],
                              "traits": ["video qxl"]}, (200,)),
    json_post("/v1/compile", {"traits": ["video qxl", "disk bus virtio"]}, (200,)),
    json_post("/v1/explain", {"domain": DOMAIN, "traits": ["video virtio"]}, (200,)),
    json_post("/v1/plan", {"traits": ["dedicated cpus", "vcpus 4"], "host": HOST_CAPS},
              (200, 409)),
    ("GET", "/v1/profiles", b"", (200,)),
    ("GET", "/v1/traits", b"", (200,)),
    ("GET", "/healthz", b"", (200,)),
    ("GET", "/metrics", b"", (200,)),
    # invalid
    json_post("/v1/compile", {"traits": ["video qxxl"]}, (422,)),
    json_post("/v1/compile", {"traits": ["machine q35", "machine pc"]}, (409,)),
    json_post("/v1/compile", {"domain": "<domain><name>x</nam></domain>"}, (422,)),
    json_post("/v1/compile", {"trait": ["video qxl"], "params": {"a": [1]}}, (422,)),
    json_post("/v1/compile", {"profiles": ["no-such-profile"]}, (422,)),
    json_post("/v1/check", {"text": "profile p 1.0.0\nvideo qxl\nvideo qxl\n"}, (200, 422)),
    ("POST", "/v1/compile", b"{not json", (400,)),
    ("PUT", "/v1/compile", b"{}", (405,)),
    # hostile
    json_post("/v1/compile", {"domain": XXE}, (422,)),
    json_post("/v1/compile", {"domain": LAUGHS}, (422,)),
    ("POST", "/v1/compile", b"[" * 10_000 + b"]" * 10_000, (400,)),
    ("POST", "/v1/compile", b'{"params": {"a": ' + b"9" * 100_000 + b"}}", (400,)),
    json_post("/v1/compile", {"name": "a\u0000b"}, (422,)),
    json_post("/v1/compile", {"traits": ["video\u0000qxl"]}, (422,)),
    json_post("/v1/compile", {"profiles": ["../../etc/passwd"]}, (422,)),
    json_post("/v1/compile", {"traits": ["include ../../etc/passwd"]}, (422,)),
    json_post("/v1/compile", {"traits": ["pcie root ports 1000000000"]}, (422, 504)),
    json_post("/v1/compile", {"traits": ["vcpus 99999999999999999999999999999"]},
              (422, 504)),
    json_post("/v1/compile", {"reserved_cpus": "0-999999999", "host": HOST_CAPS,
                              "traits": ["dedicated cpus"]}, (409, 422, 504)),
    json_post("/v1/compile", {"traits": ["when not " * 1000 + "machine q35 { video qxl }"]},
              (422,)),
    # refused by its Content-Length and closed: the unread rest may reset it first
    ("POST", "/v1/compile", b"x" * (1024 * 1024 + 1), (413, "broken")),
    ("GET", "/random", b"", (404,)),
]
RAW = [  # (bytes sent, what the first line of the answer starts with; None: no answer)
    (b"GARBAGE \x00\xff\r\n\r\n", b"HTTP/1.1 400"),
    (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", b"HTTP/1.1 413"),
    (b"GET /healthz HTTP/1.1\r\nX-Abandoned: ", None),  # a head given up half-way
]


def load(port: int, stop, counts) -> None:
    """One client process: the mix, round and round, until ``stop``."""
    rng = random.Random(os.getpid())
    tally: collections.Counter = collections.Counter()
    sock, pending = None, bytearray()
    while not stop.is_set():
        if rng.random() < 0.05:
            raw, expect = rng.choice(RAW)
            tally[_raw(port, raw, expect)] += 1
            continue
        number = rng.randrange(len(MIX))
        method, path, body, expect = MIX[number]
        if path == "/random":
            path = f"/{uuid.uuid4().hex}"
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            pending = bytearray()
        head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"X-Request-ID: {uuid.uuid4().hex}\r\nContent-Length: {len(body)}\r\n\r\n")
        try:
            sock.sendall(head.encode() + body)
            status, close = _response(sock, pending)
        except OSError:
            status, close = "broken", True
        if status not in expect:
            status = f"unexpected {status} for {method} {path} (MIX[{number}])"
        elif status == "broken":
            status = "reset (too large)"
        tally[status] += 1
        if close:
            sock.close()
            sock = None
    counts.put(tally)


def _response(sock: socket.socket, pending: bytearray) -> tuple[int, bool]:
    while (end := pending.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError
        pending += chunk
    head = bytes(pending[:end]).decode("latin-1").lower()
    length = int(head.split("content-length: ", 1)[1].split("\r\n", 1)[0])
    while len(pending) < end + 4 + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError
        pending += chunk
    del pending[:end + 4 + length]
    return int(head.split(" ", 2)[1]), "connection: close" in head


def _raw(port: int, raw: bytes, expect: bytes | None) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            sock.sendall(raw)
            if expect is None:
                return "abandoned"
            answer = sock.recv(100)
        except OSError:
            return "reset"  # closed on unread bytes: a refusal too
    return "raw ok" if answer.startswith(expect) else f"unexpected raw {answer[:20]!r}"


def memory(pid: int) -> tuple[float, float, int]:
    """RSS and PSS of ``pid`` and all its descendants, in MiB, and how many."""
    rss = pss = 0
    tree = _tree(pid)
    for member in tree:
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass  # ended meanwhile (an operation process replaced)
    return rss / 1024, pss / 1024, len(tree)


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            children[int(stat.rpartition(")")[2].split()[1])].append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        member = todo.pop()
        tree.append(member)
        todo += children.get(member, [])
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("serve", nargs="*", help="more options for virtuned serve")
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "virtuned", "serve", "--port", str(port), "--workers", "2",
         "--timeout", "2", *args.serve],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port)
        stop, counts = multiprocessing.Event(), multiprocessing.Queue()
        clients = [multiprocessing.Process(target=load, args=(port, stop, counts))
                   for _ in range(args.clients)]
        for client in clients:
            client.start()
        print(f"soak: {args.minutes:g} min, {args.clients} clients, serve --workers 2 "
              f"--timeout 2 {' '.join(args.serve)}", flush=True)
        print(f"{'minute':>6} {'RSS MiB':>9} {'PSS MiB':>9} {'processes':>9} "
              f"{'load avg':>8}", flush=True)
        samples, start = [], time.monotonic()
        minutes = max(1, round(args.minutes))
        step = args.minutes * 60 / minutes
        for minute in range(1, minutes + 1):
            time.sleep(max(0.0, start + minute * step - time.monotonic()))
            rss, pss, members = memory(server.pid)
            samples.append((rss, pss))
            print(f"{minute:>6} {rss:>9.1f} {pss:>9.1f} {members:>9} "
                  f"{os.getloadavg()[0]:>8.2f}", flush=True)
        stop.set()
        tally: collections.Counter = collections.Counter()
        for _ in clients:
            tally.update(counts.get())
        for client in clients:
            client.join()
        first, last = samples[0], samples[-1]
        print(f"growth after the first minute: RSS {_growth(first[0], last[0])}, "
              f"PSS {_growth(first[1], last[1])} (target < 5%)")
        answered = sum(tally.values())
        print(f"requests: {answered} ({answered / (args.minutes * 60):.0f}/s); by answer: "
              + ", ".join(f"{k}: {v}" for k, v in sorted(tally.items(), key=str)))
        if any(str(kind).startswith(("unexpected", "broken")) for kind in tally):
            raise SystemExit("some answers were not what their requests expect")
    finally:
        server.terminate()
        server.wait()


def _growth(first: float, last: float) -> str:
    return f"{first:.1f} -> {last:.1f} MiB ({(last - first) / first * 100:+.1f}%)"


def _wait(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start")


if __name__ == "__main__":
    main()
