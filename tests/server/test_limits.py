"""The per-request limits, each on a server started with a small one: body size,
the time limit (504, the operation's process killed), memory (422), a full server
(503), a body that never arrives (408), and several worker processes that report
their metrics together."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.server.harness import in_process_server, problem, running_server
from virtuned import api
from virtuned.server import Limits, create_app

JSON_BODY = {"content-type": "application/json", "x-request-id": "l-1"}
TIME_LIMIT = 0.05


def slow_request() -> dict:
    """A legitimate request that takes a while: traits on 10,000 interfaces."""
    interfaces = "".join(f"<interface type='network'><source network='n{i}'/></interface>"
                         for i in range(10_000))
    return {"domain": f"<domain><devices>{interfaces}</devices></domain>",
            "traits": ["network model virtio", "network queues 4",
                       "network ring size 1024"]}


@pytest.fixture(scope="module")
def slow():
    """A legitimate request that takes far longer than TIME_LIMIT: traits on 10,000
    interfaces (a quarter of a second and more; should compiling ever get that fast,
    the 504 test below answers 200 and says so)."""
    return json.dumps(slow_request()).encode()


@pytest.fixture(scope="module")
def limited():
    with running_server("--timeout", str(TIME_LIMIT), "--header-timeout", str(TIME_LIMIT),
                        "--concurrency", "1", "--max-body-bytes", "700000") as server:
        yield server


@pytest.fixture
def idle(limited):
    """The limited server with its one slot free: an abandoned compile of an earlier
    test keeps it until it ends."""
    deadline = time.monotonic() + 30
    while httpx.post(f"{limited.url}/v1/compile", content=b"{}", headers=JSON_BODY,
                     timeout=60).status_code != 200:
        assert time.monotonic() < deadline, "the slot never came free"
        time.sleep(0.05)
    return limited


def test_an_operation_over_the_time_limit_is_504(idle, slow):
    limited = idle
    answer = httpx.post(f"{limited.url}/v1/compile", content=slow, headers=JSON_BODY,
                        timeout=60)
    assert answer.status_code == 504
    assert answer.json() == problem(504, "timeout", "Time limit exceeded",
                                    "the operation did not finish within 0.05 s", [], 1,
                                    "l-1")
    limited.assert_serving()


def test_a_body_that_never_arrives_is_408(idle):
    limited = idle
    port = int(limited.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /v1/compile HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nX-Request-ID: l-3\r\nContent-Length: 100\r\n\r\n{")
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert json.loads(body) == problem(408, "request-timeout",
                                       "The request did not arrive in time",
                                       "the body did not arrive within 0.05 s", [], 2, "l-3")
    limited.assert_serving()


def test_a_head_that_trickles_is_408_and_the_end_of_the_connection(idle):
    """Slowloris: a client that sends its headers a byte at a time, slower than the
    header time limit, is answered 408 and disconnected."""
    limited = idle
    port = int(limited.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Request-ID: l-8\r\nX-Slow: ")
        head, body = read_response(sock)  # nothing more is sent: it never ends
        assert sock.recv(100) == b""  # closed
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert head.endswith(b"\r\nconnection: close")
    assert json.loads(body) == problem(408, "request-timeout",
                                       "The request did not arrive in time",
                                       "the head did not arrive within 0.05 s", [], 2, "l-8")
    limited.assert_serving()


def test_a_head_over_64_kib_is_413(idle):
    limited = idle
    port = int(limited.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        start = b"GET /healthz HTTP/1.1\r\nX-Request-ID: l-9\r\nX-Big: "
        # One byte over, and no more: the server reads all of it before it answers
        # (what a server closes on unread is reset, its answer with it).
        sock.sendall(start + b"a" * (64 * 1024 + 1 - len(start)))
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert json.loads(body)["detail"] == ("the request head is more than 65536 bytes; the "
                                          "limit is 65536")
    limited.assert_serving()


def test_a_whole_head_over_64_kib_is_413(idle):
    limited = idle
    port = int(limited.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Request-ID: l-10\r\nX-Big: " +
                     b"a" * (64 * 1024) + b"\r\n\r\n")
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert json.loads(body)["detail"] == ("the request head is more than 65536 bytes; the "
                                          "limit is 65536")
    limited.assert_serving()


def read_response(sock) -> tuple[bytes, bytes]:
    """The head and body of one HTTP response, read to its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(4096)
    return head, body


def test_the_body_limit_is_configurable(idle):
    limited = idle
    body = b'{"name": "' + b"x" * (700_000 - 12) + b'"}'
    assert len(body) == 700_000
    answer = httpx.post(f"{limited.url}/v1/compile", content=body, headers=JSON_BODY,
                        timeout=60)
    assert answer.status_code == 422  # read and checked: the name is too long
    answer = httpx.post(f"{limited.url}/v1/compile", content=body + b" ",
                        headers=JSON_BODY, timeout=60)
    assert answer.status_code == 413
    assert answer.json()["detail"] == "the body is 700001 bytes; the limit is 700000"


def test_workers_report_their_metrics_together():
    with running_server("--workers", "2") as server:
        # A new connection each time; the kernel hands each to one of the workers,
        # so both have answered some after a few (each request's log line is written
        # before its answer is sent).
        sent, workers = 0, set()
        while len(workers) < 2:
            assert sent < 1000, "one worker answered every connection"
            assert httpx.post(f"{server.url}/v1/compile", json={"traits": ["video qxl"]},
                              timeout=60).status_code == 200
            sent += 1
            workers = {line["pid"] for line in server.log_lines()
                       if line.get("path") == "/v1/compile"}
        metrics = httpx.get(f"{server.url}/metrics", timeout=60).text
    assert server.process.pid not in workers  # the supervisor answers nothing itself
    assert (f'virtuned_http_requests_total{{method="POST",route="/v1/compile",'
            f'status="200"}} {sent}.0') in metrics.splitlines()


def test_profiles_are_resolved_once_across_requests(monkeypatch, tmp_path):
    """api._resolve caches by content; through the service too, request after request
    (in its one operation process, which tells the test through a file)."""
    calls = tmp_path / "resolved"
    calls.touch()
    real = api.resolve

    def counted(*args, **kwargs):
        with open(calls, "a") as log:
            log.write("resolved\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "resolve", counted)
    with in_process_server(create_app(limits=Limits(concurrency=1))) as url:
        body = {"profiles": ["server"], "traits": [f"# {uuid.uuid4()}\nvideo qxl"]}
        calls.write_text("")  # the warm-up compile at start-up

        def resolved():
            return len(calls.read_text().splitlines())

        with httpx.Client(base_url=url, timeout=60) as client:
            answers = [client.post("/v1/compile", json=body) for _ in range(3)]
            assert [a.status_code for a in answers] == [200, 200, 200]
            assert len({a.text for a in answers}) == 1
            assert resolved() == 1
            body["params"] = None  # the same request spelled differently: still cached
            assert client.post("/v1/compile", json=body).status_code == 200
            assert resolved() == 1
            body["traits"].append("guest agent")  # another trait set: resolved anew
            assert client.post("/v1/compile", json=body).status_code == 200
            assert resolved() == 2


# -- operations bounded by construction: each runs in a process of its own, killed
# at its deadline and limited in memory. The operations below stand in for any
# request the compiler would take too long or too much memory over; they are patched
# in before the server forks its operation processes.

def in_operation_process(patched):
    """``patched`` in the operation processes; api.compile itself in this one (the
    server's warm-up compile, before it forks them)."""
    real, test_process = api.compile, os.getpid()
    return lambda *args, **kwargs: (real if os.getpid() == test_process else patched)(
        *args, **kwargs)


def blocking(marker: Path):
    """An operation that says it is running (its pid in ``marker``), and never ends."""
    def operation(*args, **kwargs):
        marker.write_text(str(os.getpid()))
        while True:
            time.sleep(3600)
    return in_operation_process(operation)


@in_operation_process
def hoarding(*args, **kwargs):
    """An operation that takes memory without end."""
    hoard = []
    while True:
        hoard.append(bytearray(1 << 20))


def test_an_operation_past_its_deadline_is_504_and_its_process_killed(monkeypatch,
                                                                       tmp_path):
    marker = tmp_path / "running"
    monkeypatch.setattr(api, "compile", blocking(marker))
    with in_process_server(create_app(limits=Limits(timeout=0.2, concurrency=1))) as url:
        answer = httpx.post(f"{url}/v1/compile", json={}, headers={"x-request-id": "l-5"},
                            timeout=60)
        assert answer.status_code == 504
        assert answer.json() == problem(504, "timeout", "Time limit exceeded",
                                        "the operation did not finish within 0.2 s", [], 1,
                                        "l-5")
        # Killed before it was answered: gone, or a zombie until it is reaped.
        assert wait_for(lambda: process_state(int(marker.read_text())) in ("Z", None))
        assert httpx.get(f"{url}/healthz", timeout=60).status_code == 200
        metrics = httpx.get(f"{url}/metrics", timeout=60).text
    assert ('virtuned_operation_processes_replaced_total{reason="timeout"} 1.0'
            in metrics.splitlines())


def test_an_operation_over_the_memory_limit_is_422(monkeypatch):
    monkeypatch.setattr(api, "compile", hoarding)
    limits = Limits(memory_bytes=64 << 20, concurrency=1, timeout=60)
    with in_process_server(create_app(limits=limits)) as url:
        answer = httpx.post(f"{url}/v1/compile", json={}, headers={"x-request-id": "l-6"},
                            timeout=60)
        assert answer.status_code == 422
        assert answer.json() == problem(
            422, "invalid-input", "Invalid input", "the operation needed more memory than "
            "the server allows one request (64 MiB); ask for less", [], 2, "l-6")
        assert httpx.get(f"{url}/healthz", timeout=60).status_code == 200
        metrics = httpx.get(f"{url}/metrics", timeout=60).text
    assert ('virtuned_operation_processes_replaced_total{reason="memory"} 1.0'
            in metrics.splitlines())


@contextlib.contextmanager
def blocked(monkeypatch, tmp_path, limits: Limits):
    """A server in this process whose one operation process is taken by a compile
    that never ends, from a connection of its own; yields the server's URL."""
    marker = tmp_path / "running"
    monkeypatch.setattr(api, "compile", blocking(marker))
    with in_process_server(create_app(limits=limits)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as busy:
            busy.sendall(b"POST /v1/compile HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 2\r\n\r\n{}")
            assert wait_for(marker.exists)
            yield url


def test_beyond_the_queue_a_request_is_503_at_once(monkeypatch, tmp_path):
    limits = Limits(timeout=600, concurrency=1, queue=0)
    with blocked(monkeypatch, tmp_path, limits) as url:
        answer = httpx.post(f"{url}/v1/explain", json={},
                            headers={"x-request-id": "l-7"}, timeout=60)
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.json() == problem(
            503, "overloaded", "Server overloaded", "every operation slot is busy and "
            "0 requests are waiting already; retry later or elsewhere", [], 1, "l-7")
        assert httpx.get(f"{url}/healthz", timeout=60).status_code == 200


def wait_for(condition, seconds: float = 30) -> bool:
    """Whether ``condition()`` comes true within ``seconds`` (a bound on a wait, not a
    measure of speed)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def process_state(pid: int) -> str | None:
    """A process's state letter (R, S, Z...), or None when it no longer exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rpartition(")")[2].split()[0]
