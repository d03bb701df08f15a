"""What the HTTP service tells its operators: JSON log lines and Prometheus metrics.

Every request gets an id (the client's ``X-Request-ID`` when it is a sane token, else
a new one), echoed in the response's ``X-Request-ID``, in problem bodies and in its
one access-log line, so a client's report can be matched to the server's log. The
HTTP protocol (http.py) tells the Observer of every answer.

Metrics are prometheus_client's. With several worker processes (``serve --workers``)
each process writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` and
``/metrics`` adds them up, so whichever worker answers a scrape reports the whole
server, not itself.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
import uuid
from datetime import datetime, timezone

import msgspec

ACCESS = logging.getLogger("virtuned.access")

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
    problem type."""

    def __init__(self) -> None:
        from prometheus_client import (CollectorRegistry, Counter, Histogram,
                                       disable_created_metrics)

        disable_created_metrics()  # *_created series: noise that doubles every scrape
        # In multiprocess mode samples live in files, not in a registry of ours.
        self._multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._registry = None if self._multiprocess else CollectorRegistry()
        self._requests = Counter("virtuned_http_requests", "HTTP requests answered",
                                 ["route", "method", "status"], registry=self._registry)
        self._latency = Histogram("virtuned_http_request_duration_seconds",
                                  "Time from request to the end of the response",
                                  ["route"], buckets=LATENCY_BUCKETS,
                                  registry=self._registry)
        self._errors = Counter("virtuned_http_errors", "Problem responses, by problem type",
                               ["route", "type"], registry=self._registry)
        self._replaced = Counter(
            "virtuned_operation_processes_replaced", "Operation processes replaced, by "
            "why: timeout (killed at a deadline), memory, crash, recycled",
            ["reason"], registry=self._registry)
        self._children: dict[tuple, tuple] = {}  # labels() is slow; reuse its children

    def replaced(self, reason: str) -> None:
        self._replaced.labels(reason).inc()

    def observe(self, route: str, method: str, status: int, seconds: float,
                problem: str | None) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._requests.labels(route, method, str(status)),
                self._latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)
        if problem is not None:
            self._errors.labels(route, problem).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text format, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry = self._registry
        if registry is None:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST


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


_ENCODE = msgspec.json.Encoder().encode


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
            os.write(2, _ENCODE(_AccessLine(
                self._timestamp(), "info", ACCESS.name, f"{method} {path} {status}",
                method, path, status, _milliseconds(seconds), request_id, client,
                self._pid)) + b"\n")

    def _timestamp(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return "%s.%03dZ" % (self._stamp, int((now - second) * 1000))


def _milliseconds(seconds: float) -> float:
    """``seconds`` in milliseconds, to the microsecond: round(x, 3) works in decimal
    digits and costs ~4k instructions; this, an integer's rounding, a few hundred."""
    return round(seconds * 1e6) / 1000
