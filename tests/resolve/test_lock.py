"""Locks: --write-lock, then --lock replays byte for byte, whatever became of the
profiles; each trait replays at the semantics version the lock recorded."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.cli_run import run, write
from virtuned.resolve import registry
from virtuned.emit.edits import el
from virtuned.resolve.registry import trait

PROFILE = '''\
profile guest 1.0.0 "A guest"
param bus: word = sata
include display ^1.0
disk bus $bus
guest agent
'''
DISPLAY = 'profile display 1.0.0 "A screen"\nvideo qxl\n'
DOMAIN = """<domain type="kvm">
  <name>locked</name>
  <memory unit="MiB">512</memory>
  <devices>
    <disk type="file" device="disk">
      <source file="/var/lib/libvirt/images/locked.img"/>
      <target dev="vda"/>
    </disk>
  </devices>
</domain>
"""


@pytest.fixture
def folder(tmp_path):
    write(tmp_path, {"lib/guest.vt": PROFILE, "lib/display.vt": DISPLAY, "d.xml": DOMAIN})
    return tmp_path


def write_lock(folder, *extra):
    return run(["compile", "d.xml", "-p", "guest", "--profile-path", "lib", "--set",
                "bus=scsi", "--write-lock", "guest.lock", *extra], cwd=folder)


def test_replay_is_identical_after_profiles_change_or_vanish(folder):
    code, first, err = write_lock(folder)
    assert (code, err) == (0, "")
    (folder / "lib/display.vt").write_text(DISPLAY.replace("qxl", "virtio"))
    (folder / "lib/guest.vt").unlink()
    replay = run(["compile", "d.xml", "--lock", "guest.lock"], cwd=folder)
    assert replay == (0, first, "")
    # Naming the lock's own profile is fine, and still reads none of them.
    assert run(["compile", "d.xml", "-p", "guest", "--lock", "guest.lock"],
               cwd=folder) == (0, first, "")


def test_lock_contents(folder):
    write_lock(folder)
    lock = json.loads((folder / "guest.lock").read_text())
    assert lock["virtuned_lock"] == 1
    assert lock["defaults"] == registry.defaults_version() == 2
    assert lock["request"] == {
        "profiles": ["guest"], "traits": [], "settings": [["bus", "scsi"]],
        "input_sha256": hashlib.sha256(DOMAIN.encode()).hexdigest()}
    assert [(p["name"], p["version"], p["source"]) for p in lock["profiles"]] == [
        ("display", "1.0.0", "lib/display.vt"), ("guest", "1.0.0", "lib/guest.vt")]
    assert [(t["label"], t["version"], t["args"], t["at"], t["chain"])
            for t in lock["traits"]] == [
        ("video qxl", 3, {"model": "qxl"}, ["lib/display.vt", 2, 1],
         [{"include": "display", "at": ["lib/guest.vt", 3, 1]}]),
        ("disk bus scsi", 1, {"bus": "scsi"}, ["lib/guest.vt", 4, 1], []),
        ("guest agent", 1, {}, ["lib/guest.vt", 5, 1], []),
    ]


def test_a_lock_replays_the_defaults_it_was_written_with(folder):
    """A lock written before virtuned completed VMs (no "defaults") replays with
    none: the XML it was written for, not today's completions."""
    code, first, _ = write_lock(folder)
    assert '<cpu mode="host-passthrough"' in first
    lock = json.loads((folder / "guest.lock").read_text())
    del lock["defaults"]
    (folder / "old.lock").write_text(json.dumps(lock, indent=2, sort_keys=True))
    code, old, err = run(["compile", "d.xml", "--lock", "old.lock"], cwd=folder)
    assert (code, err) == (0, "")
    assert [tag in old for tag in ("<features>", "<cpu", "<clock", "<pm>")] == [False] * 4
    assert [tag in first for tag in ("<features>", "<cpu", "<clock", "<pm>")] == [True] * 4


def test_a_lock_from_a_newer_virtuned_says_what_it_needs(folder):
    write_lock(folder)
    text = (folder / "guest.lock").read_text().replace('"defaults": 2', '"defaults": 7')
    (folder / "new.lock").write_text(text)
    assert run(["compile", "d.xml", "--lock", "new.lock"], cwd=folder) == (2, "", """\
new.lock:3:3: error: the lock needs defaults version 7, which this virtuned does not have \
(it has 0 to 2)
      "defaults": 7,
      ^
hint: replay with the virtuned that wrote the lock, or write a new one
""")


def test_lock_is_deterministic(folder):
    write_lock(folder)
    first = (folder / "guest.lock").read_text()
    write_lock(folder)
    assert (folder / "guest.lock").read_text() == first


def test_lock_for_another_input_is_refused(folder):
    write_lock(folder)
    (folder / "other.xml").write_text(DOMAIN.replace("locked", "other"))
    code, out, err = run(["compile", "other.xml", "--lock", "guest.lock"], cwd=folder)
    assert (code, out) == (2, "")
    assert err.startswith("guest.lock:19:5: error: this lock was written for other input "
                          "domain (sha256): ")
    assert err.endswith("hint: write a new lock with --write-lock for this request\n")


def test_lock_for_other_profiles_is_refused(folder):
    write_lock(folder)
    assert run(["compile", "d.xml", "-p", "display", "--lock", "guest.lock"], cwd=folder) \
        == (2, "", "guest.lock:20:5: error: this lock was written for other profiles: "
            "['guest'], not ['display']\n"
            '        "profiles": [\n'
            "        ^\n"
            "hint: write a new lock with --write-lock for this request\n")


def test_not_a_lock(folder):
    (folder / "bad.lock").write_text('{"virtuned_lock": 1,\n  "traits": [}')
    assert run(["compile", "--lock", "bad.lock"], cwd=folder) == (
        2, "", "bad.lock:2:14: error: not a lock: Expecting value\n"
               '      "traits": [}\n'
               "                 ^\n")


@pytest.fixture
def two_versions():
    """A throwaway trait whose semantics changed: v1 adds an rng with /dev/random,
    v2 one with /dev/urandom."""
    phrase = "entropy source"

    def emit_with(path):
        def emit(ctx):
            """An entropy device."""
            from virtuned.emit import devices

            return [devices.add_device(el("rng", el("backend", text=path, model="random"),
                                          model="virtio"), ctx.origin)]
        return emit

    trait(phrase, version=1, rank=10_000, example=phrase)(emit_with("/dev/random"))
    yield lambda: trait(phrase, version=2, rank=10_000,
                        example=phrase)(emit_with("/dev/urandom"))
    for version in (1, 2):
        if registry.lookup(phrase, version):
            registry.unregister(phrase, version)


def test_old_lock_keeps_old_semantics(folder, two_versions):
    code, first, _ = run(["compile", "-t", "entropy source", "--write-lock", "e.lock"],
                         cwd=folder)
    assert code == 0 and "/dev/random<" in first
    two_versions()  # a newer virtuned changes what the trait emits
    code, fresh, _ = run(["compile", "-t", "entropy source"], cwd=folder)
    assert code == 0 and "/dev/urandom<" in fresh
    assert run(["compile", "--lock", "e.lock"], cwd=folder) == (0, first, "")


def test_lock_needing_a_version_this_virtuned_lacks(folder, two_versions):
    run(["compile", "-t", "entropy source", "--write-lock", "e.lock"], cwd=folder)
    two_versions()
    registry.unregister("entropy source", 1)
    assert run(["compile", "--lock", "e.lock"], cwd=folder) == (2, "", """\
e.lock:29:7: error: the lock needs trait 'entropy source' version 1, which this virtuned \
does not have (it has version 2)
          "label": "entropy source",
          ^
hint: replay with the virtuned that wrote the lock, or write a new one
""")
