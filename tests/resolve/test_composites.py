"""Composite traits: a profile declares a phrase that stands for trait lines, and
any profile or -t text uses it (virtuned/resolve/composites.py).

Each test writes a small library into a temporary folder and runs the real CLI
there, so every path in a message is short and exact."""

from __future__ import annotations

import json

import pytest

from tests.cli_run import run, write

KIT = '''\
profile kit 1.0.0 "Composites"
trait "fast disks" 1 "virtio disks with discard" {
    disk bus virtio
    disk discard unmap
}
trait "quiet desktop" 2 "a virtio display unless a trait says otherwise" {
    prefer video virtio
    graphics vnc
}
trait "fast everything" 1 "fast disks and a virtio display" {
    fast disks
    video virtio
}
'''
DOMAIN = """<domain type="kvm">
  <name>d</name>
  <memory unit="MiB">512</memory>
  <os>
    <type arch="x86_64" machine="pc-q35-7.2">hvm</type>
  </os>
  <devices>
    <disk type="file" device="disk">
      <source file="/var/lib/libvirt/images/d.qcow2"/>
      <target dev="vda"/>
    </disk>
  </devices>
</domain>
"""


@pytest.fixture
def lib(tmp_path):
    write(tmp_path, {"lib/kit.vt": KIT, "d.xml": DOMAIN})
    return tmp_path


def compile_(folder, *args):
    return run(["compile", "d.xml", *args, "--profile-path", "lib"], cwd=folder)


def without_metadata(xml: str) -> str:
    return xml[:xml.index("<metadata>")] + xml[xml.index("</metadata>"):]


# ---------------------------------------------------------------- use

def test_a_composite_is_its_parts_written_where_it_is_used(lib):
    used = compile_(lib, "-t", "fast everything")
    written = compile_(lib, "-t", "disk bus virtio", "-t", "disk discard unmap",
                       "-t", "video virtio")
    assert used[0] == written[0] == 0
    assert used[2] == written[2] == ""
    assert without_metadata(used[1]) == without_metadata(written[1])
    # The declaring profile is recorded as used, with its hash.
    assert '<virtuned:profile name="kit" version="1.0.0"' in used[1]


def test_a_part_written_prefer_gives_way_to_the_using_profile_without_a_word(lib):
    """A composite's preferences are defaults of the piece: the profile that uses it
    specializes them silently, as it does its includes' preferences."""
    write(lib, {"top.vt": "quiet desktop\nvideo qxl\n"})
    code, out, err = compile_(lib, "-p", "top.vt")
    assert (code, err) == (0, "")
    assert '<model type="qxl"/>' in out and 'type="virtio"' not in out


def test_a_part_dropped_by_another_source_names_its_use(lib):
    code, out, err = compile_(lib, "-t", "prefer quiet desktop", "-t", "graphics spice")
    assert code == 0
    assert '<graphics type="spice"' in out
    assert err == """\
lib/kit.vt:8:5: warning: preference 'graphics vnc' dropped: 'graphics spice' is required
        graphics vnc
        ^^^^^^^^^^^^
<trait 2>:1:1: note: 'quiet desktop' is used here
    prefer quiet desktop
    ^^^^^^^^^^^^^^^^^^^^
"""


def test_a_part_overrides_what_the_using_profile_includes(lib):
    """A part belongs to the profile that uses the composite: it specializes that
    profile's includes silently, as the profile's own lines do."""
    write(lib, {"lib/soft.vt": 'profile soft 1.0.0 "x"\nprefer disk bus sata\n',
                "top.vt": "include soft\nfast disks\n"})
    code, out, err = compile_(lib, "-p", "top.vt")
    assert (code, err) == (0, "")
    assert 'bus="virtio"' in out


def test_the_request_order_does_not_matter(lib):
    assert compile_(lib, "-t", "fast everything", "-t", "quiet desktop") == \
        compile_(lib, "-t", "quiet desktop", "-t", "fast everything")


# ---------------------------------------------------------------- diagnostics

def test_a_conflicting_part_names_its_use(lib):
    write(lib, {"top.vt": "fast disks\ndisk bus sata\n"})
    assert compile_(lib, "-p", "top.vt") == (3, "", """\
lib/kit.vt:3:5: error: 'disk bus virtio' conflicts with 'disk bus sata'
        disk bus virtio
        ^^^^^^^^^^^^^^^
top.vt:1:1: note: 'fast disks' is used here
    fast disks
    ^^^^^^^^^^
top.vt:2:1: note: the other one is here
    disk bus sata
    ^^^^^^^^^^^^^
hint: keep one of the two, or make the weaker one a 'prefer'
""")


def test_a_part_that_contradicts_the_input_names_every_use(lib):
    write(lib, {"d.xml": DOMAIN.replace('dev="vda"', 'dev="sda" bus="sata"')})
    assert compile_(lib, "-t", "fast everything") == (3, "", """\
lib/kit.vt:3:5: error: 'disk bus virtio' wants /domain/devices/disk[1]/target/@bus = \
'virtio', but the input states /domain/devices/disk[1]/target/@bus = 'sata'
        disk bus virtio
        ^^^^^^^^^^^^^^^
d.xml:10:7: note: the input states /domain/devices/disk[1]/target/@bus = 'sata'
          <target dev="sda" bus="sata"/>
          ^^^^^^^
lib/kit.vt:11:5: note: 'fast disks' is used here
        fast disks
        ^^^^^^^^^^
<trait 1>:1:1: note: 'fast everything' is used here
    fast everything
    ^^^^^^^^^^^^^^^
hint: a trait never overrides what the input states: change the input, or drop the trait
""")


def test_an_unknown_phrase_suggests_a_composite(lib):
    assert compile_(lib, "-t", "fast disk") == (2, "", """\
<trait 1>:1:1: error: unknown trait 'fast disk'
    fast disk
    ^^^^^^^^^
hint: did you mean 'fast disks'?
""")


def test_a_composite_that_uses_itself(lib):
    write(lib, {"cycle.vt": 'trait "ping" 1 "x" { pong }\ntrait "pong" 1 "x" { ping }\n'
                            "ping\n"})
    assert compile_(lib, "-p", "cycle.vt") == (2, "", """\
cycle.vt:2:22: error: trait 'ping' uses itself through ping → pong → ping
    trait "pong" 1 "x" { ping }
                         ^^^^
cycle.vt:1:22: note: 'pong' is used here
    trait "ping" 1 "x" { pong }
                         ^^^^
cycle.vt:3:1: note: 'ping' is used here
    ping
    ^^^^
""")


def test_composites_nest_at_most_8_deep(lib):
    chain = "".join(f'trait "level{i}" 1 "x" {{ level{i + 1} }}\n' for i in range(9))
    write(lib, {"deep.vt": chain + 'trait "level9" 1 "x" { video qxl }\nlevel0\n'})
    code, out, err = compile_(lib, "-p", "deep.vt")
    assert (code, out) == (2, "")
    assert err.startswith("deep.vt:8:24: error: composite traits nest more than 8 deep here")


def test_one_phrase_one_declaring_profile(lib):
    write(lib, {"lib/other.vt": 'profile other 1.0.0 "o"\n'
                                'trait "quiet desktop" 1 "x" { video virtio }\n'})
    assert compile_(lib, "-t", "quiet desktop") == (2, "", """\
lib/other.vt:2:7: error: trait 'quiet desktop' is declared by lib/other.vt and by \
lib/kit.vt: one phrase, one declaration
    trait "quiet desktop" 1 "x" { video virtio }
          ^^^^^^^^^^^^^^^
hint: rename one of them
""")


BAD = '''\
trait "when x" 1 "x" { video qxl }
trait "video qxl" 1 "x" { video qxl }
trait "nodoc" { video qxl }
trait "empty" 1 "x" { }
trait "params" 1 "x" { network queues $q }
trait "v0" 0 "x" { video qxl }
trait "1bad" 1 "x" { video qxl }
trait "twice" 1 "x" { video qxl }
trait "twice" 1 "x" { video qxl }
'''


def test_every_bad_declaration_is_reported_where_it_is(lib):
    write(lib, {"bad.vt": BAD})
    assert run(["check", "bad.vt"], cwd=lib) == (2, "", """\
bad.vt:1:7: error: a trait's phrase cannot start with 'when', which starts a statement
    trait "when x" 1 "x" { video qxl }
          ^^^^^^^^
bad.vt:2:7: error: 'video qxl' is virtuned's trait 'video': a profile cannot declare it again
    trait "video qxl" 1 "x" { video qxl }
          ^^^^^^^^^^^
hint: choose another phrase
bad.vt:3:1: error: trait 'nodoc' needs a version and a description
    trait "nodoc" { video qxl }
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^
hint: trait "nodoc" 1 "what it does" { ... }
bad.vt:4:1: error: trait 'empty' has no parts
    trait "empty" 1 "x" { }
    ^^^^^^^^^^^^^^^^^^^^^^^
hint: list the trait lines it stands for between its braces
bad.vt:5:39: error: a composite trait's parts take no $params
    trait "params" 1 "x" { network queues $q }
                                          ^^
hint: write the values; a profile's params stay in the profile
bad.vt:6:12: error: a trait's version is a whole number from 1 to 9999, not '0'
    trait "v0" 0 "x" { video qxl }
               ^
bad.vt:7:7: error: a trait's phrase is 1 to 8 words (letters, digits, _ . + -, not \
starting with a digit), not '1bad'
    trait "1bad" 1 "x" { video qxl }
          ^^^^^^
bad.vt:9:7: error: trait 'twice' is declared twice in this file (first at bad.vt:8:7)
    trait "twice" 1 "x" { video qxl }
          ^^^^^^^
""")


def test_check_reports_a_part_that_names_no_trait(lib):
    write(lib, {"typo.vt": 'trait "t" 1 "x" {\n    video qxll\n}\n'})
    code, out, err = run(["check", "typo.vt"], cwd=lib)
    assert (code, out) == (2, "")
    assert err.startswith("typo.vt:2:11: error: video: model: expected one of")


# ---------------------------------------------------------------- explain, locks, listing

def test_explain_shows_the_chain_of_uses(lib):
    code, out, err = run(["explain", "d.xml", "--profile-path", "lib", "-t",
                          "fast everything", "--json"], cwd=lib)
    assert (code, err) == (0, "")
    change = next(c for c in json.loads(out)["changes"]
                  if c["path"] == "/domain/devices/disk/target/@bus")
    assert change == {
        "path": "/domain/devices/disk/target/@bus", "old": None, "new": "virtio",
        "trait": "disk bus virtio", "strength": "require",
        "at": {"file": "lib/kit.vt", "line": 3, "col": 5}, "overridden": False,
        "chain": [{"trait": "fast everything",
                   "at": {"file": "<trait 1>", "line": 1, "col": 1}},
                  {"trait": "fast disks", "at": {"file": "lib/kit.vt", "line": 11, "col": 5}}]}
    code, out, err = run(["explain", "d.xml", "--profile-path", "lib", "-t",
                          "fast everything"], cwd=lib)
    assert out.startswith("""\
/domain/devices/disk/target/@bus: (absent) -> 'virtio'
    <- 'disk bus virtio' at lib/kit.vt:3:5
    through trait fast disks at lib/kit.vt:11:5
    through trait fast everything at <trait 1>:1:1
""")


def test_a_lock_replays_without_the_library(lib):
    code, first, err = compile_(lib, "-t", "fast everything", "--write-lock", "l.json")
    assert (code, err) == (0, "")
    (lib / "lib" / "kit.vt").unlink()
    assert run(["compile", "d.xml", "--lock", "l.json"], cwd=lib) == (0, first, "")
    traits = json.loads((lib / "l.json").read_text())["traits"]
    assert [t["chain"] for t in traits if t["label"] == "disk bus virtio"] == [
        [{"trait": "fast everything", "at": ["<trait 1>", 1, 1]},
         {"trait": "fast disks", "at": ["lib/kit.vt", 11, 5]}]]


def test_traits_lists_the_composites_of_the_search_path(lib):
    code, out, err = run(["traits", "--profile-path", "lib"], cwd=lib)
    assert (code, err) == (0, "")
    listed = out[out.index("composite traits"):]
    assert "fast disks" in listed and "    = disk bus virtio; disk discard unmap\n" in listed
    code, out, err = run(["traits", "--profile-path", "lib", "--json"], cwd=lib)
    entry = next(t for t in json.loads(out) if t["name"] == "quiet desktop")
    assert entry == {"name": "quiet desktop", "usage": "quiet desktop",
                     "signature": "quiet desktop", "version": 2,
                     "summary": "a virtio display unless a trait says otherwise",
                     "example": "quiet desktop",
                     "doc": "a virtio display unless a trait says otherwise", "slots": [],
                     "module": "lib/kit.vt", "profile": "kit",
                     "parts": ["prefer video virtio", "graphics vnc"]}


def test_a_huge_version_is_an_error_not_a_crash(lib):
    write(lib, {"huge.vt": 'trait "x" ' + "9" * 5000 + ' "doc" { video qxl }\n'})
    code, out, err = run(["check", "huge.vt"], cwd=lib)
    assert (code, out) == (2, "")
    assert err.startswith("huge.vt:1:11: error: a trait's version is a whole number from "
                          "1 to 9999, not '9999999999999999999999999999999999999999'... "
                          "(5000 characters)")
