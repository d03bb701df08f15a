"""``fit`` over a fleet (virtuned/api.py): host documents parsed once per content,
in a cache that never grows past its bound; hosts shared among processes answer as
one process does."""

import json

import pytest

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
