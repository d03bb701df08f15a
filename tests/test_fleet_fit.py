"""``fit`` over a fleet (virtuned/api.py): host documents parsed once per content,
in a cache that never grows past its bound; hosts shared among processes answer as
one process does; every host answered as the full planner answers it alone."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.synthetic_hosts import fleet
from virtuned import api, caching
from virtuned.diagnostics import VirtunedError
from virtuned.facts import snapshot

NFV = ["dedicated cpus threads isolate", "emulator threads isolated", "hugepages 1GiB",
       "guest numa nodes 2"]
DOMAIN = ("<domain type='kvm'><name>nfv</name><memory unit='GiB'>8</memory><vcpu>8</vcpu>"
          "<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>")


@pytest.fixture
def documents(monkeypatch):
    """A fresh cache of parsed host documents of 4 entries, for this test alone."""
    cache = caching.Bounded(4)
    monkeypatch.setattr(api, "HOST_DOCUMENTS", cache)
    return cache


def texts(count: int, seed: int = 3) -> list[str]:
    return [json.dumps(host) for host in fleet(count, seed, nodes=(2, 4), cores=(8, 12))]


def test_a_host_document_is_parsed_once_whatever_it_is_named(documents, monkeypatch):
    parsed = []
    real = snapshot.parse
    monkeypatch.setattr(snapshot, "parse", lambda *a: parsed.append(a[1]) or real(*a))
    hosts = texts(2)
    first = api.fit(DOMAIN, traits=NFV, hosts=hosts, host_names=["a", "b"])
    again = api.fit(DOMAIN, traits=NFV, hosts=hosts[::-1], host_names=["c", "d"])
    assert parsed == ["a", "b"]
    assert [(f.fits, f.reason, f.score, f.placement) for f in first] == \
        [(f.fits, f.reason, f.score, f.placement) for f in again[::-1]]
    assert [f.host for f in again] == ["c", "d"]


def test_the_cache_of_host_documents_never_grows_past_its_bound(documents):
    sizes = []
    api.fit(DOMAIN, traits=NFV, hosts=texts(12), progress=lambda done: sizes.append(
        len(documents)))
    assert sizes == [1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4]


def test_hosts_shared_among_processes_answer_as_one_process(documents, monkeypatch):
    monkeypatch.setattr(api, "HOST_DOCUMENTS", caching.Bounded(1000))
    hosts = texts(40)
    monkeypatch.setattr(api, "PARALLEL_FROM", 10)
    shared = api.fit(DOMAIN, traits=NFV, hosts=hosts, workers=3)
    assert len(api.HOST_DOCUMENTS) == 40  # the children's parsed hosts came back
    alone = api.fit(DOMAIN, traits=NFV, hosts=hosts)
    assert shared == alone
    assert 0 < sum(f.fits for f in alone) < 40
    assert api.fit(DOMAIN, traits=NFV, hosts=hosts, workers=3, best=3) == tuple(sorted(
        (f for f in alone if f.fits), key=lambda f: -f.score)[:3])


def test_a_broken_host_among_shared_hosts_is_the_input_error_it_is_alone(documents,
                                                                           monkeypatch):
    monkeypatch.setattr(api, "PARALLEL_FROM", 10)
    hosts = texts(20)
    hosts[15] = '{"format": "virtuned host snapshot", "version": 2}'
    with pytest.raises(VirtunedError) as raised:
        api.fit(DOMAIN, traits=NFV, hosts=hosts, workers=2)
    assert (raised.value.exit_code, str(raised.value)) == (
        2, "<hosts/15>:1:1: invalid host snapshot: version: version 2; this virtuned "
           "reads version 1")



def test_a_cpu_list_a_host_refuses_names_the_host_as_the_request_does(documents):
    hosts = texts(2)
    api.fit(DOMAIN, traits=NFV, hosts=hosts, host_names=["a", "b"], reserved_cpus="0")
    with pytest.raises(VirtunedError) as raised:  # the same hosts, checked before as a, b
        api.fit(DOMAIN, traits=NFV, hosts=hosts, host_names=["c", "d"],
                reserved_cpus="0,500")
    assert (raised.value.exit_code, str(raised.value)) == (
        2, "--reserved-cpus 0,500: --reserved-cpus: CPU 500 is not on the host (c has "
           "CPUs 0-23)")

# ---------------------------------------------------------------- the fast path

# fit plans the first host of a trait set in full and places the guest on the
# others with that plan's requirements (api._placed_quickly, and only whether it
# fits when best is asked); a fit of one host is always planned in full. Every
# host's answer must be the full planner's, word for word.
POLICIES = ("dedicated cpus threads isolate", "dedicated cpus threads prefer",
            "dedicated cpus threads require", "dedicated cpus", "shared cpus")


@st.composite
def guests(draw):
    """A guest's domain and traits: any CPU policy (required or preferred),
    emulator, hugepages, guest NUMA cells and host node."""
    cells = draw(st.sampled_from((1, 1, 2, 3, 4)))
    vcpus = cells * draw(st.integers(1, 4)) + draw(st.integers(0, cells - 1))
    traits = [draw(st.sampled_from(("", "", "prefer "))) + draw(st.sampled_from(POLICIES))]
    traits += [t for t in (draw(st.sampled_from((None, "emulator threads isolated",
                                                 "emulator threads shared"))),
                           draw(st.sampled_from((None, "hugepages 1GiB", "hugepages 2MiB"))),
                           draw(st.sampled_from((None, None, "place on host node 1"))),
                           f"guest numa nodes {cells}" if cells > 1 else None) if t]
    memory = cells * draw(st.integers(1, 4))
    domain = (f"<domain type='kvm'><name>g</name><memory unit='GiB'>{memory}</memory>"
              f"<vcpu>{vcpus}</vcpu><os><type arch='x86_64' machine='q35'>hvm</type>"
              "</os></domain>")
    return domain, traits


@settings(derandomize=True, deadline=None, database=None, max_examples=60,
          suppress_health_check=[HealthCheck.too_slow])
@given(guest=guests(), seed=st.integers(0, 1000), nodes=st.integers(1, 6),
       threads=st.sampled_from((1, 2)), per_node=st.booleans(),
       reserved=st.sampled_from((None, "0", "0-1")), best=st.sampled_from((None, 3)))
def test_each_host_is_answered_as_the_full_planner_answers_it(guest, seed, nodes, threads,
                                                               per_node, reserved, best):
    domain, traits = guest
    hosts = [json.dumps(host) for host in fleet(12, seed, nodes=(1, nodes), cores=(2, 12),
                                                 threads=threads, cores_per_node=per_node)]
    names = [f"h{index}" for index in range(len(hosts))]

    def fit(hosts, names, best=None):
        try:
            return api.fit(domain, traits=traits, hosts=hosts, host_names=names,
                           reserved_cpus=reserved, best=best)
        except VirtunedError as exc:
            return str(exc)

    alone = [fit([text], [name]) for text, name in zip(hosts, names)]
    if all(isinstance(answer, str) for answer in alone):  # refused on every host
        assert fit(hosts, names) == alone[0]
        return
    alone = tuple(answer[0] for answer in alone)
    assert fit(hosts, names) == alone
    ranked = sorted((f for f in alone if f.fits), key=lambda f: -f.score)[:best]
    assert fit(hosts, names, best) == (tuple(ranked) if best else alone)
