"""Operations run in processes of their own, so that no request can hold a server
worker past its deadline or take its memory, whatever it asks for.

Each server worker forks ``--concurrency`` operation processes after its warm-up and
hands each request to an idle one over a socket pair (the request's head and body
out, in MessagePack; the finished answer back, its status and body as they are: one
frame, one write each way; nothing between them is pickled, so neither side runs
what the other sends). Time and memory are bounded by construction, not by the
compiler's cooperation:

- **time**: at the request's deadline the worker answers 504 and kills the process
  with SIGKILL, which nothing in the operation can delay or ignore; a new process
  takes its place (a fork of the worker: milliseconds). A thread could not be
  stopped, and the event loop itself could not answer while a compile ran on it.
- **memory**: each process runs under ``RLIMIT_AS``, its address space at the fork
  plus ``--memory-limit``: an operation that wants more gets MemoryError, is
  answered 422, and its process is replaced (its heap may be fragmented).

A process is also replaced after ``RECYCLE_AFTER`` answers, so that nothing it
caches or fragments can grow for the life of the server, and when it ends for any
other reason (a crash: 500). The worker's own event loop only parses HTTP, checks
who is calling, and writes answers: nothing a request sends runs there.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import signal
import socket
import struct
from collections import deque

import msgspec

from virtuned.server.http import JSON, Response, overloaded, problem_response
from virtuned.server.validation import Problem

LOG = logging.getLogger("virtuned.server")
FRAME = struct.Struct("!I")  # a frame's length, after these 4 bytes
# An answer's frame: its length, its status and the length of its body; the body; then,
# for any but a plain JSON answer, its other fields (_ANSWER_REST) in MessagePack.
ANSWER = struct.Struct("!IHI")
_ENCODE = msgspec.msgpack.Encoder().encode
# a request: (operation, method, path, headers, body, request id), as App._submit sends it
_REQUEST = msgspec.msgpack.Decoder(tuple[str, str, str, dict[bytes, bytes], bytes, str])
# an answer's other fields: content type, headers, problem kind; why the process ends
_ANSWER_REST = msgspec.msgpack.Decoder(
    tuple[bytes, tuple[tuple[bytes, bytes], ...], str | None, str | None])
RECYCLE_AFTER = 10_000  # answers a process gives before it is replaced


class OperationProcess(asyncio.Protocol):
    """The worker's end of one operation process: its socket, and the request it is
    answering."""

    def __init__(self, pool: Pool, pid: int):
        self.pool, self.pid = pool, pid
        self.transport = None
        self.buffer = bytearray()
        self.reply = None  # how the request being answered is answered (Pool.submit)
        self.deadline = 0.0  # of the request it is answering (the event loop's time)
        self.timer = None  # goes off at or before that deadline (Pool._due)
        self.gone = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.pool.came_up(self)

    def data_received(self, data: bytes) -> None:
        # One answer at a time comes (the process answers one request at a time),
        # most often whole in one read: then it is read from ``data`` as it is.
        if self.buffer:
            self.buffer += data
            data = self.buffer
        if len(data) < FRAME.size or len(data) < FRAME.size + FRAME.unpack_from(data)[0]:
            if data is not self.buffer:
                self.buffer += data
            return
        if data is self.buffer:
            self.buffer = bytearray()
        self.pool.answered(self, *decode_answer(bytes(data)))

    def connection_lost(self, exc) -> None:
        # its socket closes when it ends (or is killed, or the worker let it go)
        _reap(self.pool.loop, self.pid)
        self.pool.lost(self)


class Pool:
    """The operation processes of one server worker, and the requests waiting for
    one. ``handle(*payload)`` is what a process runs for a request: the service's
    dispatch, answering a Response (http.py) for any request.

    A request's answer goes to the ``reply`` it was submitted with, called once, on
    the event loop, as soon as the answer is read: no Future and no turn of the loop
    between the operation process's answer and the HTTP connection's write."""

    def __init__(self, handle, size: int, timeout: float, queue: int, memory_bytes: int,
                 replaced=None):
        self.handle, self.size, self.timeout = handle, size, timeout
        self.queue, self.memory_bytes = queue, memory_bytes
        self.replaced = replaced or (lambda reason: None)  # tells the metrics
        self.loop: asyncio.AbstractEventLoop | None = None
        self.processes: set[OperationProcess] = set()
        self.idle: list[OperationProcess] = []
        self.waiting: deque = deque()  # [reply, frame, deadline, timer]
        self.closed = False

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        for _ in range(self.size):
            self.spawn()

    # -- requests

    def submit(self, payload: tuple, reply) -> None:
        """Run the request ``payload`` in the next idle process; ``reply`` gets its
        answer (a Response), or a Problem when no process comes free in time (503) or
        the operation does not finish by the deadline (504). Raises the 503 Problem
        at once when the line of waiting requests is full."""
        loop = self.loop
        deadline = loop.time() + self.timeout
        if self.idle:
            self._start(self.idle.pop(), reply, encode_request(payload), deadline)
        elif len(self.waiting) >= self.queue:
            raise overloaded(f"every operation slot is busy and {self.queue} requests "
                             "are waiting already")
        else:
            entry = [reply, encode_request(payload), deadline, None]
            entry[3] = loop.call_at(deadline, self._gave_up, entry)
            self.waiting.append(entry)

    def _gave_up(self, entry: list) -> None:
        """A request waited its whole time limit: 503, and out of the line."""
        self.waiting.remove(entry)
        _deliver(entry[0], overloaded(f"no operation slot became free within "
                                      f"{self.timeout:g} s"))

    def _start(self, process: OperationProcess, reply, frame: bytes, deadline) -> None:
        process.reply, process.deadline = reply, deadline
        timer = process.timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            process.timer = self.loop.call_at(deadline, self._due, process)
        process.transport.write(frame)

    def _due(self, process: OperationProcess) -> None:
        """A process's timer: one serves the requests it answers one after another,
        rather than one made and cancelled for each. When it goes off before the
        deadline of the request now being answered, it is set again for that one."""
        process.timer = None
        if process.gone or process.reply is None:
            return  # idle: its next request sets a timer again
        if self.loop.time() < process.deadline:
            process.timer = self.loop.call_at(process.deadline, self._due, process)
        else:
            self._overdue(process)

    def _next(self, process: OperationProcess) -> None:
        """The process to the oldest request waiting, or back to the idle."""
        if self.waiting:
            reply, frame, deadline, timer = self.waiting.popleft()
            timer.cancel()
            self._start(process, reply, frame, deadline)
        else:
            self.idle.append(process)

    # -- what the processes do

    def came_up(self, process: OperationProcess) -> None:
        if self.closed:
            process.transport.close()
        else:
            self._next(process)

    def answered(self, process: OperationProcess, response, retiring: str | None) -> None:
        """``retiring``: why the process ends after this answer ("memory",
        "recycled"), or None. The process is given its next request before this one
        is answered, so that the answer's connection finds it free for the next."""
        reply, process.reply = process.reply, None
        if retiring:  # it exits by itself after this answer
            self._replace(process, retiring)
        else:
            self._next(process)
        if reply is not None:
            _deliver(reply, response)

    def _overdue(self, process: OperationProcess) -> None:
        """The deadline: the process is killed, before its request is answered."""
        _kill(process.pid)
        reply, process.reply = process.reply, None
        self._replace(process, "timeout")
        process.transport.abort()
        _deliver(reply, Problem(
            "timeout", f"the operation did not finish within {self.timeout:g} s"))

    def lost(self, process: OperationProcess) -> None:
        if process.gone:
            return
        reply, process.reply = process.reply, None
        if reply is not None:  # it died answering: a crash, not the client's
            LOG.error("operation process ended unexpectedly", extra={"fields": {
                "operation_pid": process.pid}})
        self._replace(process, "crash")
        if reply is not None:
            _deliver(reply, Problem(
                "internal", "the operation ended unexpectedly; the server's log has it"))

    def _replace(self, process: OperationProcess, reason: str) -> None:
        process.gone = True
        if process.timer is not None:
            process.timer.cancel()
            process.timer = None
        self.processes.discard(process)
        if process in self.idle:
            self.idle.remove(process)
        if not self.closed:
            self.replaced(reason)
            self.spawn()

    # -- processes

    def spawn(self) -> None:
        """Fork an operation process; it is idle once its socket is connected. When
        the system cannot make one now (no memory, too many processes), again in a
        second: meanwhile requests wait for the others, or are 503."""
        if self.closed:
            return
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError as exc:
            self._spawn_later(exc)
            return
        # What the worker holds now stays out of the collector's way in the process:
        # it is neither traversed nor written to (which would copy its pages) there.
        gc.freeze()
        try:
            pid = os.fork()
        except OSError as exc:
            ours.close()
            theirs.close()
            self._spawn_later(exc)
            return
        if pid == 0:  # the child: never returns
            _operation_process(theirs, self.handle, self.memory_bytes)
        theirs.close()
        process = OperationProcess(self, pid)
        self.processes.add(process)
        task = self.loop.create_task(
            self.loop.create_unix_connection(lambda: process, sock=ours))
        task.add_done_callback(_connected)

    def _spawn_later(self, exc: OSError) -> None:
        LOG.error("an operation process could not be made: %s; trying again in 1 s", exc)
        self.loop.call_later(1.0, self.spawn)

    def close(self) -> None:
        """Stop every process (at the server's shutdown, once requests are answered)."""
        self.closed = True
        for process in tuple(self.processes):
            process.gone = True
            _kill(process.pid)
            if process.transport is not None:
                process.transport.abort()
        self.processes.clear()
        self.idle.clear()


def _connected(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        LOG.error("an operation process could not be connected",
                  exc_info=task.exception())


def _deliver(reply, answer) -> None:
    """``reply(answer)``; a bug there is logged, and leaves the pool as it was."""
    try:
        reply(answer)
    except Exception:  # noqa: BLE001 - the pool's loop must go on
        LOG.exception("an answer could not be delivered")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(loop, pid: int) -> None:
    """Collect the exit status of a process that has ended or is ending, so that it
    leaves no zombie: again a little later while it is still on its way out (its
    socket closes before it is done; a large one killed takes a while to free)."""
    try:
        ended, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return  # collected already
    if not ended:
        loop.call_later(0.05, _reap, loop, pid)


def _address_space() -> int:
    """This process's address space now, in bytes (VmSize)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- the frames

def encode_request(payload: tuple) -> bytes:
    """A request's frame, length first: one write, as two would wake the process
    twice (the length, then the rest). MessagePack rather than pickle: ~4k
    instructions less here and ~3k less to read, and nothing in it can run code."""
    frame = _ENCODE(payload)
    return FRAME.pack(len(frame)) + frame


def decode_request(data: bytes) -> tuple:
    """The payload of a whole request frame."""
    return _REQUEST.decode(data[FRAME.size:])  # a copy costs less than a memoryview


def encode_answer(response: Response, retiring: str | None) -> bytes:
    """An answer's frame: its status and body as they are, and only when there are
    any, its other fields and why the process ends after it (encoding all of them
    every time cost each side ~3k instructions more)."""
    status, body, content_type, headers, problem = response
    rest = (b"" if content_type == JSON and not headers and problem is None and not retiring
            else _ENCODE((content_type, headers, problem, retiring)))
    return b"".join((ANSWER.pack(ANSWER.size - FRAME.size + len(body) + len(rest), status,
                                 len(body)), body, rest))


def decode_answer(data: bytes) -> tuple[Response, str | None]:
    """The answer of a whole answer frame, and why the process ends after it."""
    _, status, size = ANSWER.unpack_from(data)
    end = ANSWER.size + size
    if len(data) == end:
        return Response(status, data[ANSWER.size:end]), None
    content_type, headers, problem, retiring = _ANSWER_REST.decode(data[end:])
    return Response(status, data[ANSWER.size:end], content_type, headers, problem), retiring


# ---------------------------------------------------------------- the child's side

def _operation_process(sock: socket.socket, handle, memory_bytes: int) -> None:
    """The operation process: answer one request at a time until the worker closes
    the socket, this process has answered RECYCLE_AFTER, or one ran out of memory."""
    code = 0
    try:
        _isolate(sock.fileno(), memory_bytes)
        served = 0
        while (payload := _receive(sock)) is not None:
            served += 1
            try:
                response = handle(*payload)
                retiring = "recycled" if served >= RECYCLE_AFTER else None
            except MemoryError:
                response, retiring = _out_of_memory(payload, memory_bytes), "memory"
            sock.sendall(encode_answer(response, retiring))
            if retiring:
                break
    except BaseException:  # noqa: BLE001 - anything: the worker sees the socket close
        code = 70
    os._exit(code)


def _isolate(keep: int, memory_bytes: int) -> None:
    """Leave the worker's world: its signal handlers and every descriptor it has
    (its client connections above all: one held open here would keep a connection
    alive after the worker closed it); then take the memory limit, ``memory_bytes``
    more address space than the process has now."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when this ends
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.closerange(3, keep)
    os.closerange(keep + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    if memory_bytes:
        limit = _address_space() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _receive(sock: socket.socket) -> tuple | None:
    """The next request, or None when the worker has closed the socket. The worker
    sends one request at a time, so nothing read here belongs to the next."""
    data = sock.recv(1 << 16)  # a typical request whole, in one call
    while len(data) < FRAME.size or len(data) < FRAME.size + FRAME.unpack_from(data)[0]:
        more = sock.recv(1 << 20)
        if not more:
            return None
        data += more
    return decode_request(data)


def _out_of_memory(payload: tuple, memory_bytes: int):
    request_id = payload[-1]
    return problem_response(Problem(
        "invalid-input", f"the operation needed more memory than the server allows one "
        f"request ({memory_bytes >> 20} MiB); ask for less"), request_id)
