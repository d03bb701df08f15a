"""Every schema-valid domain of libvirt's own test suite (../shared/corpus/
libvirt-domains/PASSING.txt), compiled with no traits, comes back byte for byte as it
went in: libvirt's ``'`` quotes, its ``&apos;`` in text, every layout kept (DESIGN.md
principle 1; virtuned/domain/quoting.py). One test over all files, reporting every
failure at once; ``pytest -s`` shows its timing."""

from __future__ import annotations

import difflib
import os
import time
from pathlib import Path

import pytest

from virtuned.api import compile
from virtuned.diagnostics import VirtunedError

REPO = Path(__file__).resolve().parents[1]  # .../main
CORPUS = REPO.parent / "shared" / "corpus" / "libvirt-domains"  # .../shared, its sibling
PASSING = CORPUS / "PASSING.txt"


def corpus_files() -> list[str]:
    return [line.strip() for line in PASSING.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def difference(expected: bytes, got: bytes, limit: int = 12) -> str:
    lines = list(difflib.unified_diff(
        expected.decode("utf-8").splitlines(), got.decode("utf-8").splitlines(),
        "input", "output", lineterm="", n=1))
    more = f"\n    ... {len(lines) - limit} more diff lines" if len(lines) > limit else ""
    return "\n".join("    " + line for line in lines[:limit]) + more


# Files libvirt itself rejects for lacking something completion supplies: the
# difference must be exactly the completed element, in the input's quotes
# (VALIDATION.tsv has libvirt's error).
COMPLETED = {
    # "Memory size must be specified via <memory> or in the <numa> configuration"
    "qemuxml2argvdata/minimal-no-memory.xml": ["+  <memory unit='KiB'>1048576</memory>"],
}


def test_corpus_round_trips():
    if not PASSING.exists():
        # ../shared sits beside every clone, CI's included; without it, say so loudly.
        pytest.fail(f"no corpus at {CORPUS}") if os.environ.get("CI") else \
            pytest.skip(f"no corpus at {CORPUS}")
    files = corpus_files()
    assert len(files) == 2083
    failures: list[str] = []
    started = time.perf_counter()
    for name in files:
        raw = (CORPUS / name).read_bytes()
        try:
            out = compile(raw, domain_name=name).xml
        except VirtunedError as error:
            failures.append(f"{name}: exit {int(error.exit_code)}: {error}")
            continue
        expected, got = raw, out.encode("utf-8")
        if name in COMPLETED:
            added = [line for line in difflib.unified_diff(
                expected.decode().splitlines(), got.decode().splitlines(), lineterm="", n=0)
                if line[:1] in "+-" and line[:3] not in ("+++", "---")]
            if added != COMPLETED[name]:
                failures.append(f"{name}: expected only {COMPLETED[name]}, got {added}")
        elif got != expected:
            failures.append(f"{name}:\n{difference(expected, got)}")
    elapsed = time.perf_counter() - started
    print(f"\ncorpus round trip: {len(files)} domains in {elapsed:.2f}s "
          f"({elapsed / len(files) * 1000:.2f} ms each), {len(failures)} failed")
    assert not failures, (f"{len(failures)} of {len(files)} corpus domains do not round-trip:\n\n"
                          + "\n\n".join(failures))
