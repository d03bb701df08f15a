"""What an emitter finds through its Context (virtuned/emit/__init__.py): the same
elements lxml's own lookups find, each kept in the compile's memo, so a second
emitter asking gets the very element the first got."""

from __future__ import annotations

from virtuned import domain
from virtuned.emit import Context, _context

INPUT = b"""<domain type='kvm'>
  <name>a</name>
  <features><acpi/><kvm><hint-dedicated state='on'/></kvm></features>
  <devices>
    <disk type='file' device='disk'><target dev='vda'/></disk>
    <!-- a comment among the devices -->
    <controller type='usb'/>
    <disk type='file' device='cdrom'><target dev='sda'/><address type='drive'/></disk>
    <interface type='network'/>
  </devices>
</domain>"""


def context(xml: bytes = INPUT, memo: dict | None = None) -> Context:
    root = domain.parse(xml, "in.xml").getroot()
    memo = domain.first_children(root) if memo is None else memo
    return _context((root, root.find("devices"), None, "in.xml", None, False, memo, None,
                     None))


def test_find_and_find_in_give_what_find_gives():
    ctx = context()
    assert ctx.find("features") is ctx.root.find("features")
    assert ctx.find("features/kvm/hint-dedicated").get("state") == "on"
    assert ctx.find("os") is None and ctx.find("cpu/numa") is None
    cdrom = ctx.devices_of("disk")[1]
    assert ctx.find_in(cdrom, "address").get("type") == "drive"
    assert ctx.find_in(cdrom, "driver") is None
    # a path with a predicate is a path, not a tag
    assert ctx.find_in(cdrom, "address[@type='drive']") is ctx.find_in(cdrom, "address")
    assert ctx.find_in(cdrom, "address[@type='pci']") is None


def test_what_one_emitter_found_the_next_gets_from_the_memo():
    first = context()
    second = first._replace(origin="another trait")
    disks = first.devices_of("disk")
    assert second.devices_of("disk") is disks
    assert second.find_in(disks[0], "target") is first.find_in(disks[0], "target")


def test_devices_by_kind_in_document_order():
    ctx = context()
    assert [d.get("device") for d in ctx.devices_of("disk")] == ["disk", "cdrom"]
    assert [d.tag for d in ctx.devices_of("interface", "disk")] == [
        "disk", "disk", "interface"]
    assert ctx.devices_of("video") == ()


def test_no_devices_means_none_of_any_kind():
    ctx = context(b"<domain type='kvm'><name>a</name></domain>")
    assert ctx.devices is None
    assert ctx.devices_of("disk") == () and ctx.devices_of("disk", "interface") == ()


def test_once_works_a_fact_out_once_per_compile():
    ctx, calls = context(), []

    def disks_on_file(ctx):
        calls.append(1)
        return tuple(d for d in ctx.devices_of("disk") if d.get("type") == "file")

    assert len(ctx.once(disks_on_file)) == 2
    assert ctx._replace(origin="another").once(disks_on_file) == ctx.once(disks_on_file)
    assert calls == [1]


def test_the_root_children_are_found_by_their_first_of_each_tag():
    ctx = context(b"<domain type='kvm'><name>a</name><seclabel type='dynamic'/>"
                  b"<seclabel type='none'/></domain>")
    assert ctx.find("seclabel").get("type") == "dynamic"
    assert ctx.find("seclabel") is ctx.root.find("seclabel")
    assert ctx.find("os") is None and ctx.find("os/type") is None


def test_a_root_that_domain_parse_did_not_read_is_walked_as_well():
    root = domain.empty_domain().getroot()
    assert domain.first_children(root) == {}
    root.append(root.makeelement("os", {}))
    assert domain.first_children(root) == {"os": root[0]}
