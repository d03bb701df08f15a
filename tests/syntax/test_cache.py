"""The CLI's disk cache of parsed profiles: what comes back is the AST the parser
builds, spans and comments included; a hit needs no lark; anything wrong with the
cache only means parsing again."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings

from tests import strategies
from virtuned.diagnostics import VirtunedError
from virtuned.syntax import cache
from virtuned.syntax.format import format_profile
from virtuned.syntax.parser import parse

ROOT = Path(__file__).resolve().parents[2]
PROFILES = sorted((ROOT / "traits").glob("*.vt")) + sorted(
    (ROOT / "examples" / "profiles").glob("*.vt"))


@pytest.fixture
def cached(tmp_path):
    cache.enable(tmp_path / "syntax")
    yield tmp_path / "syntax"
    cache.disable()


def test_off_unless_enabled(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    parse("video qxl\n", "<trait 1>")
    assert not (tmp_path / "virtuned").exists()


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_a_hit_is_the_parsed_ast_spans_and_comments_included(cached, path):
    text = path.read_text()
    parsed = parse(text, str(path))
    assert len(list(cached.iterdir())) == 1
    hit = cache.load(text, str(path))
    assert hit == parsed
    assert cache._encode(hit) == cache._encode(parsed)  # every field, spans too
    assert parse(text, str(path)) == parsed


@settings(max_examples=50, deadline=None)
@given(strategies.profiles())
def test_any_profile_round_trips_through_the_cache(tmp_path_factory, profile):
    cache.enable(tmp_path_factory.mktemp("syntax"))
    try:
        text = format_profile(profile)
        parsed = parse(text, "<generated>")
        assert cache._encode(cache.load(text, "<generated>")) == cache._encode(parsed)
    finally:
        cache.disable()


def test_the_name_and_the_text_are_the_key(cached):
    first = parse("video qxl\n", "a.vt")
    assert cache.load("video qxl\n", "b.vt") is None
    assert cache.load("video vga\n", "a.vt") is None
    assert cache.load("video qxl\n", "a.vt") == first


def test_errors_are_not_cached(cached):
    with pytest.raises(VirtunedError):
        parse("video = qxl\n", "bad.vt")
    assert not cached.exists() or not list(cached.iterdir())


def test_a_broken_or_foreign_entry_means_parsing_again(cached):
    parsed = parse("guest agent\n", "a.vt")
    (entry,) = cached.iterdir()
    for junk in (b"{", marshal.dumps({"@": "os.system", "command": "true"}),
                 marshal.dumps([]), marshal.dumps({"@": "Profile", "nonsense": 1}),
                 marshal.dumps({"@": "Comment", "line": 1, "col": 1, "text": {"#"}})):
        entry.write_bytes(junk)
        assert cache.load("guest agent\n", "a.vt") is None
        assert parse("guest agent\n", "a.vt") == parsed


def test_a_directory_that_cannot_be_written_is_no_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache.enable(blocker / "syntax")
    try:
        assert parse("video qxl\n", "<trait 1>").statements
    finally:
        cache.disable()


def test_old_entries_are_pruned(cached, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 4)
    for n in range(6):
        parse(f"pcie root ports {n + 1}\n", "<trait 1>")
    assert len(list(cached.iterdir())) <= 4


def test_a_hit_imports_no_lark(tmp_path):
    profile = ROOT / "examples" / "profiles" / "server.vt"
    program = (
        "import sys\n"
        "from virtuned.syntax import cache, parser\n"
        f"cache.enable({str(tmp_path)!r})\n"
        f"parser.parse(open({str(profile)!r}).read(), 'server.vt')\n"
        "print('lark' in sys.modules)\n")
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-c", program]
    first = subprocess.run(run, capture_output=True, text=True, env=environment, check=True)
    second = subprocess.run(run, capture_output=True, text=True, env=environment, check=True)
    assert (first.stdout, second.stdout) == ("True\n", "False\n")


def test_the_cli_uses_it(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT),
                   "VIRTUNED_CACHE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "virtuned", "compile", "-t", "video qxl"]
    outputs = [subprocess.run(command, capture_output=True, text=True, env=environment,
                              check=True).stdout for _ in range(2)]
    assert outputs[0] == outputs[1] and "<model type=\"qxl\"/>" in outputs[0]
    # One parsed profile, and lark's tables: kept here, never in the shared /tmp.
    assert sorted(p.name for p in (tmp_path / "syntax").iterdir())[1:] == [
        "lark-tables.pickle"]
    assert len(list((tmp_path / "syntax").iterdir())) == 2


def test_someone_elses_directory_is_neither_read_nor_written(cached, monkeypatch):
    parsed = parse("guest agent\n", "a.vt")
    assert cache.load("guest agent\n", "a.vt") == parsed
    monkeypatch.setattr(os, "getuid", lambda: os.stat(cached).st_uid + 1)
    assert cache.load("guest agent\n", "a.vt") is None
    parse("video qxl\n", "b.vt")
    assert len(list(cached.iterdir())) == 1
