"""HTTP/1.1 for the service: an asyncio protocol on httptools' parser that hands each
request straight to its handler and writes each answer with one ``write``.

uvicorn runs it (``uvicorn.Config(app, http=Protocol)``) and keeps what it is good
at: the worker processes, signals, the graceful shutdown and the lifespan. Its own
protocols speak ASGI, whose messages, scope dictionaries, per-request events and
separate writes for the head and the body cost more CPU per request than the
compile of a typical request does in the rest of the server. Here the router is a
dictionary, and the request is what the handlers read and no more.

Per connection: requests are answered one at a time, in order (pipelined requests
wait their turn, and reading pauses meanwhile); a body larger than the limit is
refused by its Content-Length before a byte of it is read, or as it arrives when it
is chunked (and the connection is closed, its unread rest with it); a body that does
not arrive within the time limit is a 408; ``Expect: 100-continue`` is answered; an
idle keep-alive connection is closed after ``KEEP_ALIVE`` seconds; HTTP the parser
refuses (request smuggling with Content-Length and chunked at once, garbage) is a
400 and the end of the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import NamedTuple
from urllib.parse import unquote

import httptools
import msgspec

from virtuned.diagnostics import Diagnostic, Sources, locate, render
from virtuned.server import contract
from virtuned.server.access import log_refusal
from virtuned.server.validation import Problem

LOG = logging.getLogger("virtuned.server")
KEEP_ALIVE = 5.0  # seconds an idle connection is kept (uvicorn's default)
HEAD_BYTES = 64 * 1024  # the largest request head (request line and headers)
JSON = b"application/json"
PROBLEM_JSON = b"application/problem+json"
_REASONS = {100: b"Continue", 200: b"OK", 400: b"Bad Request", 401: b"Unauthorized",
            403: b"Forbidden", 404: b"Not Found",
            405: b"Method Not Allowed", 408: b"Request Timeout", 409: b"Conflict",
            413: b"Content Too Large", 415: b"Unsupported Media Type",
            422: b"Unprocessable Content", 500: b"Internal Server Error",
            503: b"Service Unavailable", 504: b"Gateway Timeout"}


class Request:
    """What a handler gets of a request: its method, path, the headers (lower-case
    names) and the body."""

    __slots__ = ("method", "path", "headers", "body", "request_id", "client", "started",
                 "keep_alive")

    def __init__(self, client: str | None):
        self.method, self.path, self.headers, self.body = "", "", {}, b""
        self.client, self.started = client, time.perf_counter()
        self.request_id, self.keep_alive = "", True

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()
    problem: str | None = None  # the problem kind of an error answer, for the metrics


def json_response(value) -> Response:
    return Response(200, msgspec.json.encode(value))


def diagnostic(d: Diagnostic, sources: Sources | None) -> contract.Diagnostic:
    span = locate(d.span, sources)
    return contract.Diagnostic(
        severity=d.severity, message=d.message, file=span.file, line=span.line,
        col=span.col, end_line=span.end_line, end_col=span.end_col, hint=d.hint,
        related=[_related(r.message, locate(r.span, sources)) for r in d.related])


def _related(message: str, span) -> contract.Related:
    return contract.Related(message=message, file=span.file, line=span.line, col=span.col)


def problem_response(problem: Problem, request_id: str) -> Response:
    """The problem document of an error answer (RFC 9457)."""
    kind = contract.PROBLEMS[problem.kind]
    body = contract.Problem(
        type=contract.PROBLEM_TYPE + problem.kind, title=kind.title, status=kind.status,
        detail=problem.message or "\n".join(render(d, problem.sources)
                                            for d in problem.diagnostics),
        instance=f"urn:virtuned:request:{request_id}" if request_id else None,
        request_id=request_id or None,
        diagnostics=[diagnostic(d, problem.sources) for d in problem.diagnostics],
        exit_code=kind.exit_code)
    try:
        encoded = msgspec.json.encode(body)
    except UnicodeEncodeError:  # a lone surrogate of the request, named in a pointer
        encoded = json.dumps(msgspec.to_builtins(body)).encode("ascii")
    return Response(kind.status, encoded, PROBLEM_JSON,
                    tuple((k.lower().encode("latin-1"), v.encode("latin-1"))
                          for k, v in problem.headers.items()), problem.kind)


class Protocol(asyncio.Protocol):
    """One HTTP/1.1 connection. ``config.loaded_app`` is the service's App
    (app.py): its routes, limits and observer."""

    def __init__(self, config, server_state, app_state=None, _loop=None):
        if not config.loaded:
            config.load()
        app = config.loaded_app
        self.routes, self.limits, self.observer = app.routes, app.limits, app.observer
        self.open = app.connections  # this worker's, least recently active first
        self.guard = app.guard  # who may call (access.py), or None: anyone
        self.certified = False  # the client presented a certificate the CA signed
        self.state = server_state
        self.loop = _loop or asyncio.get_event_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport = None
        self.client = None
        self.pending: deque[tuple[Request, object]] = deque()
        self.answering = False  # a request of this connection is being answered
        self.closed = self.paused = self.closing_after = False
        self.writable = True
        self.idle_timer = None  # closes a keep-alive connection left idle
        self.idle_since: float | None = None  # when it was last left idle; None: busy
        self.read_timer = None  # the time limit of the head or body still arriving
        # the request being parsed
        self.request: Request | None = None
        self.handler = None
        self.url = b""
        self.body: list[bytes] = []
        self.size = 0
        self.in_head = False  # its head is still arriving
        self.head_bytes = 0  # bytes received since its head began, while it arrives
        self.head_size = 0  # the bytes of its head's headers

    # -- the connection

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if isinstance(peer, tuple) else None
        self.certified = bool(transport.get_extra_info("peercert"))
        if len(self.open) >= self.limits.connections and not _make_room(self.open):
            self._refuse(overloaded("the server has too many connections open, each "
                                     "with a request in progress"))
            return
        self.open[self] = None
        self.state.connections.add(self)
        self._idle()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.open.pop(self, None)
        self.state.connections.discard(self)
        self._stop_timers()

    def make_room(self) -> None:
        """Close this connection for a new one, the server being full: it is the
        least recently active of those with nothing being answered (a client that
        trickles its head, or a keep-alive connection left idle)."""
        self.open.pop(self, None)
        if self.request is not None:
            self._refuse(overloaded("the server has too many connections open; this "
                                     "one was the least recently active"))
        else:
            self.transport.close()
            self.closed = True

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close when idle, else after the answers."""
        if not self.answering and not self.pending:
            self.transport.close()
        else:
            self.closing_after = True

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        if not self.answering:
            self._next()

    def data_received(self, data: bytes) -> None:
        if self.closed or self.transport.is_closing():
            return
        self.idle_since = None  # its idle timer, if it goes off meanwhile, does nothing
        if self.in_head:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(Problem("malformed-request", "protocol upgrades are not "
                                 "supported"))
        except httptools.HttpParserError as exc:
            self._refuse(Problem("malformed-request", f"not a valid HTTP request: {exc}"))
        else:
            if self.request is not None:
                self._arriving(len(data))

    def _arriving(self, size: int) -> None:
        """A request is still arriving after ``size`` bytes: its head must be whole
        within HEAD_BYTES and the header time limit, its body within the time limit,
        each counted from when it began."""
        if self.in_head:
            if not self.head_bytes:
                self.head_bytes = size  # the chunk the head began in
            if self.head_bytes > HEAD_BYTES:
                self._refuse(_head_too_large())
            elif self.read_timer is None:
                seconds = self.limits.header_timeout
                self.read_timer = self.loop.call_later(seconds, self._late, "head", seconds)
        elif self.read_timer is None:
            seconds = self.limits.timeout
            self.read_timer = self.loop.call_later(seconds, self._late, "body", seconds)

    # -- parsing (httptools' callbacks)

    def on_message_begin(self) -> None:
        if self.open.pop(self, 0) is None:  # the most recently active now
            self.open[self] = None
        self.request = Request(self.client)
        self.url, self.body, self.size = b"", [], 0
        self.in_head, self.head_bytes, self.head_size = True, 0, 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value)
        name, value = name.lower(), value.rstrip(b" \t")
        headers = self.request.headers
        headers[name] = headers[name] + b", " + value if name in headers else value

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.read_timer is not None:  # the head's: the body has its own
            self.read_timer.cancel()
            self.read_timer = None
        request = self.request
        if self.head_size + len(self.url) > HEAD_BYTES:  # a head that came in one piece
            self._refuse(_head_too_large())
            return
        request.method = self.parser.get_method().decode("ascii", "replace")
        url = self.url  # origin-form (/path?query) but for a proxy's absolute-form
        path = (url.partition(b"?")[0] if url[:1] == b"/" else
                httptools.parse_url(url).path).decode("latin-1")
        request.path = unquote(path) if "%" in path else path
        request.request_id = self.observer.request_id(request.headers.get(b"x-request-id"))
        request.keep_alive = self.parser.should_keep_alive()
        refusal = self.guard and self.guard.refusal(
            request.path, request.headers.get(b"authorization"), self.certified)
        methods = self.routes.get(request.path)
        if refusal:  # before anything is said of the path
            log_refusal(refusal, request)
            self.handler = refusal
        elif methods is None:
            self.handler = Problem("not-found", f"no resource at {request.path}; the API "
                                   "is described at /openapi.json")
        elif request.method not in methods:
            self.handler = Problem("method-not-allowed", f"{request.method} is not "
                                   f"allowed on {request.path}",
                                   headers={"Allow": ", ".join(methods)})
        else:
            self.handler = methods[request.method]
        declared = request.headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limits.body_bytes:
            # refused before reading a byte of it
            self._refuse(_too_large(int(declared), self.limits.body_bytes))
        elif request.headers.get(b"expect", b"").lower() == b"100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, chunk: bytes) -> None:
        if self.request is None:
            return  # refused already
        self.size += len(chunk)
        if self.size > self.limits.body_bytes:
            self._refuse(_too_large(self.size, self.limits.body_bytes, at_least=True))
            return
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        request = self.request
        if request is None:
            return  # refused already
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None
        request.body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.request, self.body = None, []
        self.pending.append((request, self.handler))
        if not self.answering:
            self._next()
        elif not self.paused:
            self.transport.pause_reading()  # pipelined: one at a time
            self.paused = True

    # -- answering

    def _next(self) -> None:
        if not self.pending or not self.writable or self.closed:
            return
        request, handler = self.pending.popleft()
        self.answering = True
        if isinstance(handler, Problem):
            self._send(request, problem_response(handler, request.request_id))
            return
        try:  # a Response now, or None: one comes later (from an operation process)
            answer = handler(request, lambda later: self._answered(request, later))
        except Exception as exc:
            answer = failed(request, exc)
        if answer is not None:
            self._send(request, answer)

    def _answered(self, request: Request, answer) -> None:
        """The answer of a handler that answers later: a Response, or a Problem."""
        self._send(request, failed(request, answer) if isinstance(answer, Exception)
                   else answer)

    def _send(self, request: Request, response: Response) -> None:
        """Record the answer (before it leaves: once a client has it, it is in the log
        and the metrics, whichever worker the client asks), then write it whole."""
        self.observer.record(request.method, request.path, response.status,
                             time.perf_counter() - request.started, request.request_id,
                             request.client, response.problem)
        self.answering = False
        if self.closed:
            return
        keep_alive = request.keep_alive and not self.closing_after
        head = [_STATUS_LINES.get(response.status) or _status_line(response.status),
                _default_headers(self.state.default_headers)]
        for name, value in response.headers:
            head.append(b"%s: %s\r\n" % (name, value))
        head.append(b"content-type: %s\r\ncontent-length: %d\r\nx-request-id: %s\r\n%s\r\n"
                    % (response.content_type, len(response.body),
                       request.request_id.encode("ascii"),
                       b"" if keep_alive else b"connection: close\r\n"))
        if request.method != "HEAD":
            head.append(response.body)
        self.transport.write(b"".join(head))
        self.state.total_requests += 1
        if not keep_alive:
            self.transport.close()
            self.closed = True
        elif self.pending:
            self._next()
        else:
            if self.paused:
                self.transport.resume_reading()
                self.paused = False
            if self.request is None:
                self._idle()

    def _refuse(self, problem: Problem) -> None:
        """Answer a request that cannot be read on, and close the connection: its
        body is too large, late, or the HTTP is broken."""
        request = self.request or Request(self.client)
        if not request.request_id:  # not even its head was read
            request.request_id = self.observer.request_id(request.headers.get(b"x-request-id"))
            request.method = request.method or "-"
            request.path = request.path or "-"
        request.keep_alive = False
        self.request = None
        self._stop_timers()
        if self.answering:  # an answer of an earlier request is on its way: just close
            self.closing_after = True
            self.pending.clear()
            return
        self.pending.clear()
        self._send(request, problem_response(problem, request.request_id))

    def _late(self, part: str, seconds: float) -> None:
        self.read_timer = None
        if self.request is not None:
            self._refuse(Problem("request-timeout", f"the {part} did not arrive within "
                                 f"{seconds:g} s"))

    def _idle(self) -> None:
        """The connection is idle from now: closed after KEEP_ALIVE seconds unless
        data arrives. One timer serves many requests: when it goes off early (the
        connection was busy meanwhile, and idle again since), it is set again for the
        rest of the time, rather than made and cancelled at every request."""
        self.idle_since = self.loop.time()
        if self.idle_timer is None:
            self.idle_timer = self.loop.call_at(self.idle_since + KEEP_ALIVE,
                                                self._idle_too_long)

    def _idle_too_long(self) -> None:
        self.idle_timer = None
        if self.idle_since is None:
            return  # busy: the answer makes it idle again, with a timer of its own
        if self.loop.time() < self.idle_since + KEEP_ALIVE:
            self.idle_timer = self.loop.call_at(self.idle_since + KEEP_ALIVE,
                                                self._idle_too_long)
        elif not self.answering and self.request is None and not self.transport.is_closing():
            self.transport.close()

    def _stop_timers(self) -> None:
        for timer in (self.idle_timer, self.read_timer):
            if timer is not None:
                timer.cancel()
        self.idle_timer = self.read_timer = self.idle_since = None


def _status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))


_STATUS_LINES = {status: _status_line(status) for status in _REASONS}
# uvicorn's headers for every answer (its date), as a list it replaces each second,
# and those written out: the same for every answer until the list changes
_DEFAULTS: tuple[list | None, bytes] = (None, b"")


def _default_headers(headers: list) -> bytes:
    global _DEFAULTS
    written = _DEFAULTS
    if written[0] is not headers:
        written = _DEFAULTS = (headers, b"".join(b"%s: %s\r\n" % pair
                                                 for pair in headers))
    return written[1]


def failed(request: Request, exc: Exception) -> Response:
    """The answer of a handler that raised: its Problem, or a 500 for a bug, logged
    with its traceback and the request id (never sent to the client)."""
    if isinstance(exc, Problem):
        return problem_response(exc, request.request_id)
    LOG.error("internal error", exc_info=exc, extra={"fields": {
        "request_id": request.request_id, "path": request.path}})
    return problem_response(Problem(
        "internal", f"an internal error occurred; the server's log has it under request "
        f"id {request.request_id}"), request.request_id)


def _make_room(connections: dict) -> bool:
    """Close the least recently active connection that has nothing being answered;
    False when every one has."""
    for connection in connections:
        if not connection.answering and not connection.pending:
            connection.make_room()
            return True
    return False


def overloaded(why: str) -> Problem:
    return Problem("overloaded", f"{why}; retry later or elsewhere",
                   headers={"Retry-After": "1"})


def _head_too_large() -> Problem:
    return Problem("too-large", f"the request head is more than {HEAD_BYTES} bytes; the "
                   f"limit is {HEAD_BYTES}")


def _too_large(size: int, limit: int, at_least: bool = False) -> Problem:
    said = f"more than {limit}" if at_least else str(size)
    return Problem("too-large", f"the body is {said} bytes; the limit is {limit}")
