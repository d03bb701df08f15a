"""The web stack is the ``server`` extra: the library and every command but
``serve`` work without it, and ``serve`` says how to install it. Played in a fresh
interpreter whose imports of the extra's modules fail, as where it is not installed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from virtuned import api

ROOT = Path(__file__).resolve().parents[2]
# The extra's distributions, as the modules they install ("prometheus-client" →
# prometheus_client): read from pyproject.toml, so that the test follows it.
EXTRA = sorted(re.match(r"[A-Za-z0-9_.-]+", requirement).group().lower().replace("-", "_")
               for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())
               ["project"]["optional-dependencies"]["server"])
BLOCK = f"""
import sys
EXTRA = {EXTRA!r}


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in EXTRA:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)


sys.meta_path.insert(0, NotInstalled())
"""
DOMAIN = (ROOT / "examples" / "domains" / "web-server.xml").read_text()
PROFILE = ROOT / "examples" / "profiles" / "server.vt"


def without_web_stack(program: str, tmp_path) -> dict:
    """What ``program`` leaves in ``result`` (JSON), run with the extra blocked;
    also the extra's modules it imported (there must be none)."""
    script = tmp_path / "program.py"
    script.write_text(BLOCK + program + """
result["imported"] = sorted(m for m in sys.modules if m.partition(".")[0] in EXTRA)
print(json.dumps(result))
""")
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                              "HOME": str(tmp_path), "VIRTUNED_CACHE_DIR": ""})
    assert (run.returncode, run.stderr) == (0, "")
    return json.loads(run.stdout)


def test_the_extra_is_the_web_stack():
    assert EXTRA == ["httptools", "msgspec", "prometheus_client", "uvicorn", "uvloop"]


def test_the_library_imports_and_compiles(tmp_path):
    result = without_web_stack(f"""
import json
import virtuned

compiled = virtuned.compile({DOMAIN!r}, traits=["video qxl"])
result = {{"xml": compiled.xml, "warnings": len(compiled.warnings)}}
""", tmp_path)
    assert result == {"xml": api.compile(DOMAIN, traits=["video qxl"]).xml, "warnings": 0,
                      "imported": []}


def test_the_commands_work_and_serve_says_what_to_install(tmp_path):
    (tmp_path / "d.xml").write_text(DOMAIN)
    result = without_web_stack(f"""
import contextlib
import io
import json

from virtuned.cli import main

result = {{}}
for argv in (["compile", "d.xml", "-p", {str(PROFILE)!r}],
             ["explain", "d.xml", "-t", "video qxl"],
             ["plan", "d.xml", "-t", "dedicated cpus"],
             ["fit", "d.xml", "-t", "dedicated cpus", "--hosts",
              {str(ROOT / "examples" / "hosts" / "two-node-smt.xml")!r}],
             ["check", {str(PROFILE)!r}], ["fmt", "--check", {str(PROFILE)!r}],
             ["traits"], ["profiles"], ["serve", "--port", "1"]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    result[argv[0]] = [code, bool(out.getvalue()), err.getvalue()]
""", tmp_path)
    assert result == {
        "compile": [0, True, ""], "explain": [0, True, ""], "plan": [0, True, ""],
        "fit": [0, True, ""], "check": [0, False, ""], "fmt": [0, False, ""],
        "traits": [0, True, ""], "profiles": [0, True, ""],
        "serve": [2, False, "virtuned serve: error: the web stack is not installed (no "
                            "module named 'msgspec'); install it with: pip install "
                            "'virtuned[server]'\n"],
        "imported": []}
