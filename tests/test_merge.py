"""merge.apply on its own: what it writes, the order it reports changes in, and each
way edits can disagree (with each other, with the input, with a removal), with the
exact message; a preference that clashes is dropped with a warning, a completion
gives way silently. The whole compile path is covered by the golden tests; these
name the cases the examples do not reach (two traits setting one value, two
additions of one thing)."""

from __future__ import annotations

import pytest

from virtuned import domain, merge
from virtuned.diagnostics import Span, VirtunedError
from virtuned.emit.edits import Add, Ensure, Remove, SetAttr, SetText, el
from virtuned.resolve.model import Origin

INPUT = """<domain type="kvm">
  <name>g</name>
  <devices>
    <disk type="file">
      <target dev="hda"/>
    </disk>
    <graphics type="vnc"/>
  </devices>
</domain>
"""


def trait(label: str, line: int, strength: str = "require") -> Origin:
    return Origin(label, Span("t.vt", line, 1), (), strength)


A, B = trait("a", 1), trait("b", 2)
PREFER = trait("p", 3, "prefer")
DEFAULT = Origin("completion", None, (), "default")


@pytest.fixture
def tree():
    return domain.parse(INPUT, "in.xml")


def target(tree):
    return tree.getroot().find("devices/disk/target")


def applied(tree, edits, **options):
    warnings = []
    done = merge.apply(tree, edits, "in.xml", warnings, **options)
    return done, warnings, domain.serialize(tree)


def failure(tree, edits, **options) -> str:
    with pytest.raises(VirtunedError) as caught:
        merge.apply(tree, edits, "in.xml", [], **options)
    diagnostic = caught.value.diagnostics[0]
    return f"{diagnostic.span}: {diagnostic.message}" + "".join(
        f" | {r.span}: {r.message}" for r in diagnostic.related)


def test_sets_then_adds_then_ensures_in_that_order(tree):
    done, warnings, text = applied(tree, [
        Add("devices", el("video", el("model", type_="virtio")), A, ("video",)),
        SetAttr(target(tree), "bus", "virtio", A),
        Ensure("os/type", "machine", "q35", B),
        SetAttr(target(tree), "dev", "vda", A, replaces="hda"),
        Add("devices", el("controller", type_="virtio-serial"), B),
    ])
    assert warnings == []
    assert [(type(edit).__name__, old) for _, edit, old in done] == [
        ("SetAttr", None), ("SetAttr", "hda"), ("Add", None), ("Add", None),
        ("Ensure", None)]
    assert text == """<domain type="kvm">
  <name>g</name>
  <os>
    <type machine="q35"/>
  </os>
  <devices>
    <disk type="file">
      <target dev="vda" bus="virtio"/>
    </disk>
    <controller type="virtio-serial"/>
    <graphics type="vnc"/>
    <video>
      <model type="virtio"/>
    </video>
  </devices>
</domain>
"""
    assert [(c.path, c.old, c.new) for c in merge.describe(tree, done)] == [
        ("/domain/devices/disk/target/@bus", None, "virtio"),
        ("/domain/devices/disk/target/@dev", "hda", "vda"),
        ("/domain/devices/video", None, '<video><model type="virtio"/></video>'),
        ("/domain/devices/controller", None, '<controller type="virtio-serial"/>'),
        ("/domain/os/type/@machine", None, "q35")]
    assert merge.overridden(done, "in.xml") == []


def test_a_value_the_input_already_has_is_no_change(tree):
    done, _, _ = applied(tree, [SetAttr(target(tree), "dev", "hda", A)])
    assert done == []


def test_two_traits_setting_one_value_alike_set_it_once(tree):
    done, _, _ = applied(tree, [SetAttr(target(tree), "bus", "virtio", A),
                                SetAttr(target(tree), "bus", "virtio", B)])
    assert [edit.origin for _, edit, _ in done] == [A]


def test_two_traits_setting_one_value_differently_conflict(tree):
    assert failure(tree, [SetAttr(target(tree), "bus", "virtio", A),
                          SetAttr(target(tree), "bus", "sata", B)]) == (
        "t.vt:2:1: 'b' wants /domain/devices/disk[1]/target/@bus = 'sata', but 'a' sets "
        "/domain/devices/disk[1]/target/@bus = 'virtio' | t.vt:1:1: 'a' sets "
        "/domain/devices/disk[1]/target/@bus = 'virtio'")


def test_a_trait_contradicting_the_input_conflicts(tree):
    assert failure(tree, [SetAttr(target(tree), "dev", "vda", A)]) == (
        "t.vt:1:1: 'a' wants /domain/devices/disk[1]/target/@dev = 'vda', but the input "
        "states /domain/devices/disk[1]/target/@dev = 'hda' | in.xml:5:1: the input "
        "states /domain/devices/disk[1]/target/@dev = 'hda'")


def test_text_against_the_input_conflicts(tree):
    name = tree.getroot().find("name")
    assert failure(tree, [SetText(name, "h", A)]).startswith(
        "t.vt:1:1: 'a' wants /domain/name = 'h', but the input states /domain/name = 'g'")


def test_with_override_a_required_trait_replaces_the_input_and_says_so(tree):
    done, _, text = applied(tree, [SetAttr(target(tree), "dev", "vda", A)], override=True)
    assert '<target dev="vda"/>' in text
    [warning] = merge.overridden(done, "in.xml")
    assert (str(warning.span), warning.message) == (
        "t.vt:1:1", "'a' overrides the input: /domain/devices/disk[1]/target/@dev was "
                    "'hda', now 'vda'")
    [change] = merge.describe(tree, done)
    assert change.overridden


def test_a_clashing_preference_is_dropped_whole_with_a_warning(tree):
    done, warnings, text = applied(tree, [
        SetAttr(target(tree), "bus", "virtio", A),
        Add("devices", el("sound", model="ich9"), PREFER),
        SetAttr(target(tree), "bus", "sata", PREFER)])
    assert [edit.origin for _, edit, _ in done] == [A]
    assert "sound" not in text
    assert [(str(w.span), w.message) for w in warnings] == [
        ("t.vt:3:1", "preference 'p' dropped: 'p' wants "
                     "/domain/devices/disk[1]/target/@bus = 'sata', but 'a' sets "
                     "/domain/devices/disk[1]/target/@bus = 'virtio'")]


def test_a_clashing_completion_gives_way_silently(tree):
    done, warnings, _ = applied(tree, [SetAttr(target(tree), "bus", "sata", DEFAULT),
                                       Add("devices", el("sound"), DEFAULT),
                                       SetAttr(target(tree), "bus", "virtio", A)])
    assert [edit.origin for _, edit, _ in done] == [A]
    assert warnings == []


def test_the_input_clash_comes_before_an_addition_clash(tree):
    """Of several clashes, the values' are reported first, in the edits' order."""
    assert failure(tree, [
        Add("devices", el("video", el("model", type_="virtio")), A, ("video",)),
        Add("devices", el("video", el("model", type_="qxl")), B, ("video",)),
        SetAttr(target(tree), "dev", "vda", B)]).startswith(
        "t.vt:2:1: 'b' wants /domain/devices/disk[1]/target/@dev = 'vda', but the input")


def test_additions_of_one_thing_become_one(tree):
    done, _, text = applied(tree, [
        Add("devices", el("rng", model="virtio"), A, ("rng",)),
        Add("devices", el("rng", model="virtio"), B, ("rng",)),
        Add("devices", el("hub", el("address", type_="usb")), A, ("hub",)),
        Add("devices", el("hub", type_="usb"), B, ("hub",))])
    assert [edit.origin for _, edit, _ in done] == [A, A]
    assert '<rng model="virtio"/>' in text
    assert """<hub type="usb">
      <address type="usb"/>
    </hub>""" in text


def test_additions_of_one_thing_that_differ_conflict(tree):
    assert failure(tree, [Add("devices", el("rng", model="virtio"), A, ("rng",)),
                          Add("devices", el("rng", model="builtin"), B, ("rng",))]) == (
        "t.vt:2:1: 'b' wants a <rng> ('rng',), but 'a' adds a different one"
        " | t.vt:1:1: 'a' adds a different one")


def test_a_value_on_a_removed_element_conflicts(tree):
    assert failure(tree, [Remove(target(tree), A), SetAttr(target(tree), "bus", "virtio", B)],
                   override=True) == (
        "t.vt:2:1: 'b' wants /domain/devices/disk[1]/target/@bus = 'virtio', but 'a' "
        "removes /domain/devices/disk[1]/target | t.vt:1:1: 'a' removes "
        "/domain/devices/disk[1]/target")


def test_a_removal_is_listed_as_overridden(tree):
    graphics = tree.getroot().find("devices/graphics")
    done, _, text = applied(tree, [Remove(graphics, A), Remove(graphics, B)], override=True)
    assert "graphics" not in text
    [warning] = merge.overridden(done, "in.xml")
    assert warning.message == ("'a' overrides the input: /domain/devices/graphics[1] was "
                               '<graphics type="vnc"/>, now removed')
    assert [(c.path, c.new) for c in merge.describe(tree, done)] == [
        ("/domain/devices/graphics", None)]


def test_an_element_holding_text_cannot_take_a_child(tree):
    assert failure(tree, [Add("name", el("x"), A)]) == (
        "in.xml:2:1: 'a' needs a <x> inside <name>, which holds text instead")
