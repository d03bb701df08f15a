"""Provenance on its own (virtuned/provenance.py): the record of the compiler and the
profiles in <metadata>, placed where libvirt writes <metadata>, beside other
applications' metadata, replacing an earlier record of its own, and refused where
<metadata> holds text."""

from __future__ import annotations

import pytest

from virtuned import domain, provenance
from virtuned.diagnostics import Sources, VirtunedError, render
from virtuned.resolve.model import UsedProfile

NFV = UsedProfile("nfv", "1.2.0", "a" * 64, "traits/nfv.vt")
BARE = UsedProfile("<trait 1>", None, "b" * 64, "<trait 1>")
RECORD = """\
    <virtuned:provenance xmlns:virtuned="https://virtuned.dev/xmlns/provenance/1" \
compiler="9.9">
      <virtuned:profile name="nfv" version="1.2.0" sha256="{a}" source="traits/nfv.vt"/>
      <virtuned:traits source="&lt;trait 1&gt;" sha256="{b}"/>
    </virtuned:provenance>""".format(a="a" * 64, b="b" * 64)


def stamped(document: str, used=(NFV, BARE), filename: str = "d.xml"):
    """The document after stamping, and the changes ``explain`` would list."""
    tree = domain.parse(document.encode(), filename)
    change = provenance.stamp(tree, used, "9.9", filename)
    return domain.serialize(tree, document.encode()), [(c.path, c.old, c.new, c.origin.label)
                                     for c in change()]


def test_no_profiles_leave_the_domain_as_it_was():
    document = "<domain type='kvm'>\n  <name>a</name>\n</domain>\n"
    assert stamped(document, used=()) == (document, [])


def test_a_new_metadata_goes_where_libvirt_writes_it():
    # After <description>/<title>, before <memory>: libvirt's order, not the end.
    document = ("<domain type=\"kvm\">\n  <name>a</name>\n  <title>t</title>\n"
                "  <memory>1024</memory>\n</domain>\n")
    assert stamped(document) == (
        "<domain type=\"kvm\">\n  <name>a</name>\n  <title>t</title>\n"
        f"  <metadata>\n{RECORD}\n  </metadata>\n  <memory>1024</memory>\n</domain>\n",
        [("/domain/metadata/virtuned:provenance", None,
          "virtuned provenance (compiler 9.9, 2 profile(s))", "provenance")])


def test_other_applications_metadata_stays_and_an_old_record_is_replaced():
    other = "<app:x xmlns:app=\"http://example.org/app\" keep=\"1\"/>"
    document = (f"<domain type=\"kvm\">\n  <name>a</name>\n  <metadata>\n    {other}\n"
                f"  </metadata>\n</domain>\n")
    once, _ = stamped(document)
    assert once == (f"<domain type=\"kvm\">\n  <name>a</name>\n  <metadata>\n    {other}\n"
                    f"{RECORD}\n  </metadata>\n</domain>\n")
    assert stamped(once)[0] == once  # compiling again gives the same bytes


def test_the_record_follows_the_input_indentation():
    document = "<domain type=\"kvm\">\n\t<name>a</name>\n</domain>\n"
    out, _ = stamped(document, used=(NFV,))
    assert out == (
        "<domain type=\"kvm\">\n\t<name>a</name>\n\t<metadata>\n"
        "\t\t<virtuned:provenance xmlns:virtuned=\"https://virtuned.dev/xmlns/provenance/1\""
        " compiler=\"9.9\">\n"
        f"\t\t\t<virtuned:profile name=\"nfv\" version=\"1.2.0\" sha256=\"{'a' * 64}\""
        " source=\"traits/nfv.vt\"/>\n"
        "\t\t</virtuned:provenance>\n\t</metadata>\n</domain>\n")


def test_metadata_holding_text_is_an_input_error_at_it():
    document = "<domain type=\"kvm\">\n  <name>a</name>\n  <metadata>notes</metadata>\n</domain>\n"
    with pytest.raises(VirtunedError) as caught:
        stamped(document)
    sources = Sources()
    sources.add("d.xml", document)
    assert caught.value.exit_code == 2
    assert [render(d, sources) for d in caught.value.diagnostics] == [
        "d.xml:3:3: error: <metadata> holds text, and virtuned records the profiles it "
        "used there\n"
        "      <metadata>notes</metadata>\n"
        "      ^^^^^^^^^\n"
        "hint: libvirt keeps only elements in <metadata>"]
