"""A command-line run's start-up (virtuned/startup.py): the code attrs compiles for
each class, and what re compiles each pattern to, are kept in the user's cache and
reused by the next run, whatever that run's hash seed; the collector is paused until
ready()."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from virtuned import startup

ROOT = Path(__file__).resolve().parent.parent

# A run as the CLI starts one: classes defined after begin(), used, then ready().
PROGRAM = """
import gc
from virtuned import startup
startup.begin()
paused = not gc.isenabled()
from virtuned.frozen import frozen

@frozen
class Point:
    x: int
    y: int = 0

a, b = Point(1, 2), Point(1, 2)
startup.ready()
print(paused, gc.isenabled(), a == b, hash(a) == hash(b), len({a, b, Point(2)}), repr(a))
"""
ANSWER = "True True True True 2 Point(x=1, y=2)\n"


def run(cache: str, seed: str = "random", before: str = "", **more: str) -> str:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "VIRTUNED_CACHE_DIR": cache,
                   "PYTHONHASHSEED": seed, **more}
    return subprocess.run([sys.executable, "-c", before + PROGRAM], capture_output=True,
                          text=True, env=environment, check=True).stdout


def kept(directory: Path) -> list[Path]:
    return sorted(directory.glob("start-*.marshal"))


@pytest.mark.parametrize("before", ["", "import attrs\n"], ids=["first", "after attrs"])
def test_the_next_run_reuses_the_code_whatever_its_hash_seed(tmp_path, before):
    assert run(str(tmp_path), seed="1", before=before) == ANSWER
    [file] = kept(tmp_path)
    written = file.read_bytes()
    # attrs salts each __hash__ with a hash that differs under another seed: the
    # second run finds everything kept, so it has nothing to write.
    assert run(str(tmp_path), seed="2", before=before) == ANSWER
    assert file.read_bytes() == written


def test_a_broken_file_is_compiled_again_and_replaced(tmp_path):
    run(str(tmp_path))
    [file] = kept(tmp_path)
    file.write_bytes(b"\x00garbage")
    assert run(str(tmp_path)) == ANSWER
    assert file.read_bytes() != b"\x00garbage"


def test_an_empty_cache_directory_setting_keeps_nothing(tmp_path):
    assert run("", HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path)) == ANSWER
    assert list(tmp_path.iterdir()) == []


def test_an_upgrade_removes_what_earlier_formats_kept(tmp_path):
    earlier = [tmp_path / "attrs-code-1.cpython-311-30b07f0.marshal",
               tmp_path / "start-1.cpython-311-30b07f0.marshal"]
    other_python = tmp_path / f"start-{startup.FORMAT}.cpython-399-30f0000.marshal"
    for file in [*earlier, other_python]:
        file.write_bytes(b"kept by an earlier run")
    assert run(str(tmp_path)) == ANSWER
    assert sorted(tmp_path.iterdir()) == kept(tmp_path)
    assert other_python in kept(tmp_path) and len(kept(tmp_path)) == 2


def test_the_cli_keeps_it(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "VIRTUNED_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "virtuned", "traits"], env=environment, check=True,
                   capture_output=True)
    assert len(kept(tmp_path)) == 1


# Patterns compiled after begin(), each compared with what re compiles without the
# cache (patterns compare equal when their flags, text and compiled code are).
PATTERNS = """
import re
from virtuned import startup
startup.begin()
held = set(startup._patterns)
given = [(r"(?P<word>[a-z]+)-(\\d+)", re.I), (rb"x|y+", 0), (r"\\s*/>$", re.M)]
made = [re.compile(text, flags) for text, flags in given]
startup.ready()
print([(text, flags) in held for text, flags in given],
      [re._compiler.compile(text, flags) == p for (text, flags), p in zip(given, made)],
      made[0].match("Ab-12").groupdict())
"""


def test_the_next_run_reuses_compiled_patterns(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "VIRTUNED_CACHE_DIR": str(tmp_path)}

    def run_patterns() -> str:
        return subprocess.run([sys.executable, "-c", PATTERNS], capture_output=True,
                              text=True, env=environment, check=True).stdout

    same, found = "[True, True, True] {'word': 'Ab'}\n", "[True, True, True] "
    assert run_patterns() == "[False, False, False] " + same
    assert run_patterns() == found + same


# What a CLI compile of the benchmark's request (bench/bench_compile.py) no longer
# imports: json (the parsed-profile cache is marshal's), pkgutil (the vocabulary is
# listed from its directory), osinfo-db's module (no OS is named).
UNUSED = ("json", "pkgutil", "virtuned.facts.osinfo")
COMPILE = f"""
import contextlib, io, sys
from virtuned import startup
startup.begin()
from virtuned.syntax import cache
cache.enable()
from virtuned.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["compile", "examples/domains/web-server.xml", "-p",
                 "examples/profiles/server.vt"])
print(code, [name for name in {UNUSED!r} if name in sys.modules])
"""


def test_a_compile_imports_nothing_it_does_not_use(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "VIRTUNED_CACHE_DIR": str(tmp_path)}
    outputs = [subprocess.run([sys.executable, "-c", COMPILE], capture_output=True,
                              text=True, env=environment, check=True, cwd=ROOT).stdout
               for _ in range(2)]
    assert outputs[1] == "0 []\n"  # the profile from the cache (the first run: lark's)
