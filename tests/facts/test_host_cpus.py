"""Reading a capabilities document's CPUs (virtuned/facts/host.py): a cell whose
CPUs all state plain numbers is read a column at a time, any other CPU by CPU;
both give the same facts, and a wrong CPU the same located error. The documents
of real hosts and every error message are in tests/facts/test_host.py."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.synthetic_hosts import capabilities
from virtuned.diagnostics import VirtunedError
from virtuned.facts import host
from virtuned.facts.host import HostCpu

SMALL = capabilities(2, 2, 2)  # CPUs 0-7: core c of node n is CPUs 2n+c and 2n+c+4


def cpus(parsed: host.Host) -> list[HostCpu]:
    return [cpu for cell in parsed.cells for cpu in cell.cpus]


def test_a_cell_read_by_columns_has_the_facts_of_one_read_cpu_by_cpu():
    text = capabilities(4, 8, 2)
    # A die_id on some of a cell's CPUs only: that cell is read CPU by CPU.
    by_cpu = re.sub(r"(<cpu id='\d+' socket_id='\d+') die_id='0'", r"\1", text, count=3)
    assert by_cpu != text
    assert host.parse(by_cpu, "h.xml") == host.parse(text, "h.xml")


def test_attributes_old_libvirt_leaves_out_take_their_defaults():
    """No die_id, core_id or siblings on any CPU: die 0, each CPU its own core."""
    text = re.sub(r" (die_id|core_id|siblings)='[\d,]+'", "", SMALL)
    assert cpus(host.parse(text, "h.xml"))[:2] == [
        HostCpu(0, 0, 0, 0, frozenset({0})), HostCpu(1, 0, 0, 1, frozenset({1}))]


def test_the_threads_of_a_core_share_one_set_of_siblings_ranges_too():
    text = SMALL.replace("siblings='0,4'", "siblings='0,4-4'")
    first = host.parse(text, "h.xml").cells[0]
    by_id = {cpu.id: cpu for cpu in first.cpus}
    assert by_id[0].siblings == frozenset({0, 4})
    assert by_id[0].siblings is by_id[4].siblings
    assert by_id[1].siblings is by_id[5].siblings


def test_a_long_number_is_read_as_cpu_by_cpu_reads_it():
    text = SMALL.replace("socket_id='1'", "socket_id='0000000000000000000001'")
    assert host.parse(text, "h.xml") == host.parse(SMALL, "h.xml")


@pytest.mark.parametrize("old, new, what", [
    ("core_id='1' siblings='1,5'/>\n            <cpu id='4'",
     "core_id=' 1' siblings='1,5'/>\n            <cpu id='4'",
     "core_id=' 1' (expected a whole number)"),
    ("socket_id='0' die_id='0' core_id='1' siblings='1,5'/>\n            <cpu id='4'",
     "socket_id='0,1' die_id='0' core_id='1' siblings='1,5'/>\n            <cpu id='4'",
     "socket_id='0,1' (expected a whole number)"),
    ("<cpu id='1' socket_id='0' die_id='0' core_id='1' siblings='1,5'/>",
     "<cpu id='1' socket_id='0' die_id='0' core_id='1' siblings='1,16384'/>",
     "siblings: CPU 16384 in '1,16384' is out of range: CPU ids are 0..16383 "
     "(libvirt's limit)"),
    ("<cpu id='1' socket_id", "<cpu id='16384' socket_id",
     "id='16384' (CPU ids are 0..16383, libvirt's limit)"),
])
def test_a_wrong_cpu_among_plain_ones_is_an_error_at_its_line(old, new, what):
    assert SMALL.count(old) == 1
    with pytest.raises(VirtunedError) as caught:
        host.parse(SMALL.replace(old, new), "h.xml")
    # the second CPU of node 0, on line 26 (the CLI finds the column by its "<cpu")
    assert (caught.value.exit_code, str(caught.value)) == (
        2, f"h.xml:26:1: invalid <cpu> in the host capabilities: {what}")


@st.composite
def cells_with_siblings(draw):
    """A cell's CPUs with sibling lists of any shape: a partition into cores (the
    usual host), lists naming CPUs of other cells, lists that disagree, none."""
    ids = draw(st.lists(st.integers(0, 40), min_size=1, max_size=12, unique=True))
    if draw(st.booleans()):  # cores of 1-3 threads, each listing exactly its core
        rest, sets = list(ids), {}
        while rest:
            core = frozenset(rest[:draw(st.integers(1, 3))])
            rest = rest[len(core):]
            sets.update(dict.fromkeys(core, core))
    else:
        sets = {i: frozenset(draw(st.lists(st.integers(0, 44), max_size=4))) | (
            {i} if draw(st.booleans()) else set()) for i in ids}
    cpus = tuple(HostCpu(i, draw(st.integers(0, 1)), 0, draw(st.integers(0, 3)), sets[i])
                 for i in ids)
    return host.HostCell(0, None, (), cpus)


@given(cells_with_siblings())
def test_cores_from_sibling_sets_are_those_the_links_give(cell):
    assert cell.cores() == cell._linked_cores()
