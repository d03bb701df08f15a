"""The HTTP/JSON service (``virtuned serve``): the Python API's operations for
management applications in any language.

The contract is docs/server.md and the OpenAPI document ``virtuned/openapi.json``
(also served at ``/openapi.json``). Every error is an RFC 9457 problem document
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
501   an operation or field that this build of virtuned does not have yet
503   no compile slot became free within the time limit (overloaded; Retry-After)
504   the operation did not finish within the time limit
====  =====================================================================

Profiles in a request are names from the server's own library: a client never names
a file, and nothing a client sends is ever used as a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import functools
import inspect
import json
import logging
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from virtuned import api
from virtuned.diagnostics import (HTTP_OPTIONS, REQUEST, Diagnostic, ExitCode, Sources,
                                  Span, VirtunedError, locate, real_path, render)
from virtuned.resolve import check as check_profiles
from virtuned.resolve import registry
from virtuned.resolve.profiles import (ANY_VERSION, Library, ProfileFile, load_library_file,
                                       search_path)
from virtuned.server import observe
from virtuned.syntax.parser import parse
from virtuned.version import __version__

LOG = logging.getLogger("virtuned.server")
OPENAPI = Path(__file__).parent.parent / "openapi.json"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"


@attrs.frozen
class Limits:
    """What one request may ask of a server; see docs/server.md#limits."""

    body_bytes: int = 1024 * 1024  # the request body, in bytes
    text_chars: int = 64 * 1024  # one trait text, profile text, name or CPU list
    items: int = 64  # entries in each list or map (profiles, traits, params, hosts...)
    timeout: float = 10.0  # seconds: reading the body, then waiting for and running
    concurrency: int = 2  # operations running at once in one worker process


# ---------------------------------------------------------------- problems

# kind → (status, title, exit code). The exit codes are the CLI's: 2 invalid input,
# 3 conflict, 1 anything that is not the client's input.
PROBLEMS = {
    "malformed-request": (400, "The request body is not valid JSON", 2),
    "not-found": (404, "No such resource", 2),
    "method-not-allowed": (405, "Method not allowed", 2),
    "request-timeout": (408, "The request body did not arrive in time", 2),
    "conflict": (409, "Conflicting or infeasible request", 3),
    "too-large": (413, "Request body too large", 2),
    "unsupported-media-type": (415, "Unsupported media type", 2),
    "invalid-input": (422, "Invalid input", 2),
    "internal": (500, "Internal server error", 1),
    "not-implemented": (501, "Not implemented in this version", 1),
    "overloaded": (503, "Server overloaded", 1),
    "timeout": (504, "Time limit exceeded", 1),
}


class Problem(Exception):
    """An error answer: its kind (a key of PROBLEMS) and either the diagnostics behind
    it (input that can be pointed at) or a plain message (a wrong path, a body too
    large, a time limit: nothing in the input to point at)."""

    def __init__(self, kind: str, problem: tuple[Diagnostic, ...] | str,
                 sources: Sources | None = None, headers: dict | None = None):
        super().__init__(kind)
        self.kind, self.sources, self.headers = kind, sources, headers or {}
        self.diagnostics = () if isinstance(problem, str) else tuple(problem)
        self.message = problem if isinstance(problem, str) else None

    @classmethod
    def from_error(cls, exc: VirtunedError, sources: Sources) -> Problem:
        kind = "conflict" if exc.exit_code == ExitCode.CONFLICT else "invalid-input"
        return cls(kind, exc.diagnostics, sources)

    def response(self, request: Request) -> Response:
        status, title, exit_code = PROBLEMS[self.kind]
        request_id = request.scope.get("state", {}).get("request_id")
        request.scope.setdefault("state", {})["problem"] = self.kind
        body = {
            "type": f"urn:virtuned:problem:{self.kind}", "title": title, "status": status,
            "detail": self.message or "\n".join(render(d, self.sources)
                                                 for d in self.diagnostics),
            "instance": f"urn:virtuned:request:{request_id}" if request_id else None,
            "request_id": request_id,
            "diagnostics": [diagnostic_json(d, self.sources) for d in self.diagnostics],
            "exit_code": exit_code,
        }
        return Response(json.dumps(body).encode("ascii"), status, self.headers,
                        media_type=PROBLEM_JSON)


class RequestSources(Sources):
    """The texts of one request, for context lines and columns in diagnostics. Unlike
    the CLI's, it never opens a file a diagnostic names unless it is a profile of the
    server's library: no name a client chose is ever read from disk."""

    def line(self, span: Span) -> str | None:
        if span.file not in self._texts and real_path(span.file) is None:
            return None
        return super().line(span)


def diagnostic_json(d: Diagnostic, sources: Sources | None) -> dict:
    span = locate(d.span, sources)
    return {"severity": d.severity, "message": d.message, **_place(span),
            "end_line": span.end_line, "end_col": span.end_col, "hint": d.hint,
            "related": [{"message": r.message, **_place(locate(r.span, sources))}
                        for r in d.related]}


def _place(span: Span) -> dict:
    return {"file": span.file, "line": span.line, "col": span.col}


def _invalid(pointer: str, message: str, hint: str | None = None) -> Diagnostic:
    """A validation failure of the request's JSON, named by its JSON pointer."""
    return Diagnostic("error", f"{pointer or '/'}: {message}", Span(REQUEST, 1, 1),
                      hint=hint)


# ---------------------------------------------------------------- request fields

class _Invalid(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


# A profile name is a word of the trait language, as in ``include NAME``; it never
# holds a "/" and so can never be a path.
_PROFILE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]*")


def _text(value, limits: Limits, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_json_type(value)}")
    if len(value) > (limit or limits.text_chars):
        raise _Invalid(f"is {len(value)} characters; the limit is {limit or limits.text_chars}")
    _unicode(value)
    return value


def _unicode(value: str) -> None:
    # JSON can spell lone surrogates ("\ud800"); they are not text and cannot be UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Invalid(f"has a lone surrogate \\u{ord(value[exc.start]):04x}, which is "
                       "not a character") from None


def _optional(check):
    def optional(value, limits):
        return None if value is None else check(value, limits)
    return optional


def _xml(value, limits: Limits) -> str:
    # Bounded by the body limit; virtuned.domain's own caps (10 MiB, 64 levels) apply too.
    return _text(value, limits, limit=limits.body_bytes)


def _list(item, *, required: bool = False):
    def checked(value, limits):
        if value is None and not required:
            return ()
        if not isinstance(value, list):
            raise _Invalid(f"expected an array, got {_json_type(value)}")
        if len(value) > limits.items:
            raise _Invalid(f"has {len(value)} entries; the limit is {limits.items}")
        if required and not value:
            raise _Invalid("expected at least one entry")
        problems, items = [], []
        for index, entry in enumerate(value):
            try:
                items.append(item(entry, limits))
            except _Invalid as exc:
                problems.append((f"/{index}", exc))
        if problems:
            raise _Nested(problems)
        return tuple(items)
    return checked


class _Nested(Exception):
    """Failures inside an array or object: (relative pointer, _Invalid) pairs."""

    def __init__(self, problems):
        super().__init__(problems)
        self.problems = problems


def _profile_name(value, limits: Limits) -> str:
    name = _text(value, limits, limit=128)
    if not _PROFILE_NAME.fullmatch(name) or ".." in name or name.endswith(".vt"):
        raise _Invalid(f"{json.dumps(name)} is not a profile name",
                       hint="profiles are names from the server's library "
                            "(GET /v1/profiles), never files or paths")
    return name


def _map(key_check, value_check):
    def checked(value, limits):
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise _Invalid(f"expected an object, got {_json_type(value)}")
        if len(value) > limits.items:
            raise _Invalid(f"has {len(value)} entries; the limit is {limits.items}")
        problems, pairs = [], []
        for key, entry in value.items():
            try:
                pairs.append((key_check(key, limits), value_check(entry, limits)))
            except _Invalid as exc:
                problems.append((f"/{_escape_pointer(key)}", exc))
        if problems:
            raise _Nested(problems)
        return tuple(pairs)
    return checked


def _param_name(key, limits: Limits) -> str:
    name = _text(key, limits, limit=256)
    if not name:
        raise _Invalid("a param name cannot be empty")
    return name


def _integer(value) -> int | None:
    """A JSON integer, or None. JSON has one kind of number: ``4.0`` is the integer 4
    (as JSON Schema, and so the OpenAPI document, counts it)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _param_value(value, limits: Limits) -> str:
    """A param's value as ``--set NAME=VALUE`` gives it: text, whatever its JSON type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if _integer(value) is not None:
        return str(_integer(value))
    if isinstance(value, str):
        return _text(value, limits)
    raise _Invalid(f"expected a string, integer or boolean, got {_json_type(value)}")


def _node(value, limits: Limits) -> int:
    node = _integer(value)
    if node is None or not 0 <= node < 1 << 16:
        raise _Invalid("expected a host NUMA node (0, 1, ...)")
    return node


def _bounded_text(value, limits: Limits) -> str:
    return _text(value, limits)


_REQUEST_FIELDS = {  # the fields of compile, explain and plan; fit adds "hosts"
    "domain": _optional(_xml),
    "profiles": _list(_profile_name),
    "traits": _list(_bounded_text),
    "params": _map(_param_name, _param_value),
    "host": _optional(_xml),
    "domcaps": _optional(_xml),
    "reserved_cpus": _optional(_bounded_text),
    "allocated_cpus": _optional(_bounded_text),
    "name": _optional(_bounded_text),
    "device_nodes": _map(_bounded_text, _node),
}
# fit takes its hosts in "hosts", never "host" (as 'virtuned fit' takes --hosts)
_FIT_FIELDS = {**{k: v for k, v in _REQUEST_FIELDS.items() if k != "host"},
               "hosts": _list(_xml, required=True)}
_CHECK_FIELDS = {"text": _bounded_text}
_REQUIRED = {"hosts", "text"}


def fields(body, schema: dict, limits: Limits) -> dict:
    """The request's fields, checked and converted; every problem is reported at
    once, each named by its JSON pointer."""
    if not isinstance(body, dict):
        raise Problem("invalid-input", (_invalid("", f"expected a JSON object, got "
                                                     f"{_json_type(body)}"),))
    problems, values = [], {}
    for key in body:
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            problems.append(_invalid(f"/{_escape_pointer(key)}", "unknown field",
                                     hint=f"did you mean '{close[0]}'?" if close else
                                     "the fields are " + ", ".join(schema)))
    for key, check in schema.items():
        if key not in body and key in _REQUIRED:
            problems.append(_invalid(f"/{key}", "this field is required"))
            continue
        try:
            values[key] = check(body.get(key), limits)
        except _Invalid as exc:
            problems.append(_invalid(f"/{key}", exc.message, exc.hint))
        except _Nested as nested:
            problems += [_invalid(f"/{key}{where}", exc.message, exc.hint)
                         for where, exc in nested.problems]
    if problems:
        raise Problem("invalid-input", tuple(problems))
    return values


def _escape_pointer(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _json_type(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


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
        self.metrics = observe.Metrics()
        self.openapi = OPENAPI.read_bytes()
        self.traits = json.dumps(_trait_listing()).encode("utf-8")

    # -- the operations

    async def compile(self, request: Request) -> Response:
        values = await self._fields(request, _REQUEST_FIELDS)
        sources = RequestSources()
        result = await self._run(api.compile, self._api_request(values, sources), sources)
        if _prefers_xml(request.headers.get("accept")):
            return Response(result.xml, media_type="application/xml; charset=utf-8",
                            headers={"Virtuned-Warnings": str(len(result.warnings))})
        return _json({"xml": result.xml, "warnings": [diagnostic_json(w, sources)
                                                      for w in result.warnings]})

    async def explain(self, request: Request) -> Response:
        values = await self._fields(request, _REQUEST_FIELDS)
        sources = RequestSources()
        result = await self._run(api.explain, self._api_request(values, sources), sources)
        return _json({**api.explanation_json(result), "xml": result.xml,
                      "warnings": [diagnostic_json(w, sources) for w in result.warnings]})

    async def plan(self, request: Request) -> Response:
        values = await self._fields(request, _REQUEST_FIELDS)
        operation = _available("plan")
        sources = RequestSources()
        result = await self._run(operation, self._api_request(values, sources), sources)
        return _json({**result.json(), "warnings": [diagnostic_json(w, sources)
                                                    for w in result.warnings]})

    async def fit(self, request: Request) -> Response:
        values = await self._fields(request, _FIT_FIELDS)
        operation = _available("fit")
        sources = RequestSources()
        kwargs = {**self._api_request(values, sources), "hosts": values["hosts"]}
        answers = await self._run(operation, kwargs, sources)
        return _json([answer.json() for answer in answers])  # as 'virtuned fit' prints

    async def check(self, request: Request) -> Response:
        values = await self._fields(request, _CHECK_FIELDS)
        sources = RequestSources()
        sources.add("<profile>", values["text"])
        files = (ProfileFile("<profile>", values["text"]),)
        warnings = await self._run(check_profiles, {"files": files,
                                                    "profile_path": self.profile_path}, sources)
        return _json({"warnings": [diagnostic_json(w, sources) for w in warnings]})

    async def profiles(self, request: Request) -> Response:
        return _json(await self.runner(self._profile_listing))

    async def traits_(self, request: Request) -> Response:
        return Response(self.traits, media_type=JSON)

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok", "version": __version__})

    async def metrics_(self, request: Request) -> Response:
        body, content_type = self.metrics.exposition()
        return Response(body, media_type=content_type)

    async def openapi_(self, request: Request) -> Response:
        return Response(self.openapi, media_type=JSON)

    # -- reading requests

    async def _fields(self, request: Request, schema: dict) -> dict:
        content_type = request.headers.get("content-type", "")
        media, _, parameters = content_type.partition(";")
        charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", parameters, re.I)
        if media.strip().lower() != JSON or (charset and charset.group(1).lower()
                                              not in ("utf-8", "utf8")):
            raise Problem("unsupported-media-type",
                          f"expected Content-Type: application/json (UTF-8), got "
                          f"{content_type or 'none'}")
        return fields(_parse_json(await self._body(request)), schema, self.limits)

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

    def _api_request(self, values: dict, sources: Sources) -> dict:
        """The API's keyword arguments for a request's fields (fit has no "host")."""
        kwargs = {"domain_xml": values["domain"], "sources": self._library_profiles(
                      values["profiles"]),
                  "traits": values["traits"], "settings": values["params"],
                  "profile_path": self.profile_path, "name": values["name"],
                  "domcaps": values["domcaps"], "device_nodes": values["device_nodes"],
                  "reserved_cpus": values["reserved_cpus"],
                  "allocated_cpus": values["allocated_cpus"],
                  "option_names": HTTP_OPTIONS, "diagnostics_sources": sources}
        if "host" in values:
            kwargs["host"] = values["host"]
        return kwargs

    def _library_profiles(self, names: tuple[str, ...]) -> tuple[ProfileFile, ...]:
        """The newest version of each named profile from the server's library."""
        files, problems = [], []
        for index, name in enumerate(names):
            path = self.library.find(name, ANY_VERSION)
            if path is None:
                close = difflib.get_close_matches(name, self.library.names(), n=1)
                problems.append(_invalid(
                    f"/profiles/{index}", f"no profile '{name}' in the server's library",
                    hint=f"did you mean '{close[0]}'?" if close else
                    "GET /v1/profiles lists them"))
                continue
            files.append(_library_file(path, *_stamp(path)))
        if problems:
            raise Problem("invalid-input", tuple(problems))
        return tuple(files)

    async def _run(self, operation, kwargs: dict, sources: Sources):
        kwargs = _supported(operation, kwargs)
        try:
            return await self.runner(operation, **kwargs)
        except VirtunedError as exc:
            raise Problem.from_error(exc, sources) from None

    def _profile_listing(self) -> list[dict]:
        rows = []
        for name in self.library.names():
            version, _, path = max(self.library.candidates(name))
            file = _library_file(path, *_stamp(path))
            header = parse(file.text, file.source).header
            rows.append({"name": name, "version": str(version),
                         "versions": self.library.versions(name),
                         "summary": header.summary or "", "sha256": file.sha256})
        return rows


def _too_large(size: int, limit: int, at_least: bool = False) -> Problem:
    said = f"more than {limit}" if at_least else str(size)
    return Problem("too-large", f"the body is {said} bytes; the limit is {limit}")


def _parse_json(raw: bytes):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1  # in bytes
        raise Problem("malformed-request", (Diagnostic(
            "error", f"the body is not UTF-8: byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}", Span(REQUEST, line, col)),)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Problem("malformed-request", (Diagnostic(
            "error", f"malformed JSON: {exc.msg}", Span(REQUEST, exc.lineno, exc.colno)),
        )) from None
    except RecursionError:
        raise Problem("malformed-request", "the JSON nests too deeply") from None
    except ValueError:  # the only other: an integer of more digits than Python converts
        raise Problem("malformed-request", f"malformed JSON: a number has more than "
                      f"{sys.get_int_max_str_digits()} digits") from None


# Arguments the server adds itself, not fields of the request: a library without one
# still answers, only in its own words (its diagnostics name the CLI's options).
_SERVER_OWN = frozenset({"option_names"})


def _supported(operation, kwargs: dict) -> dict:
    """Drop the arguments this build's API does not take; if the request set one of
    them, answer 501 rather than silently ignore what the client asked for."""
    accepted = _parameters(operation)
    missing = [k for k, v in kwargs.items()
               if k not in accepted and v not in (None, ()) and k not in _SERVER_OWN]
    if missing:
        raise Problem("not-implemented", tuple(
            _invalid(f"/{k}", f"this version of virtuned cannot use '{k}' yet in "
                     f"{operation.__name__}") for k in missing))
    return {k: v for k, v in kwargs.items() if k in accepted}


@functools.lru_cache(maxsize=None)
def _parameters(operation) -> frozenset[str]:
    parameters = inspect.signature(operation).parameters
    named = {name for name, p in parameters.items() if p.kind is not p.VAR_KEYWORD}
    if len(named) < len(parameters):
        # explain, plan and fit take compile's keyword arguments too (their docstrings)
        named |= set(inspect.signature(api.compile).parameters)
    return frozenset(named)


def _available(name: str):
    operation = getattr(api, name, None)
    if not inspect.isfunction(operation):  # api.plan is still the module virtuned.plan
        raise Problem("not-implemented", f"'{name}' is not available in this version of "
                      f"virtuned yet")
    return operation


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
    return Response(json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                    .encode("utf-8"), media_type=JSON)


def _trait_listing() -> list[dict]:
    return [{"name": d.name, "usage": registry.usage(d), "version": d.version,
             "summary": d.summary, "doc": d.doc.strip()} for d in registry.all_traits()]


# ---------------------------------------------------------------- the application

def create_app(profile_path=(), limits: Limits = Limits()):
    """The ASGI application. ``profile_path``: more profile directories (highest
    priority last), searched after the shipped library, /etc and the user's."""
    service = Service(tuple(str(p) for p in profile_path), limits)
    routes = [
        Route("/v1/compile", _endpoint(service.compile), methods=["POST"]),
        Route("/v1/plan", _endpoint(service.plan), methods=["POST"]),
        Route("/v1/fit", _endpoint(service.fit), methods=["POST"]),
        Route("/v1/explain", _endpoint(service.explain), methods=["POST"]),
        Route("/v1/check", _endpoint(service.check), methods=["POST"]),
        Route("/v1/profiles", _endpoint(service.profiles), methods=["GET"]),
        Route("/v1/traits", _endpoint(service.traits_), methods=["GET"]),
        Route("/healthz", _endpoint(service.healthz), methods=["GET"]),
        Route("/metrics", _endpoint(service.metrics_), methods=["GET"]),
        Route("/openapi.json", _endpoint(service.openapi_), methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        _warm_up()
        yield
        service.runner.close()

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: _http_problem})
    app.state.service = service
    return observe.Observed(app, service.metrics, frozenset(r.path for r in routes))


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
            return problem.response(request)
        except ClientDisconnect:
            return Problem("malformed-request", "the client closed the connection "
                           "before the body was complete").response(request)
        except Exception:
            request_id = request.scope.get("state", {}).get("request_id")
            LOG.exception("internal error", extra={"fields": {
                "request_id": request_id, "path": request.url.path}})
            return Problem("internal", f"an internal error occurred; the server's log "
                           f"has it under request id {request_id}").response(request)
    return endpoint


async def _http_problem(request: Request, exc: HTTPException) -> Response:
    """Starlette's own answers (unknown path, wrong method) as problem documents."""
    if exc.status_code == 405:
        problem = Problem("method-not-allowed", f"{request.method} is not allowed on "
                          f"{request.url.path}", headers=dict(exc.headers or {}))
    else:
        problem = Problem("not-found", f"no resource at {request.url.path}; the API is "
                          "described at /openapi.json")
    return problem.response(request)


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
    import shutil
    import tempfile

    import uvicorn

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
