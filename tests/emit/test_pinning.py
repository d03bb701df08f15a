"""The placement's XML over an input that is placed already (virtuned/emit/pinning.py):
without --override the input's pins win (a different one is a conflict); with it
the new placement replaces them, and a pin it no longer writes is removed (each
listed), never left to contradict it. Exact XML, and libvirt accepts it."""

from __future__ import annotations

from pathlib import Path

from tests.cli_run import run
from tests.test_merge_override import overrides

ROOT = Path(__file__).resolve().parents[2]
HOST = str(ROOT / "examples/hosts/test-driver.xml")

# A guest of 4 vCPUs pinned by hand on host node 1, with what else <cputune> holds.
PINNED = """<domain type='kvm'>
  <name>db</name>
  <memory unit='KiB'>2097152</memory>
  <vcpu placement='static' cpuset='9-12'>4</vcpu>
  <iothreads>2</iothreads>
  <cputune>
    <shares>2048</shares>
    <!-- pinned by hand -->
    <vcpupin vcpu='0' cpuset='9'/>
    <vcpupin vcpu='1' cpuset='10'/>
    <vcpupin vcpu='2' cpuset='11'/>
    <vcpupin vcpu='3' cpuset='12'/>
    <emulatorpin cpuset='13'/>
    <iothreadpin iothread='1' cpuset='13'/>
    <iothreadpin iothread='2' cpuset='14'/>
    <vcpusched vcpus='0-1' scheduler='fifo' priority='5'/>
    <vcpusched vcpus='2-3' scheduler='fifo' priority='5'/>
  </cputune>
  <numatune>
    <memory mode='strict' nodeset='1'/>
  </numatune>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
</domain>
"""
TRAITS = ["-t", "vcpus 2", "-t", "iothreads 1", "-t", "dedicated cpus", "-t", "realtime",
          "--host", HOST]


def test_a_guest_placed_again_keeps_no_pin_of_its_old_placement(tmp_path):
    """2 of its 4 vCPUs and 1 of its 2 I/O threads, on node 0: the pins of vCPUs
    2-3 and of I/O thread 2 go; what <cputune> says besides pins
    (shares, a comment) stays."""
    (tmp_path / "db.xml").write_text(PINNED)
    code, out, err = run(["compile", "db.xml", *TRAITS, "--override"], cwd=tmp_path)
    assert code == 0, err
    assert """\
  <vcpu placement='static' cpuset='0-1'>2</vcpu>
  <iothreads>1</iothreads>
  <cputune>
    <shares>2048</shares>
    <!-- pinned by hand -->
    <vcpupin vcpu='0' cpuset='0'/>
    <vcpupin vcpu='1' cpuset='1'/>
    <emulatorpin cpuset='0-1'/>
    <iothreadpin iothread='1' cpuset='0-1'/>
    <vcpusched vcpus='0-1' scheduler='fifo' priority='1'/>
  </cputune>
  <numatune>
    <memory mode='strict' nodeset='0'/>
  </numatune>
  <os>
""" in out
    assert overrides(err) == [
        "/domain/vcpu/@cpuset was '9-12', now '0-1'",
        "/domain/cputune/vcpupin[1]/@cpuset was '9', now '0'",
        "/domain/cputune/vcpupin[2]/@cpuset was '10', now '1'",
        "/domain/cputune/emulatorpin/@cpuset was '13', now '0-1'",
        "/domain/cputune/iothreadpin/@cpuset was '13', now '0-1'",
        "/domain/numatune/memory/@nodeset was '1', now '0'",
        "/domain/cputune/vcpupin[3] was <vcpupin vcpu=\"2\" cpuset=\"11\"/>, now removed",
        "/domain/cputune/vcpupin[4] was <vcpupin vcpu=\"3\" cpuset=\"12\"/>, now removed",
        "/domain/cputune/iothreadpin[2] was <iothreadpin iothread=\"2\" cpuset=\"14\"/>, "
        "now removed",
        "/domain/iothreads was '2', now '1'",
        "/domain/cputune/vcpusched/@priority was '5', now '1'",
        "/domain/cputune/vcpusched[2] was <vcpusched vcpus=\"2-3\" scheduler=\"fifo\" "
        "priority=\"5\"/>, now removed",
        "/domain/vcpu was '4', now '2'"]


def test_without_override_the_inputs_pins_win(tmp_path):
    (tmp_path / "db.xml").write_text(PINNED)
    code, out, err = run(["compile", "db.xml", *TRAITS], cwd=tmp_path)
    assert (code, out, err.splitlines()[0]) == (3, "", (
        "<trait 1>:1:1: error: 'dedicated cpus' wants /domain/cputune/vcpupin <vcpupin "
        "vcpu='0' cpuset='0'>, but the input has <vcpupin vcpu='0' cpuset='9'>"))


def test_vcpus_alone_takes_out_what_the_input_states_of_the_vcpus_it_loses(tmp_path):
    """No placement: <vcpu cpuset> and the pins of the vCPUs kept stay as stated;
    libvirt refuses a <vcpusched> of vCPUs the guest does not have."""
    (tmp_path / "db.xml").write_text(PINNED)
    code, out, err = run(["compile", "db.xml", "-t", "vcpus 3", "--override"],
                         cwd=tmp_path)
    assert code == 0, err
    assert """\
  <cputune>
    <shares>2048</shares>
    <!-- pinned by hand -->
    <vcpupin vcpu='0' cpuset='9'/>
    <vcpupin vcpu='1' cpuset='10'/>
    <vcpupin vcpu='2' cpuset='11'/>
    <emulatorpin cpuset='13'/>
    <iothreadpin iothread='1' cpuset='13'/>
    <iothreadpin iothread='2' cpuset='14'/>
    <vcpusched vcpus='0-1' scheduler='fifo' priority='5'/>
    <vcpusched vcpus='2' scheduler='fifo' priority='5'/>
  </cputune>
""" in out
    assert overrides(err) == [
        "/domain/vcpu was '4', now '3'",
        "/domain/cputune/vcpusched[2]/@vcpus was '2-3', now '2'",
        "/domain/cputune/vcpupin[4] was <vcpupin vcpu=\"3\" cpuset=\"12\"/>, now removed"]


HOTPLUG = """<domain type='kvm'>
  <name>db</name>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>4</vcpu>
  <vcpus>
    <vcpu id='0' enabled='yes' hotpluggable='no' order='1'/>
    <vcpu id='1' enabled='yes' hotpluggable='yes' order='2'/>
    <vcpu id='2' enabled='yes' hotpluggable='yes' order='3'/>
    <vcpu id='3' enabled='yes' hotpluggable='yes' order='4'/>
  </vcpus>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
</domain>
"""


def test_vcpus_takes_out_the_hotplug_entries_of_the_vcpus_it_loses(tmp_path):
    (tmp_path / "db.xml").write_text(HOTPLUG)
    code, out, err = run(["compile", "db.xml", "-t", "vcpus 2", "--override"],
                         cwd=tmp_path)
    assert code == 0, err
    assert """\
  <vcpu placement='static'>2</vcpu>
  <vcpus>
    <vcpu id='0' enabled='yes' hotpluggable='no' order='1'/>
    <vcpu id='1' enabled='yes' hotpluggable='yes' order='2'/>
  </vcpus>
""" in out
    assert overrides(err)[1:] == [
        "/domain/vcpus/vcpu[3] was <vcpu id=\"2\" enabled=\"yes\" hotpluggable=\"yes\" "
        "order=\"3\"/>, now removed",
        "/domain/vcpus/vcpu[4] was <vcpu id=\"3\" enabled=\"yes\" hotpluggable=\"yes\" "
        "order=\"4\"/>, now removed"]


CELLS = """<domain type='kvm'>
  <name>cells</name>
  <memory unit='KiB'>2097152</memory>
  <vcpu placement='static'>4</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <cpu mode='host-passthrough'>
    <numa>
      <cell id='0' cpus='0-1' memory='1048576' unit='KiB'/>
      <cell id='1' cpus='2-3' memory='1048576' unit='KiB'/>
    </numa>
  </cpu>
</domain>
"""


def test_vcpus_over_the_inputs_cells_needs_them_split_again(tmp_path):
    """Fewer vCPUs than the input's guest cells hold: which cell keeps which is not
    said, so it stays a conflict with --override; 'guest numa nodes N' splits them."""
    (tmp_path / "cells.xml").write_text(CELLS)
    code, out, err = run(["compile", "cells.xml", "-t", "vcpus 2", "--override"],
                         cwd=tmp_path)
    assert (code, out, err.splitlines()[0]) == (3, "", (
        "<trait 1>:1:1: error: 'vcpus 2' wants 2 vCPUs, but the input's guest NUMA cell 1 "
        "holds vCPUs 2-3"))
    code, out, err = run(["compile", "cells.xml", "-t", "vcpus 2", "-t",
                          "guest numa nodes 2", "--override"], cwd=tmp_path)
    assert code == 0, err
    assert ("      <cell id='0' cpus='0' memory='1048576' unit='KiB'/>\n"
            "      <cell id='1' cpus='1' memory='1048576' unit='KiB'/>\n") in out


NUMAD = """<domain type='kvm'>
  <name>auto</name>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='auto'>2</vcpu>
  <numatune>
    <memory mode='strict' placement='auto'/>
  </numatune>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
</domain>
"""


def test_a_guest_numad_placed_is_placed_statically(tmp_path):
    """placement='auto' (numad) beside a nodeset is not a domain libvirt takes:
    both placements become static, each listed."""
    (tmp_path / "auto.xml").write_text(NUMAD)
    code, out, err = run(["compile", "auto.xml", "-t", "dedicated cpus", "--host", HOST,
                          "--override"], cwd=tmp_path)
    assert code == 0, err
    assert ("  <numatune>\n    <memory mode='strict' placement='static' nodeset='0'/>\n"
            "  </numatune>\n") in out
    assert overrides(err) == ["/domain/vcpu/@placement was 'auto', now 'static'",
                              "/domain/numatune/memory/@placement was 'auto', now 'static'"]


def test_a_cputune_left_empty_goes_and_explain_lists_each_removal(tmp_path):
    """Shared CPUs float: <vcpu cpuset> says it all, so the old pins go, and with
    them a <numatune> of a node the guest is no longer bound to; explain lists each
    removed element (JSON: new is null)."""
    import json

    (tmp_path / "db.xml").write_text(
        "<domain type='kvm'>\n  <name>db</name>\n  <memory unit='KiB'>1048576</memory>\n"
        "  <vcpu placement='static' cpuset='9-10'>2</vcpu>\n  <cputune>\n"
        "    <vcpupin vcpu='0' cpuset='9'/>\n    <vcpupin vcpu='1' cpuset='10'/>\n"
        "  </cputune>\n  <numatune>\n    <memory mode='strict' nodeset='1'/>\n"
        "  </numatune>\n  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n"
        "  </os>\n</domain>\n")
    argv = ["db.xml", "-t", "shared cpus", "--host", HOST, "--override"]
    code, out, err = run(["compile", *argv], cwd=tmp_path)
    assert code == 0, err
    assert ("  <vcpu placement='static' cpuset='0-15'>2</vcpu>\n  <cputune>\n"
            "    <emulatorpin cpuset='0-15'/>\n  </cputune>\n  <os>\n") in out
    code, out, err = run(["explain", *argv, "--json"], cwd=tmp_path)
    removed = [(c["path"], c["old"], c["new"], c["overridden"])
               for c in json.loads(out)["changes"] if c["new"] is None]
    assert removed == [
        ("/domain/cputune/vcpupin[1]", '<vcpupin vcpu="0" cpuset="9"/>', None, True),
        ("/domain/cputune/vcpupin[2]", '<vcpupin vcpu="1" cpuset="10"/>', None, True),
        ("/domain/numatune/memory", '<memory mode="strict" nodeset="1"/>', None, True)]
    code, out, err = run(["explain", *argv], cwd=tmp_path)
    assert """\
/domain/numatune/memory: <memory mode="strict" nodeset="1"/> -> (removed)
    <- 'shared cpus' at <trait 1>:1:1
    input had <memory mode="strict" nodeset="1"/>; overridden (--override)
""" in out


def test_what_override_leaves_passes_libvirt(tmp_path):
    from tests.libvirt import assert_libvirt_accepts

    (tmp_path / "db.xml").write_text(PINNED)
    (tmp_path / "hotplug.xml").write_text(HOTPLUG)
    (tmp_path / "auto.xml").write_text(NUMAD)
    outputs = {}
    for name, argv in (("placed again", ["db.xml", *TRAITS, "--override"]),
                       ("vcpus alone", ["db.xml", "-t", "vcpus 3", "--override"]),
                       ("hotplug", ["hotplug.xml", "-t", "vcpus 2", "--override"]),
                       ("numad", ["auto.xml", "-t", "dedicated cpus", "--host", HOST,
                                  "--override"])):
        code, out, err = run(["compile", *argv], cwd=tmp_path)
        assert code == 0, err
        outputs[name] = out
    assert_libvirt_accepts(outputs)
