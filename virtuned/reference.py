"""The vocabulary's reference, generated from the registry: ``virtuned traits`` (text
and JSON, and the HTTP service's ``/v1/traits``), the vocabulary section of
docs/language.md and the trait table of README.md. A trait's docstring and phrase
are its documentation; nothing here is written by hand.

    python -m virtuned.reference          # rewrite the generated parts of the docs
    python -m virtuned.reference --check  # exit 1 (naming the files) if they are stale

The test suite runs the check, so docs that do not match the vocabulary fail CI.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from virtuned import data
from virtuned import vocab  # noqa: F401  (registers the traits)
from virtuned.resolve import composites as declared
from virtuned.resolve import registry
from virtuned.resolve.profiles import Library, search_path
from virtuned.syntax.format import statement_text
from virtuned.resolve.registry import Slot, TraitDef, signature

ROOT = Path(__file__).resolve().parent.parent


def values(definition: TraitDef) -> tuple[tuple[str, str], ...]:
    """What each slot that is not a plain choice takes: (NAME, description)."""
    return tuple((slot.name.upper(), slot.describe()) for slot in definition.slots()
                 if slot.type != "choice")


def body(definition: TraitDef) -> str:
    """The documentation after the summary line, as paragraphs of plain text."""
    rest = definition.doc.strip().split("\n", 1)[1] if "\n" in definition.doc.strip() \
        else ""
    return textwrap.dedent(rest).strip()


def listing_json(profile_path: tuple[str, ...] = ()) -> list[dict]:
    """``virtuned traits --json`` and ``GET /v1/traits``: every trait, in canonical
    order, then the composite traits of the profile library, by phrase."""
    return [{"name": d.name, "usage": registry.usage(d), "signature": signature(d),
             "version": d.version, "summary": d.summary, "example": d.example,
             "doc": d.doc.strip(),
             "slots": [_slot_json(slot) for slot in d.slots()],
             "module": d.module}
            for d in registry.all_traits()] + [
            {"name": c.phrase, "usage": c.phrase, "signature": c.phrase,
             "version": c.version, "summary": c.summary, "example": c.phrase,
             "doc": c.doc.strip(), "slots": [], "module": c.file.source,
             "profile": c.profile, "parts": list(parts(c))}
            for c in composites(profile_path)]


def _slot_json(slot: Slot) -> dict:
    described = {"name": slot.name, "type": "int" if slot.type == "int" else slot.type,
                 "takes": slot.describe()}
    if slot.choices:
        described["choices"] = list(slot.choices)
    if slot.low is not None:
        described["minimum"] = slot.low
    if slot.high is not None:
        described["maximum"] = slot.high
    return described


def listing_text(profile_path: tuple[str, ...] = ()) -> str:
    """``virtuned traits``: a line per trait (a long signature on a line of its own),
    and a line per value that the signature does not spell out; then the composite
    traits of the profile library, each with its parts."""
    definitions = registry.all_traits()
    width = min(max(len(signature(d)) for d in definitions), _WIDEST)
    lines = []
    for d in definitions:
        lines += _entry(signature(d), d.version, _plain(d.summary), width)
        lines += [f"    {name}: {takes}" for name, takes in values(d)]
    found = composites(profile_path)
    if found:
        lines.append("")
        lines.append("composite traits (declared by profiles on the search path):")
    for c in found:
        lines += _entry(c.phrase, c.version, f"{c.summary} [{c.file.source}]", width)
        lines.append(f"    = {'; '.join(parts(c))}")
    return "".join(line + "\n" for line in lines)


def _entry(shown: str, version: int, summary: str, width: int) -> list[str]:
    if len(shown) > width:
        return [shown, f"{'':<{width}}  v{version}  {summary}"]
    return [f"{shown:<{width}}  v{version}  {summary}"]


def composites(profile_path: tuple[str, ...] | None = ()) -> tuple:
    """The composite traits declared on the search path (newest profile versions);
    with None, only those of the shipped library (what the docs list)."""
    path = (data.directory("traits"),) if profile_path is None else \
        search_path(profile_path)
    return declared.listing(Library(path))


def parts(composite) -> tuple[str, ...]:
    """A composite's parts as trait text, in the order declared."""
    return tuple(statement_text(part) for part in composite.parts)


_WIDEST = 40  # signatures longer than this get a line of their own


def _plain(text: str) -> str:
    """Docstring text for a terminal: reST literals lose their quotes."""
    return re.sub(r"``(.+?)``", r"\1", text)


# ---------------------------------------------------------------- documents

def _markdown(text: str) -> str:
    """Docstring text as Markdown: reST literals become code spans, and an XML tag
    outside them is shown as text, not taken for HTML."""
    pieces = re.split(r"(``.+?``)", text)
    return "".join(f"`{piece[2:-2]}`" if piece.startswith("``") else
                   piece.replace("<", "&lt;") for piece in pieces)


def vocabulary_markdown() -> str:
    """docs/language.md's list of traits: a heading, the summary, what each value
    takes and the documentation of every trait."""
    entries = []
    for d in registry.all_traits():
        module = d.module.replace(".", "/") + ".py"
        entry = (f"#### `{signature(d)}`\n\n{_markdown(d.summary)} "
                 f"*(v{d.version}, [{module}](../{module}))*")
        if values(d):
            entry += "\n\n" + "\n".join(f"- `{name}`: {takes}" for name, takes in values(d))
        entry += "\n\n```\n" + d.example + "\n```"
        for paragraph in body(d).split("\n\n"):
            if paragraph:
                entry += "\n\n" + _markdown(" ".join(paragraph.split()))
        entries.append(entry)
    return "\n\n".join(entries) + "\n"


def completions_markdown() -> str:
    """docs/language.md's list of what a compile completes where nothing says."""
    entries = []
    for c in registry.completions(registry.defaults_version()):
        module = c.module.replace(".", "/") + ".py"
        summary, _, rest = c.doc.strip().partition("\n")
        entry = (f"- **{c.name}** *(since defaults {c.since}, [{module}](../{module}))*: "
                 + _markdown(" ".join((summary + " " + textwrap.dedent(rest)).split())))
        entries.append(entry)
    return "\n".join(entries) + "\n"


def composites_markdown() -> str:
    """docs/language.md's list of the shipped composite traits, with their parts."""
    return "\n".join(
        f"- **`{c.phrase}`** *(v{c.version}, [{c.file.source}](../{c.file.source}))*: "
        f"{_markdown(c.doc.strip().rstrip('.'))}. Stands for: "
        + "; ".join(f"`{part}`" for part in parts(c)) + "."
        for c in composites(None)) + "\n"


def readme_table() -> str:
    """README.md's table of traits: one row per trait, then the shipped composites."""
    rows = ["| trait | what it does |", "|---|---|"]
    for d in registry.all_traits():
        shown = signature(d).replace("|", "\\|")
        rows.append(f"| `{shown}` | {_markdown(d.summary).replace('|', '/')} |")
    for c in composites(None):
        rows.append(f"| `{c.phrase}` | composite ({c.file.source}): "
                    + "; ".join(f"`{part}`" for part in parts(c)) + " |")
    return "\n".join(rows) + "\n"


def _marked(name: str) -> tuple[str, str]:
    return (f"<!-- generated: {name} (python -m virtuned.reference); do not edit -->\n",
            f"<!-- end generated: {name} -->\n")


def generated() -> dict[str, list[tuple[str, str]]]:
    """Each file (from the repository's root) → its generated parts, (name, text)."""
    return {"docs/language.md": [("vocabulary", vocabulary_markdown()),
                                 ("completions", completions_markdown()),
                                 ("composites", composites_markdown())],
            "README.md": [("traits", readme_table())]}


def refreshed(text: str, name: str, part: str) -> str:
    """``text`` with its generated part ``name`` replaced by ``part``."""
    start, end = _marked(name)
    if start not in text or end not in text:
        raise ValueError(f"no generated part '{name}' (its markers are missing)")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + start + "\n" + part + "\n" + end + tail


def stale(root: Path = ROOT) -> list[str]:
    """The files whose generated parts differ from what the registry gives."""
    return [file for file in generated() if (root / file).read_text() !=
            _current(file, (root / file).read_text())]


def _current(file: str, text: str) -> str:
    for name, part in generated()[file]:
        text = refreshed(text, name, part)
    return text


def write(root: Path = ROOT) -> list[str]:
    """Rewrite the generated parts; returns the files changed."""
    changed = stale(root)
    for file in changed:
        path = root / file
        path.write_text(_current(file, path.read_text()))
    return changed


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        files = stale()
        for file in files:
            print(f"{file}: stale; run python -m virtuned.reference", file=sys.stderr)
        return 1 if files else 0
    if argv[1:]:
        print("usage: python -m virtuned.reference [--check]", file=sys.stderr)
        return 2
    for file in write():
        print(f"rewrote {file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
