"""Host capabilities (``--host``): real ``virsh capabilities`` documents parsed into
exact facts, and every way a document or a CPU list can be wrong, with its message."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.synthetic_hosts import CellShape, capabilities, shaped
from virtuned.facts import host
from virtuned.diagnostics import VirtunedError
from virtuned.facts.host import Host, HostCell, HostCpu, HostFacts

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ROOT / "examples" / "hosts"
CORPUS = Path("/work/shared/corpus/virtinst-compare")
REAL = sorted(path for path in CORPUS.glob("*/capabilities/*.xml")
              if b"<cells" in path.read_bytes()) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not REAL, reason="the shared corpus is not here")


def parse_file(path: Path) -> Host:
    return host.parse(path.read_bytes(), str(path))


def smt_cpu(ident: int, socket: int, core: int, sibling: int) -> HostCpu:
    return HostCpu(ident, socket, 0, core, frozenset((ident, sibling)))


def test_two_node_smt_host():
    parsed = parse_file(HOSTS / "two-node-smt.xml")
    pages = ((4, 2097152), (2048, 2048), (1048576, 4))
    cells = tuple(HostCell(
        node, 16777216, pages,
        tuple(sorted((smt_cpu(first + core + 8 * thread, node, core,
                              first + core + 8 * (1 - thread))
                      for core in range(4) for thread in range(2)),
                     key=lambda cpu: cpu.id)),
        ((0, 10 if node == 0 else 21), (1, 21 if node == 0 else 10)))
        for node, first in ((0, 0), (1, 4)))
    assert parsed == Host(str(HOSTS / "two-node-smt.xml"), cells)
    assert parsed.cpu_ids == frozenset(range(16))
    assert [cell.cores() for cell in parsed.cells] == [
        ((0, 8), (1, 9), (2, 10), (3, 11)), ((4, 12), (5, 13), (6, 14), (7, 15))]
    assert (parsed.cell(1).pool(1048576), parsed.cell(1).pool(64), parsed.cell(2)) == (
        4, 0, None)


def test_test_driver_host():
    """``virsh -c test:///default capabilities``: no SMT, 8 KiB pages on node 1."""
    parsed = parse_file(HOSTS / "test-driver.xml")
    assert [(c.id, c.memory_kib, c.pages, [cpu.id for cpu in c.cpus], c.distances)
            for c in parsed.cells] == [
        (0, 2097152, ((4, 524288), (2048, 0), (1048576, 0)), list(range(8)), ()),
        (1, 4194304, ((8, 524288), (2048, 0), (1048576, 0)), list(range(8, 16)), ())]
    assert parsed.cells[1].cpus[3] == HostCpu(11, 1, 0, 3, frozenset((11,)))
    assert parsed.cells[1].cores() == tuple((cpu,) for cpu in range(8, 16))


@needs_corpus
def test_kvm_x86_64_host():
    parsed = parse_file(CORPUS / "master" / "capabilities" / "kvm-x86_64.xml")
    (cell,) = parsed.cells
    assert (cell.id, cell.memory_kib, cell.pages, cell.distances) == (
        0, 32731708, ((4, 8182927), (2048, 0), (1048576, 0)), ((0, 10),))
    assert cell.cpus == tuple(smt_cpu(ident, 0, ident % 4, (ident + 4) % 8)
                              for ident in range(8))
    assert cell.cores() == ((0, 4), (1, 5), (2, 6), (3, 7))


@needs_corpus
def test_siblings_make_the_core_whatever_core_id_says():
    """lxc.xml numbers the two threads of each core as two cores (core_id 0 and 1
    for siblings 0-1): the siblings win, so 'isolate' never puts vCPUs on both."""
    parsed = parse_file(CORPUS / "master" / "capabilities" / "lxc.xml")
    (cell,) = parsed.cells
    assert cell.cpus[1] == HostCpu(1, 0, 0, 1, frozenset((0, 1)))
    assert cell.cores() == ((0, 1), (3, 4), (6, 7), (2, 5))


@needs_corpus
def test_cpus_without_topology_are_cores_of_their_own():
    """test-empty.xml lists bare <cpu id>s and no memory (not checked then)."""
    parsed = parse_file(CORPUS / "master" / "capabilities" / "test-empty.xml")
    assert parsed.cells == (HostCell(0, None, (), (HostCpu(0, 0, 0, 0, frozenset((0,))),
                                                  HostCpu(1, 0, 0, 1, frozenset((1,))))),)
    assert parsed.cells[0].cores() == ((0,), (1,))


@needs_corpus
@pytest.mark.parametrize("path", REAL, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_every_real_host_parses(path):
    text = path.read_text()
    parsed = parse_file(path)
    assert len(parsed.cells) == text.count("<cell id=")
    assert len(parsed.cpu_ids) == text.count("<cpu id=")
    for cell in parsed.cells:  # every CPU of a cell is in exactly one of its cores
        cores = cell.cores()
        assert sorted(cpu for core in cores for cpu in core) == [c.id for c in cell.cpus]


def test_pages_and_memory_in_other_units():
    parsed = host.parse(CELL.format(
        "<memory unit='GiB'>2</memory><pages unit='MiB' size='2'>7</pages>"
        "<cpus num='1'><cpu id='0'/></cpus>"), "h.xml")
    assert (parsed.cells[0].memory_kib, parsed.cells[0].pages) == (2097152, ((2048, 7),))


def test_synthetic_hosts_are_what_they_say():
    parsed = host.parse(capabilities(2, 3, 2), "s.xml")
    assert [cell.cores() for cell in parsed.cells] == [((0, 6), (1, 7), (2, 8)),
                                                       ((3, 9), (4, 10), (5, 11))]
    odd = host.parse(shaped([CellShape(2, 1, 1024, ((2048, 0),)),
                             CellShape(1, 4, 2048, ((2048, 1),), sockets=1)]), "o.xml")
    assert [(c.memory_kib, c.pages, c.cores()) for c in odd.cells] == [
        (1024, ((4, 256), (2048, 0)), ((0,), (1,))),
        (2048, ((4, 0), (2048, 1)), ((2, 5, 8, 11),))]


CELL = ("<capabilities><host><topology><cells num='1'><cell id='0'>{}</cell></cells>"
        "</topology></host></capabilities>")
ONE_CPU = "<cpus num='1'><cpu id='0'/></cpus>"


@pytest.mark.parametrize("text, message", [
    ("<capabilities><host/></capabilities>",
     "bad.xml:1:1: the host capabilities describe no NUMA cells (<host><topology><cells>)"),
    ("<domain/>", "bad.xml:1:1: expected a <capabilities> root element, got <domain>"),
    ("<!DOCTYPE capabilities [<!ENTITY a 'b'>]><capabilities>&a;</capabilities>",
     "bad.xml:1:1: DTDs and entity declarations are not allowed in host capabilities "
     "XML"),
    ("<capabilities>", "bad.xml:1:15: malformed XML: Premature end of data in tag "
     "capabilities line 1"),
    (CELL.replace("id='0'", "id='two'").format(ONE_CPU),
     "bad.xml:1:1: invalid <cell> in the host capabilities: id='two' (expected a whole "
     "number)"),
    (CELL.replace("id='0'", "id='\u00b2'").format(ONE_CPU),
     "bad.xml:1:1: invalid <cell> in the host capabilities: id='\u00b2' (expected a "
     "whole number)"),
    (CELL.replace(" id='0'", "").format(ONE_CPU),
     "bad.xml:1:1: invalid <cell> in the host capabilities: no id"),
    (CELL.format("<cpus num='1'><cpu id='-1'/></cpus>"),
     "bad.xml:1:1: invalid <cpu> in the host capabilities: id='-1' (expected a whole "
     "number)"),
    (CELL.format("<cpus num='1'><cpu id='0' core_id=' 1'/></cpus>"),
     "bad.xml:1:1: invalid <cpu> in the host capabilities: core_id=' 1' (expected a "
     "whole number)"),
    (CELL.format("<cpus num='1'><cpu id='0' siblings='0-x'/></cpus>"),
     "bad.xml:1:1: invalid <cpu> in the host capabilities: siblings: expected a CPU "
     "list like 0-3,8,^2, got '0-x'"),
    (CELL.format("<memory unit='XiB'>1</memory>" + ONE_CPU),
     "bad.xml:1:1: invalid <memory> in the host capabilities: unit 'XiB' (expected "
     "a unit like KiB, MiB or GiB)"),
    (CELL.format("<memory unit='KiB'>lots</memory>" + ONE_CPU),
     "bad.xml:1:1: invalid <memory> in the host capabilities: 'lots' (expected a "
     "whole number)"),
    (CELL.format("<pages unit='KiB'>3</pages>" + ONE_CPU),
     "bad.xml:1:1: invalid <pages> in the host capabilities: no size"),
    (CELL.format("<distances><sibling id='0'/></distances>" + ONE_CPU),
     "bad.xml:1:1: invalid <sibling> in the host capabilities: no value"),
    (CELL.format("<cpus num='2'><cpu id='0'/><cpu id='0'/></cpus>"),
     "bad.xml:1:1: the host capabilities list CPU id 0 twice"),
    (CELL.replace("</cell>", "</cell><cell id='0'>" + ONE_CPU.replace("'0'", "'1'")
                  + "</cell>").format(ONE_CPU),
     "bad.xml:1:1: the host capabilities list cell id 0 twice"),
])
def test_bad_documents_are_input_errors(text, message):
    with pytest.raises(VirtunedError) as caught:
        host.parse(text, "bad.xml")
    assert (caught.value.exit_code, str(caught.value)) == (2, message)


def test_errors_point_at_the_line():
    text = CELL.format(ONE_CPU).replace("<cpus", "\n\n<cpus").replace("<cpu id='0'/>",
                                                                      "<cpu id='x'/>")
    with pytest.raises(VirtunedError) as caught:
        host.parse(text, "bad.xml")
    assert str(caught.value).startswith("bad.xml:3:")


SMT = parse_file(HOSTS / "two-node-smt.xml")


@pytest.mark.parametrize("reserved, allocated, usable", [
    (None, None, ("0-3,8-11", "4-7,12-15")),
    ("0,8", None, ("1-3,9-11", "4-7,12-15")),
    ("", "", ("", "")),  # an empty grant leaves nothing
    (" ", None, ("0-3,8-11", "4-7,12-15")),
    ("0-15,^4", "2-6", ("", "4")),
    (None, "0-3,^2,12", ("0-1,3", "12")),
])
def test_facts_apply_reserved_and_allocated(reserved, allocated, usable):
    from virtuned.values import format_cpulist

    facts = host.facts(SMT, reserved, allocated)
    assert isinstance(facts, HostFacts)
    assert tuple(format_cpulist(facts.usable(cell)) for cell in SMT.cells) == usable


def test_describe_limits():
    assert host.facts(SMT, None, None).describe_limits() == ""
    assert host.facts(SMT, "0-1,8", "0-11").describe_limits() == (
        " after reserved 0-1,8 and inside allocated 0-11")
    assert host.facts(SMT, None, "4-7").describe_limits() == " inside allocated 4-7"


@pytest.mark.parametrize("reserved, allocated, message", [
    ("16", None, "--reserved-cpus 16: --reserved-cpus: CPU 16 is not on the host "
     "(two-node-smt.xml has CPUs 0-15)"),
    ("0,16-17,40", None, "--reserved-cpus 0,16-17,40: --reserved-cpus: CPUs 16-17,40 "
     "are not on the host (two-node-smt.xml has CPUs 0-15)"),
    (None, "8-20", "--allocated-cpus 8-20: --allocated-cpus: CPUs 16-20 are not on "
     "the host (two-node-smt.xml has CPUs 0-15)"),
    ("0,,1", None, "--reserved-cpus 0,,1: --reserved-cpus: expected a CPU list like "
     "0-3,8,^2, got '0,,1'"),
    ("a-b", None, "--reserved-cpus a-b: --reserved-cpus: expected a CPU list like "
     "0-3,8,^2, got 'a-b'"),
    (None, "3-1", "--allocated-cpus 3-1: --allocated-cpus: CPU range '3-1' in '3-1' "
     "runs backwards"),
])
def test_bad_cpu_lists(reserved, allocated, message):
    smt = host.parse((HOSTS / "two-node-smt.xml").read_bytes(), "two-node-smt.xml")
    with pytest.raises(VirtunedError) as caught:
        host.facts(smt, reserved, allocated)
    assert (caught.value.exit_code, str(caught.value)) == (2, message)
