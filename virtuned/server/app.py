"""The HTTP/JSON service (``virtuned serve``): the Python API's operations for
management applications in any language.

The contract is docs/server.md and the types of contract.py, from which requests are
read (validation.py) and the OpenAPI document ``virtuned/openapi.json`` (also served
at ``/openapi.json``) is generated. Every error is an RFC 9457 problem document
(``application/problem+json``) carrying the CLI's diagnostics and exit code:

====  =====================================================================
400   the body is not JSON: a syntax error, not UTF-8, nested too deeply
404   no such path; 405: a path that takes another method
408   the body did not arrive within the time limit
409   a conflict or an infeasible request (the CLI's exit 3)
413   the body is larger than the limit
415   the body is not ``application/json``
422   JSON that fails validation, or input the compiler refuses (the CLI's exit 2)
500   a bug in virtuned: logged with its traceback, answered without one
503   no compile slot became free within the time limit (overloaded; Retry-After)
504   the operation did not finish within the time limit
====  =====================================================================

Profiles in a request are names from the server's own library: a client never names
a file, and nothing a client sends is ever used as a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from virtuned import api
from virtuned.diagnostics import (HTTP_OPTIONS, Diagnostic, ExitCode, Sources, Span,
                                  VirtunedError, did_you_mean, locate, real_path, render)
from virtuned.resolve import check as check_profiles
from virtuned.resolve import registry
from virtuned.resolve.profiles import (ANY_VERSION, Library, ProfileFile, load_library_file,
                                       search_path)
from virtuned.server import contract, observe
from virtuned.server.validation import Problem, decode, invalid
from virtuned.syntax.parser import parse
from virtuned.version import __version__

LOG = logging.getLogger("virtuned.server")
OPENAPI = Path(__file__).parent.parent / "openapi.json"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"


@attrs.frozen
class Limits:
    """What one request may ask of a server; see docs/server.md#limits. The limits of
    the request's fields are the contract's (contract.py)."""

    body_bytes: int = 1024 * 1024  # the request body, in bytes
    timeout: float = 10.0  # seconds: reading the body, then waiting for and running
    concurrency: int = 2  # operations running at once in one worker process


# ---------------------------------------------------------------- problems

def problem_response(problem: Problem, request: Request) -> Response:
    """The problem document of an error answer (RFC 9457)."""
    kind = contract.PROBLEMS[problem.kind]
    request_id = request.scope.get("state", {}).get("request_id")
    request.scope.setdefault("state", {})["problem"] = problem.kind
    body = contract.Problem(
        type=contract.PROBLEM_TYPE + problem.kind, title=kind.title, status=kind.status,
        detail=problem.message or "\n".join(render(d, problem.sources)
                                            for d in problem.diagnostics),
        instance=f"urn:virtuned:request:{request_id}" if request_id else None,
        request_id=request_id,
        diagnostics=[diagnostic(d, problem.sources) for d in problem.diagnostics],
        exit_code=kind.exit_code)
    try:
        encoded = msgspec.json.encode(body)
    except UnicodeEncodeError:  # a lone surrogate of the request, named in a pointer
        encoded = json.dumps(msgspec.to_builtins(body)).encode("ascii")
    return Response(encoded, kind.status, problem.headers, media_type=PROBLEM_JSON)


def problem_of(exc: VirtunedError, sources: Sources) -> Problem:
    """The problem of a compiler error: a conflict (exit 3) or invalid input."""
    kind = "conflict" if exc.exit_code == ExitCode.CONFLICT else "invalid-input"
    return Problem(kind, exc.diagnostics, sources)


class RequestSources(Sources):
    """The texts of one request, for context lines and columns in diagnostics. Unlike
    the CLI's, it never opens a file a diagnostic names unless it is a profile of the
    server's library: no name a client chose is ever read from disk."""

    def line(self, span: Span) -> str | None:
        if span.file not in self._texts and real_path(span.file) is None:
            return None
        return super().line(span)


def diagnostic(d: Diagnostic, sources: Sources | None) -> contract.Diagnostic:
    span = locate(d.span, sources)
    return contract.Diagnostic(
        severity=d.severity, message=d.message, file=span.file, line=span.line,
        col=span.col, end_line=span.end_line, end_col=span.end_col, hint=d.hint,
        related=[_related(r.message, locate(r.span, sources)) for r in d.related])


def _related(message: str, span: Span) -> contract.Related:
    return contract.Related(message=message, file=span.file, line=span.line, col=span.col)


def _diagnostics(found, sources: Sources) -> list[contract.Diagnostic]:
    return [diagnostic(d, sources) for d in found]


# ---------------------------------------------------------------- running operations

class Runner:
    """Runs operations in worker threads, so the event loop stays free to answer
    other requests (and /healthz), within the per-request time limit. A thread
    cannot be stopped: one that outlives its request keeps its slot until it ends,
    so a flood of slow requests turns into 503s, not into a pile of threads."""

    def __init__(self, limits: Limits):
        self._pool = ThreadPoolExecutor(limits.concurrency, "virtuned-op")
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._timeout = limits.timeout

    async def __call__(self, function, /, **kwargs):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        except TimeoutError:
            raise Problem("overloaded", f"no operation slot became free within "
                          f"{self._timeout:g} s; retry later or elsewhere",
                          headers={"Retry-After": "1"}) from None
        future = loop.run_in_executor(self._pool, functools.partial(function, **kwargs))
        future.add_done_callback(self._finished)
        try:
            async with asyncio.timeout_at(deadline) as budget:
                return await asyncio.shield(future)
        except TimeoutError:
            if not budget.expired():
                raise  # the operation's own error, not the time limit
            raise Problem("timeout", f"the operation did not finish within "
                          f"{self._timeout:g} s") from None

    def _finished(self, future) -> None:
        self._slots.release()
        if not future.cancelled():
            future.exception()  # mark it seen: a late failure is not "never retrieved"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------- the service

class Service:
    """The endpoints, with the library, limits and runner they share."""

    def __init__(self, profile_path: tuple[str, ...], limits: Limits):
        self.profile_path, self.limits = profile_path, limits
        self.library = Library(search_path(profile_path))
        self.runner = Runner(limits)
        self.prometheus = observe.Metrics()
        self.document = OPENAPI.read_bytes()
        self.trait_listing = msgspec.json.encode(_trait_listing())

    # -- the operations

    async def compile(self, request: Request) -> Response:
        body = await self._request(request, contract.CompileRequest)
        sources = RequestSources()
        result = await self._run(api.compile, self._api_request(body, sources), sources)
        if _prefers_xml(request.headers.get("accept")):
            return Response(result.xml, media_type="application/xml; charset=utf-8",
                            headers={"Virtuned-Warnings": str(len(result.warnings))})
        return _json(contract.CompileResult(
            xml=result.xml, warnings=_diagnostics(result.warnings, sources)))

    async def explain(self, request: Request) -> Response:
        body = await self._request(request, contract.CompileRequest)
        sources = RequestSources()
        result = await self._run(api.explain, self._api_request(body, sources), sources)
        return _json({**api.explanation_json(result), "xml": result.xml,
                      "warnings": _diagnostics(result.warnings, sources)})

    async def plan(self, request: Request) -> Response:
        body = await self._request(request, contract.CompileRequest)
        sources = RequestSources()
        result = await self._run(api.plan, self._api_request(body, sources), sources)
        return _json({**result.json(), "warnings": _diagnostics(result.warnings, sources)})

    async def fit(self, request: Request) -> Response:
        body = await self._request(request, contract.FitRequest)
        sources = RequestSources()
        kwargs = {**self._api_request(body, sources), "hosts": body.hosts}
        answers = await self._run(api.fit, kwargs, sources)
        return _json([answer.json() for answer in answers])  # as 'virtuned fit' prints

    async def check(self, request: Request) -> Response:
        body = await self._request(request, contract.CheckRequest)
        sources = RequestSources()
        sources.add("<profile>", body.text)
        files = (ProfileFile("<profile>", body.text),)
        warnings = await self._run(check_profiles, {"files": files,
                                                    "profile_path": self.profile_path}, sources)
        return _json(contract.CheckResult(warnings=_diagnostics(warnings, sources)))

    async def profiles(self, request: Request) -> Response:
        return _json(await self.runner(self._profile_listing))

    async def traits(self, request: Request) -> Response:
        return Response(self.trait_listing, media_type=JSON)

    async def health(self, request: Request) -> Response:
        return _json(contract.Health(status="ok", version=__version__))

    async def metrics(self, request: Request) -> Response:
        body, content_type = self.prometheus.exposition()
        return Response(body, media_type=content_type)

    async def openapi(self, request: Request) -> Response:
        return Response(self.document, media_type=JSON)

    # -- reading requests

    async def _request(self, request: Request, kind: type):
        content_type = request.headers.get("content-type", "")
        media, _, parameters = content_type.partition(";")
        charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", parameters, re.I)
        if media.strip().lower() != JSON or (charset and charset.group(1).lower()
                                              not in ("utf-8", "utf8")):
            raise Problem("unsupported-media-type",
                          f"expected Content-Type: application/json (UTF-8), got "
                          f"{content_type or 'none'}")
        return decode(await self._body(request), kind)

    async def _body(self, request: Request) -> bytes:
        limit = self.limits.body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(int(declared), limit)  # refused before reading a byte of it
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.limits.timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(size, limit, at_least=True)
                    chunks.append(chunk)
        except TimeoutError:
            raise Problem("request-timeout", f"the body did not arrive within "
                          f"{self.limits.timeout:g} s") from None
        return b"".join(chunks)

    def _api_request(self, body, sources: Sources) -> dict:
        """The API's keyword arguments for a request (fit's has no "host")."""
        kwargs = {"domain_xml": body.domain,
                  "sources": self._library_profiles(body.profiles or ()),
                  "traits": tuple(body.traits or ()),
                  "settings": tuple((name, _param_text(value))
                                    for name, value in (body.params or {}).items()),
                  "profile_path": self.profile_path, "name": body.name,
                  "domcaps": body.domcaps,
                  "device_nodes": tuple((body.device_nodes or {}).items()),
                  "reserved_cpus": body.reserved_cpus,
                  "allocated_cpus": body.allocated_cpus,
                  "option_names": HTTP_OPTIONS, "diagnostics_sources": sources}
        if isinstance(body, contract.CompileRequest):
            kwargs["host"] = body.host
        return kwargs

    def _library_profiles(self, names) -> tuple[ProfileFile, ...]:
        """The newest version of each named profile from the server's library."""
        files, problems = [], []
        for index, name in enumerate(names):
            path = self.library.find(name, ANY_VERSION)
            if path is None:
                problems.append(invalid(
                    f"/profiles/{index}", f"no profile '{name}' in the server's library",
                    hint=did_you_mean(name, self.library.names()) or
                    "GET /v1/profiles lists them"))
                continue
            files.append(_library_file(path, *_stamp(path)))
        if problems:
            raise Problem("invalid-input", tuple(problems))
        return tuple(files)

    async def _run(self, operation, kwargs: dict, sources: Sources):
        try:
            return await self.runner(operation, **kwargs)
        except VirtunedError as exc:
            raise problem_of(exc, sources) from None

    def _profile_listing(self) -> list[contract.ProfileListing]:
        rows = []
        for name in self.library.names():
            version, _, path = max(self.library.candidates(name))
            file = _library_file(path, *_stamp(path))
            header = parse(file.text, file.source).header
            rows.append(contract.ProfileListing(
                name=name, version=str(version), versions=self.library.versions(name),
                summary=header.summary or "", sha256=file.sha256))
        return rows


def _param_text(value) -> str:
    """A param's value as ``--set NAME=VALUE`` gives it: text, whatever its JSON type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _too_large(size: int, limit: int, at_least: bool = False) -> Problem:
    said = f"more than {limit}" if at_least else str(size)
    return Problem("too-large", f"the body is {said} bytes; the limit is {limit}")


def _stamp(path: Path) -> tuple:
    info = path.stat()
    return info.st_mtime_ns, info.st_size


@functools.lru_cache(maxsize=256)
def _library_file(path: Path, mtime_ns: int, size: int) -> ProfileFile:
    """A library profile's text, read again only when the file changed (the stamp is
    part of the key): reading and naming it costs more than compiling with it."""
    return load_library_file(path)


def _prefers_xml(accept: str | None) -> bool:
    """Whether the Accept header ranks application/xml (or text/xml) above JSON;
    JSON, the default, wins ties and wildcards."""
    if not accept or "xml" not in accept:
        return False
    ranks: dict[str, float] = {}
    for part in accept.split(","):
        media, *parameters = part.split(";")
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.strip().lower()
        ranks[media] = max(ranks.get(media, 0.0), quality)
    xml = max(ranks.get("application/xml", 0.0), ranks.get("text/xml", 0.0))
    return xml > 0 and xml > ranks.get(JSON, 0.0)


def _json(value) -> Response:
    return Response(msgspec.json.encode(value), media_type=JSON)


def _trait_listing() -> list[contract.TraitListing]:
    return [contract.TraitListing(name=d.name, usage=registry.usage(d), version=d.version,
                                  summary=d.summary, doc=d.doc.strip())
            for d in registry.all_traits()]


# ---------------------------------------------------------------- the application

def create_app(profile_path=(), limits: Limits = Limits()):
    """The ASGI application. ``profile_path``: more profile directories (highest
    priority last), searched after the shipped library, /etc and the user's."""
    service = Service(tuple(str(p) for p in profile_path), limits)
    routes = [Route(op.path, _endpoint(getattr(service, op.name)), methods=[op.method])
              for op in contract.OPERATIONS]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        _warm_up()
        yield
        service.runner.close()

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: _http_problem})
    app.state.service = service
    return observe.Observed(app, service.prometheus, frozenset(r.path for r in routes))


def _warm_up() -> None:
    """One compile before the first request: it builds the parser and imports the
    vocabulary, which would otherwise make the first client wait ~50 ms."""
    api.compile(None, traits=("video qxl",))


def _endpoint(handler):
    """Every answer of a handler: its response, its Problem, or a 500 problem for a
    bug, logged with its traceback and the request id (never sent to the client)."""
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Problem as problem:
            return problem_response(problem, request)
        except ClientDisconnect:
            return problem_response(Problem(
                "malformed-request", "the client closed the connection before the body "
                "was complete"), request)
        except Exception:
            request_id = request.scope.get("state", {}).get("request_id")
            LOG.exception("internal error", extra={"fields": {
                "request_id": request_id, "path": request.url.path}})
            return problem_response(Problem(
                "internal", f"an internal error occurred; the server's log has it under "
                f"request id {request_id}"), request)
    return endpoint


async def _http_problem(request: Request, exc: HTTPException) -> Response:
    """Starlette's own answers (unknown path, wrong method) as problem documents."""
    if exc.status_code == 405:
        problem = Problem("method-not-allowed", f"{request.method} is not allowed on "
                          f"{request.url.path}", headers=dict(exc.headers or {}))
    else:
        problem = Problem("not-found", f"no resource at {request.url.path}; the API is "
                          "described at /openapi.json")
    return problem_response(problem, request)


# ---------------------------------------------------------------- serving

# ``virtuned serve`` hands its options to the worker processes through these (each
# worker imports the application anew, so they cannot be passed as objects).
ENVIRONMENT = {"profile_path": "VIRTUNED_PROFILE_PATH", "body_bytes": "VIRTUNED_MAX_BODY_BYTES",
               "timeout": "VIRTUNED_TIMEOUT", "concurrency": "VIRTUNED_CONCURRENCY"}


def app_from_environment():
    """The application as ``virtuned serve`` configured it (uvicorn's factory)."""
    env = os.environ
    path = env.get(ENVIRONMENT["profile_path"], "")
    defaults = Limits()
    limits = attrs.evolve(
        defaults,
        body_bytes=int(env.get(ENVIRONMENT["body_bytes"], defaults.body_bytes)),
        timeout=float(env.get(ENVIRONMENT["timeout"], defaults.timeout)),
        concurrency=int(env.get(ENVIRONMENT["concurrency"], defaults.concurrency)))
    return create_app(tuple(p for p in path.split(os.pathsep) if p), limits)


def serve(host: str, port: int, workers: int, profile_path=(), limits: Limits = Limits(),
          access_log: bool = True) -> int:
    """Run the service until it is stopped (SIGINT, SIGTERM)."""
    os.environ[ENVIRONMENT["profile_path"]] = os.pathsep.join(map(str, profile_path))
    os.environ[ENVIRONMENT["body_bytes"]] = str(limits.body_bytes)
    os.environ[ENVIRONMENT["timeout"]] = str(limits.timeout)
    os.environ[ENVIRONMENT["concurrency"]] = str(limits.concurrency)
    metrics_dir = None
    if workers > 1:  # the workers share their metrics through files (observe.py)
        metrics_dir = tempfile.mkdtemp(prefix="virtuned-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run("virtuned.server:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, log_config=observe.log_config(access_log),
                    access_log=False, server_header=False)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
