"""What the HTTP service tells its operators: JSON log lines and Prometheus metrics.

Every request gets an id (the client's ``X-Request-ID`` when it is a sane token, else
a new one), echoed in the response's ``X-Request-ID``, in problem bodies and in its
one access-log line, so a client's report can be matched to the server's log. The
HTTP protocol (http.py) tells the Observer of every answer.

Metrics are Prometheus's text format, written by prometheus_client from numbers each
worker keeps itself (Samples). With several worker processes (``serve --workers``)
each keeps them in a file of the directory ``VIRTUNED_METRICS_DIR`` names, mapped
into its memory, and ``/metrics`` adds up every file, so whichever worker answers a
scrape reports the whole server, not itself.
"""

from __future__ import annotations

import itertools
import json
import logging
import mmap
import os
import re
import struct
import tempfile
import time
import uuid
from bisect import bisect_left
from datetime import datetime, timezone

import msgspec

ACCESS = "virtuned.access"  # the access log lines' logger, as JsonFormatter names it

# The routes a metric label may name; anything else is "other", so that clients
# probing random paths cannot grow the metrics without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's
    ``fields`` (the access log's method, path, status...)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return msgspec.json.encode(entry, enc_hook=str).decode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: escaped, as JSON can
            return json.dumps(entry, default=str, separators=(",", ":"))


def log_config() -> dict:
    """logging's dictConfig for uvicorn and virtuned: everything as JSON on stderr;
    uvicorn's own access log is replaced by virtuned's richer one (Observer)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "virtuned.server.observe.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "virtuned": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


class Metrics:
    """Request counts by route, method and status; latency by route; errors by
    problem type; operation processes replaced, by why. Kept as plain numbers in this
    process's Samples, exposed through prometheus_client's metric families: its own
    Counter and Histogram cost 14.5k instructions a request in one process and 26k in
    its multiprocess mode (a lock, a getpid and a write to a file per value), these
    5.1k in either."""

    def __init__(self, directory: str | None = None) -> None:
        self.samples = Samples(directory or os.environ.get(DIRECTORY) or None)
        # (route, method, status): the slots of its count and of its route's latency
        self._slots: dict[tuple, tuple[int, int]] = {}

    def replaced(self, reason: str) -> None:
        self.samples.values[self.samples.run(("replaced", reason), 1)] += 1.0

    def observe(self, route: str, method: str, status: int, seconds: float,
                problem: str | None) -> None:
        slots = self._slots.get((route, method, status))
        if slots is None:
            slots = self._slots[route, method, status] = (
                self.samples.run(("requests", route, method, str(status)), 1),
                self.samples.run(("latency", route), _LATENCY_SLOTS))
        values = self.samples.values
        values[slots[0]] += 1.0
        latency = slots[1]  # the sum of its seconds, then a count per bucket
        values[latency] += seconds
        values[latency + 1 + bisect_left(LATENCY_BUCKETS, seconds)] += 1.0
        if problem is not None:
            values[self.samples.run(("errors", route, problem), 1)] += 1.0

    def exposition(self) -> tuple[bytes, str]:
        """The text format of every worker's samples added up, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(_Families(self.samples.everyone())), CONTENT_TYPE_LATEST


DIRECTORY = "VIRTUNED_METRICS_DIR"  # where the workers of one server keep their samples
_LATENCY_SLOTS = 1 + len(LATENCY_BUCKETS) + 1  # the sum, each bucket, +Inf's


class _Families:
    """The metrics as prometheus_client's collectors describe them (a registry of
    one for generate_latest), from the samples of every worker added up."""

    def __init__(self, totals: dict[tuple, list[float]]):
        self.totals = totals

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        families = {
            "requests": CounterMetricFamily("virtuned_http_requests",
                                            "HTTP requests answered",
                                            labels=["route", "method", "status"]),
            "latency": HistogramMetricFamily(
                "virtuned_http_request_duration_seconds",
                "Time from request to the end of the response", labels=["route"]),
            "errors": CounterMetricFamily("virtuned_http_errors",
                                          "Problem responses, by problem type",
                                          labels=["route", "type"]),
            "replaced": CounterMetricFamily(
                "virtuned_operation_processes_replaced", "Operation processes replaced, "
                "by why: timeout (killed at a deadline), memory, crash, recycled",
                labels=["reason"])}
        for (kind, *labels), values in self.totals.items():
            if kind == "latency":
                total, *counts = values
                buckets, below = [], 0.0
                for bound, count in zip((*map(repr, LATENCY_BUCKETS), "+Inf"), counts):
                    below += count
                    buckets.append((bound, below))
                families[kind].add_metric(labels, buckets, total)
            elif kind in families:
                families[kind].add_metric(labels, values[0])
        return list(families.values())


_HEADER = struct.Struct("<Q")  # a Samples buffer: the bytes of runs written after this
_RUN = struct.Struct("<II")  # a run: its key's length and its count of slots


class Samples:
    """One process's metric samples: runs of float64 slots in one buffer, each run
    named by a key (a tuple of strings, as JSON) written before its slots the first
    time it is used; ``values[slot] += x`` is all a sample costs. With a directory
    (several workers), the buffer is a file of it mapped into memory: what a worker
    writes is in the file at once, and the worker answering a scrape reads every
    file, so it sees every request answered before it, with nothing to flush. Only
    the process that made a buffer writes to it; a run is whole before the header
    counts it, so a reader never meets half of one."""

    def __init__(self, directory: str | None, size: int = 1 << 16):
        self.directory, self.runs, self._used = directory, {}, 0
        self._fd = None
        if directory is not None:
            self._fd, self.path = tempfile.mkstemp(prefix=f"samples-{os.getpid()}-",
                                                   suffix=".bin", dir=directory)
        self._resize(size)

    def run(self, key: tuple, slots: int) -> int:
        """The index in ``values`` of the first slot of ``key``'s run (zeros, the
        first time)."""
        at = self.runs.get(key)
        if at is not None:
            return at
        name = msgspec.json.encode(key)
        start = _HEADER.size + self._used
        first = start + _RUN.size + len(name) + (-len(name)) % 8  # slots are aligned
        end = first + 8 * slots
        if end > len(self._buffer):
            self._resize(max(2 * len(self._buffer), end))
        _RUN.pack_into(self._buffer, start, len(name), slots)
        self._buffer[start + _RUN.size:start + _RUN.size + len(name)] = name
        self._used = end - _HEADER.size
        _HEADER.pack_into(self._buffer, 0, self._used)  # the run is whole: count it
        self.runs[key] = at = first // 8
        return at

    def everyone(self) -> dict[tuple, list[float]]:
        """The samples of this process, and of every other of the directory's, added
        up by key."""
        totals: dict[tuple, list[float]] = {}
        if self.directory is None:
            buffers = [bytes(self._buffer[:_HEADER.size + self._used])]
        else:
            buffers = []
            for entry in os.scandir(self.directory):
                if entry.name.startswith("samples-") and entry.name.endswith(".bin"):
                    with open(entry.path, "rb") as file:
                        buffers.append(file.read())
        for data in buffers:
            for key, values in _runs_of(data):
                total = totals.setdefault(key, [0.0] * len(values))
                for index, value in enumerate(values):
                    total[index] += value
        return totals

    def _resize(self, size: int) -> None:
        """A buffer of ``size`` bytes holding what the old one did (zeros after)."""
        old = getattr(self, "values", None)
        if old is not None:
            old.release()
        if self._fd is None:
            buffer = bytearray(size)
            if old is not None:
                buffer[:len(self._buffer)] = self._buffer
        else:
            os.ftruncate(self._fd, size)  # the file keeps its bytes, zeros after them
            if old is not None:
                self._buffer.close()
            buffer = mmap.mmap(self._fd, size)
        self._buffer, self.values = buffer, memoryview(buffer).cast("d")


def _runs_of(data: bytes):
    """The (key, values) of each whole run in a Samples buffer's bytes."""
    if len(data) < _HEADER.size:
        return
    end = min(_HEADER.size + _HEADER.unpack_from(data)[0], len(data))
    at = _HEADER.size
    while at + _RUN.size <= end:
        length, slots = _RUN.unpack_from(data, at)
        first = at + _RUN.size + length + (-length) % 8
        if first + 8 * slots > end:
            return
        key = tuple(msgspec.json.decode(data[at + _RUN.size:at + _RUN.size + length]))
        yield key, struct.unpack_from(f"<{slots}d", data, first)
        at = first + 8 * slots


class _AccessLine(msgspec.Struct):
    """An access-log line: JsonFormatter's fields, then the request's, in this order.
    A Struct rather than a dict: ~3.7k instructions less a request to make and encode,
    the same bytes."""

    ts: str
    level: str
    logger: str
    message: str
    method: str
    path: str
    status: int
    duration_ms: float
    request_id: str
    client: str | None
    pid: int


_ENCODER = msgspec.json.Encoder()
_MILLISECONDS = tuple(".%03dZ" % n for n in range(1000))  # a timestamp's ends


class Observer:
    """Request ids, and one access-log line and the metrics of every request answered.

    The access log is written straight to stderr, one ``write`` per line, in the
    format JsonFormatter gives every other log line: going through ``logging`` (a
    record, a formatter, a lock, a flush) cost more per request than anything else
    the server does besides the operation itself.
    """

    def __init__(self, metrics: Metrics, routes: frozenset[str], access_log: bool):
        self.metrics, self.routes, self.access_log = metrics, routes, access_log
        self._pid = os.getpid()
        self._ids = itertools.count()
        self._id_prefix = uuid.uuid4().hex[:16]  # this process's; the count makes it unique
        self._second, self._stamp = -1, ""
        self._line = bytearray()  # the access log's, encoded into again for each

    def request_id(self, given: bytes | None) -> str:
        """The client's ``X-Request-ID`` when it is a sane token, else a new one."""
        if given:
            text = given.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
        # %-formatting: an f-string's format spec goes through int.__format__ (~2k
        # instructions more a request)
        return "%s%016x" % (self._id_prefix, next(self._ids) & 0xFFFF_FFFF_FFFF_FFFF)

    def record(self, method: str, path: str, status: int, seconds: float, request_id: str,
               client: str | None, problem: str | None) -> None:
        self.metrics.observe(path if path in self.routes else "other",
                             method if method in _METHODS else "other", status, seconds,
                             problem)
        if self.access_log:
            line = self._line
            _ENCODER.encode_into(_AccessLine(
                self._timestamp(), "info", ACCESS, f"{method} {path} {status}",
                method, path, status, _milliseconds(seconds), request_id, client,
                self._pid), line)
            line += b"\n"
            os.write(2, line)

    def _timestamp(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self._stamp + _MILLISECONDS[int((now - second) * 1000)]  # no formatting


def _milliseconds(seconds: float) -> float:
    """``seconds`` in milliseconds, to the microsecond: round(x, 3) works in decimal
    digits and costs ~4k instructions; this, an integer's rounding, a few hundred."""
    return round(seconds * 1e6) / 1000
