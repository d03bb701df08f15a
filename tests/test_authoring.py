"""Authoring tools: virtuned check, fmt, profiles, traits."""

from __future__ import annotations

import json

from tests.cli_run import run, write
from tests.resolve.test_resolve import BASE

BAD = '''\
profile bad 1.0.0 "Mistakes a profile author makes"
param unused: int = 3
param bus: word?
video qxl
video qxl
prefer machine pc
machine q35
when bus {
    disk bus $bus
}
when os family windows {
    video vga
}
'''


def test_check_warnings(tmp_path):
    write(tmp_path, {"bad.vt": BAD})
    assert run(["check", "bad.vt"], cwd=tmp_path) == (0, "", """\
bad.vt:2:1: warning: param 'unused' is never used
    param unused: int = 3
    ^^^^^^^^^^^^^^^^^^^^^
bad.vt:5:1: warning: 'video qxl' repeats a trait of this profile; it changes nothing
    video qxl
    ^^^^^^^^^
bad.vt:4:1: note: first here
    video qxl
    ^^^^^^^^^
bad.vt:6:1: warning: preference 'machine pc' dropped: 'machine q35' is required
    prefer machine pc
    ^^^^^^^^^^^^^^^^^
""")


def test_check_reports_every_error_at_once(tmp_path):
    write(tmp_path, {"e.vt": "when machine q53 {\n  video qxl\n}\nvidoe qxl\ndisk bus sd\n",
                     "ok.vt": "video qxl\n"})
    assert run(["check", "e.vt", "ok.vt"], cwd=tmp_path) == (2, "", """\
e.vt:1:14: error: 'machine q53' can never hold
    when machine q53 {
                 ^^^
hint: did you mean 'q35'?
e.vt:4:1: error: unknown trait 'vidoe qxl'
    vidoe qxl
    ^^^^^^^^^
hint: did you mean 'video'?
e.vt:5:10: error: disk bus: bus: expected one of virtio, sata, scsi, ide, got 'sd'
    disk bus sd
             ^^
hint: usage: disk bus BUS
""")


def test_check_reports_conflicts_with_exit_3(tmp_path):
    write(tmp_path, {"c.vt": "machine pc\nmachine q35\n"})
    code, out, err = run(["check", "c.vt"], cwd=tmp_path)
    assert (code, out) == (3, "")
    assert err.startswith("c.vt:2:1: error: 'machine q35' conflicts with 'machine pc'\n")


def test_check_follows_includes(tmp_path):
    write(tmp_path, {"lib/base.vt": BASE, "p.vt": "include base ^3\n"})
    assert run(["check", "p.vt", "--profile-path", "lib"], cwd=tmp_path) == (2, "", """\
p.vt:1:1: error: no version of 'base' matches ^3 (found 1.2.0, 1.50.0)
    include base ^3
    ^^^^^^^^^^^^^^^
""")


def test_fmt_rewrites_in_place_and_check_reports(tmp_path):
    messy = "# keep me\nvideo   qxl   # and me\n\n\n\nwhen machine q35 { guest agent }\n"
    write(tmp_path, {"m.vt": messy})
    assert run(["fmt", "--check", "m.vt"], cwd=tmp_path) == (
        1, "", "m.vt: not in canonical layout (virtuned fmt m.vt)\n")
    assert (tmp_path / "m.vt").read_text() == messy  # --check changes nothing
    assert run(["fmt", "m.vt"], cwd=tmp_path) == (0, "", "")
    tidy = "# keep me\nvideo qxl  # and me\n\nwhen machine q35 {\n    guest agent\n}\n"
    assert (tmp_path / "m.vt").read_text() == tidy
    assert run(["fmt", "--check", "m.vt"], cwd=tmp_path) == (0, "", "")


def test_fmt_refuses_a_syntax_error_and_leaves_the_file(tmp_path):
    write(tmp_path, {"s.vt": "video = qxl\n"})
    code, _, err = run(["fmt", "s.vt"], cwd=tmp_path)
    assert code == 2 and err.startswith("s.vt:1:7: error: unexpected '='")
    assert (tmp_path / "s.vt").read_text() == "video = qxl\n"


def test_profiles_listing(tmp_path):
    write(tmp_path, {"lib/base.vt": BASE, "lib/notes.vt": "video qxl\n"})
    code, out, _ = run(["profiles", "--profile-path", "lib", "--json"], cwd=tmp_path)
    assert code == 0
    rows = [row for row in json.loads(out) if row["path"].startswith("lib/")]
    assert rows == [{"name": "base", "version": "1.50.0", "summary": "Sane defaults",
                     "path": "lib/base.vt"}]


def test_traits_listing_documents_every_trait():
    code, out, _ = run(["traits", "--json"])
    assert code == 0
    listing = json.loads(out)
    assert {t["name"] for t in listing} >= {"machine", "video", "disk bus", "guest agent"}
    assert all(t["summary"] and t["doc"] and t["version"] >= 1 for t in listing)
    video = next(t for t in listing if t["name"] == "video")
    assert video["usage"] == "video MODEL"
