"""virtuned explain: every change, with the trait, location and include chain."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.cli_run import run, write
from tests.resolve.test_resolve import BASE

# A profile that leaves the video to its include's preference, so a change comes
# through an include chain.
LEGACY = """\
profile legacy 2.1.0 "Old guests"
include base ^1.0 with agent = false
machine pc
disk bus ide
"""

DOMAIN = """<domain type="kvm">
  <name>d</name>
  <memory unit="MiB">512</memory>
  <os>
    <type arch="x86_64">hvm</type>
  </os>
  <devices>
    <disk type="file" device="disk">
      <source file="/d.img"/>
      <target dev="vda"/>
    </disk>
    <video/>
  </devices>
</domain>
"""


@pytest.fixture
def folder(tmp_path):
    write(tmp_path, {"lib/base.vt": BASE, "lib/legacy.vt": LEGACY, "d.xml": DOMAIN})
    return tmp_path


def explain(folder, *args):
    return run(["explain", "d.xml", "-p", "legacy", "--profile-path", "lib", *args],
               cwd=folder)


def test_explain_lists_every_change_and_why(folder):
    assert explain(folder) == (0, """\
/domain/os/type/@machine: (absent) -> 'pc'
    <- 'machine pc' at lib/legacy.vt:3:1
/domain/devices/disk/target/@bus: (absent) -> 'ide'
    <- 'disk bus ide' at lib/legacy.vt:4:1
/domain/devices/disk/target/@dev: 'vda' -> 'hda'
    <- 'disk bus ide' at lib/legacy.vt:4:1
/domain/features/acpi: (absent) -> <acpi/>
    <- completion: ACPI and the APIC
/domain/features/apic: (absent) -> <apic/>
    <- completion: ACPI and the APIC
/domain/clock/timer[1]: (absent) -> <timer name="rtc" tickpolicy="catchup"/>
    <- completion: the guest clock
/domain/clock/timer[2]: (absent) -> <timer name="pit" tickpolicy="delay"/>
    <- completion: the guest clock
/domain/clock/timer[3]: (absent) -> <timer name="hpet" present="no"/>
    <- completion: the guest clock
/domain/pm: (absent) -> <pm><suspend-to-mem enabled="no"/><suspend-to-disk enabled="no"/></pm>
    <- completion: power management
/domain/devices/video/model: (absent) -> <model type="virtio"/>
    <- prefer 'video virtio' at lib/base.vt:6:1
    through include base at lib/legacy.vt:2:1
/domain/devices/controller: (absent) -> <controller type="ide" index="0"/>
    <- 'disk bus ide' at lib/legacy.vt:4:1
/domain/cpu/@mode: (absent) -> 'host-passthrough'
    <- completion: the guest CPU model
/domain/cpu/@check: (absent) -> 'none'
    <- completion: the guest CPU model
/domain/cpu/@migratable: (absent) -> 'on'
    <- completion: the guest CPU model
/domain/clock/@offset: (absent) -> 'utc'
    <- completion: the guest clock
/domain/metadata/virtuned:provenance: (absent) -> 'virtuned provenance (compiler 0.1.0, \
2 profile(s))'
    <- provenance
skipped: when agent at lib/base.vt:3:1 (the condition does not hold)
""", "")


def test_explain_json(folder):
    code, out, err = explain(folder, "--json")
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["changes"][3] == {
        "path": "/domain/features/acpi", "old": None, "new": "<acpi/>",
        "trait": "completion: ACPI and the APIC", "strength": "default", "at": None,
        "overridden": False, "chain": []}
    assert document["changes"][9] == {
        "path": "/domain/devices/video/model", "old": None,
        "new": '<model type="virtio"/>', "trait": "video virtio",
        "strength": "prefer", "at": {"file": "lib/base.vt", "line": 6, "col": 1},
        "overridden": False,
        "chain": [{"include": "base", "at": {"file": "lib/legacy.vt", "line": 2, "col": 1}}]}
    assert document["skipped"] == [
        {"when": "agent", "at": {"file": "lib/base.vt", "line": 3, "col": 1}}]
    assert document["warnings"] == []


def test_explain_diff_is_the_same_as_compile(folder):
    code, diff, _ = explain(folder, "--diff")
    assert code == 0
    assert diff.startswith("--- a/d.xml\n+++ b/d.xml\n")
    compiled = run(["compile", "d.xml", "-p", "legacy", "--profile-path", "lib"],
                   cwd=folder)[1]
    patched = _apply(DOMAIN, diff)
    assert patched == compiled


def test_explain_replays_a_lock(folder):
    run(["compile", "d.xml", "-p", "legacy", "--profile-path", "lib", "--write-lock",
         "l.json"], cwd=folder)
    shutil.rmtree(folder / "lib")
    assert run(["explain", "d.xml", "--lock", "l.json"], cwd=folder)[1].splitlines()[0] == \
        "/domain/os/type/@machine: (absent) -> 'pc'"


def _apply(text: str, diff: str) -> str:
    """Apply a unified diff of one file (enough for this test's diffs)."""
    lines = text.splitlines(keepends=True)
    out, index = [], 0
    hunk_lines = diff.splitlines(keepends=True)[2:]
    for line in hunk_lines:
        if line.startswith("@@"):
            start = int(line.split()[1].split(",")[0][1:]) - 1
            out += lines[index:start]
            index = start
        elif line.startswith("-"):
            index += 1
        elif line.startswith("+"):
            out.append(line[1:])
        else:
            out.append(lines[index])
            index += 1
    return "".join(out + lines[index:])


def test_explain_names_what_override_replaced(folder):
    write(folder, {"sata.xml": DOMAIN.replace("<os>", "<clock offset='localtime'/>\n  <os>")})
    args = ["explain", "sata.xml", "-t", "clock utc", "--override"]
    code, out, err = run(args, cwd=folder)
    assert code == 0
    assert out.startswith("""\
/domain/clock/@offset: 'localtime' -> 'utc'
    <- 'clock utc' at <trait 1>:1:1
    input had 'localtime'; overridden (--override)
""")
    assert err.startswith("<trait 1>:1:1: warning: 'clock utc' overrides the input: "
                          "/domain/clock/@offset was 'localtime', now 'utc'\n")
    code, out, err = run(args + ["--json"], cwd=folder)
    assert json.loads(out)["changes"][0] == {
        "path": "/domain/clock/@offset", "old": "localtime", "new": "utc",
        "trait": "clock utc", "strength": "require",
        "at": {"file": "<trait 1>", "line": 1, "col": 1}, "overridden": True, "chain": []}
    assert run(args[:-1], cwd=folder)[0] == 3  # without --override: a conflict
