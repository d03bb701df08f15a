"""``device numa affinity``: what golden cases (tests/golden/numa/) cannot show: a
second compile changes nothing, the bus topology it builds boots, and the API's
``device_nodes`` is checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import virtuned
from virtuned.diagnostics import VirtunedError

CASES = Path(__file__).parents[1] / "golden/numa"
INPUT = (CASES / "two-cells-q35/input.xml").read_text()
NODES = {"0000:3b:00.0": 1, "3b:00.1": 1, "86:00.0": 0}


def compile_numa(domain: str, machine: str) -> str:
    return virtuned.compile(domain, traits=[f"machine {machine}", "device numa affinity"],
                            device_nodes=NODES).xml


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_a_second_compile_changes_nothing(machine):
    once = compile_numa(INPUT, machine)
    assert compile_numa(once, machine) == once


def test_the_expander_topology_boots():
    """Host devices cannot be passed through here, so emulated virtio NICs take their
    guest addresses; and the guest cells are not bound to host nodes this host may
    not have. What boots is the expander buses, root ports and bus numbers."""
    from tests.libvirt import assert_libvirt_accepts

    bootable = {}
    for machine in ("q35", "pc"):
        xml = re.sub(r"<hostdev [^>]*>\s*<source>\s*<address[^>]*/>\s*</source>\s*"
                     r"(<address[^>]*/>)\s*</hostdev>",
                     r'<interface type="user"><model type="virtio"/>\1</interface>',
                     compile_numa(INPUT, machine))
        assert xml.count("<interface") == 3
        xml = re.sub(r"<numatune>.*?</numatune>", "", xml, flags=re.S)
        bootable[machine] = (xml.replace('type="kvm"', 'type="qemu"', 1)
                             .replace("<name>nfv</name>", f"<name>numa-{machine}</name>")
                             .replace('<memory unit="GiB">4</memory>',
                                      '<memory unit="MiB">512</memory>')
                             .replace('memory="2" unit="GiB"', 'memory="256" unit="MiB"'))
    assert_libvirt_accepts(bootable, start=True)


@pytest.mark.parametrize("nodes, message", [
    ({"3b:00": 1}, "--device-node 3b:00=1: expected a PCI address like 0000:3b:00.0, "
                   "got '3b:00'"),
    ({"3b:00.0": -1}, "--device-node 3b:00.0=-1: expected a host NUMA node (0, 1, "
                      "...), got -1"),
    ([("3b:00.0", "1")], "--device-node 3b:00.0=1: expected a host NUMA node (0, 1, "
                         "...), got '1'"),
])
def test_bad_device_nodes_are_input_errors(nodes, message):
    with pytest.raises(VirtunedError) as caught:
        virtuned.compile(INPUT, traits=["device numa affinity"], device_nodes=nodes)
    assert (caught.value.exit_code, str(caught.value)) == (2, message)
