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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from virtuned.diagnostics import Sources, VirtunedError, render

    sources = Sources()
    try:
        return args.run(args, sources)
    except VirtunedError as exc:
        for diagnostic in exc.diagnostics:
            print(render(diagnostic, sources), file=sys.stderr)
        return int(exc.exit_code)
    except _InputFileError as exc:
        print(f"{exc.path}: error: {exc.reason}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug in virtuned, not in the input
        print(f"virtuned: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in virtuned; please report it with the command and its "
              "input files.", file=sys.stderr)
        return INTERNAL_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="virtuned", description="Compile VM traits into complete libvirt domain XML.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compile_ = commands.add_parser("compile", help="compile traits onto a domain XML")
    add_request_arguments(compile_)
    compile_.add_argument("-o", "--output", metavar="OUT.xml",
                          help="write the domain here instead of stdout")
    compile_.add_argument("--write-lock", metavar="LOCK.json",
                          help="also write the resolved trait set, to replay it later")
    compile_.add_argument("--lock", metavar="LOCK.json",
                          help="compile from a lock alone, reading no profile")
    compile_.set_defaults(run=_compile)

    traits = commands.add_parser("traits", help="list the trait vocabulary")
    traits.add_argument("--json", action="store_true", help="machine-readable output")
    traits.set_defaults(run=_traits)
    return parser


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


def _setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def request_kwargs(args, sources) -> dict:
    """The API's keyword arguments for the request the command line describes."""
    domain = _read(args.domain) if args.domain else None
    return dict(domain_xml=domain, profiles=tuple(args.profile), traits=tuple(args.trait),
                settings=tuple(args.settings), profile_path=tuple(args.profile_path),
                name=args.name, diagnostics_sources=sources,
                domain_name="<stdin>" if args.domain == "-" else args.domain or "<domain>")


def print_warnings(warnings, sources) -> None:
    from virtuned.diagnostics import render

    for warning in warnings:
        print(render(warning, sources), file=sys.stderr)


class _InputFileError(Exception):
    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _read(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise _InputFileError(path, exc.strerror or str(exc)) from None


def _compile(args, sources) -> int:
    from virtuned.api import compile

    lock = None
    if args.lock:
        try:
            lock = _read(args.lock).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _InputFileError(args.lock, f"not UTF-8 text ({exc.reason})") from None
    result = compile(**request_kwargs(args, sources), lock=lock,
                     lock_name=args.lock or "<lock>", write_lock=bool(args.write_lock))
    print_warnings(result.warnings, sources)
    if args.write_lock:
        _write_atomically(args.write_lock, result.lock)
    if args.output:
        _write_atomically(args.output, result.xml)
    else:
        sys.stdout.write(result.xml)
    return 0


def _write_atomically(path: str, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it: never a partial file."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise _InputFileError(path, exc.strerror or str(exc)) from None


def _traits(args, sources) -> int:
    from virtuned import registry

    definitions = registry.all_traits()
    if args.json:
        import json

        print(json.dumps([{"name": d.name, "usage": registry.usage(d), "version": d.version,
                           "summary": d.summary, "doc": d.doc.strip()}
                          for d in definitions], indent=2))
        return 0
    width = max(len(registry.usage(d)) for d in definitions)
    for d in definitions:
        print(f"{registry.usage(d):<{width}}  v{d.version}  {d.summary}")
    return 0
