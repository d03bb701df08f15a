"""The HTTP/JSON service (``virtuned serve``): the Python API's operations for
management applications in any language.

The contract is docs/server.md and the types of contract.py, from which requests are
read (validation.py) and the OpenAPI document ``virtuned/openapi.json`` (also served
at ``/openapi.json``) is generated. HTTP is http.py's; uvicorn runs the processes. Every error is an RFC 9457 problem document
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

import contextlib
import functools
import gc
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import attrs
import msgspec
import uvicorn

from virtuned import api, caching
from virtuned.diagnostics import (HTTP_OPTIONS, ExitCode, Sources, Span, VirtunedError,
                                  did_you_mean, real_path)
from virtuned.resolve import check as check_profiles
from virtuned import reference
from virtuned.resolve.profiles import (ANY_VERSION, Library, ProfileFile, load_library_file,
                                       search_path)
from virtuned.server import affinity, contract, observe
from virtuned.server.access import Access, Guard
from virtuned.server.http import Request, Response, diagnostic, failed, json_response
from virtuned.server.pool import Pool
from virtuned.server.validation import Problem, decode, invalid
from virtuned.syntax.parser import parse
from virtuned.version import __version__

LOG = logging.getLogger("virtuned.server")
_CHARSET = re.compile(r"charset\s*=\s*\"?([^\";\s]+)", re.I)  # of a Content-Type
OPENAPI = Path(__file__).parent.parent / "openapi.json"
# The operations that read a request run in operation processes (pool.py); the
# others are answered by the worker's event loop from what it holds.
POOLED = frozenset({"compile", "explain", "plan", "fit", "check", "profiles"})
FIT_WORKERS = 4  # the most processes one fit request's hosts are shared among


@attrs.frozen
class Limits:
    """What one request may ask of a server; see docs/server.md#limits. The limits of
    the request's fields are the contract's (contract.py)."""

    body_bytes: int = 1024 * 1024  # the request body, in bytes
    timeout: float = 10.0  # seconds: reading the body, then waiting for and running
    header_timeout: float = 10.0  # seconds: reading the request line and headers
    concurrency: int = 2  # operation processes of one worker process
    queue: int = 64  # requests waiting for an operation process, per worker; more: 503
    memory_bytes: int = 1024 << 20  # more address space an operation may take; 0: any
    connections: int = 4096  # open connections per worker; more: the least active closed
    host_store_bytes: int = 512 << 20  # the host documents fit keeps (caching.Shelf)


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


def _settle() -> None:
    """After a fit: what this process keeps from now on (above all the hosts it
    parsed, api.HOST_DOCUMENTS: a million objects for 10,000 hosts) out of the
    collector's full collections, which walk every object (0.6 s each, every few
    fits) though these live as long as the cache keeps them. The young garbage of
    the request is collected first, so that it is not kept too; a cached host that
    goes is freed as ever (by its references: parsed hosts hold no cycles). Cyclic
    garbage already in the oldest generation would be kept until the process is
    replaced (every 10,000 answers), but requests make none (tests/test_api.py); a
    full collection here instead cost a warm fit of the fleet bench 20-40 % more."""
    gc.collect(1)
    gc.freeze()


def _diagnostics(found, sources: Sources) -> list[contract.Diagnostic]:
    return [diagnostic(d, sources) for d in found]


# ---------------------------------------------------------------- the service

class Service:
    """The operations, with the library, limits and operation processes they share.
    Each takes a Request and answers a Response, or raises a Problem."""

    def __init__(self, profile_path: tuple[str, ...], limits: Limits,
                 host_store: str | None = None):
        self.profile_path, self.limits = profile_path, limits
        # The host documents fit was sent, for the replica's processes to share: a
        # host given by its sha256 is found whichever process answers.
        self.shelf = (caching.Shelf(host_store, limits.host_store_bytes)
                      if host_store else None)
        # Processes a fit of many hosts is shared among: the cores this one may run on,
        # at most 4 (a container's CPU quota is not in its affinity).
        self.fit_workers = min(len(os.sched_getaffinity(0)), FIT_WORKERS)
        # Those cores, when the worker is kept on one of them (--cpu-affinity): a fit
        # spreads its helper processes over them again.
        self.spread: frozenset[int] | None = None
        self.library = Library(search_path(profile_path))
        self.prometheus = observe.Metrics()
        self.document = OPENAPI.read_bytes()
        self.trait_listing = msgspec.json.encode(_trait_listing())

    # -- the operations, run in an operation process (pool.py): each answers a Response

    def compile(self, request: Request) -> Response:
        body = self._request(request, contract.CompileRequest)
        sources = RequestSources()
        return _compiled(request, sources, _call(api.compile, self._api_request(
            body, sources), sources))

    def explain(self, request: Request) -> Response:
        body = self._request(request, contract.CompileRequest)
        sources = RequestSources()
        result = _call(api.explain, self._api_request(body, sources), sources)
        return json_response({**api.explanation_json(result), "xml": result.xml,
                              "warnings": _diagnostics(result.warnings, sources)})

    def plan(self, request: Request) -> Response:
        body = self._request(request, contract.CompileRequest)
        sources = RequestSources()
        result = _call(api.plan, self._api_request(body, sources), sources)
        return json_response({**result.json(),
                              "warnings": _diagnostics(result.warnings, sources)})

    def fit(self, request: Request) -> Response:
        body = self._request(request, contract.FitRequest)
        sources = RequestSources()
        kwargs = {**self._api_request(body, sources), "hosts": self._hosts(body.hosts),
                  "best": body.best, "workers": self.fit_workers}
        try:
            with affinity.everywhere(self.spread):
                answers = _call(api.fit, kwargs, sources)  # as 'virtuned fit' prints them
            return json_response([a.json() for a in answers])
        finally:
            _settle()

    def _hosts(self, given) -> list:
        """A fit request's host documents: those given by their sha256 looked up
        (parsed in this process, or on the replica's shelf), those given whole kept
        on the shelf; 409 naming every sha256 that is neither."""
        hosts, unknown = [], []
        for index, item in enumerate(given):
            if isinstance(item, str):
                digest = api.document_digest(item)
                if self.shelf is not None and api.HOST_DOCUMENTS.get(digest) is None:
                    self.shelf.put(digest, api.document_bytes(item))
                hosts.append(item)
                continue
            found = api.HOST_DOCUMENTS.get(item.sha256)
            if found is None and self.shelf is not None:
                data = self.shelf.get(item.sha256)
                found = None if data is None else data.decode("utf-8", "surrogatepass")
            if found is None:
                unknown.append(invalid(
                    f"/hosts/{index}", f"no host document with sha256 {item.sha256} on "
                    "this server", hint="send the document itself in its place"))
            hosts.append(found)
        if unknown:
            raise Problem("unknown-host", tuple(unknown))
        return hosts

    def check(self, request: Request) -> Response:
        body = self._request(request, contract.CheckRequest)
        sources = RequestSources()
        sources.add("<profile>", body.text)
        warnings = _call(check_profiles, {"files": (ProfileFile("<profile>", body.text),),
                                          "profile_path": self.profile_path}, sources)
        return json_response(contract.CheckResult(warnings=_diagnostics(warnings, sources)))

    def profiles(self, request: Request) -> Response:
        return json_response(self._profile_listing())

    def answer(self, operation: str, method: str, path: str, headers: dict, body: bytes,
               request_id: str) -> Response:
        """The answer of one request, in an operation process: ``operation`` names
        the method above. MemoryError is the process's to handle (pool.py)."""
        request = Request(None)
        request.method, request.path, request.headers = method, path, headers
        request.body, request.request_id = body, request_id
        try:
            return getattr(self, operation)(request)
        except MemoryError:
            raise
        except Exception as exc:
            return failed(request, exc)

    # -- answered by the server worker itself: nothing of the request is read

    def traits(self, request: Request) -> Response:
        return Response(200, self.trait_listing)

    def health(self, request: Request) -> Response:
        return json_response(contract.Health(status="ok", version=__version__))

    def metrics(self, request: Request) -> Response:
        body, content_type = self.prometheus.exposition()
        return Response(200, body, content_type.encode("latin-1"))

    def openapi(self, request: Request) -> Response:
        return Response(200, self.document)

    # -- reading requests

    def _request(self, request: Request, kind: type):
        content_type = request.header(b"content-type") or ""
        media, _, parameters = content_type.partition(";")
        charset = parameters and _CHARSET.search(parameters)
        if media.strip().lower() != "application/json" or (
                charset and charset.group(1).lower() not in ("utf-8", "utf8")):
            raise Problem("unsupported-media-type",
                          f"expected Content-Type: application/json (UTF-8), got "
                          f"{content_type or 'none'}")
        return decode(request.body, kind)

    def _api_request(self, body, sources: Sources) -> dict:
        """The API's keyword arguments for a request (fit's has no "host"). Fields
        left out are () without a call: most requests leave most out."""
        params, nodes = body.params, body.device_nodes
        kwargs = {"domain_xml": body.domain,
                  "sources": self._library_profiles(body.profiles) if body.profiles else (),
                  "traits": tuple(body.traits) if body.traits else (),
                  "settings": tuple((name, _param_text(value))
                                    for name, value in params.items()) if params else (),
                  "profile_path": self.profile_path, "name": body.name,
                  "domcaps": body.domcaps,
                  "device_nodes": tuple(nodes.items()) if nodes else (),
                  "reserved_cpus": body.reserved_cpus,
                  "allocated_cpus": body.allocated_cpus,
                  "option_names": HTTP_OPTIONS, "diagnostics_sources": sources}
        if isinstance(body, contract.CompileRequest):
            kwargs["host"], kwargs["override"] = body.host, bool(body.override)
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


def _call(operation, kwargs: dict, sources: Sources):
    """``operation(**kwargs)``, its errors Problems naming the request's texts."""
    try:
        return operation(**kwargs)
    except VirtunedError as exc:
        raise problem_of(exc, sources) from None


def _compiled(request: Request, sources: Sources, result) -> Response:
    """A compile's answer: JSON, or the XML itself when the client ranks it first."""
    if _prefers_xml(request.header(b"accept")):
        return Response(200, result.xml.encode("utf-8"), b"application/xml; charset=utf-8",
                        ((b"virtuned-warnings", b"%d" % len(result.warnings)),))
    return json_response(contract.CompileResult(
        xml=result.xml, warnings=_diagnostics(result.warnings, sources)))


def _param_text(value) -> str:
    """A param's value as ``--set NAME=VALUE`` gives it: text, whatever its JSON type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
    return xml > 0 and xml > ranks.get("application/json", 0.0)


def _trait_listing() -> list[contract.TraitListing]:
    """What 'virtuned traits --json' prints, typed by the contract."""
    return msgspec.convert(reference.listing_json(), list[contract.TraitListing])


# ---------------------------------------------------------------- the application

class App:
    """The service as uvicorn runs it with http.Protocol: the routes (path → method →
    handler, from contract.OPERATIONS; ``handler(request, reply)`` answers a Response
    now, or None and ``reply(Response or Problem)`` later), the limits and the observer the protocol
    uses, and ASGI's lifespan (a warm-up compile, then the operation processes, at
    start; their end at the end). Its HTTP is http.Protocol's, never ASGI's:
    ``uvicorn.Config(app, http=Protocol)``."""

    def __init__(self, service: Service, access_log: bool, access: Access = Access(),
                 cpu_affinity: bool = False):
        self.service, self.limits = service, service.limits
        self.cpu_affinity = cpu_affinity  # the worker and its processes on one CPU
        self.guard = Guard(access) if access.guarded() else None
        limits = self.limits
        self.pool = Pool(service.answer, limits.concurrency, limits.timeout, limits.queue,
                         limits.memory_bytes, service.prometheus.replaced)
        self.connections: dict = {}  # http.Protocol's, least recently active first
        self.routes: dict[str, dict] = {}
        for op in contract.OPERATIONS:
            handler = (functools.partial(_submit, self.pool, op.name) if op.name in POOLED
                       else _at_once(getattr(service, op.name)))
            methods = self.routes.setdefault(op.path, {})
            methods[op.method] = handler
            if op.method == "GET":
                methods["HEAD"] = handler
        self.observer = observe.Observer(service.prometheus, frozenset(self.routes),
                                         access_log)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            raise RuntimeError("virtuned's service speaks HTTP through "
                               "virtuned.server.http.Protocol: uvicorn.Config(app, "
                               "http=Protocol)")
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _bound_handshakes(self.limits.header_timeout)
                self.limits = _within_descriptors(self.limits)
                _warm_up()  # before the fork: every operation process starts warm
                if self.cpu_affinity:  # before the fork too: the processes inherit it
                    self.service.spread = frozenset(os.sched_getaffinity(0))
                    affinity.pin_worker()
                self.pool.start()
                _on_hangup(self._hangup)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _hangup(self) -> None:
        """SIGHUP: the tokens file read again; without one, nothing to do (the
        signal's default, the end of the process, would be no reload)."""
        if self.guard is not None:
            self.guard.reload()
        else:
            LOG.info("SIGHUP: no --tokens file to read again")


def _bound_handshakes(seconds: float) -> None:
    """A TLS handshake gets the time a request's head gets, not asyncio's 60 s: a
    client that opens a connection and says nothing holds it no longer over TLS than
    over plain HTTP. uvicorn opens its listening sockets right after this lifespan
    step, with the running loop's create_server, which takes the handshake's limit
    as an argument that uvicorn never passes: it is added here."""
    import asyncio

    loop = asyncio.get_running_loop()
    create_server = loop.create_server

    async def bounded(*args, **kwargs):
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_handshake_timeout", seconds)
        return await create_server(*args, **kwargs)

    loop.create_server = bounded


def _within_descriptors(limits: Limits) -> Limits:
    """The limits with room for every connection they allow: the process's soft
    limit of descriptors raised to its hard limit, and the connections lowered
    (with a warning) when even that is too few."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    # the listening sockets, the log, the event loop's, 2 per operation process...
    room = soft - 64 - 4 * limits.concurrency
    if limits.connections <= room:
        return limits
    LOG.warning("fewer connections than asked: the descriptors allow %d", room,
                extra={"fields": {"asked": limits.connections, "nofile": soft}})
    return attrs.evolve(limits, connections=max(room, 1))


def _at_once(operation):
    """A handler of the worker's own: its Response now, no ``reply``."""
    return lambda request, reply: operation(request)


def _submit(pool: Pool, operation: str, request: Request, reply) -> None:
    """A request handed to an operation process; ``reply`` gets its answer."""
    pool.submit((operation, request.method, request.path, request.headers,
                 request.body, request.request_id), reply)


def _on_hangup(reload) -> None:
    """``reload()`` on SIGHUP (the tokens file), where this thread may take signals;
    then SIGHUP is let through: a worker starts with it blocked (serve), so one sent
    while it started waits for this rather than ending it."""
    import asyncio
    import signal

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    except (RuntimeError, ValueError):  # not the main thread: an in-process test server
        LOG.warning("SIGHUP does not reload the tokens: not the main thread")
        return
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


def create_app(profile_path=(), limits: Limits = Limits(), access_log: bool = False,
               access: Access = Access(), host_store: str | None = None,
               cpu_affinity: bool = False) -> App:
    """The application. ``profile_path``: more profile directories (highest
    priority last), searched after the shipped library, /etc and the user's;
    ``access_log``: one JSON line per request on stderr; ``access``: who may call;
    ``host_store``: the directory its processes share fit's host documents in;
    ``cpu_affinity``: each worker and its operation processes kept on one CPU
    (affinity.py)."""
    return App(Service(tuple(str(p) for p in profile_path), limits, host_store),
               access_log, access, cpu_affinity)


def _warm_up() -> None:
    """One compile before the first request: it builds the parser and imports the
    vocabulary, which would otherwise make the first client wait ~50 ms."""
    api.compile(None, traits=("video qxl",))


# ---------------------------------------------------------------- serving

# ``virtuned serve`` hands its options to the worker processes through this, as JSON
# (each worker imports the application anew, so they cannot be passed as objects).
ENVIRONMENT = "VIRTUNED_SERVE"


def app_from_environment() -> App:
    """The application as ``virtuned serve`` configured it (uvicorn's factory)."""
    options = json.loads(os.environ.get(ENVIRONMENT, "{}"))
    return create_app(tuple(options.get("profile_path", ())),
                      Limits(**options.get("limits", {})), options.get("access_log", False),
                      Access(**options.get("access", {})), options.get("host_store"),
                      options.get("cpu_affinity", False))


@attrs.frozen
class Tls:
    """The server's certificate and key (PEM files), and the CAs whose client
    certificates it requires (mutual TLS), if any."""

    cert: str
    key: str | None = None
    client_ca: str | None = None

    def uvicorn(self) -> dict:
        import ssl

        return {"ssl_certfile": self.cert, "ssl_keyfile": self.key,
                "ssl_ca_certs": self.client_ca,
                # optional at the handshake, so that a probe without one still gets
                # /healthz and any other request a 403 it can read (access.py)
                "ssl_cert_reqs": ssl.CERT_OPTIONAL if self.client_ca else ssl.CERT_NONE}


def serve(host: str, port: int, workers: int, profile_path=(), limits: Limits = Limits(),
          access_log: bool = True, tls: Tls | None = None, access: Access = Access(),
          cpu_affinity: bool = False) -> int:
    """Run the service until it is stopped (SIGINT, SIGTERM); from the main thread.
    SIGHUP is held from here until the service's handler takes it (_on_hangup, the
    supervisor's): its default action would end the server it asks to reload."""
    _hold_hangups()
    host_store = tempfile.mkdtemp(prefix="virtuned-hosts-")  # the replica's, for fit
    os.environ[ENVIRONMENT] = json.dumps({
        "profile_path": [str(p) for p in profile_path], "limits": attrs.asdict(limits),
        "access_log": access_log, "access": attrs.asdict(access), "host_store": host_store,
        "cpu_affinity": cpu_affinity})
    metrics_dir = None
    if workers > 1:  # the workers share their metrics through files (observe.py)
        metrics_dir = tempfile.mkdtemp(prefix="virtuned-metrics-")
        os.environ[observe.DIRECTORY] = metrics_dir
    else:  # one worker keeps them in memory: a directory inherited from the
        # environment would add another server's counts to this one's
        os.environ.pop(observe.DIRECTORY, None)
    try:
        _run(uvicorn.Config(
            "virtuned.server:app_from_environment", factory=True, host=host, port=port,
            workers=workers, http="virtuned.server.http:Protocol", interface="asgi3",
            lifespan="on", proxy_headers=False, log_config=observe.log_config(),
            access_log=False, server_header=False, **(tls.uvicorn() if tls else {})))
    finally:
        shutil.rmtree(host_store, ignore_errors=True)
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _run(config: uvicorn.Config) -> None:
    """What uvicorn.run does with ``config``, but for SIGHUP, which reads the tokens
    file again in every worker (App._hangup) rather than restarting the workers, as
    uvicorn's supervisor does: a restart would also drop what each worker and its
    operation processes keep warm (profiles, fit's parsed hosts). SIGHUP is held
    (serve) until a handler takes it: the supervisor's, or the worker's once it has
    started (_on_hangup), which the supervisor's workers inherit the hold for."""
    import signal

    import uvicorn.main

    if config.workers > 1:
        supervisor = _supervisor(config, config.bind_socket())
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})  # it has its handler
        with contextlib.suppress(KeyboardInterrupt):
            supervisor.run()
        return
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(uvicorn.main.STARTUP_FAILURE)


def _supervisor(config: uvicorn.Config, sock):
    """uvicorn's supervisor of worker processes, passing SIGHUP on to them. Its
    methods are those of the uvicorn pyproject.toml allows, the only one tested."""
    import signal

    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def handle_hup(self) -> None:
            LOG.info("SIGHUP: the workers read the tokens file again")
            for process in self.processes:
                if process.pid is not None and process.process.is_alive():
                    os.kill(process.pid, signal.SIGHUP)

        # A worker starts with SIGHUP blocked (it inherits the mask); here it waits
        # meanwhile too, and is taken once the worker has started.
        def init_processes(self) -> None:
            with _hangups_held():
                super().init_processes()

        def keep_subprocess_alive(self) -> None:
            with _hangups_held():
                super().keep_subprocess_alive()

        def handle_ttin(self) -> None:
            with _hangups_held():
                super().handle_ttin()

    return Supervisor(config, sockets=[sock])


def _hold_hangups() -> None:
    """SIGHUP blocked in this thread, until a handler unblocks it."""
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})


@contextlib.contextmanager
def _hangups_held():
    """SIGHUP blocked in this thread meanwhile (a process started inherits it)."""
    import signal

    _hold_hangups()
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
