"""The ``virtuned`` command line.

Exit codes (DESIGN.md): 0 ok, 2 invalid input, 3 conflict or infeasible placement;
1 is left for internal errors, which are reported as such, never as a traceback.
Errors go to stderr as ``file:line:col: error: ...``; on error nothing is written to
stdout or to the ``-o`` file.
"""

from __future__ import annotations

import argparse
import os
import sys

INTERNAL_ERROR = 1


def console(prefix: tuple[str, ...] = ()) -> int:
    """The ``virtuned`` command (and ``python -m virtuned``): a short-lived process,
    so parsed profiles come from the disk cache (virtuned/syntax/cache.py).
    ``prefix``: words before the arguments, for a command under another name
    (``onDefineDomain`` is ``virtuned kubevirt on-define-domain``)."""
    from virtuned import startup

    startup.begin()  # before the first attrs class is defined
    from virtuned.syntax import cache

    cache.enable()
    argv = [*prefix, *sys.argv[1:]]
    args = _parser(argv).parse_args(argv)
    if args.command in _RUN_LONG:
        startup.ready()
    code = run(args)
    if args.run is _serve:
        return code  # the web stack's processes and handlers end the way they expect
    _end(code)


def _end(code: int) -> None:
    """End the process without tearing the interpreter down: freeing every module
    and object one by one costs a command as long as a compile does, and there is
    nothing left to do. What it wrote is flushed first; its files are closed by now."""
    from virtuned import startup

    startup.ready()  # what start-up compiled, kept for the next run
    try:
        sys.stdout.flush()
    except OSError:
        pass  # a full disk, a reader gone: run() has said so
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run(_parser(argv).parse_args(argv))


def run(args) -> int:
    """Run the command ``args`` name; errors are reported, never raised."""
    from virtuned.diagnostics import Sources, VirtunedError, render

    sources = Sources()
    stdout = sys.stdout
    if args.run is not _serve:  # the web stack sees the real stream
        sys.stdout = _Stdout(stdout)
    try:
        code = args.run(args, sources)
        sys.stdout.flush()  # a full disk shows here at the latest, while it can be said
        return code
    except VirtunedError as exc:
        for diagnostic in exc.diagnostics:
            print(render(diagnostic, sources), file=sys.stderr)
        return int(exc.exit_code)
    except _InputFileError as exc:
        print(f"{exc.path}: error: {exc.reason}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug in virtuned, not in the input
        print(f"virtuned: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in virtuned; please report it with the command and its "
              "input files.", file=sys.stderr)
        return INTERNAL_ERROR
    finally:
        sys.stdout = stdout


class _Stdout:
    """sys.stdout whose write errors (a full disk, a reader gone: ENOSPC, EPIPE) are
    the output's, reported as ``<stdout>: error: ...`` with exit 2."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise _InputFileError("<stdout>", exc.strerror or str(exc)) from None

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise _InputFileError("<stdout>", exc.strerror or str(exc)) from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser of the command line ``argv``: only the command it names, when it
    names one (argparse builds a parser per command and a help formatter to check
    each argument as it is added: the other commands and their sixty arguments cost
    a run more than its compile does); else every command, for the help and the
    error that lists them."""
    parser = _ArgumentParser(
        prog="virtuned", description="Compile VM traits into complete libvirt domain XML.")
    # prog given: argparse would lay out the usage to find it (and measure the terminal)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     prog=parser.prog)
    named = [argv[0]] if argv and argv[0] in _COMMANDS else list(_COMMANDS)
    for name in named:
        summary, arguments, run_it = _COMMANDS[name]
        command = commands.add_parser(name, help=summary)
        arguments(command)
        command.set_defaults(run=run_it)
    return parser


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's, but the terminal is measured only when text is laid out: argparse
    makes a formatter for every argument added, just to check its metavar, and
    measuring (``shutil.get_terminal_size``) imports shutil and its compression
    modules, a few milliseconds of a run that prints no help."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None,
                 **more):
        super().__init__(prog, indent_increment, max_help_position,
                         width=80 if width is None else width, **more)
        self._measure = (max_help_position,) if width is None else ()

    def format_help(self) -> str:
        if self._measure:  # as HelpFormatter.__init__ does without a width
            import shutil

            (max_help_position,), self._measure = self._measure, ()
            self._width = shutil.get_terminal_size().columns - 2
            self._max_help_position = min(max_help_position, max(
                self._width - 20, self._indent_increment * 2))
        return super().format_help()


class _ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose commands' parsers (its class too) use _HelpFormatter."""

    def __init__(self, *args, formatter_class=_HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def _compile_arguments(command) -> None:
    add_request_arguments(command)
    _override_argument(command)
    _map_arguments(command)
    command.add_argument("-o", "--output", metavar="OUT.xml",
                         help="write the domain here instead of stdout")
    command.add_argument("--write-lock", metavar="LOCK.json",
                         help="also write the resolved trait set, to replay it later")
    command.add_argument("--lock", metavar="LOCK.json",
                         help="compile from a lock alone, reading no profile")


def _plan_arguments(command) -> None:
    add_request_arguments(command)
    _map_arguments(command)


def _map_arguments(command) -> None:
    command.add_argument("--map", nargs="?", const="text", choices=("text", "svg"),
                         help="draw the host and where the guest goes on it (nodes, "
                         "cores, threads, pages) on stderr: text (the default) or svg")
    command.add_argument("--map-output", metavar="FILE",
                         help="write the --map picture here instead of stderr")


def _override_argument(command) -> None:
    command.add_argument("--override", action="store_true",
                         help="traits replace values the input states instead of "
                         "conflicting with them; each replaced value is a warning")


def _explain_arguments(command) -> None:
    add_request_arguments(command)
    _override_argument(command)
    command.add_argument("--lock", metavar="LOCK.json", help="explain a lock's replay")
    command.add_argument("--diff", action="store_true",
                         help="a unified diff of input and output instead")
    command.add_argument("--json", action="store_true", help="machine-readable output")


def _fit_arguments(command) -> None:
    add_request_arguments(command)
    command.add_argument("--hosts", nargs="+", default=[], metavar="CAPS.xml",
                         help="each host's 'virsh capabilities' or snapshot, answered in "
                         "this order (after the --connect host)")
    command.add_argument("--best", type=_positive, metavar="N",
                         help="only the N best-scored hosts the guest fits on, best first")


def _check_arguments(command) -> None:
    command.add_argument("files", nargs="+", metavar="FILE.vt")
    command.add_argument("--profile-path", action="append", default=[], metavar="DIR",
                         help="another profile directory, for includes")


def _fmt_arguments(command) -> None:
    command.add_argument("files", nargs="+", metavar="FILE.vt", help="files, or - for stdin")
    command.add_argument("--check", action="store_true",
                         help="change nothing; exit 1 if a file is not in canonical layout")


def _profiles_arguments(command) -> None:
    command.add_argument("--profile-path", action="append", default=[], metavar="DIR")
    command.add_argument("--json", action="store_true", help="machine-readable output")


def _traits_arguments(command) -> None:
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument("--profile-path", action="append", default=[], metavar="DIR",
                         help="another profile directory whose composite traits to list")


def _serve_arguments(command) -> None:
    """``virtuned serve``: the HTTP/JSON service (virtuned/server/, docs/server.md)."""
    command.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                         help="address to listen on (default: 127.0.0.1)")
    command.add_argument("--port", type=int, default=8080, metavar="N",
                         help="port to listen on (default: 8080)")
    command.add_argument("--workers", type=_positive, default=1, metavar="N",
                         help="worker processes (default: 1; about one per core)")
    command.add_argument("--profile-path", action="append", default=[], metavar="DIR",
                         help="another profile directory, searched before the others")
    command.add_argument("--max-body-bytes", type=_positive, default=1024 * 1024,
                         metavar="N", help="largest request body (default: 1 MiB)")
    command.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                         help="time limit of one request (default: 10)")
    command.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                         help="time limit of a request's head, from its first byte, "
                         "and of a TLS handshake (default: 10)")
    command.add_argument("--concurrency", type=_positive, default=2, metavar="N",
                         help="operation processes per worker: operations running at "
                         "once (default: 2)")
    command.add_argument("--queue", type=_whole, default=64, metavar="N",
                         help="requests waiting for an operation per worker; more are "
                         "answered 503 (default: 64)")
    command.add_argument("--max-connections", type=_positive, default=4096, metavar="N",
                         help="open connections per worker; when full, the least "
                         "recently active one without a request being answered is "
                         "closed for a new one (default: 4096)")
    command.add_argument("--memory-limit", type=_whole, default=1024, metavar="MiB",
                         help="memory one operation may take, above the server's own; "
                         "0: no limit (default: 1024)")
    command.add_argument("--no-access-log", dest="access_log", action="store_false",
                         help="no JSON line per request on stderr")
    command.add_argument("--cpu-affinity", action="store_true",
                         help="keep each worker and its operation processes on one CPU "
                         "(worker i on the i-th it may use): for --workers as many as "
                         "the CPUs, on CPUs the server has to itself")
    command.add_argument("--tls-cert", metavar="CERT.pem",
                         help="serve HTTPS with this certificate (PEM; the key too, or "
                         "--tls-key)")
    command.add_argument("--tls-key", metavar="KEY.pem", help="the certificate's key")
    command.add_argument("--client-ca", metavar="CA.pem",
                         help="require a client certificate signed by one of these CAs "
                         "(mutual TLS; needs --tls-cert)")
    command.add_argument("--tokens", metavar="FILE",
                         help="require 'Authorization: Bearer TOKEN' with a token of "
                         "FILE (one a line; read again on SIGHUP)")
    command.add_argument("--protect-metrics", action="store_true",
                         help="/metrics needs the token or certificate too (/healthz "
                         "stays open)")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _whole(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 999999999, "
                                         f"got {text!r}")
    return int(text)


def _serve(args, sources) -> int:
    import signal

    # SIGHUP held from here until the service takes it (virtuned/server/app.py's
    # serve): its default action would end the server while it imports and starts.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    # Imported here: the web stack costs start-up time every other command avoids,
    # and it is an extra that only this command needs.
    try:
        from virtuned.server import Limits, serve
    except ImportError as exc:
        if exc.name is None or exc.name.split(".")[0] == "virtuned":
            raise  # a bug of virtuned's own, not a missing extra
        raise _InputFileError("virtuned serve", f"the web stack is not installed (no "
                              f"module named '{exc.name}'); install it with: pip install "
                              "'virtuned[server]'") from None

    for directory in args.profile_path:
        if not os.path.isdir(directory):
            raise _InputFileError(directory, "not a directory (--profile-path)")
    for option, seconds in (("--timeout", args.timeout),
                            ("--header-timeout", args.header_timeout)):
        if not 0 < seconds < 86400:
            raise _InputFileError(option, f"expected seconds from 0 to 86400, got {seconds}")
    limits = Limits(body_bytes=args.max_body_bytes, timeout=args.timeout,
                    header_timeout=args.header_timeout,
                    concurrency=args.concurrency, queue=args.queue,
                    memory_bytes=args.memory_limit << 20,
                    connections=args.max_connections)
    return serve(args.host, args.port, args.workers, tuple(args.profile_path), limits,
                 args.access_log, _tls(args), _access(args), args.cpu_affinity)


def _tls(args):
    from virtuned.server import Tls

    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key),
                         ("--client-ca", args.client_ca)):
        if path is not None and not os.path.isfile(path):
            raise _InputFileError(path, f"no such file ({option})")
    if args.tls_cert is None:
        for option, given in (("--tls-key", args.tls_key), ("--client-ca", args.client_ca)):
            if given is not None:
                raise _InputFileError(option, "needs --tls-cert")
        return None
    return Tls(args.tls_cert, args.tls_key, args.client_ca)


def _access(args):
    from virtuned.server import Access, TokenFileError, read_tokens

    if args.tokens is not None:
        try:
            read_tokens(args.tokens)
        except TokenFileError as exc:
            raise _InputFileError(exc.where, f"{exc.reason} (--tokens)") from None
    access = Access(args.tokens, args.client_ca is not None, args.protect_metrics)
    if args.protect_metrics and not access.guarded():
        raise _InputFileError("--protect-metrics", "needs --tokens or --client-ca")
    return access


def add_request_arguments(parser: argparse.ArgumentParser) -> None:
    """The inputs every operation on a request shares (compile, explain, ...)."""
    parser.add_argument("domain", nargs="?", metavar="DOMAIN.xml",
                        help="input domain XML, or - for stdin (default: an empty domain)")
    parser.add_argument("-p", "--profile", action="append", default=[],
                        metavar="PROFILE", help="a profile name from the search path, or "
                        "a .vt file (repeatable)")
    parser.add_argument("-t", "--trait", action="append", default=[], metavar="TEXT",
                        help="trait text, e.g. -t 'video qxl' (repeatable)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        dest="settings", type=_setting,
                        help="set a profile param: NAME=VALUE or PROFILE.NAME=VALUE")
    parser.add_argument("--profile-path", action="append", default=[], metavar="DIR",
                        help="another profile directory, searched before the others")
    parser.add_argument("--name", help="domain name when the input has none (default: vm)")
    parser.add_argument("--domcaps", metavar="DOMCAPS.xml",
                        help="the host hypervisor's 'virsh domcapabilities' for this "
                        "machine: traits refuse what it does not offer (without it "
                        "nothing is checked)")
    parser.add_argument("--host", metavar="CAPS.xml", dest="host_caps",
                        help="the host's 'virsh capabilities' or a host snapshot "
                        "('virtuned host snapshot'): placement traits pin vCPUs and bind "
                        "memory on it (without it nothing host-specific is written)")
    parser.add_argument("--connect", metavar="URI",
                        help="read the host live through libvirt (qemu:///system, "
                        "test:///default): its free pages and memory, what its other "
                        "guests hold, its domain capabilities (needs virtuned[libvirt])")
    parser.add_argument("--shared-cpus", metavar="LIST",
                        help="the host's CPUs for shared work (Nova's cpu_shared_set): "
                        "'emulator threads shared' floats on them, dedicated vCPUs never "
                        "take them (needs --host or --connect)")
    parser.add_argument("--reserved-cpus", metavar="LIST",
                        help="host CPUs the guest must never use, e.g. 0-1 (needs --host)")
    parser.add_argument("--allocated-cpus", metavar="LIST",
                        help="the host CPUs a node agent granted this guest: pin only "
                        "inside them (needs --host)")
    parser.add_argument("--device-node", action="append", default=[], type=_device_node,
                        metavar="ADDRESS=NODE", dest="device_nodes",
                        help="the host NUMA node of a host PCI device, e.g. "
                        "0000:3b:00.0=1 (its /sys/bus/pci/devices/*/numa_node), for "
                        "'device numa affinity' (repeatable)")


def _device_node(text: str) -> tuple[str, int]:
    address, equals, node = text.partition("=")
    if not equals or not node.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected ADDRESS=NODE like 0000:3b:00.0=1, "
                                         f"got {text!r}")
    return address, int(node)


def _setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def request_kwargs(args, sources) -> dict:
    """The API's keyword arguments for the request the command line describes."""
    domain = _read(args.domain, "domain XML") if args.domain else None
    return dict(domain_xml=domain, profiles=tuple(args.profile), traits=tuple(args.trait),
                settings=tuple(args.settings), profile_path=tuple(args.profile_path),
                name=args.name, diagnostics_sources=sources,
                domain_name="<stdin>" if args.domain == "-" else args.domain or "<domain>",
                domcaps=_read(args.domcaps, "domain capabilities XML")
                if args.domcaps else None,
                domcaps_name=args.domcaps or "<domcaps>",
                device_nodes=tuple(args.device_nodes),
                host=_read(args.host_caps, "host capabilities XML")
                if args.host_caps else None,
                host_name=args.host_caps or "<host>", reserved_cpus=args.reserved_cpus,
                allocated_cpus=args.allocated_cpus, connect=args.connect,
                shared_cpus=args.shared_cpus)


def print_warnings(warnings, sources) -> None:
    from virtuned.diagnostics import render

    for warning in warnings:
        print(render(warning, sources), file=sys.stderr)


class _InputFileError(Exception):
    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _read(path: str, what: str) -> bytes:
    """A file (``-``: stdin) read with the cap of ``what`` it is (virtuned/inputs.py)."""
    from virtuned import inputs

    try:
        if path == "-":
            return inputs.read(sys.stdin.buffer, "<stdin>", what)
        return inputs.read_file(path, what)
    except OSError as exc:
        raise _InputFileError(path, exc.strerror or str(exc)) from None


def _compile(args, sources) -> int:
    from virtuned.api import compile

    lock = None
    if args.lock:
        try:
            lock = _read(args.lock, "lock").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _InputFileError(args.lock, f"not UTF-8 text ({exc.reason})") from None
    request = _map_request(args, sources)
    with _drawn(args, request, lock=lock, lock_name=args.lock or "<lock>"):
        result = compile(**request, lock=lock, lock_name=args.lock or "<lock>",
                         write_lock=bool(args.write_lock), override=args.override)
        print_warnings(result.warnings, sources)
    if args.write_lock:
        _write_atomically(args.write_lock, result.lock)
    if args.output:
        _write_atomically(args.output, result.xml)
    else:
        sys.stdout.write(result.xml)
    return 0


def _plan(args, sources) -> int:
    import json

    from virtuned.api import plan

    request = _map_request(args, sources)
    with _drawn(args, request):
        result = plan(**request)
        print_warnings(result.warnings, sources)
    print(json.dumps(result.json(), indent=2))
    return 0


def _map_request(args, sources) -> dict:
    """The request; with --map and --connect, the host read once for both the
    compile and the picture."""
    request = request_kwargs(args, sources)
    if args.map and not (args.host_caps or args.connect):
        raise _InputFileError("--map", "a map needs the host to draw (--host, --connect)")
    if args.map and args.connect:
        from virtuned.api import live_host

        request.update(host=live_host(args.connect), host_name=args.connect, connect=None)
    return request


class _drawn:
    """``with _drawn(args, request):`` the --map picture after what the block
    prints (its warnings), whether the guest fits (exit 0) or not (exit 3)."""

    def __init__(self, args, request: dict, **more):
        self.args, self.request, self.more = args, request, more

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, trace) -> None:
        from virtuned.diagnostics import ExitCode, VirtunedError

        if not self.args.map or (exc is not None and not (
                isinstance(exc, VirtunedError) and exc.exit_code == ExitCode.CONFLICT)):
            return
        from virtuned.api import host_map
        from virtuned.plan import hostmap

        picture = host_map(**self.request, **self.more)
        if self.args.map == "svg":
            drawn = hostmap.svg(picture)
        else:
            target = sys.stderr if self.args.map_output is None else None
            drawn = hostmap.text(picture, colour=target is not None and
                                 hostmap.colour_wanted(target, os.environ))
        if self.args.map_output:
            _write_atomically(self.args.map_output, drawn)
        else:
            sys.stderr.write(drawn)


def _fit(args, sources) -> int:
    """One JSON object per host, in the order given; a progress bar on stderr when
    it is a terminal. Exit 0 whether or not a host fits: the answer says which."""
    import json

    from virtuned.api import fit

    if args.host_caps:
        raise _InputFileError("--host", "fit takes its hosts with --hosts")
    if not args.hosts and not args.connect:
        raise _InputFileError("--hosts", "fit needs the hosts to answer for (--hosts, "
                              "--connect)")
    request = request_kwargs(args, sources)
    # One host's capabilities in memory at a time, however many hosts are named.
    texts = (_read(path, "host capabilities XML") for path in args.hosts)
    bar = (_ProgressBar(len(args.hosts) + bool(args.connect)) if sys.stderr.isatty()
           else None)
    answers = fit(**request, hosts=texts, host_names=args.hosts, best=args.best,
                  progress=bar.update if bar else None)
    if bar:
        bar.close()
    print(json.dumps([answer.json() for answer in answers], indent=2))
    return 0


class _ProgressBar:
    """``fit  [#######.......]  12/40 hosts`` on one terminal line."""

    WIDTH = 30

    def __init__(self, total: int):
        self.total = total

    def update(self, done: int) -> None:
        filled = self.WIDTH * done // max(self.total, 1)
        sys.stderr.write(f"\rfit  [{'#' * filled}{'.' * (self.WIDTH - filled)}]  "
                         f"{done}/{self.total} hosts")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def _explain(args, sources) -> int:
    from virtuned.api import explain, explanation_json, explanation_text

    lock = _read(args.lock, "lock").decode("utf-8", "replace") if args.lock else None
    result = explain(**request_kwargs(args, sources), lock=lock,
                     lock_name=args.lock or "<lock>", override=args.override)
    if args.diff:
        import difflib

        before = (result.input_xml or "").splitlines(keepends=True)
        name = args.domain if args.domain not in (None, "-") else "<domain>"
        sys.stdout.writelines(difflib.unified_diff(
            before, result.xml.splitlines(keepends=True), f"a/{name}", f"b/{name}"))
    elif args.json:
        import json

        print(json.dumps(explanation_json(result), indent=2))
    else:
        sys.stdout.write(explanation_text(result))
    print_warnings(result.warnings, sources)
    return 0


def _check(args, sources) -> int:
    from virtuned import vocab  # noqa: F401  (registers the traits)
    from virtuned.diagnostics import ExitCode, VirtunedError, render
    from virtuned.resolve import check
    from virtuned.resolve.profiles import load_file

    worst = 0
    for path in args.files:
        try:
            file = load_file(path)
            sources.add(file.source, file.text)
            warnings = check((file,), tuple(args.profile_path))
        except VirtunedError as exc:
            for diagnostic in exc.diagnostics:
                print(render(diagnostic, sources), file=sys.stderr)
            worst = max(worst, int(exc.exit_code))
            continue
        for warning in warnings:
            print(render(warning, sources), file=sys.stderr)
    return worst or int(ExitCode.OK)


def _fmt(args, sources) -> int:
    from virtuned.syntax.format import format_profile
    from virtuned.syntax.parser import parse

    unformatted = []
    for path in args.files:
        try:
            text = _read(path, "profile").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _InputFileError(path, f"not UTF-8 text ({exc.reason})") from None
        sources.add("<stdin>" if path == "-" else path, text)
        formatted = format_profile(parse(text, "<stdin>" if path == "-" else path))
        if path == "-":
            sys.stdout.write(formatted)
        elif formatted != text:
            unformatted.append(path)
            if not args.check:
                _write_atomically(path, formatted)
    if args.check:
        for path in unformatted:
            print(f"{path}: not in canonical layout (virtuned fmt {path})", file=sys.stderr)
        return 1 if unformatted else 0
    return 0


def _profiles(args, sources) -> int:
    from virtuned.resolve.profiles import Library, load_file, search_path, shown_name
    from virtuned.syntax.parser import parse

    library = Library(search_path(tuple(args.profile_path)))
    rows = []
    for name in library.names():
        version, _, path = max(library.candidates(name))
        header = parse(load_file(path).text, str(path)).header
        rows.append({"name": name, "version": str(version), "summary": header.summary or "",
                     "path": shown_name(path)})
    if args.json:
        import json

        print(json.dumps(rows, indent=2))
    else:
        width = max((len(r["name"]) for r in rows), default=0)
        for row in rows:
            print(f"{row['name']:<{width}}  {row['version']:<8}  {row['summary']}")
    return 0


def _write_atomically(path: str, text: str) -> None:
    """A file replaced in one step, keeping its mode and owner; a link followed; a
    device or FIFO written in place (virtuned/outputs.py). Never a partial file."""
    from virtuned import outputs

    try:
        outputs.write(path, text)
    except OSError as exc:
        raise _InputFileError(path, exc.strerror or str(exc)) from None


def _traits(args, sources) -> int:
    from virtuned import reference

    if args.json:
        import json

        print(json.dumps(reference.listing_json(tuple(args.profile_path)), indent=2))
    else:
        sys.stdout.write(reference.listing_text(tuple(args.profile_path)))
    return 0


def _apply_arguments(command) -> None:
    add_request_arguments(command)
    _override_argument(command)
    command.add_argument("--domain", metavar="NAME", dest="defined",
                         help="the guest defined on the host whose inactive definition "
                         "is the input (instead of DOMAIN.xml)")
    command.add_argument("--dry-run", action="store_true",
                         help="print the unified diff of input and output; define nothing")


def _apply(args, sources) -> int:
    """``virtuned apply``: compile against the live host and define the result there
    (virtuned/apply.py); with --dry-run, the diff instead."""
    from virtuned.apply import apply

    if not args.connect:
        raise _InputFileError("--connect", "apply defines on a live host: give its URI "
                              "(--connect qemu:///system)")
    request = request_kwargs(args, sources)
    result = apply(request.pop("connect"), request.pop("domain_xml"), domain=args.defined,
                   dry_run=args.dry_run, override=args.override, **request)
    print_warnings(result.warnings, sources)
    if args.dry_run:
        sys.stdout.write(result.diff())
    else:
        print(f"defined '{result.name}' on {args.connect}")
    return 0


def _host_arguments(command) -> None:
    actions = command.add_subparsers(dest="action", required=True, metavar="ACTION")
    snapshot = actions.add_parser("snapshot", help="write the host's facts and what "
                                  "its guests hold as one JSON document (--host takes it)")
    snapshot.add_argument("--connect", required=True, metavar="URI",
                          help="the libvirt URI of the host (qemu:///system, "
                          "qemu+ssh://HOST/system, test:///default)")
    snapshot.add_argument("-o", "--output", metavar="HOST.json",
                          help="write it here instead of stdout")


def _host(args, sources) -> int:
    """``virtuned host snapshot``: a live host as a snapshot (facts/snapshot.py)."""
    import json

    from virtuned.facts import live

    with live.Live(args.connect) as session:
        text = json.dumps(session.snapshot(), indent=2) + "\n"
    if args.output:
        _write_atomically(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def on_define_domain() -> None:
    """The ``onDefineDomain`` executable KubeVirt's sidecar-shim runs: ``virtuned
    kubevirt on-define-domain`` (virtuned/engines/kubevirt.py)."""
    console(prefix=("kubevirt", "on-define-domain"))


def _kubevirt_arguments(command) -> None:
    from virtuned.engines import kubevirt

    kubevirt.arguments(command)


def _kubevirt(args, sources) -> int:
    from virtuned.engines import kubevirt

    return kubevirt.run(args, sources)


# Commands whose run is more than a start-up: the collector runs for them (startup.py).
_RUN_LONG = frozenset({"serve", "fit"})

# name: (what it does, its arguments, what runs it), in the order help lists them.
_COMMANDS = {
    "compile": ("compile traits onto a domain XML", _compile_arguments, _compile),
    "explain": ("list every change a compile makes, and the trait behind it",
                _explain_arguments, _explain),
    "plan": ("what the guest needs of a host, as JSON (with --host: where it goes)",
             _plan_arguments, _plan),
    "fit": ("which hosts the guest fits on, as JSON", _fit_arguments, _fit),
    "check": ("check profiles for mistakes", _check_arguments, _check),
    "fmt": ("rewrite profiles in the canonical layout", _fmt_arguments, _fmt),
    "profiles": ("list the profiles on the search path", _profiles_arguments, _profiles),
    "traits": ("list the trait vocabulary", _traits_arguments, _traits),
    "serve": ("run the HTTP/JSON service", _serve_arguments, _serve),
    "kubevirt": ("run as KubeVirt's hook sidecar (docs/engines.md)", _kubevirt_arguments,
                 _kubevirt),
    "host": ("read a live host: 'host snapshot --connect URI'", _host_arguments, _host),
    "apply": ("compile against a live host and define the result there (--connect)",
              _apply_arguments, _apply),
}
