"""Placement through the whole compile, on random hosts and trait sets: the order of
the traits never matters, compiling the output again changes nothing, and a request
either compiles or is refused as infeasible or conflicting (exit 3), never worse."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.synthetic_hosts import capabilities
from virtuned import api
from virtuned.diagnostics import ExitCode, VirtunedError

DOMAIN = """<domain type='kvm'>
  <name>guest</name>
  <memory unit='GiB'>{memory}</memory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
</domain>
"""


@st.composite
def requests(draw):
    cells, cores = draw(st.integers(1, 4)), draw(st.integers(2, 6))
    threads = draw(st.sampled_from((1, 2)))
    host = capabilities(cells, cores, threads, memory_gib=8, pages_2m=2048, pages_1g=4)
    cpus = cells * cores * threads
    reserved = draw(st.sets(st.integers(0, cpus - 1), max_size=cpus // 2))
    policy = draw(st.sampled_from((None, "dedicated cpus", "dedicated cpus threads isolate",
                                   "dedicated cpus threads require", "shared cpus")))
    lines = [policy] if policy else []
    lines += draw(st.lists(st.sampled_from((
        "emulator threads isolated", "guest numa nodes 2", "hugepages 2MiB",
        "iothreads 2", "locked memory", "place on host node 0")), unique=True))
    if policy and policy.startswith("dedicated") and draw(st.booleans()):
        lines.append("realtime")
    if not lines:
        lines = ["shared cpus"]
    domain = DOMAIN.format(memory=draw(st.integers(1, 6)), vcpus=draw(st.integers(2, 8)))
    reserved_text = ",".join(map(str, sorted(reserved))) or None
    return domain, host, reserved_text, lines


def compile_or_refuse(domain, host, reserved, lines):
    try:
        return 0, api.compile(domain, traits=lines, host=host, reserved_cpus=reserved).xml
    except VirtunedError as exc:
        return int(exc.exit_code), exc.diagnostics[0].message


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_order_never_matters_and_recompiling_changes_nothing(request):
    domain, host, reserved, lines = request
    code, first = compile_or_refuse(domain, host, reserved, lines)
    assert code in (0, ExitCode.CONFLICT), first
    for order in itertools.islice(itertools.permutations(lines), 1, 4):
        assert compile_or_refuse(domain, host, reserved, list(order)) == (code, first)
    if code == 0:
        assert compile_or_refuse(first, host, reserved, lines) == (0, first)
