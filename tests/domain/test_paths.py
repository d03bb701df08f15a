"""Parsed domains answer find/findall/iterfind of plain child paths without lxml's
ElementPath; the answers must be ElementPath's own, in the same order."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from virtuned import domain

ROOT = Path(__file__).resolve().parents[2]
INPUTS = [path for path in sorted(ROOT.glob("tests/golden/*/*/input.xml")) + sorted(
    ROOT.glob("examples/domains/*.xml")) if not (path.parent / "expected.err").exists()]
LIBOSINFO = "{http://libosinfo.org/xmlns/libvirt/domain/1.0}"
PATHS = [
    "devices", "os/type", "disk", "target", "model", "cpu/numa/cell", "devices/disk/target",
    "devices/controller", "features/hyperv", f"metadata/{LIBOSINFO}libosinfo",
    f"{LIBOSINFO}os", "source/address", "no-such", "a.b", "x_y/z-w",
    # not plain child paths: ElementPath answers them
    "*", "devices/*", ".//target", "address[@type='drive']", "./os", "devices//model",
    "controller[@type='pci']/target", "",
]


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_plain_paths_answer_as_elementpath_does(path):
    root = domain.parse(path.read_bytes(), str(path)).getroot()
    assert isinstance(root, domain.Element)
    for element in [root, *root.iter(tag="*")]:
        for query in PATHS:
            try:
                expected = etree.ElementBase.findall(element, query)
            except SyntaxError:
                with pytest.raises(SyntaxError):
                    element.findall(query)
                continue
            assert element.findall(query) == expected, query
            assert list(element.iterfind(query)) == expected, query
            assert element.find(query) is (expected[0] if expected else None), query


def test_a_namespace_map_and_a_qname_go_to_elementpath():
    root = domain.parse(b'<domain xmlns:x="urn:x"><x:a/><a/></domain>', "d").getroot()
    assert root.find("x:a", namespaces={"x": "urn:x"}) is root[0]
    assert root.find(etree.QName("urn:x", "a")) is root[0]
    assert root.find("a") is root[1]
    assert root.find("{urn:x}a") is root[0]
    with pytest.raises(SyntaxError):
        root.find("x:a")


def test_the_empty_domain_has_them_too():
    assert isinstance(domain.empty_domain().getroot(), domain.Element)


def test_the_root_holds_its_children():
    """So that lxml makes each one's proxy once for a whole compile, not at each reach."""
    root = domain.parse((ROOT / "examples/domains/web-server.xml").read_bytes(),
                        "web-server.xml").getroot()
    assert len(root.held) == len(root) and all(
        held is child for held, child in zip(root.held, root))
    assert root.find("devices") is root.held[[c.tag for c in root.held].index("devices")]
