"""Where domain.Inserter puts a new child among its siblings, and how it indents it:
after the last sibling libvirt's order puts at or before it; comments, processing
instructions, unknown and foreign-namespace siblings count as coming last; several
children added to one parent land as if each were added alone, in turn."""

from __future__ import annotations

import pytest
from lxml import etree

from virtuned import domain


def inserted(document: str, *children: str, parent: str = "", unit: str = "  ",
             indented: bool = False, inserter=None) -> str:
    """The document after adding each of ``children`` (XML) to ``parent`` (a path
    from the root) with one Inserter; the root serialized."""
    root = domain.parse(document, "in.xml").getroot()
    where = root.find(parent) if parent else root
    inserter = inserter or domain.Inserter(unit)
    for child in children:
        inserter.insert(where, etree.fromstring(child), indented=indented)
    return etree.tostring(root, encoding="unicode")


def test_a_child_goes_after_the_last_sibling_ranked_at_or_before_it():
    document = "<domain>\n  <name>a</name>\n  <vcpu>1</vcpu>\n  <devices/>\n</domain>"
    assert inserted(document, "<os/>", "<memory>1</memory>") == (
        "<domain>\n  <name>a</name>\n  <memory>1</memory>\n  <vcpu>1</vcpu>\n  <os/>\n"
        "  <devices/>\n</domain>")


def test_a_child_ranked_before_every_sibling_goes_first():
    document = "<domain>\n  <vcpu>1</vcpu>\n  <devices/>\n</domain>"
    assert inserted(document, "<name>a</name>") == (
        "<domain>\n  <name>a</name>\n  <vcpu>1</vcpu>\n  <devices/>\n</domain>")


def test_a_child_ranked_after_every_sibling_goes_last():
    document = "<domain>\n  <name>a</name>\n  <os/>\n</domain>"
    assert inserted(document, "<devices/>") == (
        "<domain>\n  <name>a</name>\n  <os/>\n  <devices/>\n</domain>")


def test_a_child_libvirt_does_not_order_goes_last():
    document = "<domain>\n  <name>a</name>\n  <devices/>\n</domain>"
    assert inserted(document, "<unknown/>", "<x:y xmlns:x='urn:x'/>") == (
        "<domain>\n  <name>a</name>\n  <devices/>\n  <unknown/>\n"
        '  <x:y xmlns:x="urn:x"/>\n</domain>')


def test_comments_unknown_and_foreign_siblings_count_as_last():
    """So a new child goes before them when nothing ranked after it follows them,
    and right after the last ranked sibling at or before it: a comment that
    introduces the next sibling stays next to it."""
    document = ("<domain xmlns:x='urn:x'>\n  <name>a</name>\n  <!-- the CPUs -->\n"
                "  <vcpu>1</vcpu>\n  <x:os/>\n  <unknown/>\n  <?pi x?>\n  <devices/>\n"
                "  <!-- end -->\n</domain>")
    assert inserted(document, "<memory>1</memory>", "<os/>", "<seclabel/>") == (
        '<domain xmlns:x="urn:x">\n  <name>a</name>\n  <memory>1</memory>\n'
        "  <!-- the CPUs -->\n  <vcpu>1</vcpu>\n  <os/>\n  <x:os/>\n  <unknown/>\n"
        "  <?pi x?>\n  <devices/>\n  <seclabel/>\n  <!-- end -->\n</domain>")


def test_siblings_out_of_libvirts_order_place_it_after_the_last_at_or_before():
    document = "<domain>\n  <devices/>\n  <name>a</name>\n  <clock/>\n</domain>"
    assert inserted(document, "<os/>", "<vcpu/>") == (
        "<domain>\n  <devices/>\n  <name>a</name>\n  <vcpu/>\n  <os/>\n  <clock/>\n"
        "</domain>")


def test_children_added_in_turn_land_as_if_each_were_added_alone():
    document = ("<domain>\n  <devices>\n    <emulator>/e</emulator>\n    <disk/>\n"
                "    <interface/>\n    <serial/>\n    <input/>\n    <graphics/>\n"
                "    <memballoon/>\n    <rng/>\n  </devices>\n</domain>")
    children = ("<video/>", "<channel/>", "<controller/>", "<tpm/>", "<crypto/>",
                "<hub/>", "<disk/>", "<controller/>", "<lease/>")
    one_inserter = inserted(document, *children, parent="devices")
    for child in children:  # a new Inserter for each: nothing remembered
        document = inserted(document, child, parent="devices")
    assert one_inserter == document
    assert one_inserter == (
        "<domain>\n  <devices>\n    <emulator>/e</emulator>\n    <disk/>\n    <disk/>\n"
        "    <controller/>\n    <controller/>\n    <lease/>\n    <interface/>\n"
        "    <serial/>\n    <channel/>\n    <input/>\n    <tpm/>\n    <graphics/>\n"
        "    <video/>\n    <hub/>\n    <memballoon/>\n    <rng/>\n    <crypto/>\n"
        "  </devices>\n</domain>")


def test_an_empty_parent_opens_indented():
    assert inserted("<domain>\n  <os/>\n</domain>", "<type>hvm</type>", "<boot/>",
                    parent="os") == (
        "<domain>\n  <os>\n    <type>hvm</type>\n    <boot/>\n  </os>\n</domain>")


def test_the_childs_inside_is_indented_for_its_level_unless_it_already_is():
    document = "<domain>\n\t<devices>\n\t\t<disk/>\n\t</devices>\n</domain>"
    assert inserted(document, "<video><model/></video>", parent="devices",
                    unit="\t") == (
        "<domain>\n\t<devices>\n\t\t<disk/>\n\t\t<video>\n\t\t\t<model/>\n\t\t</video>\n"
        "\t</devices>\n</domain>")
    assert inserted(document, "<video><model/></video>", parent="devices", unit="\t",
                    indented=True) == (
        "<domain>\n\t<devices>\n\t\t<disk/>\n\t\t<video><model/></video>\n"
        "\t</devices>\n</domain>")


def test_text_beside_the_place_stays_where_it_is():
    document = "<domain>\n  <name>a</name>tail\n  <vcpu/>text<devices/></domain>"
    assert inserted(document, "<memory/>", "<os/>", "<seclabel/>") == (
        "<domain>\n  <name>a</name>tail\n  <memory/>\n  <vcpu/>text<os/>\n  "
        "<devices/>\n  <seclabel/>\n</domain>")


def test_an_element_holding_text_takes_no_child():
    root = domain.parse("<domain><os>hvm</os></domain>", "in.xml").getroot()
    with pytest.raises(domain.MixedContent) as caught:
        domain.Inserter().insert(root.find("os"), etree.Element("type"))
    assert (caught.value.parent.tag, caught.value.child_tag) == ("os", "type")
    assert etree.tostring(root) == b"<domain><os>hvm</os></domain>"


def test_append_child_adds_last_at_the_level_it_is_told():
    root = domain.parse("<domain>\n  <metadata>\n    <a/>\n  </metadata>\n</domain>",
                        "in.xml").getroot()
    domain.append_child(root[0], etree.fromstring("<b>\n    <c/>\n  </b>"), "  ", 1)
    assert etree.tostring(root, encoding="unicode") == (
        "<domain>\n  <metadata>\n    <a/>\n    <b>\n    <c/>\n  </b>\n  </metadata>\n"
        "</domain>")
