"""The service's metrics (virtuned/server/observe.py): what /metrics says is what
prometheus_client's own Counter and Histogram would say of the same requests, in one
process and added up over the files of several; a reader of a worker's file meets
only whole runs of it, however much of the file it reads."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given, settings, strategies as st

from tests.server.harness import running_server
from virtuned.server import observe

ROUTES = ("/v1/compile", "/healthz", "other")
# Seconds that are multiples of 2**-10 (the buckets' bounds that are too): their
# sums are exact in any order, so the files of several workers add up to the very
# text one process gives.
EXACT = st.integers(0, 40 * 1024).map(lambda n: n / 1024) | st.sampled_from(
    [bound for bound in observe.LATENCY_BUCKETS if (bound * 1024).is_integer()])


def events_of(seconds):
    request = st.tuples(st.sampled_from(ROUTES), st.sampled_from(("GET", "POST", "other")),
                        st.sampled_from((200, 404, 422, 503)), seconds,
                        st.sampled_from((None, "invalid-input", "overloaded")))
    return st.lists(request | st.sampled_from(("timeout", "recycled")), max_size=60)


def prometheus_text(events) -> bytes:
    """The exposition of prometheus_client's own metrics, fed ``events``."""
    from prometheus_client import (CollectorRegistry, Counter, Histogram,
                                   disable_created_metrics, generate_latest)

    disable_created_metrics()
    registry = CollectorRegistry()
    requests = Counter("virtuned_http_requests", "HTTP requests answered",
                       ["route", "method", "status"], registry=registry)
    latency = Histogram("virtuned_http_request_duration_seconds",
                        "Time from request to the end of the response", ["route"],
                        buckets=observe.LATENCY_BUCKETS, registry=registry)
    errors = Counter("virtuned_http_errors", "Problem responses, by problem type",
                     ["route", "type"], registry=registry)
    replaced = Counter("virtuned_operation_processes_replaced", "Operation processes "
                       "replaced, by why: timeout (killed at a deadline), memory, crash, "
                       "recycled", ["reason"], registry=registry)
    for event in events:
        if isinstance(event, str):
            replaced.labels(event).inc()
            continue
        route, method, status, seconds, problem = event
        requests.labels(route, method, str(status)).inc()
        latency.labels(route).observe(seconds)
        if problem is not None:
            errors.labels(route, problem).inc()
    return generate_latest(registry)


def feed(metrics: observe.Metrics, events) -> None:
    for event in events:
        if isinstance(event, str):
            metrics.replaced(event)
        else:
            metrics.observe(*event)


@settings(max_examples=60, deadline=None)
@given(events_of(EXACT | st.floats(0, 100) | st.sampled_from(observe.LATENCY_BUCKETS)))
def test_one_process_says_what_prometheus_client_would(events):
    metrics = observe.Metrics()
    feed(metrics, events)
    assert metrics.exposition()[0] == prometheus_text(events)


@settings(max_examples=40, deadline=None)
@given(events_of(EXACT), st.lists(st.integers(0, 2), max_size=60))
def test_the_files_of_three_workers_add_up(tmp_path_factory, events, workers):
    directory = tmp_path_factory.mktemp("metrics")
    three = [observe.Metrics(str(directory)) for _ in range(3)]
    for index, event in enumerate(events):
        feed(three[workers[index] if index < len(workers) else 0], [event])
    expected = sorted(prometheus_text(events).splitlines())
    for metrics in three:  # whichever answers the scrape
        assert sorted(metrics.exposition()[0].splitlines()) == expected


def test_a_buffer_that_grows_keeps_its_runs():
    samples = observe.Samples(None, size=64)
    slots = [samples.run(("errors", "/v1/compile", f"kind-{n}"), 1) for n in range(40)]
    for n, slot in enumerate(slots):
        samples.values[slot] += n
    assert samples.run(("errors", "/v1/compile", "kind-7"), 1) == slots[7]
    assert samples.everyone() == {("errors", "/v1/compile", f"kind-{n}"): [float(n)]
                                  for n in range(40)}


def test_a_reader_meets_only_whole_runs(tmp_path):
    samples = observe.Samples(str(tmp_path))
    for n in range(5):
        samples.values[samples.run(("replaced", f"reason-{n}"), 1)] += n + 1
    data = Path(samples.path).read_bytes()
    whole = list(observe._runs_of(data))
    assert whole == [(("replaced", f"reason-{n}"), (n + 1.0,)) for n in range(5)]
    for cut in range(len(data)):  # a file read short, while it grew
        runs = list(observe._runs_of(data[:cut]))
        assert runs == whole[:len(runs)]
    unwritten = bytearray(data)  # a run's bytes written, the header not yet counting it
    unwritten[:8] = (int.from_bytes(data[:8], "little") - 32).to_bytes(8, "little")
    assert list(observe._runs_of(bytes(unwritten))) == whole[:4]


def test_the_access_log_writes_each_line_whole_and_alone(capfd, monkeypatch):
    """One write a request, the line JsonFormatter's fields then the request's; a
    short line after a long one keeps nothing of it (the line's buffer is reused)."""
    monkeypatch.setattr(observe.time, "time", lambda: 1765141234.5678)
    observer = observe.Observer(observe.Metrics(), frozenset({"/v1/compile"}), True)
    observer.record("POST", "/v1/compile", 422, 0.0043125, "id-1", "127.0.0.1",
                    "invalid-input")
    observer.record("GET", "/x", 404, 0.0000004, "id-2", None, "not-found")
    assert capfd.readouterr().err.splitlines(keepends=True) == [
        '{"ts":"2025-12-07T21:00:34.567Z","level":"info","logger":"virtuned.access",'
        '"message":"POST /v1/compile 422","method":"POST","path":"/v1/compile",'
        '"status":422,"duration_ms":4.312,"request_id":"id-1","client":"127.0.0.1",'
        f'"pid":{os.getpid()}}}\n',
        '{"ts":"2025-12-07T21:00:34.567Z","level":"info","logger":"virtuned.access",'
        '"message":"GET /x 404","method":"GET","path":"/x","status":404,'
        f'"duration_ms":0.0,"request_id":"id-2","client":null,"pid":{os.getpid()}}}\n']


def test_one_worker_counts_only_its_own_requests(tmp_path, monkeypatch):
    # Another server's samples in a directory the environment names: a server of one
    # worker keeps its own in memory and never reads them.
    other = observe.Metrics(str(tmp_path))
    other.observe("/v1/compile", "POST", 500, 0.001, "internal")
    monkeypatch.setenv(observe.DIRECTORY, str(tmp_path))
    with running_server("--workers", "1") as server, server.client() as client:
        assert client.get("/healthz").status_code == 200
        lines = client.get("/metrics").text.splitlines()
    assert [line for line in lines if line.startswith("virtuned_http_requests_total")] \
        == [line for line in lines if line.startswith(
            'virtuned_http_requests_total{method="GET",route="/healthz",status="200"} ')]
    assert [path.name for path in tmp_path.iterdir()] == [Path(other.samples.path).name]
