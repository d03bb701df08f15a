"""Every number has a range (virtuned/plan/limits.py, the slots' own ranges): an
absurd one is an input error (exit 2) at the trait or element that says it, naming
the range, before anything is sized from it. The reproductions of issue 14 run in a
process whose memory is capped (tests/bounded.py)."""

from __future__ import annotations

import pytest

from tests.bounded import run_bounded
from tests.cli_run import run, write
from virtuned.plan import limits

# (trait text, the error after "<trait 1>:1:COL: error: ")
REFUSED = [
    ("vcpus 1000000000000", 7,
     "vcpus: count: expected a whole number from 1 to 4096, got 1000000000000"),
    ("vcpus 99999999999999999999999999999999", 7,
     "vcpus: count: '99999999999999999999999999999999' is too large (more than 30 "
     "digits)"),
    ("vcpus 64000000", 7, "vcpus: count: expected a whole number from 1 to 4096, got "
     "64000000"),
    ("pcie root ports 10000", 17,
     "pcie root ports: count: expected a whole number from 1 to 240, got 10000"),
    ("iothreads 1000000000000", 11,
     "iothreads: count: expected a whole number from 1 to 256, got 1000000000000"),
    ("hugepages 0KiB", 1, "'hugepages 0KiB': 0KiB is not a page size of x86_64: page "
     "sizes must be 4KiB, 2MiB or 1GiB"),
    ("hugepages 1b", 1, "'hugepages 1b': 1b is not a page size of x86_64: page sizes "
     "must be 4KiB, 2MiB or 1GiB"),
    ("memory 99999999999999999999TiB", 1, "'memory 99999999999999999999TiB': memory "
     "must be whole KiB, at least 1MiB and less than 8EiB (libvirt's limit)"),
    ("memory 0GiB", 1, "'memory 0GiB': memory must be whole KiB, at least 1MiB and less "
     "than 8EiB (libvirt's limit)"),
    ("memory 1025b", 1, "'memory 1025b': memory must be whole KiB, at least 1MiB and "
     "less than 8EiB (libvirt's limit)"),
    ("guest numa nodes 129", 18,
     "guest numa nodes: count: expected a whole number from 1 to 128, got 129"),
    ("place on host node 1024", 20,
     "place on host node: node: expected a whole number from 0 to 1023, got 1024"),
    ("cpu topology sockets 4096 cores 4096 threads 4096", 1,
     "'cpu topology sockets 4096 cores 4096 threads 4096': 68719476736 vCPUs, but "
     "vCPUs must be 1..4096 on machine q35 (the newest QEMU's limit for q35; --domcaps "
     "gives this host's)"),
]


@pytest.mark.parametrize("text, col, message", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_number_out_of_range_is_refused_at_the_trait(text, col, message):
    code, out, err = run(["compile", "-t", text])
    assert (code, out, err.splitlines()[0]) == (2, "", f"<trait 1>:1:{col}: error: "
                                                       f"{message}")


@pytest.mark.parametrize("text", ["vcpus 1000000000000",
                                  "vcpus 99999999999999999999999999999999",
                                  "vcpus 64000000", "pcie root ports 1000000000"])
def test_the_reproductions_end_in_bounded_memory(text):
    code, out, err = run_bounded(["compile", "-t", text])
    assert (code, out) == (2, "") and err.startswith("<trait 1>:1:")


def test_reserved_cpus_beyond_libvirts_ids_are_never_expanded():
    code, out, err = run_bounded([
        "compile", "examples/domains/nfv-guest.xml", "-t", "dedicated cpus", "--host",
        "examples/hosts/two-node-smt.xml", "--reserved-cpus", "0-999999999"])
    assert (code, out, err) == (2, "", (
        "--reserved-cpus 0-999999999: error: --reserved-cpus: CPU 999999999 in "
        "'0-999999999' is out of range: CPU ids are 0..16383 (libvirt's limit)\n"))


def test_host_siblings_beyond_libvirts_ids_are_never_expanded(tmp_path):
    host = (limits_root() / "examples/hosts/two-node-smt.xml").read_text()
    (tmp_path / "host.xml").write_text(host.replace("siblings='0,8'",
                                                    "siblings='0-999999999'", 1))
    code, out, err = run_bounded(["compile", "examples/domains/nfv-guest.xml",
                                  "--host", str(tmp_path / "host.xml")])
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == (
        f"{tmp_path / 'host.xml'}:25:13: error: invalid <cpu> in the host capabilities: "
        "siblings: CPU 999999999 in '0-999999999' is out of range: CPU ids are 0..16383 "
        "(libvirt's limit)")


def limits_root():
    from tests.bounded import ROOT

    return ROOT


@pytest.mark.parametrize("machine, vcpus, limit, whose", [
    ("pc", 256, 255, "QEMU's limit for pc-i440fx"),
    ("pc-i440fx-7.2", 256, 255, "QEMU's limit for pc-i440fx"),
    ("pc-q35-7.2", 289, 288, "QEMU's limit for pc-q35-7.2"),
    ("pc-q35-2.6", 256, 255, "QEMU's limit for pc-q35-2.6"),
    ("pc-q35-8.1", 1025, 1024, "QEMU's limit for pc-q35-8.1"),
])
def test_the_machine_holds_the_vcpus_to_its_own_limit(tmp_path, machine, vcpus, limit,
                                                      whose):
    write(tmp_path, {"in.xml": f"<domain type='kvm'>\n  <os>\n    <type arch='x86_64' "
                               f"machine='{machine}'>hvm</type>\n  </os>\n</domain>\n"})
    code, out, err = run(["compile", "in.xml", "-t", f"vcpus {vcpus}"], cwd=tmp_path)
    assert (code, out, err.splitlines()[0]) == (2, "", (
        f"<trait 1>:1:1: error: 'vcpus {vcpus}': {vcpus} vCPUs, but vCPUs must be "
        f"1..{limit} on machine {machine} ({whose})"))
    assert run(["compile", "in.xml", "-t", f"vcpus {limit}"], cwd=tmp_path)[0] == 0


def test_the_input_vcpu_is_held_to_the_machine_limit(tmp_path):
    write(tmp_path, {"in.xml": "<domain type='kvm'>\n  <vcpu>300</vcpu>\n  <os>\n"
                               "    <type arch='x86_64' machine='pc'>hvm</type>\n"
                               "  </os>\n</domain>\n"})
    code, out, err = run(["compile", "in.xml", "-t", "dedicated cpus"], cwd=tmp_path)
    assert (code, out, err.splitlines()[0]) == (2, "", (
        "in.xml:2:3: error: <vcpu>300</vcpu>: 300 vCPUs, but vCPUs must be 1..255 on "
        "machine pc (QEMU's limit for pc-i440fx)"))


def test_an_absurd_input_vcpu_is_refused_before_it_is_expanded(tmp_path):
    write(tmp_path, {"in.xml": "<domain type='kvm'>\n  <vcpu>1000000000000</vcpu>\n"
                               "</domain>\n"})
    code, out, err = run_bounded(["compile", str(tmp_path / "in.xml"), "-t",
                                  "dedicated cpus"])
    assert (code, out, err.splitlines()[0]) == (2, "", (
        f"{tmp_path / 'in.xml'}:2:3: error: <vcpu>1000000000000</vcpu>: 1000000000000 "
        "vCPUs, but vCPUs must be 1..4096 on machine q35 (the newest QEMU's limit for "
        "q35; --domcaps gives this host's)"))
    # 'plan' describes an input no trait places from what it can read of it
    code, out, err = run_bounded(["plan", str(tmp_path / "in.xml")])
    assert (code, err, '"vcpus": 1,' in out) == (0, "", True)


def test_domcaps_give_the_hosts_own_vcpu_limit():
    code, out, err = run(["compile", "--domcaps", "tests/domcaps/kvm-q35.xml", "-t",
                          "vcpus 289"], cwd=limits_root())
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == (
        "<trait 1>:1:1: error: 'vcpus 289': 289 vCPUs, but vCPUs must be 1..288 on "
        "machine q35 (tests/domcaps/kvm-q35.xml: <vcpu max='288'>)")


@pytest.mark.parametrize("arch, good, bad, allowed", [
    ("x86_64", "1GiB", "4MiB", "4KiB, 2MiB or 1GiB"),
    ("aarch64", "64KiB", "8KiB", "4KiB, 64KiB, 2MiB, 32MiB, 512MiB, 1GiB or 16GiB"),
])
def test_page_sizes_are_the_architectures(arch, good, bad, allowed):
    from virtuned.plan.limits import PAGE_SIZES
    from virtuned.values import format_kib

    assert good in [format_kib(kib) for kib in PAGE_SIZES[arch]]
    assert ", ".join(format_kib(k) for k in PAGE_SIZES[arch][:-1]) + " or " + \
        format_kib(PAGE_SIZES[arch][-1]) == allowed
    assert bad not in [format_kib(kib) for kib in PAGE_SIZES[arch]]


def test_max_vcpus_without_a_known_machine_leaves_the_slot_range():
    assert limits.max_vcpus("virt") == (None, "")
    assert limits.max_vcpus("q35")[0] == 4096


@pytest.mark.parametrize("trait, code", [("video qxl", 0), ("network queues auto", 0),
                                         ("dedicated cpus", 2)])
def test_a_vcpu_of_thousands_of_digits_is_never_converted(tmp_path, trait, code):
    """Python refuses int() of more than 4300 digits (ValueError): every reader of a
    number checks its length first (values.whole_or_none, values.parse_int)."""
    write(tmp_path, {"in.xml": f"<domain type='kvm'>\n  <vcpu>{'9' * 5000}</vcpu>\n  "
                               "<devices><interface type='user'/></devices>\n</domain>\n"})
    got, out, err = run(["compile", "in.xml", "-t", trait], cwd=tmp_path)
    assert got == code
    if code:
        assert err.splitlines()[0] == (f"in.xml:2:3: error: invalid <vcpu> count "
                                       f"'{'9' * 40}...': vCPUs must be 1..4096")


@pytest.mark.parametrize("size", ["0", "99999999999999999999999"])
def test_the_input_memory_the_placement_splits_is_in_libvirts_range(tmp_path, size):
    write(tmp_path, {"in.xml": f"<domain type='kvm'>\n  <memory unit='TiB'>{size}</memory>"
                               "\n  <vcpu>4</vcpu>\n</domain>\n"})
    code, out, err = run(["compile", "in.xml", "-t", "guest numa nodes 2"], cwd=tmp_path)
    assert (code, out, err.splitlines()[0]) == (2, "", (
        f"in.xml:2:3: error: invalid <memory> size '{size}' unit 'TiB': memory must be "
        "more than 0 and less than 8EiB (libvirt's limit)"))
