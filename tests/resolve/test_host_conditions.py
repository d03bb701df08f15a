"""``when host ...``: conditions on the host given with --host, false without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_run import run

ROOT = Path(__file__).resolve().parent.parent.parent
SMT = str(ROOT / "examples" / "hosts" / "two-node-smt.xml")  # SMT, 2 nodes, 2M+1G pools
TEST_DRIVER = str(ROOT / "examples" / "hosts" / "test-driver.xml")  # no SMT, no hugepages
PROFILE = """\
when host smt {
  dedicated cpus threads isolate
}
when not host smt {
  dedicated cpus
}
when host hugepages 1GiB {
  hugepages 1GiB
}
when host nodes 2 {
  guest numa nodes 2
}
"""


def plan(tmp_path, *host):
    import json

    (tmp_path / "p.vt").write_text(PROFILE)
    code, out, err = run(["plan", "-p", "p.vt", "-t", "vcpus 2", "-t", "memory 2GiB", *host], cwd=tmp_path)
    # A capabilities document's pools are totals: said where its hugepages are placed.
    totals = (f"p.vt:8:3: warning: 'hugepages 1GiB': {SMT} is a capabilities document: "
              "its page counts are the pools' totals, so they were taken as free (free "
              "pages unknown); a host snapshot ('virtuned host snapshot') or --connect "
              "says what is free\n      hugepages 1GiB\n      ^^^^^^^^^^^^^^\n")
    assert (code, err) == (0, totals if SMT in host else ""), err
    wanted = json.loads(out)["requirements"]
    return (wanted["cpus"]["threads"], wanted["hugepages"], len(wanted["cells"]))


def test_host_facts_choose_the_traits(tmp_path):
    assert plan(tmp_path, "--host", SMT) == (
        "isolate", {"page_kib": 1048576, "pages": 2}, 2)
    assert plan(tmp_path, "--host", TEST_DRIVER) == ("prefer", None, 2)


def test_without_a_host_every_host_fact_is_false(tmp_path):
    assert plan(tmp_path) == ("prefer", None, 1)


def test_smt_counts_only_threads_the_guest_may_use(tmp_path):
    # Every core keeps one thread reserved: no sibling pair is the guest's.
    assert plan(tmp_path, "--host", SMT, "--reserved-cpus", "8-15")[0] == "prefer"


@pytest.mark.parametrize("condition, message", [
    ("host cores", "unknown host fact 'host cores'"),
    ("host nodes", "unknown host fact 'host nodes'"),
    ("host hugepages 1Gi", "unknown unit 'Gi' in '1Gi'; use one of KB, k, K, KiB, MB, M, "
                           "MiB, GB, G, GiB, TB, T, TiB"),
])
def test_a_host_fact_that_cannot_be_tested_is_an_error(tmp_path, condition, message):
    (tmp_path / "p.vt").write_text(f"when {condition} {{\n  shared cpus\n}}\n")
    code, out, err = run(["compile", "-p", "p.vt"], cwd=tmp_path)
    assert (code, out) == (2, "")
    assert f"error: {message}" in err.splitlines()[0]
