"""schemathesis against the real server, from the OpenAPI document the server itself
serves: every phase (the document's examples, coverage of each schema's edges and
negations, fuzzing), every built-in check (status codes, content types, headers and
bodies conformant to the document; schema-violating requests refused) and virtuned's
own (tests/server/schemathesis_checks.py: nothing the document allows is refused by
the server's request validation). Deterministic: the same cases each run
(tests/server/schemathesis.toml).

That the served document is the shipped file, byte for byte, is
tests/server/test_contract.py::test_the_openapi_document_served_is_the_shipped_file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.server.harness import ROOT

CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_finds_nothing(server, tmp_path):
    report = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file",
         str(CONFIG), "run", f"{server.url}/openapi.json", "--report", "json",
         "--report-json-path", str(report)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{run.stdout[-20000:]}\n{run.stderr[-5000:]}"
    result = json.loads(report.read_text())
    assert (result["failures"], result["errors"]) == ([], [])
    # Every operation but /openapi.json itself, which schemathesis leaves out.
    assert result["operations"] == {"total": 9, "selected": 9, "tested": 9, "errored": 0,
                                    "skipped": 0, "skip_reasons": []}
    assert {name: phase["status"] for name, phase in result["phases"].items()} == {
        "examples": "success", "coverage": "success", "fuzzing": "success",
        "stateful": "skip"}  # no OpenAPI links between operations: nothing stateful
    assert result["test_cases"]["with_failures"] == result["test_cases"]["errored"] == 0
    server.assert_serving()
