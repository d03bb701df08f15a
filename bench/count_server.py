"""Instruction counts (valgrind callgrind) of what the HTTP service adds to a compile.

    .venv/bin/python bench/count_server.py [--multiprocess] [PART...]
    parts: compile answer child worker  (default: all)

``--multiprocess``: the worker's metrics in a file of a temporary directory
(observe.Samples), as ``serve --workers 2`` and bench_server.py keep them; without
it, in the process's memory, as with one worker.

bench/bench_server.py's request (the 2.4 KB example domain, the 4 traits of
examples/profiles/server.vt, inline), each part fed in-process N times:

- ``compile``: api.compile of the request's domain and traits, as a library user
  calls it (the floor the service is measured against);
- ``answer``: Service.answer('compile', ...) of the request's head and body, as an
  operation process runs it: the body decoded and checked, the API's arguments, the
  compile, the JSON answer;
- ``child``: all an operation process does for a request but the socket calls: the
  payload unpickled, ``answer``, the answer pickled (pool.py's framing);
- ``worker``: the worker's side with the operation replaced by a canned answer, on
  the server's event loop (uvloop): the request's bytes arrive on a client socket and
  go through http.Protocol, the payload is framed for the pool and written to a
  socket pair whose other end (standing for the operation process) answers the
  canned frame, the answer is read back as pool.py reads it, the access log (to
  /dev/null) and metrics, the answer written to the client socket. The client's side
  (a reader that sends the next request once an answer is whole) and the canned
  answer's send run in the same process, and so count here too (~4k a request).

With every part, it also prints (child + worker) / compile: the service's instructions
a request against the library's.

User-space instructions only: neither the kernel's share of the socket calls nor the
cache misses of a loaded machine count here (bench/bench_server.py measures those).
Counts are (600 calls − 100 calls) / 500, with PYTHONHASHSEED=0 and the collector
frozen after warming up (as the server's fork does), so start-up cancels; a part
smaller than ~50k instructions drowns in what is left of start-up's noise. Stable
under load, unlike times.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DOMAIN = ROOT / "examples" / "domains" / "web-server.xml"
PROFILE = ROOT / "examples" / "profiles" / "server.vt"
CALLS, BASE = 600, 100  # the difference of two runs: start-up and its noise cancel


def _body() -> bytes:
    return json.dumps({"domain": DOMAIN.read_text(),
                       "traits": [PROFILE.read_text()]}).encode()


def _request_bytes(body: bytes) -> bytes:
    return (f"POST /v1/compile HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def _service():
    from virtuned.server.app import Limits, Service
    return Service((), Limits())


def part_compile():
    from virtuned import api
    body = json.loads(_body())
    return lambda: api.compile(body["domain"], traits=tuple(body["traits"]))


HEADERS = {b"host": b"127.0.0.1:8000", b"content-type": b"application/json"}


def part_answer():
    service, body = _service(), _body()
    headers = {**HEADERS, b"content-length": b"%d" % len(body)}
    return lambda: service.answer("compile", "POST", "/v1/compile", headers, body, "id1")


def part_child():
    from virtuned.server import pool
    service, body = _service(), _body()
    headers = {**HEADERS, b"content-length": b"%d" % len(body)}
    frame = pool.encode_request(("compile", "POST", "/v1/compile", headers, body, "id1"))
    return lambda: pool.encode_answer(service.answer(*pool.decode_request(frame)), None)


def part_worker():
    """The protocol on a client socket, the pool answering from a canned frame through
    a real socket pair, on uvloop as the server runs: each hop wakes the event loop
    as it does in the server. One call: ``times`` requests, one after the other."""
    import asyncio
    import socket

    import uvloop

    from virtuned.server import app as server_app, http, pool

    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # the access log
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    service = _service()
    answer = service.answer("compile", "POST", "/v1/compile", HEADERS, _body(), "id1")
    reply = pool.encode_answer(answer, None)
    application = server_app.App(service, access_log=True)
    the_pool = application.pool
    the_pool.loop = loop
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    process = pool.OperationProcess(the_pool, 0)
    the_pool.processes.add(process)
    loop.run_until_complete(loop.create_unix_connection(lambda: process, sock=ours))

    def operation() -> None:  # the operation process: a request read, the answer sent
        theirs.recv(1 << 16)
        theirs.sendall(reply)

    loop.add_reader(theirs.fileno(), operation)

    class Config:
        loaded, loaded_app = True, application

    class State:
        connections, total_requests, default_headers = set(), 0, [
            (b"date", b"Mon, 07 Dec 2026 11:00:00 GMT")]

    served, client = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    protocol = http.Protocol(Config, State, _loop=loop)
    loop.run_until_complete(loop.connect_accepted_socket(lambda: protocol, served))
    request = _request_bytes(_body())
    client.sendall(request)  # once, to learn the answer's size
    loop.run_until_complete(asyncio.sleep(0.3))
    size = len(client.recv(1 << 20))
    left = [0, 0]  # requests still to send, bytes of the answer still to come

    def answered() -> None:  # the client: the next request once an answer is whole
        left[1] -= len(client.recv(1 << 16))
        if left[1] > 0:
            return
        left[0] -= 1
        if left[0] <= 0:
            loop.stop()
            return
        left[1] = size
        client.sendall(request)

    loop.add_reader(client.fileno(), answered)

    def run(times: int) -> None:
        left[:] = times, size
        client.sendall(request)
        loop.run_forever()
    return run


def _repeat(part):
    """A part that makes one call at a time, as one that makes ``times`` calls."""
    def many():
        one = part()

        def run(times: int) -> None:
            for _ in range(times):
                one()
        return run
    return many


PARTS = {"compile": _repeat(part_compile), "answer": _repeat(part_answer),
         "child": _repeat(part_child), "worker": part_worker}


def count(part: str, calls: int, env: dict) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         "--log-file=/dev/stdout", sys.executable, __file__, "--run", part, str(calls)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0", **env})
    return int(re.search(r"Collected : (\d+)", done.stdout).group(1))


def per_call(part: str, multiprocess: bool) -> float:
    if not multiprocess:
        return (count(part, CALLS, {}) - count(part, BASE, {})) / (CALLS - BASE)
    counts = []
    for calls in (CALLS, BASE):  # each run its own files, as a worker starts with none
        with tempfile.TemporaryDirectory(prefix="virtuned-metrics-") as directory:
            counts.append(count(part, calls, {"VIRTUNED_METRICS_DIR": directory}))
    return (counts[0] - counts[1]) / (CALLS - BASE)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        import gc
        run = PARTS[sys.argv[2]]()
        run(2)  # warm: the parser, the vocabulary, the caches of recurring things
        gc.collect()
        gc.freeze()  # as the server's fork does: what start-up made stays out of it
        run(int(sys.argv[3]))
    else:
        multiprocess = "--multiprocess" in sys.argv[1:]
        parts = ([a for a in sys.argv[1:] if a != "--multiprocess"]
                 or ["compile", "answer", "child", "worker"])
        counts = {}
        for part in parts:
            counts[part] = per_call(part, multiprocess)
            print(f"{part:8s} {counts[part]:12,.0f}", flush=True)
        if {"compile", "child", "worker"} <= counts.keys():
            total = counts["child"] + counts["worker"]
            print(f"child + worker {total:12,.0f}  = {total / counts['compile']:.2f}x "
                  "the compile")
