"""Golden cases: ``tests/golden/<area>/<case>/`` holds

- ``input.xml`` (optional: no file means an empty domain),
- ``traits.vt`` (the traits, passed with ``-p``; optional),
- ``args`` (optional: more command-line arguments, one per line),
- ``expected.xml`` (the exact output) and/or ``expected.err`` (first line ``exit N``,
  then the exact stderr: an error, or the warnings beside an ``expected.xml``).

Each case runs the real CLI in-process with the case folder as working directory,
so paths in diagnostics are the short relative names above.
"""

from __future__ import annotations

from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def cases() -> list[Path]:
    return sorted(p for p in GOLDEN.glob("*/*") if p.is_dir())


def case_id(case: Path) -> str:
    return f"{case.parent.name}/{case.name}"


def run_case(case: Path) -> tuple[int, str, str]:
    from tests.cli_run import run

    argv = ["compile"]
    if (case / "input.xml").exists():
        argv.append("input.xml")
    if (case / "traits.vt").exists():
        argv += ["-p", "traits.vt"]
    if (case / "args").exists():
        argv += [a for a in (case / "args").read_text().splitlines() if a]
    return run(argv, cwd=case)


def machine_of(case: Path, traits) -> str:
    """The machine family a case compiles for: its 'machine' trait, else what its
    input states (a <os><type> without a machine is QEMU's pc), else q35."""
    from lxml import etree

    from virtuned.facts.platform import machine_family

    stated = next((t.kwargs["type"] for t in traits if t.phrase == "machine {type:q35|pc}"),
                  None)
    if stated or not (case / "input.xml").exists():
        return stated or "q35"
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
    try:
        os_type = etree.parse(str(case / "input.xml"), parser).getroot().find("os/type")
    except etree.XMLSyntaxError:
        return "q35"  # a case about malformed input: the domain has no machine
    if os_type is None:
        return "q35"
    return machine_family(os_type.get("machine") or "pc")


def traits_of(case: Path) -> list:
    """The traits a case names (in traits.vt, and -t in args), resolved line by line;
    lines that do not resolve alone (a param, a mistake the case is about) are left
    out."""
    import virtuned.vocab  # noqa: F401
    from virtuned.diagnostics import VirtunedError
    from virtuned.resolve import registry
    from virtuned.resolve.traits import match_line
    from virtuned.syntax import ast
    from virtuned.syntax.parser import parse

    def lines(statements):
        for statement in statements:
            if isinstance(statement, ast.TraitLine):
                yield statement
            elif isinstance(statement, ast.Prefer):
                yield statement.trait
            elif isinstance(statement, ast.When):
                yield from lines(statement.body)

    texts = [(case / "traits.vt").read_text()] if (case / "traits.vt").exists() else []
    if (case / "args").exists():
        args = [a for a in (case / "args").read_text().splitlines() if a]
        texts += [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "-t"]
    found = []
    for text in texts:
        try:
            tree = parse(text, "traits.vt")
        except VirtunedError:
            continue
        for line in lines(tree.statements):
            try:
                found.append(match_line(line, registry.all_traits()))
            except VirtunedError:
                pass
    return found
