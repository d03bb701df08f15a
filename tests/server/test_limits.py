"""The per-request limits, each on a server started with a small one: body size,
the time limit (504), a full server (503), a body that never arrives (408), and
several worker processes that report their metrics together."""

from __future__ import annotations

import json
import socket
import time
import uuid

import httpx
import pytest

from tests.server.harness import in_process_server, problem, running_server
from virtuned import api
from virtuned.server import create_app

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
    request = slow_request()
    start = time.perf_counter()
    api.compile(request["domain"], traits=request["traits"])
    took = time.perf_counter() - start
    # The tests below rely on it: if compiling got this much faster, use a bigger one.
    assert took > 4 * TIME_LIMIT, f"the slow request took only {took:.3f} s"
    return json.dumps(request).encode()


@pytest.fixture(scope="module")
def limited():
    with running_server("--timeout", str(TIME_LIMIT), "--concurrency", "1",
                        "--max-body-bytes", "700000") as server:
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


def test_a_full_server_is_503_with_retry_after(idle, slow):
    limited = idle
    first = httpx.post(f"{limited.url}/v1/compile", content=slow, headers=JSON_BODY,
                       timeout=60)
    assert first.status_code == 504
    # The abandoned compile holds the only slot for ~0.25 s more: the next request
    # waits its whole time limit for it, in vain.
    second = httpx.post(f"{limited.url}/v1/compile", content=b"{}",
                        headers={**JSON_BODY, "x-request-id": "l-2"}, timeout=60)
    assert second.status_code == 503
    assert second.headers["retry-after"] == "1"
    assert second.json() == problem(503, "overloaded", "Server overloaded",
                                    "no operation slot became free within 0.05 s; retry "
                                    "later or elsewhere", [], 1, "l-2")
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
                                       "The request body did not arrive in time",
                                       "the body did not arrive within 0.05 s", [], 2, "l-3")
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


def test_profiles_are_resolved_once_across_requests(monkeypatch):
    """api._resolve caches by content; through the service too, request after request."""
    resolved = []
    real = api.resolve
    monkeypatch.setattr(api, "resolve", lambda *a, **k: resolved.append(1) or real(*a, **k))
    with in_process_server(create_app()) as url:
        body = {"profiles": ["server"], "traits": [f"# {uuid.uuid4()}\nvideo qxl"]}
        resolved.clear()  # the warm-up compile at start-up
        with httpx.Client(base_url=url, timeout=60) as client:
            answers = [client.post("/v1/compile", json=body) for _ in range(3)]
            assert [a.status_code for a in answers] == [200, 200, 200]
            assert len({a.text for a in answers}) == 1
            assert len(resolved) == 1
            body["params"] = None  # the same request spelled differently: still cached
            assert client.post("/v1/compile", json=body).status_code == 200
            assert len(resolved) == 1
            body["traits"].append("guest agent")  # another trait set: resolved anew
            assert client.post("/v1/compile", json=body).status_code == 200
            assert len(resolved) == 2
