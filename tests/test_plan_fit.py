"""``virtuned plan`` and ``virtuned fit``: exact JSON answers, checked against the
shipped JSON Schema, and the errors that leave stdout empty."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest

from tests.cli_run import run

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ROOT / "examples" / "hosts"
SMT = str(HOSTS / "two-node-smt.xml")  # 2 nodes x 4 cores x 2 threads; node 0: 0-3,8-11
TEST_DRIVER = str(HOSTS / "test-driver.xml")  # 2 nodes x 8 CPUs; 2 GiB and 4 GiB
SCHEMA = json.loads((ROOT / "virtuned" / "plan.schema.json").read_text())
DOMAIN = """<domain type='kvm'>
  <name>nfv</name>
  <memory unit='GiB'>4</memory>
  <vcpu>4</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
</domain>
"""
NFV = ["-t", "dedicated cpus threads isolate", "-t", "emulator threads isolated",
       "-t", "hugepages 1GiB", "-t", "guest numa nodes 2", "-t", "iothreads 1",
       "-t", "realtime"]


# A capabilities document's page counts are totals: said at the hugepages trait.
TOTALS_WARNING = (
    f"<trait 4>:1:1: warning: 'hugepages 1GiB': {SMT} is a capabilities document: its "
    "page counts are the pools' totals, so they were taken as free (free pages "
    "unknown); a host snapshot ('virtuned host snapshot') or --connect says what is "
    "free\n    hugepages 1GiB\n    ^^^^^^^^^^^^^^\n")


@pytest.fixture
def domain(tmp_path):
    (tmp_path / "d.xml").write_text(DOMAIN)
    return tmp_path


def answer(argv, cwd, warnings: str = "") -> object:
    code, out, err = run(argv, cwd=cwd)
    assert (code, err) == (0, warnings)
    value = json.loads(out)
    jsonschema_rs.validator_for(SCHEMA).validate(value)
    return value


def test_plan_without_a_host_says_what_a_host_must_offer(domain):
    assert answer(["plan", "d.xml", *NFV], domain) == {
        "requirements": {
            "vcpus": 4, "memory_kib": 4194304,
            "cpus": {"policy": "dedicated", "threads": "isolate", "threads_per_core": None,
                     "dedicated": 5, "shared": 0, "realtime": True},
            "emulator": {"policy": "isolated", "dedicated_cpus": 1},
            "iothreads": 1,
            "hugepages": {"page_kib": 1048576, "pages": 4},
            "host_node": None, "guest_numa": True,
            "cells": [{"id": 0, "vcpus": "0-1", "cpus": 2, "dedicated_cpus": 2,
                       "memory_kib": 2097152, "hugepages": 2},
                      {"id": 1, "vcpus": "2-3", "cpus": 2, "dedicated_cpus": 2,
                       "memory_kib": 2097152, "hugepages": 2}],
            "needs_host": True},
        "placement": None}


def test_plan_with_a_host_gives_the_placement(domain):
    placement = answer(["plan", "d.xml", *NFV, "--host", SMT, "--reserved-cpus", "0,8"],
                       domain, TOTALS_WARNING)["placement"]
    assert placement == {
        "nodes": "0-1", "cpuset": "1-5",
        "cells": [{"cell": 0, "host_node": 0, "vcpus": {"0": "1", "1": "2"}},
                  {"cell": 1, "host_node": 1, "vcpus": {"2": "4", "3": "5"}}],
        "emulator": "3", "iothreads": "3"}


def test_a_guest_that_needs_no_placement_fits_anywhere(domain):
    value = answer(["plan", "d.xml", "-t", "video qxl", "--host", SMT], domain)
    assert (value["requirements"]["needs_host"], value["placement"]) == (False, None)
    assert value["requirements"]["cpus"] == {
        "policy": None, "threads": None, "threads_per_core": None, "dedicated": 0,
        "shared": 4, "realtime": False}


def test_fit_answers_each_host_in_the_order_given(domain):
    assert answer(["fit", "d.xml", *NFV, "--reserved-cpus", "0-1",
                   "--hosts", TEST_DRIVER, SMT], domain) == [
        {"host": TEST_DRIVER, "fits": False,
         "reason": "host node 0: 0 free 1GiB hugepages, guest cell 0 needs 2; "
                   "host node 1: 0 free 1GiB hugepages, guest cell 0 needs 2",
         "score": None, "placement": None},
        # 14 usable CPUs (16 less reserved 0-1), 10 taken (5 whole cores: isolate
        # idles the siblings), 4 of 8 free 1 GiB pages taken, on 2 nodes:
        # 0.9 * (4/14 + 4/8) / 2 + 0 = 0.3536
        {"host": SMT, "fits": True, "reason": None, "score": 0.3536,
         "placement": {"nodes": "0-1", "cpuset": "2-6",
                       "cells": [{"cell": 0, "host_node": 0, "vcpus": {"0": "2", "1": "3"}},
                                 {"cell": 1, "host_node": 1, "vcpus": {"2": "4", "3": "5"}}],
                       "emulator": "6", "iothreads": "6"}}]


def test_plan_on_a_host_it_does_not_fit_is_exit_3_with_the_reason(domain):
    code, out, err = run(["plan", "d.xml", "-t", "dedicated cpus", "-t", "vcpus 4",
                          "--host", SMT, "--reserved-cpus", "0-2,8-10,4-6,12-14"],
                         cwd=domain)
    assert (code, out) == (3, "")
    assert err == (
        f"<trait 1>:1:1: error: infeasible placement on {SMT}: host node 0: 2 free CPUs "
        "after reserved 0-2,4-6,8-10,12-14, guest cell 0 needs 4; host node 1: 2 free "
        "CPUs after reserved 0-2,4-6,8-10,12-14, guest cell 0 needs 4\n"
        "    dedicated cpus\n    ^^^^^^^^^^^^^^\n")


def test_fit_refuses_a_broken_host_file_and_prints_nothing(domain):
    (domain / "broken.xml").write_text("<capabilities><host>\n")
    code, out, err = run(["fit", "d.xml", "-t", "dedicated cpus", "--hosts", SMT,
                          "broken.xml"], cwd=domain)
    assert (code, out) == (2, "")
    assert err.startswith("broken.xml:2:1: error: ")


def test_cpu_lists_need_a_host(domain):
    code, out, err = run(["compile", "d.xml", "-t", "dedicated cpus",
                          "--reserved-cpus", "0-1"], cwd=domain)
    assert (code, out) == (2, "")
    assert err == ("--reserved-cpus 0-1: error: --reserved-cpus needs the host it "
                   "applies to\nhint: give the host's 'virsh capabilities' with --host\n")


def test_reserved_cpus_the_host_lacks_are_refused(domain):
    code, out, err = run(["plan", "d.xml", "-t", "dedicated cpus", "--host", SMT,
                          "--reserved-cpus", "0,64"], cwd=domain)
    assert (code, out) == (2, "")
    assert err == (f"--reserved-cpus 0,64: error: --reserved-cpus: CPU 64 is not on "
                   f"the host ({SMT} has CPUs 0-15)\n")


def test_allocated_cpus_bound_the_placement(domain):
    placement = answer(["plan", "d.xml", "-t", "dedicated cpus", "--host", SMT,
                        "--allocated-cpus", "5-7,13"], domain)["placement"]
    assert placement == {
        "nodes": "1", "cpuset": "5-7,13",
        "cells": [{"cell": 0, "host_node": 1,
                   "vcpus": {"0": "5", "1": "13", "2": "6", "3": "7"}}],
        "emulator": "5-7,13", "iothreads": None}


BUSY = str(HOSTS / "busy-host.json")  # a snapshot: other guests hold CPUs, pages


def test_fit_best_answers_the_best_scored_hosts_best_first(domain):
    """Scores (docs/placement.md#ranking-hosts), each on one node (+ 0.1):
    two-node-smt 0.9 * (12/16 CPUs + 28/32 GiB) / 2 + 0.1 = 0.8313 (twice: the
    first given first); busy-host 0.6429; test-driver, 0.9 * (12/16 + 2/6 GiB) / 2
    + 0.1 = 0.5875, is fourth."""
    one_node = [{"cell": 0, "host_node": 0,
                 "vcpus": {"0": "0", "1": "8", "2": "1", "3": "9"}}]
    assert answer(["fit", "d.xml", "-t", "dedicated cpus", "--best", "3",
                   "--hosts", TEST_DRIVER, SMT, BUSY, SMT], domain) == [
        {"host": SMT, "fits": True, "reason": None, "score": 0.8313,
         "placement": {"nodes": "0", "cpuset": "0-1,8-9", "cells": one_node,
                       "emulator": "0-1,8-9", "iothreads": None}},
        {"host": SMT, "fits": True, "reason": None, "score": 0.8313,
         "placement": {"nodes": "0", "cpuset": "0-1,8-9", "cells": one_node,
                       "emulator": "0-1,8-9", "iothreads": None}},
        {"host": BUSY, "fits": True, "reason": None, "score": 0.6429,
         "placement": {"nodes": "0", "cpuset": "0,3-5",
                       "cells": [{"cell": 0, "host_node": 0,
                                  "vcpus": {"0": "0", "1": "3", "2": "4", "3": "5"}}],
                       "emulator": "0,3-5", "iothreads": None}}]


def test_fit_best_leaves_out_the_hosts_it_does_not_fit(domain):
    assert answer(["fit", "d.xml", *NFV, "--reserved-cpus", "0-1", "--best", "5",
                   "--hosts", TEST_DRIVER], domain) == []


def test_fit_draws_a_progress_bar_on_a_terminal(domain, monkeypatch):
    import contextlib
    import io

    from virtuned.cli import main

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err, out = Terminal(), io.StringIO()
    monkeypatch.chdir(domain)
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        assert main(["fit", "d.xml", "-t", "shared cpus", "--hosts", SMT, TEST_DRIVER]) == 0
    bar = "\rfit  [{}]  {}/2 hosts"
    assert err.getvalue() == (bar.format("#" * 15 + "." * 15, 1)
                              + bar.format("#" * 30, 2) + "\n")
    assert [a["fits"] for a in json.loads(out.getvalue())] == [True, True]
