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
