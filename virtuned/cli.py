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
    compile_.add_argument("domain", nargs="?", metavar="DOMAIN.xml",
                          help="input domain XML, or - for stdin (default: an empty domain)")
    compile_.add_argument("-p", "--profile", action="append", default=[], metavar="FILE.vt",
                          help="a file of traits (repeatable)")
    compile_.add_argument("-t", "--trait", action="append", default=[], metavar="TEXT",
                          help="trait text, e.g. -t 'video qxl' (repeatable)")
    compile_.add_argument("--name", help="domain name when the input has none (default: vm)")
    compile_.add_argument("-o", "--output", metavar="OUT.xml",
                          help="write the domain here instead of stdout")
    compile_.set_defaults(run=_compile)

    traits = commands.add_parser("traits", help="list the trait vocabulary")
    traits.add_argument("--json", action="store_true", help="machine-readable output")
    traits.set_defaults(run=_traits)
    return parser


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


def _trait_sources(args):
    from virtuned.api import TraitSource

    sources = []
    for path in args.profile:
        try:
            text = _read(path).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _InputFileError(path, f"not UTF-8 text ({exc.reason})") from None
        sources.append(TraitSource(path, text))
    sources += [TraitSource(f"<trait {i}>", text) for i, text in enumerate(args.trait, 1)]
    return sources


def _compile(args, sources) -> int:
    from virtuned.api import compile

    domain = _read(args.domain) if args.domain else None
    domain_name = "<stdin>" if args.domain == "-" else args.domain or "<domain>"
    result = compile(domain, sources=_trait_sources(args), name=args.name,
                     domain_name=domain_name, diagnostics_sources=sources)
    for warning in result.warnings:
        print(warning, file=sys.stderr)
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
