"""``--map`` (virtuned/plan/hostmap.py): the picture of the host and where the guest
goes, exactly, on the example hosts (tests/plan/maps/NAME.txt or .svg: the whole
stderr of the command; ``pytest --regenerate`` rewrites them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_run import run
from virtuned.plan import hostmap

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ROOT / "examples" / "hosts"
MAPS = Path(__file__).resolve().parent / "maps"

CASES = {
    # SMT host, CPU 0 reserved: a dedicated guest on 1GiB pages with its emulator
    # on a CPU of its own
    "two-node-smt-dedicated": (0, ["plan", "-t", "dedicated cpus", "-t", "vcpus 4", "-t",
                                   "hugepages 1GiB", "-t", "memory 4GiB", "-t",
                                   "emulator threads isolated", "--host",
                                   "two-node-smt.xml", "--reserved-cpus", "0", "--map"]),
    # whole cores: the other thread of each core the guest uses stays idle
    "two-node-smt-isolate": (0, ["compile", "-t", "dedicated cpus threads isolate", "-t",
                                 "vcpus 2", "-t", "guest numa nodes 2", "-t", "memory 2GiB",
                                 "--host", "two-node-smt.xml", "--map"]),
    # shared vCPUs floating over the CPUs a node agent granted
    "test-driver-shared": (0, ["plan", "-t", "shared cpus", "-t", "vcpus 2", "--host",
                               "test-driver.xml", "--allocated-cpus", "0-5", "--map"]),
    # the host alone: no placement asked
    "test-driver-unplaced": (0, ["plan", "-t", "vcpus 2", "--host", "test-driver.xml",
                                 "--map"]),
    # a busy host: CPUs other guests hold, pages they keep, the shared set
    "busy-host-shared-emulator": (0, ["plan", "-t", "dedicated cpus", "-t", "vcpus 2", "-t",
                                      "memory 2GiB", "-t", "emulator threads shared", "-t",
                                      "iothreads 1", "--host", "busy-host.json",
                                      "--shared-cpus", "6-7", "--map"]),
    "busy-host-hugepages": (0, ["plan", "-t", "dedicated cpus", "-t", "vcpus 2", "-t",
                                "hugepages 1GiB", "-t", "memory 2GiB", "--host",
                                "busy-host.json", "--reserved-cpus", "0", "--map"]),
    # it does not fit: the host as it is, then why
    "busy-host-infeasible": (3, ["compile", "-t", "dedicated cpus", "-t", "vcpus 4", "-t",
                                 "hugepages 1GiB", "-t", "memory 4GiB", "--host",
                                 "busy-host.json", "--map"]),
    "busy-host-svg": (0, ["plan", "-t", "dedicated cpus", "-t", "vcpus 2", "-t",
                          "memory 2GiB", "--host", "busy-host.json", "--map", "svg"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_map_of_an_example_host(name, regenerate):
    code, argv = CASES[name]
    got_code, out, err = run(argv, cwd=HOSTS)
    golden = MAPS / f"{name}.{'svg' if 'svg' in argv else 'txt'}"
    if regenerate:
        MAPS.mkdir(exist_ok=True)
        golden.write_text(err)
    assert got_code == code
    assert err == golden.read_text()
    assert bool(out) == (code == 0)  # the JSON or XML as without --map


def test_the_map_goes_to_a_file_and_the_svg_parses(tmp_path):
    from lxml import etree

    code, _, err = run(["plan", "-t", "dedicated cpus", "-t", "vcpus 2", "--host",
                        str(HOSTS / "busy-host.json"), "--map", "svg", "--map-output",
                        "map.svg"], cwd=tmp_path)
    assert (code, err) == (0, "")
    root = etree.fromstring((tmp_path / "map.svg").read_bytes())
    kinds = [g.get("class") for g in root.iter("{http://www.w3.org/2000/svg}g")]
    assert (len(kinds), kinds.count("cpu guest"), kinds.count("cpu held")) == (16, 2, 9)


def test_a_map_needs_a_host(tmp_path):
    assert run(["plan", "-t", "vcpus 2", "--map"], cwd=tmp_path) == (
        2, "", "--map: error: a map needs the host to draw (--host, --connect)\n")


def test_colour_marks_each_kind_on_a_terminal():
    cpu = [hostmap.Cpu(0, hostmap.GUEST, "vCPU 0"), hostmap.Cpu(1, hostmap.HELD, "held: a"),
           hostmap.Cpu(2, hostmap.FREE, "free")]
    picture = hostmap.HostMap("h", (hostmap.NodeMap(0, (tuple(cpu),), None, 0, ()),))
    assert hostmap.text(picture, colour=True) == (
        "host h: 1 NUMA node, 3 CPUs\n"
        "node 0: 1 core × 3 threads\n"
        "  core 0   cpu 0 \x1b[1;32mvCPU 0\x1b[0m   cpu 1 \x1b[31mheld: a\x1b[0m  "
        "cpu 2 free\n")


class _Terminal:
    def __init__(self, tty: bool):
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty, environ, wanted", [
    (True, {}, True), (False, {}, False), (True, {"NO_COLOR": "1"}, False),
    (True, {"NO_COLOR": ""}, True)])
def test_colour_only_on_a_terminal_without_no_color(tty, environ, wanted):
    assert hostmap.colour_wanted(_Terminal(tty), environ) is wanted


def test_the_map_of_a_live_host(regenerate, tmp_path):
    """--connect: the host read once, for the plan and the picture."""
    from tests.facts.test_live import _binding_or_skip

    _binding_or_skip()
    code, out, err = run(["plan", "-t", "dedicated cpus", "-t", "vcpus 2", "--connect",
                          "test:///default", "--reserved-cpus", "0", "--map"], cwd=tmp_path)
    golden = MAPS / "test-driver-live.txt"
    if regenerate:
        golden.write_text(err)
    assert (code, err) == (0, golden.read_text())
