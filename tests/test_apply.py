"""``virtuned apply`` (virtuned/apply.py): compile against a live host and define the
result there, against the test driver (``test:///default``, whose state is kept per
process: a definition made here is read back through a new connection here) and the
embedded QEMU driver (``qemu:///embed``, where a definition persists across
processes). Nothing is defined when anything fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_run import run
# The embedded driver with web01 defined, pinned to the last CPU of host node 0 and
# set to autostart; module-scoped, so this module has one of its own for apply to change.
from tests.facts.test_live import _binding_or_skip, embedded  # noqa: F401
from tests.domain.test_quoting import DIFF, DUMPED

ROOT = Path(__file__).resolve().parents[1]
URI = "test:///default"
NO_DOMCAPS = ("--connect: warning: test:///default: domain capabilities of test i686 pc: "
              "this function is not supported by the connection driver: "
              "virConnectGetDomainCapabilities; nothing was checked against the "
              "hypervisor's capabilities\n")
# DUMPED: what the test driver holds as the inactive definition of its guest 'test';
# DIFF: it with the two traits of TRAITS over it (tests/domain/test_quoting.py).
TRAITS = ["-t", "clock localtime", "-t", "vcpus 4"]
OVERRIDDEN = [  # the first line of each warning --override gives
    "<trait 1>:1:1: warning: 'clock localtime' overrides the input: /domain/clock/@offset "
    "was 'utc', now 'localtime'",
    "<trait 2>:1:1: warning: 'vcpus 4' overrides the input: /domain/vcpu was '2', now '4'"]


@pytest.fixture
def test_driver():
    """The test driver, its guest 'test' defined again as it was afterwards and any
    other guest a test defined undefined."""
    _binding_or_skip()
    import libvirt

    conn = libvirt.open(URI)
    before = conn.lookupByName("test").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    names = set(conn.listDefinedDomains()) | {d.name() for d in conn.listAllDomains()}
    yield conn
    conn.defineXML(before)
    for dom in conn.listAllDomains():
        if dom.name() not in names:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    conn.close()


def definition(conn, name: str) -> str:
    import libvirt

    return conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


def warnings_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": warning: " in line]


def test_the_definition_as_dumped_is_the_input(test_driver):
    assert definition(test_driver, "test") == DUMPED


def test_a_dry_run_prints_only_what_changes_and_defines_nothing(test_driver, tmp_path):
    code, out, err = run(["apply", "--connect", URI, "--domain", "test", *TRAITS,
                          "--override", "--dry-run"], cwd=tmp_path)
    assert (code, out) == (0, DIFF)
    assert warnings_of(err) == [NO_DOMCAPS.rstrip("\n"), *OVERRIDDEN]
    assert definition(test_driver, "test") == DUMPED


def test_apply_defines_the_compiled_definition(test_driver, tmp_path):
    code, out, err = run(["apply", "--connect", URI, "--domain", "test", *TRAITS,
                          "--override"], cwd=tmp_path)
    assert (code, out) == (0, "defined 'test' on test:///default\n")
    assert warnings_of(err)[1:] == OVERRIDDEN
    defined = definition(test_driver, "test")
    assert ("<vcpu placement='static'>4</vcpu>" in defined,
            "<clock offset='localtime'/>" in defined) == (True, True)


def test_a_file_is_the_input_too(test_driver, tmp_path):
    (tmp_path / "web.xml").write_text(
        "<domain type='test'>\n  <name>web</name>\n  <memory unit='MiB'>64</memory>\n"
        "  <os>\n    <type arch='i686'>hvm</type>\n  </os>\n</domain>\n")
    code, out, _ = run(["apply", "--connect", URI, "web.xml", "-t", "vcpus 2"],
                       cwd=tmp_path)
    assert (code, out) == (0, "defined 'web' on test:///default\n")
    assert "<vcpu placement='static'>2</vcpu>" in definition(test_driver, "web")


def test_without_override_the_dumped_domain_conflicts_and_nothing_is_defined(
        test_driver, tmp_path):
    code, out, err = run(["apply", "--connect", URI, "--domain", "test", *TRAITS],
                         cwd=tmp_path)
    assert (code, out) == (3, "")
    assert "error: 'clock localtime' wants /domain/clock/@offset = 'localtime', but the " \
           "input states /domain/clock/@offset = 'utc'" in err
    assert definition(test_driver, "test") == DUMPED


def test_what_libvirt_refuses_is_an_error_quoting_it(test_driver, tmp_path):
    """virtuned passes an element it does not know; libvirt's schema does not."""
    (tmp_path / "odd.xml").write_text(
        "<domain type='test'><name>odd</name><memory unit='MiB'>64</memory>"
        "<os><type arch='i686'>hvm</type></os><devices><bogus/></devices></domain>")
    code, out, err = run(["apply", "--connect", URI, "odd.xml"], cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err.startswith("--connect: error: test:///default: libvirt refused to define "
                          "the domain: XML document failed to validate against schema: ")
    assert "odd" not in test_driver.listDefinedDomains()


def test_a_name_that_is_another_guests_is_a_conflict(test_driver, tmp_path):
    (tmp_path / "twin.xml").write_text(DUMPED.replace("6695eb01", "7795eb01"))
    code, out, err = run(["apply", "--connect", URI, "twin.xml"], cwd=tmp_path)
    assert (code, out, err) == (3, "", (
        "--connect: error: test:///default: libvirt refused to define the domain: "
        "operation failed: domain 'test' already exists with uuid "
        "6695eb01-f6a4-8304-79aa-97f2502e193f\n"))
    assert definition(test_driver, "test") == DUMPED


def test_a_guest_that_is_not_there_is_an_input_error(test_driver, tmp_path):
    code, out, err = run(["apply", "--connect", URI, "--domain", "nope", "-t", "vcpus 2"],
                         cwd=tmp_path)
    assert (code, out, err) == (2, "", "--connect: error: test:///default: guest nope: "
                                       "Domain not found\n")


@pytest.mark.parametrize("argv, message", [
    (["--domain", "test"], "--connect: error: apply defines on a live host: give its URI "
                           "(--connect qemu:///system)\n"),
    (["--connect", URI], "apply:1:1: error: apply takes a domain XML file or --domain "
                         "NAME (one of them)\n"),
    (["--connect", URI, "d.xml", "--domain", "test"],
     "apply:1:1: error: apply takes a domain XML file or --domain NAME (one of them)\n"),
])
def test_what_apply_needs(test_driver, tmp_path, argv, message):
    (tmp_path / "d.xml").write_text(DUMPED)
    assert run(["apply", *argv, "-t", "vcpus 2"], cwd=tmp_path) == (2, "", message)


def test_the_guest_defined_again_does_not_hold_cpus_against_itself(test_driver, tmp_path):
    """A guest pinned to all of node 0's CPUs, to start with the host: placed again
    there, its own pins are no obstacle (another guest's would be)."""
    test_driver.defineXML(
        "<domain type='test'><name>db</name><memory unit='MiB'>64</memory>"
        "<vcpu>8</vcpu><cputune>" + "".join(f"<vcpupin vcpu='{i}' cpuset='{i}'/>"
                                            for i in range(8)) +
        "</cputune><os><type arch='i686'>hvm</type></os></domain>").setAutostart(1)
    traits = ["-t", "dedicated cpus", "-t", "place on host node 0", "--override"]
    code, out, err = run(["apply", "--connect", URI, "--domain", "db", *traits,
                          "--dry-run"], cwd=tmp_path)
    assert (code, err) == (0, NO_DOMCAPS)
    assert "+    <emulatorpin cpuset='0-7'/>" in out.splitlines()
    code, _, err = run(["apply", "--connect", URI, "--domain", "test", *traits,
                        "--dry-run"], cwd=tmp_path)
    assert (code, err.splitlines()[0]) == (3, (
        "<trait 1>:1:1: error: infeasible placement on test:///default: host node 0: "
        "0 free CPUs, CPUs 0-7 held by other guests (db), guest cell 0 needs 2"))


def test_apply_override_leaves_no_pin_of_the_old_placement(test_driver, tmp_path):
    """A guest of 4 vCPUs pinned on node 1, made 2 vCPUs on node 0: the dry run
    shows the pins of vCPUs 2-3 go, and the definition read back has none of them."""
    test_driver.defineXML(
        "<domain type='test'><name>db</name><memory unit='MiB'>64</memory>"
        "<vcpu placement='static' cpuset='8-11'>4</vcpu><cputune>" +
        "".join(f"<vcpupin vcpu='{i}' cpuset='{8 + i}'/>" for i in range(4)) +
        "<emulatorpin cpuset='8-11'/></cputune><numatune><memory mode='strict' "
        "nodeset='1'/></numatune><os><type arch='i686'>hvm</type></os></domain>")
    traits = ["-t", "vcpus 2", "-t", "dedicated cpus", "-t", "place on host node 0",
              "--override"]
    code, out, err = run(["apply", "--connect", URI, "--domain", "db", *traits,
                          "--dry-run"], cwd=tmp_path)
    assert code == 0, err
    assert """\
-  <vcpu placement='static' cpuset='8-11'>4</vcpu>
+  <vcpu placement='static' cpuset='0-1'>2</vcpu>
   <cputune>
-    <vcpupin vcpu='0' cpuset='8'/>
-    <vcpupin vcpu='1' cpuset='9'/>
-    <vcpupin vcpu='2' cpuset='10'/>
-    <vcpupin vcpu='3' cpuset='11'/>
-    <emulatorpin cpuset='8-11'/>
+    <vcpupin vcpu='0' cpuset='0'/>
+    <vcpupin vcpu='1' cpuset='1'/>
+    <emulatorpin cpuset='0-1'/>
   </cputune>
   <numatune>
-    <memory mode='strict' nodeset='1'/>
+    <memory mode='strict' nodeset='0'/>
   </numatune>
""" in out
    assert [line.split(" overrides the input: ")[1] for line in warnings_of(err)
            if " overrides the input: " in line][-3:] == [
        "/domain/cputune/vcpupin[3] was <vcpupin vcpu=\"2\" cpuset=\"10\"/>, now removed",
        "/domain/cputune/vcpupin[4] was <vcpupin vcpu=\"3\" cpuset=\"11\"/>, now removed",
        "/domain/vcpu was '4', now '2'"]
    code, out, err = run(["apply", "--connect", URI, "--domain", "db", *traits],
                         cwd=tmp_path)
    assert (code, out) == (0, "defined 'db' on test:///default\n"), err
    defined = definition(test_driver, "db")
    assert ("<vcpupin vcpu='0' cpuset='0'/>" in defined, "vcpu='2'" in defined,
            "vcpu='3'" in defined) == (True, False, False)


PLACED = """<domain type='kvm'>
  <name>db</name>
  <memory unit='GiB'>1</memory>
  <vcpu placement='static' cpuset='9-10'>2</vcpu>
  <cputune>
    <vcpupin vcpu='0' cpuset='9'/>
    <vcpupin vcpu='1' cpuset='10'/>
    <emulatorpin cpuset='9-10'/>
  </cputune>
  <numatune>
    <memory mode='strict' nodeset='1'/>
  </numatune>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
</domain>
"""


def test_a_guest_placed_again_has_its_old_pins_replaced_with_override(tmp_path):
    """What apply --domain does to a pinned guest: with --override its pins and
    memory binding are the new placement's, each listed; without, a conflict."""
    (tmp_path / "db.xml").write_text(PLACED)
    argv = ["compile", "db.xml", "-t", "dedicated cpus", "-t", "place on host node 0",
            "--host", str(ROOT / "examples/hosts/test-driver.xml")]
    code, out, err = run([*argv, "--override"], cwd=tmp_path)
    assert code == 0
    assert ("  <vcpu placement='static' cpuset='0-1'>2</vcpu>\n  <cputune>\n"
            "    <vcpupin vcpu='0' cpuset='0'/>\n    <vcpupin vcpu='1' cpuset='1'/>\n"
            "    <emulatorpin cpuset='0-1'/>\n  </cputune>\n  <numatune>\n"
            "    <memory mode='strict' nodeset='0'/>\n  </numatune>\n") in out
    assert [line.split(" overrides the input: ")[1] for line in warnings_of(err)] == [
        "/domain/vcpu/@cpuset was '9-10', now '0-1'",
        "/domain/cputune/vcpupin[1]/@cpuset was '9', now '0'",
        "/domain/cputune/vcpupin[2]/@cpuset was '10', now '1'",
        "/domain/cputune/emulatorpin/@cpuset was '9-10', now '0-1'",
        "/domain/numatune/memory/@nodeset was '1', now '0'"]
    code, out, err = run(argv, cwd=tmp_path)
    assert (code, out) == (3, "")


def test_with_override_the_traits_vcpus_are_the_ones_placed(tmp_path):
    """The input states 2 vCPUs; 'vcpus 4' replaces them, and the placement is for
    4 (not 2 CPUs for 4 dedicated vCPUs)."""
    (tmp_path / "db.xml").write_text(PLACED)
    code, out, err = run(["compile", "db.xml", "-t", "dedicated cpus", "-t", "vcpus 4",
                          "--override", "--host",
                          str(ROOT / "examples/hosts/test-driver.xml")], cwd=tmp_path)
    assert code == 0, err
    assert ("  <vcpu placement='static' cpuset='0-3'>4</vcpu>\n  <cputune>\n"
            "    <vcpupin vcpu='0' cpuset='0'/>\n    <vcpupin vcpu='1' cpuset='1'/>\n"
            "    <vcpupin vcpu='2' cpuset='2'/>\n    <vcpupin vcpu='3' cpuset='3'/>\n"
            "    <emulatorpin cpuset='0-3'/>\n  </cputune>\n") in out


# ---------------------------------------------------------------- qemu:///embed

def test_apply_on_the_embedded_driver_defines_for_the_next_process(embedded):
    """web01, pinned to node 0's last CPU, placed again with its emulator on a CPU
    of its own: the dry run shows the pins that change (its one vCPU's <vcpupin> goes:
    <vcpu cpuset> says it all), apply defines them, and another process reads them
    back."""
    first, last = embedded.node_cpus[0], embedded.node_cpus[-1]
    traits = ["-t", "dedicated cpus", "-t", "emulator threads isolated", "-t",
              "place on host node 0", "--override"]
    dry = embedded.virtuned("apply", "--connect", embedded.uri, "--domain", "web01",
                            *traits, "--dry-run")
    assert (dry.returncode, dry.stderr.count(": error: ")) == (0, 0), dry.stderr
    changed = [line for line in dry.stdout.splitlines() if line[:1] in "+-"
               and line[:3] not in ("+++", "---")]
    assert f"-    <vcpupin vcpu='0' cpuset='{last}'/>" in changed
    assert f"+  <vcpu placement='static' cpuset='{first}'>1</vcpu>" in changed
    assert not any(line.startswith("+    <vcpupin") for line in changed)
    assert all('="' not in line for line in changed)  # libvirt's quotes throughout
    applied = embedded.virtuned("apply", "--connect", embedded.uri, "--domain", "web01",
                                *traits)
    assert (applied.returncode, applied.stdout) == (
        0, f"defined 'web01' on {embedded.uri}\n"), applied.stderr
    taken = embedded.virtuned("host", "snapshot", "--connect", embedded.uri)
    (guest,) = json.loads(taken.stdout)["guests"]
    assert (guest["name"], guest["vcpus"], guest["vcpu_cpuset"]) == ("web01", {}, str(first))
    assert guest["emulator"] == str(embedded.node_cpus[1])
