"""What the input states about its platform (virtuned/facts/platform.py)."""

from lxml import etree

from virtuned import domain
from virtuned.facts.platform import Stated, stated_platform

# Comments are passed over.
STATED = b"""<domain type='kvm'>
  <!-- a comment first -->
  <memory unit='MiB'>512</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc-q35-8.2'>hvm</type></os>
</domain>"""
# domain.parse refuses a second of these; of a tree read otherwise, the first counts,
# as libvirt's parser reads the first.
DOUBLED = STATED.replace(b"</domain>", b"""  <memory unit='GiB'>4</memory>
  <vcpu>8</vcpu>
  <os><type arch='i686' machine='pc'>hvm</type></os>
</domain>""")

EXPECTED = Stated("kvm", "pc-q35-8.2", "x86_64", True, None, 512 * 1024, 2)


def test_a_parsed_document():
    assert stated_platform(domain.parse(STATED, "d.xml").getroot()) == EXPECTED


def test_the_first_of_each_child_counts_in_a_tree_that_domain_parse_did_not_read():
    assert stated_platform(etree.fromstring(DOUBLED)) == EXPECTED


def test_an_empty_domain_states_nothing():
    assert stated_platform(domain.empty_domain().getroot()) == Stated(
        None, None, None, False, None, None, None)


def test_unreadable_sizes_are_left_to_the_planner():
    root = etree.fromstring(b"<domain><memory unit='parsec'>1</memory><vcpu>two</vcpu>"
                            b"</domain>")
    assert stated_platform(root) == Stated(None, None, None, False, None, None, None)
