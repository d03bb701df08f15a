"""Profiles that compose: includes, versions, params, when, prefer, conflicts.

Each test writes a small profile library into a temporary folder and runs the real
CLI there, so every path in a message is short and exact.
"""

from __future__ import annotations

import pytest

from tests.cli_run import run, write

# Above the shipped library's base (traits/base.vt, on every search path), so that
# 'include base ^1.0' picks this one.
BASE = '''\
profile base 1.50.0 "Sane defaults"
param agent: bool = true
when agent {
    guest agent
}
prefer video virtio
'''
LEGACY = '''\
profile legacy 2.1.0 "Old guests without virtio drivers"
include base ^1.0 with agent = false
machine pc
disk bus ide
video vga
'''
FAST = '''\
profile fast 1.0.0 "Paravirtual disks"
include base ^1.0
disk bus virtio
'''
Q35_DOMAIN = """<domain type="kvm">
  <name>d</name>
  <memory unit="MiB">512</memory>
  <os>
    <type arch="x86_64" machine="pc-q35-7.2">hvm</type>
  </os>
</domain>
"""


@pytest.fixture
def lib(tmp_path):
    write(tmp_path, {"lib/base.vt": BASE, "lib/legacy.vt": LEGACY, "lib/fast.vt": FAST,
                     "d.xml": Q35_DOMAIN})
    return tmp_path


def compile_(folder, *args):
    return run(["compile", *args, "--profile-path", "lib"], cwd=folder)


def devices_of(xml: str) -> str:
    return xml[xml.index("<devices>"):xml.index("</devices>") + len("</devices>")]


# ---------------------------------------------------------------- includes

def test_include_is_a_union(lib):
    code, out, err = compile_(lib, "-p", "fast")
    assert (code, err) == (0, "")
    assert devices_of(out) == """<devices>
    <controller type="virtio-serial" index="0"/>
    <channel type="unix">
      <source mode="bind"/>
      <target type="virtio" name="org.qemu.guest_agent.0"/>
    </channel>
    <video>
      <model type="virtio"/>
    </video>
  </devices>"""


def test_profiles_commute(lib):
    write(lib, {"lib/spice.vt": 'profile spice 1.0.0 "x"\nvideo qxl\n'})
    first = compile_(lib, "-p", "fast", "-p", "spice", "-t", "machine q35")
    second = compile_(lib, "-t", "machine q35", "-p", "spice", "-p", "fast")
    assert first == second
    assert first[0] == 0


def test_same_profile_included_twice_with_other_params_is_a_conflict(lib):
    expected = """\
lib/legacy.vt:2:1: error: 'base' is used twice with different params (agent = false vs true)
    include base ^1.0 with agent = false
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
lib/fast.vt:2:1: note: included here with other values
    include base ^1.0
    ^^^^^^^^^^^^^^^^^
hint: one profile has one set of params per compile
"""
    assert compile_(lib, "-p", "legacy", "-p", "fast") == (3, "", expected)
    assert compile_(lib, "-p", "fast", "-p", "legacy") == (3, "", expected)


def test_conflict_names_both_places_and_their_include_chains(lib):
    write(lib, {"lib/sata.vt": 'profile sata 1.0.0 "x"\ninclude fast\n',
                "top.vt": "include sata\ndisk bus scsi\n"})
    code, out, err = compile_(lib, "-p", "top.vt")
    assert (code, out) == (3, "")
    assert err == """\
lib/fast.vt:3:1: error: 'disk bus virtio' conflicts with 'disk bus scsi'
    disk bus virtio
    ^^^^^^^^^^^^^^^
lib/sata.vt:2:1: note: 'fast' is included here
    include fast
    ^^^^^^^^^^^^
top.vt:1:1: note: 'sata' is included here
    include sata
    ^^^^^^^^^^^^
top.vt:2:1: note: the other one is here
    disk bus scsi
    ^^^^^^^^^^^^^
hint: keep one of the two, or make the weaker one a 'prefer'
"""


def test_repeated_identical_trait_is_not_a_conflict(lib):
    write(lib, {"a.vt": "video qxl\n", "b.vt": "video qxl\n"})
    assert compile_(lib, "-p", "a.vt", "-p", "b.vt")[0] == 0


def test_include_cycle(lib):
    write(lib, {"lib/a.vt": 'profile a 1.0.0 "x"\ninclude b\n',
                "lib/b.vt": 'profile b 1.0.0 "x"\ninclude a\n'})
    assert compile_(lib, "-p", "a") == (2, "", """\
lib/b.vt:2:1: error: include cycle: 'a' includes itself through a → b → a
    include a
    ^^^^^^^^^
lib/a.vt:2:1: note: 'b' is included here
    include b
    ^^^^^^^^^
""")


def test_missing_include_suggests_a_name(lib):
    write(lib, {"top.vt": "include fsat\n"})
    assert compile_(lib, "-p", "top.vt") == (2, "", """\
top.vt:1:1: error: no profile 'fsat' on the search path
    include fsat
    ^^^^^^^^^^^^
hint: did you mean 'fast'?
""")


def test_include_outside_the_version_range(lib):
    write(lib, {"top.vt": "include base ^2.0\n"})
    assert compile_(lib, "-p", "top.vt") == (2, "", """\
top.vt:1:1: error: no version of 'base' matches ^2.0 (found 1.2.0, 1.50.0)
    include base ^2.0
    ^^^^^^^^^^^^^^^^^
""")


def test_highest_version_in_range_wins_and_later_directories_shadow(lib):
    write(lib, {"new/base.vt": BASE.replace("1.50.0", "1.54.0").replace("virtio", "qxl"),
                "same/base.vt": BASE.replace("prefer video virtio", "prefer video bochs"),
                "top.vt": "include base ^1.0\n"})
    code, out, _ = run(["compile", "-p", "top.vt", "--profile-path", "lib", "--profile-path",
                        "new", "--profile-path", "same"], cwd=lib)
    assert code == 0 and '<model type="qxl"/>' in out  # 1.54.0 beats 1.50.0
    code, out, _ = run(["compile", "-p", "top.vt", "--profile-path", "lib",
                        "--profile-path", "same"], cwd=lib)
    assert code == 0 and '<model type="bochs"/>' in out  # same version: the later dir


def test_unknown_profile_name_on_the_command_line(lib):
    assert compile_(lib, "-p", "legasy") == (2, "", """\
<command line>:1:1: error: -p legasy: no profile 'legasy' on the search path
hint: did you mean 'legacy'?
""")


# ---------------------------------------------------------------- params

def test_param_from_set_and_its_type(lib):
    code, out, _ = compile_(lib, "-p", "base", "--set", "agent=no")
    assert code == 0 and "guest_agent" not in out
    assert compile_(lib, "-p", "base", "--set", "agent=7") == (2, "", """\
--set agent=7: error: param 'agent' (bool): expected true or false, got '7'
""")


def test_qualified_set_reaches_an_included_profile(lib):
    code, out, _ = compile_(lib, "-p", "fast", "--set", "base.agent=false")
    assert code == 0 and "guest_agent" not in out


def test_set_that_no_profile_declares(lib):
    assert compile_(lib, "-p", "fast", "--set", "queues=4") == (2, "", """\
--set queues=4: error: --set queues: no profile given declares a param 'queues'
""")


def test_required_param(lib):
    write(lib, {"p.vt": "param model: word\nvideo $model\n"})
    assert compile_(lib, "-p", "p.vt") == (2, "", """\
p.vt:1:1: error: param 'model' is required and was not set
    param model: word
    ^^^^^^^^^^^^^^^^^
hint: set it with 'include ... with model = VALUE' or --set model=VALUE
""")
    code, out, _ = compile_(lib, "-p", "p.vt", "--set", "model=qxl")
    assert code == 0 and '<model type="qxl"/>' in out


def test_param_of_the_wrong_type_for_the_trait(lib):
    write(lib, {"p.vt": "param bus: word = floppy\ndisk bus $bus\n"})
    assert compile_(lib, "-p", "p.vt") == (2, "", """\
p.vt:2:10: error: disk bus: bus: expected one of virtio, sata, scsi, ide, got 'floppy'
    disk bus $bus
             ^^^^
hint: usage: disk bus BUS
""")


def test_unset_optional_param_must_be_guarded(lib):
    write(lib, {"p.vt": "param model: word?\nvideo $model\n"})
    assert compile_(lib, "-p", "p.vt") == (2, "", """\
p.vt:2:7: error: $model is not set
    video $model
          ^^^^^^
hint: give it a default, or guard the line with 'when model { ... }'
""")


def test_unknown_param_in_include(lib):
    write(lib, {"p.vt": "include base with agnet = false\n"})
    assert compile_(lib, "-p", "p.vt") == (2, "", """\
p.vt:1:19: error: 'base' has no param 'agnet'
    include base with agnet = false
                      ^^^^^^^^^^^^^
hint: did you mean 'agent'?
""")


# ---------------------------------------------------------------- when

def test_when_reads_the_input_machine(lib):
    write(lib, {"p.vt": "when machine q35 {\n    disk bus sata\n}\n"
                        "when machine pc {\n    disk bus ide\n}\n"})
    code, out, err = run(["explain", "d.xml", "-p", "p.vt"], cwd=lib)
    assert (code, err) == (0, "")
    assert out.endswith("skipped: when machine pc at p.vt:4:1 (the condition does not hold)\n")


def test_when_reads_a_machine_decided_by_a_trait(lib):
    write(lib, {"p.vt": "machine pc\nwhen machine pc {\n    disk bus ide\n}\n"})
    code, out, _ = compile_(lib, "-p", "p.vt")
    assert code == 0 and '<controller type="ide" index="0"/>' in out


def test_a_trait_deciding_a_fact_cannot_sit_in_a_when(lib):
    write(lib, {"p.vt": "param old: bool = true\nwhen old {\n    machine pc\n}\n"})
    assert compile_(lib, "-p", "p.vt") == (2, "", """\
p.vt:3:5: error: 'machine pc' decides the fact machine, which 'when' conditions read: \
it cannot sit inside a 'when' block
        machine pc
        ^^^^^^^^^^
hint: move it out of the block, or condition on a param instead
""")


def test_conditions_that_can_never_hold(lib):
    write(lib, {"p.vt": "when machine q53 {\n    video qxl\n}\n",
                "q.vt": "when os famly windows {\n    video qxl\n}\n"})
    assert compile_(lib, "-p", "p.vt") == (2, "", """\
p.vt:1:14: error: 'machine q53' can never hold
    when machine q53 {
                 ^^^
hint: did you mean 'q35'?
""")
    code, _, err = compile_(lib, "-p", "q.vt")
    assert code == 2
    assert err.startswith("q.vt:1:6: error: 'os' takes one value, as in 'when os win11'\n")


def test_unknown_fact(lib):
    write(lib, {"p.vt": "when machien q35 {\n    video qxl\n}\n"})
    assert compile_(lib, "-p", "p.vt") == (2, "", """\
p.vt:1:6: error: unknown fact 'machien' in condition
    when machien q35 {
         ^^^^^^^^^^^
hint: did you mean 'machine'?
""")


# ---------------------------------------------------------------- prefer

def test_prefer_loses_to_require_with_a_warning(lib):
    write(lib, {"p.vt": "prefer disk bus sata\n", "q.vt": "disk bus virtio\n"})
    code, out, err = compile_(lib, "-p", "p.vt", "-p", "q.vt")
    assert code == 0
    assert err == """\
p.vt:1:1: warning: preference 'disk bus sata' dropped: 'disk bus virtio' is required
    prefer disk bus sata
    ^^^^^^^^^^^^^^^^^^^^
"""


def test_disagreeing_preferences_drop_each_other(lib):
    write(lib, {"p.vt": "prefer disk bus sata\n", "q.vt": "prefer disk bus scsi\n"})
    code, out, err = compile_(lib, "-p", "p.vt", "-p", "q.vt")
    assert code == 0
    assert err == """\
p.vt:1:1: warning: preference 'disk bus sata' dropped: the preferences 'disk bus sata', \
'disk bus scsi' disagree, so none applies
    prefer disk bus sata
    ^^^^^^^^^^^^^^^^^^^^
q.vt:1:1: warning: preference 'disk bus scsi' dropped: the preferences 'disk bus sata', \
'disk bus scsi' disagree, so none applies
    prefer disk bus scsi
    ^^^^^^^^^^^^^^^^^^^^
"""


def test_a_preference_gives_way_to_a_required_trait_of_its_name(lib):
    """'video qxl' and 'video virtio' can both be asked for (two cards); a preferred
    'video virtio' beside a required 'video qxl' only fills, so it adds no card."""
    write(lib, {"p.vt": "prefer video virtio\n", "q.vt": "video qxl\n"})
    code, out, err = compile_(lib, "-p", "p.vt", "-p", "q.vt")
    assert (code, out.count("<video>"), out.count('<model type="qxl"/>')) == (0, 1, 1)
    assert err == """\
p.vt:1:1: warning: preference 'video virtio' dropped: 'video qxl' is required
    prefer video virtio
    ^^^^^^^^^^^^^^^^^^^
"""


def test_preferences_of_one_name_that_disagree_drop_each_other(lib):
    """windows prefers qxl, desktop virtio: neither, rather than a second card no one
    asked for (the video model is then the completion's)."""
    write(lib, {"p.vt": "prefer video qxl\n", "q.vt": "prefer video virtio\n"})
    code, out, err = compile_(lib, "-p", "p.vt", "-p", "q.vt")
    assert (code, out.count("<video>")) == (0, 0)
    assert err.count("disagree, so none applies") == 2


def test_prefer_never_overrides_the_input(lib):
    write(lib, {"p.vt": "prefer machine pc\n"})
    code, out, err = compile_(lib, "d.xml", "-p", "p.vt")
    assert code == 0 and 'machine="pc-q35-7.2"' in out
    assert err == """\
p.vt:1:1: warning: preference 'machine pc' dropped: 'machine pc' wants \
/domain/os/type/@machine = 'pc', but the input states /domain/os/type/@machine = 'pc-q35-7.2'
    prefer machine pc
    ^^^^^^^^^^^^^^^^^
"""


def test_prefer_that_cannot_hold_is_dropped(lib):
    write(lib, {"p.vt": "prefer disk bus ide\n"})
    code, out, err = compile_(lib, "d.xml", "-p", "p.vt")
    assert code == 0
    assert err == """\
p.vt:1:1: warning: preference 'disk bus ide' dropped: it cannot hold: disk bus ide: \
machine type 'pc-q35-7.2' (stated by the input) has no IDE bus
    prefer disk bus ide
    ^^^^^^^^^^^^^^^^^^^
"""


def test_the_same_request_is_not_a_prefer_and_a_require_twice(lib):
    write(lib, {"p.vt": "prefer video qxl\nvideo qxl\n"})
    code, out, err = compile_(lib, "-p", "p.vt")
    assert (code, err) == (0, "")
    assert out.count('<model type="qxl"/>') == 1
