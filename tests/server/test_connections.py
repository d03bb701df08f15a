"""The connection limit: slow clients past it cost the server no descriptors and do
not keep anyone else out; /healthz answers while they hang on."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import httpx
import pytest

from tests.server.harness import problem, running_server
from tests.server.test_limits import blocked, read_response
from virtuned.server import Limits

LIMIT = 50
SLOW_CLIENTS = 500


@pytest.fixture(scope="module")
def small():
    with running_server("--max-connections", str(LIMIT)) as server:
        yield server


def slow_client(port: int, number: int) -> socket.socket:
    """A client that has sent the start of a head, and will send no more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Request-ID: slow-%d\r\nX-Slow: " % number)
    return sock


def test_slow_clients_past_the_limit_keep_no_one_out(small):
    port = int(small.url.rsplit(":", 1)[1])
    clients = []
    try:
        for number in range(SLOW_CLIENTS):
            clients.append(slow_client(port, number))
            # the newest is answered: the server made room for it
            if number % 100 == 99:
                assert httpx.get(f"{small.url}/healthz", timeout=60).status_code == 200
        assert httpx.get(f"{small.url}/healthz", timeout=60).status_code == 200
        # The first were closed to make room, each told why.
        head, body = read_response(clients[0])
        assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"\r\nretry-after: 1\r\n" in head
        assert json.loads(body) == problem(
            503, "overloaded", "Server overloaded", "the server has too many connections "
            "open; this one was the least recently active; retry later or elsewhere", [],
            1, "slow-0")
        # The server holds no more connections than its limit, whatever was sent.
        assert open_sockets(small.process.pid) <= LIMIT + 10
    finally:
        for client in clients:
            client.close()


def open_sockets(pid: int) -> int:
    """The sockets a process holds (its connections, listening socket, and those to
    its operation processes)."""
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir()
               if os.readlink(fd).startswith("socket:"))


def test_when_every_connection_has_a_request_being_answered_a_new_one_is_503(
        monkeypatch, tmp_path):
    limits = Limits(connections=1, concurrency=1, timeout=600)
    with blocked(monkeypatch, tmp_path, limits) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as new:
            head, body = read_response(new)  # answered before it sent anything
            assert new.recv(100) == b""  # and closed
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nretry-after: 1\r\n" in head
    answer = json.loads(body)
    assert answer == problem(503, "overloaded", "Server overloaded", "the server has too "
                             "many connections open, each with a request in progress; "
                             "retry later or elsewhere", [], 1, answer["request_id"])
