"""One diagnostic type, one renderer, and the exit codes of DESIGN.md.

Every user error in every stage becomes a `Diagnostic` with a `Span`; the CLI renders
it as ``file:line:col: error: message`` followed by the source line and a caret, like
lark's ``get_context``. Programmer bugs are ordinary exceptions and are never caught
here, so they are never disguised as user errors.
"""

from __future__ import annotations

import enum
import os

import attrs

from virtuned.frozen import frozen


class ExitCode(enum.IntEnum):
    OK = 0
    INVALID_INPUT = 2  # syntax, unknown trait, bad XML, bad value
    CONFLICT = 3  # conflicting traits or infeasible placement


@frozen(order=True)
class Span:
    """A region of a source file; lines and columns count from 1."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None
    # Text that starts the spot on its line (an XML element's "<tag"): lxml knows
    # only an element's line, so the column is found when the line is at hand.
    anchor: str | None = attrs.field(default=None, eq=False, order=False)

    def __str__(self) -> str:
        if self.file.startswith("--"):  # a command-line option: it has no lines
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


@frozen
class Related:
    """Another place that takes part in a diagnostic, such as the other side of a conflict."""

    span: Span
    message: str


@frozen
class Diagnostic:
    severity: str  # "error" or "warning"
    message: str
    span: Span
    related: tuple[Related, ...] = ()
    hint: str | None = None


class VirtunedError(Exception):
    """User-facing failure: one or more diagnostics and the exit code they imply."""

    def __init__(self, diagnostics: Diagnostic | tuple[Diagnostic, ...] | list[Diagnostic],
                 exit_code: ExitCode = ExitCode.INVALID_INPUT):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = (diagnostics,)
        self.diagnostics = tuple(diagnostics)
        self.exit_code = exit_code
        super().__init__("; ".join(f"{d.span}: {d.message}" for d in self.diagnostics))

    def __reduce__(self):
        """Pickled as its diagnostics and exit code: raised again in the process that
        shared out the work (virtuned/parallel.py)."""
        return type(self), (self.diagnostics, self.exit_code)


def error(span: Span, message: str, *, hint: str | None = None,
          related: tuple[Related, ...] = (), exit_code: ExitCode = ExitCode.INVALID_INPUT
          ) -> VirtunedError:
    """Build (not raise) a single-diagnostic error, so call sites read `raise error(...)`."""
    return VirtunedError(Diagnostic("error", message, span, related, hint), exit_code)


def suggestions(word: str, known, n: int = 1) -> list[str]:
    """The ``n`` names of ``known`` closest to a mistyped ``word``, closest first
    (none when nothing is close): the one source of every "did you mean"."""
    import difflib  # only for mistakes: a run without any starts without it

    return difflib.get_close_matches(word, list(known), n=n, cutoff=0.6)


def similarity(word: str, name: str) -> float:
    """How close ``word`` is to ``name``, from 0 to 1 (as ``suggestions`` ranks them)."""
    import difflib

    return difflib.SequenceMatcher(None, word, name).ratio()


def did_you_mean(word: str, known, n: int = 1) -> str | None:
    """A hint naming the ``n`` closest of ``known`` to a mistyped ``word`` (None:
    nothing is close)."""
    return asking(suggestions(word, known, n))


def asking(names) -> str | None:
    """``did you mean 'a' or 'b'?`` for names found close (None for none)."""
    return "did you mean " + " or ".join(f"'{name}'" for name in names) + "?" \
        if names else None


def quoted(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut short when long: a message names what it
    refers to and never echoes a tenant's megabyte back."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


REQUEST = "<request>"  # how diagnostics name the request itself (an HTTP body)


@frozen
class OptionNames:
    """How diagnostics name the values of a request that come with no file of their
    own (``reserved_cpus``, a param's value, ``name``): as the CLI's options, which
    the Python API shares, or as the fields of an HTTP request, by JSON pointer."""

    http: bool = False

    def name(self, option: str, key: str | None = None) -> str:
        """``--reserved-cpus``, ``--set queues``; ``/reserved_cpus``, ``/params/queues``."""
        if self.http:
            field = _HTTP_FIELDS.get(option, option)
            return f"/{field}" if key is None else f"/{field}/{_pointer_token(key)}"
        flag = f"--{_CLI_FLAGS.get(option, option.replace('_', '-'))}"
        return flag if key is None else f"{flag} {key}"

    def given(self, option: str, value: str, key: str | None = None) -> str:
        """What the caller wrote: ``--reserved-cpus 0-1``, ``--set queues=4``; a
        request field is named by its pointer alone, as the body holds its value."""
        if self.http:
            return self.name(option, key)
        return f"{self.name(option)} {value}" if key is None else \
            f"{self.name(option, key)}={value}"

    def lead(self, option: str, key: str | None = None) -> str:
        """A message's opening words naming the option, where its place does not
        (a request field's place is the whole body); the CLI's place names it."""
        return f"{self.name(option, key)}: " if self.http else ""

    def span(self, option: str, value: str, key: str | None = None) -> Span:
        """Where a diagnostic about a given value sits: the option itself (a file
        name the renderer shows alone), or the request body."""
        return Span(REQUEST if self.http else self.given(option, value, key), 1, 1)


CLI_OPTIONS = OptionNames()
HTTP_OPTIONS = OptionNames(http=True)
_CLI_FLAGS = {"settings": "set", "device_nodes": "device-node"}
_HTTP_FIELDS = {"settings": "params"}


def _pointer_token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")  # RFC 6901


class Sources:
    """Text of every file seen in a run, so diagnostics can show the offending line."""

    def __init__(self) -> None:
        self._texts: dict[str, str | bytes] = {}

    def add(self, name: str, text: str | bytes) -> None:
        self._texts[name] = text  # bytes are decoded only if a diagnostic needs them

    def line(self, span: Span) -> str | None:
        text = self._texts.get(span.file)
        if text is None:
            text = self._texts[span.file] = _read_quietly(span.file)
        if text is None:
            return None
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        lines = text.split("\n")  # as lark and lxml count lines: at "\n" only
        if not 1 <= span.line <= len(lines):
            return None
        # Show the line up to any other line-break character (CRLF, a lone CR, U+2028):
        # printed as they are they would move the caret off its column.
        line = lines[span.line - 1].rstrip("\r")
        return line.splitlines()[0] if line else line


# Names shown for files (``traits/nfv.vt``) → their real paths, so diagnostics can
# show a line of a file whose shown name is not a path from the current directory.
_SHOWN: dict[str, str] = {}


def name_file(shown: str, path) -> None:
    """Diagnostics name the file at ``path`` as ``shown``."""
    _SHOWN[shown] = os.fspath(path)


def real_path(shown: str) -> str | None:
    """The real path of a file diagnostics name ``shown`` (None: not a named file)."""
    return _SHOWN.get(shown)


def _read_quietly(path: str) -> str | None:
    """A file a diagnostic points into that the caller never saw (an included
    profile): read it for its context line, or show no context."""
    if path.startswith(("<", "--")):
        return None
    try:
        with open(real_path(path) or path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(_CONTEXT_CHARS + 1)
    except OSError:
        return None
    # A file beyond every input's cap (/dev/zero) is what the diagnostic is about:
    # it is not read on for a line of context.
    return text if len(text) <= _CONTEXT_CHARS else None


_CONTEXT_CHARS = 10 * 1024 * 1024  # inputs.XML_BYTES: the largest input there is


def render(diagnostic: Diagnostic, sources: Sources | None = None) -> str:
    """``file:line:col: severity: message``, the source line with a caret, notes, hint."""
    span = locate(diagnostic.span, sources)
    out = [f"{span}: {diagnostic.severity}: {diagnostic.message}"]
    out += _context(span, sources)
    for rel in diagnostic.related:
        rel_span = locate(rel.span, sources)
        out.append(f"{rel_span}: note: {rel.message}")
        out += _context(rel_span, sources)
    if diagnostic.hint:
        out.append(f"hint: {diagnostic.hint}")
    return "\n".join(out)


def locate(span: Span, sources: Sources | None) -> Span:
    """The span with its column found from its anchor, when the line is known (the
    renderer and the HTTP service's JSON diagnostics both report that column)."""
    line = sources.line(span) if sources and span.anchor else None
    if line is None or span.anchor not in line:
        return span
    col = line.index(span.anchor) + 1
    return attrs.evolve(span, col=col, end_line=span.line,
                        end_col=col + len(span.anchor))


def _context(span: Span, sources: Sources | None) -> list[str]:
    line = sources.line(span) if sources else None
    if line is None:
        return []
    # Expand tabs the same way on both lines so the caret stays under its column.
    prefix = line[: max(span.col - 1, 0)].expandtabs()
    width = 1
    if span.end_line == span.line and span.end_col and span.end_col > span.col:
        width = len(line[span.col - 1: span.end_col - 1].expandtabs())
    shown, start = line.expandtabs(), 0
    if len(shown) > _CONTEXT_WIDTH:  # a window around the caret, "..." where cut
        start = max(min(len(prefix) - _CONTEXT_WIDTH // 3, len(shown) - _CONTEXT_WIDTH), 0)
        end = start + _CONTEXT_WIDTH
        shown = ("..." if start else "") + shown[start:end] + \
            ("..." if end < len(shown) else "")
        start -= 3 if start else 0
        width = max(min(width, end - len(prefix)), 1)
    return ["    " + shown, "    " + " " * (len(prefix) - start) + "^" * width]


_CONTEXT_WIDTH = 100  # columns of a long source line shown around the caret
