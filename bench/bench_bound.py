"""Benchmark: what bench_compile.py's request costs at the very least, on bare lxml.

    python bench/bench_bound.py [--rounds N]

The compile benchmark compares virtuned's compile of examples/domains/web-server.xml
with examples/profiles/server.vt against an lxml parse + serialize of the same XML
(the floor). This script times, in the same process and alternating with that floor,
the same request's edits written by hand on bare lxml: the ``<os>`` of q35, the two
disks renamed onto virtio, the virtio-serial controller, the guest agent's channel,
the video and the provenance record, each put where virtuned puts it. It resolves
nothing, plans nothing, checks nothing (no DOCTYPE, size or repeated-element check,
no conflict between edits, none of the completions that look for what the VM
lacks): it only knows the answer. Its output is checked against the compiler's,
byte for byte, so it does the same writing. No general compiler can do this request
in less, so its ratio to the floor is the part of any target that is not ours to
spend; the rest is what resolving, planning, checking and emitting may cost.
Numbers, not assertions: the test suite never times anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compile import DOMAIN, PROFILE, interleaved_medians, median_seconds  # noqa: E402


def hand_written(xml: bytes, provenance: bytes):
    """The request's edits on bare lxml, from prototypes parsed once."""
    prototypes = {tag: etree.fromstring(text) for tag, text in (
        ("os", b'<os>\n    <type arch="x86_64" machine="q35">hvm</type>\n  </os>'),
        ("controller", b'<controller type="virtio-serial" index="0"/>'),
        ("channel", b'<channel type="unix">\n      <source mode="bind"/>\n      <target '
                    b'type="virtio" name="org.qemu.guest_agent.0"/>\n    </channel>'),
        ("video", b'<video>\n      <model type="virtio"/>\n    </video>'))}
    record = etree.fromstring(provenance)

    def after(sibling, element, indent: str) -> None:
        element.tail, sibling.tail = sibling.tail, indent
        sibling.addnext(element)

    def compile_once() -> str:
        root = etree.fromstring(xml)
        children = {}
        for child in root.iterchildren():
            children.setdefault(child.tag, child)
        after(children["metadata"][-1], record.__copy__(), "\n    ")
        after(children["vcpu"], prototypes["os"].__copy__(), "\n  ")
        last, disks = {}, 0
        for device in children["devices"].iterchildren():
            last[device.tag] = device
            if device.tag == "disk" and device.get("device", "disk") == "disk":
                target = next(device.iterchildren("target"))
                target.set("dev", "vd" + "ab"[disks])
                target.set("bus", "virtio")
                disks += 1
        after(last["controller"], prototypes["controller"].__copy__(), "\n    ")
        after(last["console"], prototypes["channel"].__copy__(), "\n    ")
        after(last["graphics"], prototypes["video"].__copy__(), "\n    ")
        comment = root.getprevious()
        return f"<!--{comment.text}-->\n{etree.tostring(root, encoding='unicode')}\n"

    return compile_once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=51)
    args = parser.parse_args()
    sys.path.insert(0, str(DOMAIN.parents[2]))
    import virtuned
    from virtuned.api import TraitSource

    xml = DOMAIN.read_bytes()
    expected = virtuned.compile(
        xml, sources=[TraitSource(str(PROFILE), PROFILE.read_text())]).xml
    record = etree.fromstring(expected.encode()).find("metadata")[-1]
    bound = hand_written(xml, etree.tostring(record, with_tail=False))
    if bound() != expected:
        sys.exit("the hand-written edits no longer give the compiler's output: "
                 "update hand_written()")

    def floor():
        etree.tostring(etree.fromstring(xml), encoding="unicode")

    base, ours = interleaved_medians(lambda: median_seconds(floor, 1),
                                     lambda: median_seconds(bound, 1), args.rounds)
    print(f"floor (lxml parse + serialize):         {base * 1e6:8.1f} us")
    print(f"the request's edits by hand, no checks: {ours * 1e6:8.1f} us")
    print(f"ratio bound / floor:                    {ours / base:8.2f} x")


if __name__ == "__main__":
    main()
