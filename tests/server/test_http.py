"""HTTP/1.1 as virtuned's protocol (virtuned/server/http.py) speaks it, on raw
sockets: one answer per request, in order, with its exact head."""

from __future__ import annotations

import json
import socket

import pytest

from tests.server.harness import problem

BODY = b'{"traits": ["video qxl"]}'


def post(body: bytes = BODY, *extra: bytes) -> bytes:
    return (b"POST /v1/compile HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + b"".join(extra) + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def connect(server) -> socket.socket:
    port = int(server.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def read_answer(sock, pending: bytearray) -> tuple[bytes, dict, bytes]:
    """One answer: its status line, headers (lower-case names) and body."""
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        pending += chunk
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in lines)
    length = int(headers.get(b"content-length", b"0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        rest += chunk
    pending[:] = rest[length:]
    return status, headers, rest[:length]


def closed(sock) -> bool:
    return sock.recv(1) == b""


def test_an_answer_has_its_head_and_one_body(server):
    with connect(server) as sock:
        sock.sendall(post(BODY, b"X-Request-ID: h-1\r\n"))
        status, headers, body = read_answer(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK"
    assert sorted(headers) == [b"content-length", b"content-type", b"date", b"x-request-id"]
    assert (headers[b"content-type"], headers[b"x-request-id"]) == (b"application/json", b"h-1")
    assert json.loads(body)["warnings"] == []


def test_pipelined_requests_are_answered_in_order_on_one_connection(server):
    requests = [post(BODY, b"X-Request-ID: p-%d\r\n" % n) for n in range(3)]
    requests.insert(1, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: p-h\r\n\r\n")
    with connect(server) as sock:
        sock.sendall(b"".join(requests))
        pending = bytearray()
        answers = [read_answer(sock, pending) for _ in requests]
    assert [(status, headers[b"x-request-id"]) for status, headers, _ in answers] == [
        (b"HTTP/1.1 200 OK", b"p-0"), (b"HTTP/1.1 200 OK", b"p-h"),
        (b"HTTP/1.1 200 OK", b"p-1"), (b"HTTP/1.1 200 OK", b"p-2")]
    assert answers[1][2] == b'{"status":"ok","version":"0.1.0"}'


def test_expect_100_continue_is_answered_before_the_body(server):
    with connect(server) as sock:
        head, _, body = post(BODY, b"Expect: 100-continue\r\n").partition(b"\r\n\r\n")
        sock.sendall(head + b"\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        status, _, _ = read_answer(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK"


def test_connection_close_is_honoured(server):
    with connect(server) as sock:
        sock.sendall(post(BODY, b"Connection: close\r\n"))
        status, headers, _ = read_answer(sock, bytearray())
        assert (status, headers[b"connection"]) == (b"HTTP/1.1 200 OK", b"close")
        assert closed(sock)


def test_head_is_get_without_the_body(server):
    with connect(server) as sock:
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"}"):
            data += sock.recv(65536)
    head, get = data.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert head.endswith(b"\r\n\r\n") and b"content-length: 33\r\n" in head
    assert get.endswith(b'\r\n\r\n{"status":"ok","version":"0.1.0"}')


@pytest.mark.parametrize("raw", [
    b"GARBAGE \x00\xff\r\n\r\n",
    b"POST /v1/compile HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
])
def test_broken_http_is_a_400_problem_and_the_end_of_the_connection(server, raw):
    with connect(server) as sock:
        sock.sendall(raw)
        status, headers, body = read_answer(sock, bytearray())
        assert closed(sock)
    assert (status, headers[b"content-type"], headers[b"connection"]) == (
        b"HTTP/1.1 400 Bad Request", b"application/problem+json", b"close")
    document = json.loads(body)
    assert document["detail"].startswith("not a valid HTTP request: ")
    request_id = headers[b"x-request-id"].decode()
    assert document == problem(400, "malformed-request", "The request body is not valid JSON",
                               document["detail"], [], 2, request_id)


class _Clock:
    """An event loop's time and timers, moved by hand."""

    def __init__(self):
        self.now, self.timers = 0.0, []

    def time(self):
        return self.now

    def call_at(self, when, callback):
        timer = [when, callback, False]
        self.timers.append(timer)
        return _Timer(timer)

    def advance(self, seconds):
        self.now += seconds
        for timer in sorted(self.timers, key=lambda t: t[0]):
            if timer[0] <= self.now and not timer[2]:
                self.timers.remove(timer)
                timer[1]()


class _Timer:
    def __init__(self, timer):
        self.timer = timer

    def cancel(self):
        self.timer[2] = True


class _Connection:
    def __init__(self):
        self.closed = False

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True


def _idle_connection(clock):
    from virtuned.server.http import Protocol

    connection = Protocol.__new__(Protocol)  # only its keep-alive timer is used here
    connection.loop, connection.transport = clock, _Connection()
    connection.idle_timer = connection.idle_since = None
    connection.answering, connection.request = False, None
    return connection


def test_an_idle_connection_is_closed_after_keep_alive_seconds():
    from virtuned.server.http import KEEP_ALIVE

    clock = _Clock()
    connection = _idle_connection(clock)
    connection._idle()
    clock.advance(KEEP_ALIVE - 0.1)
    assert not connection.transport.closed
    clock.advance(0.1)
    assert connection.transport.closed


def test_a_connection_busy_again_before_its_timer_goes_off_is_kept():
    # one timer for many requests: when it goes off, the connection has been idle
    # for less than KEEP_ALIVE (a request was answered meanwhile): set again
    from virtuned.server.http import KEEP_ALIVE

    clock = _Clock()
    connection = _idle_connection(clock)
    connection._idle()
    for _ in range(10):  # a request every second, each answered at once
        clock.advance(1.0)
        connection.idle_since = None  # data_received
        connection._idle()  # answered
    assert not connection.transport.closed and len(clock.timers) == 1
    clock.advance(KEEP_ALIVE - 0.1)
    assert not connection.transport.closed
    clock.advance(0.1)
    assert connection.transport.closed
