"""Host documents in the Python API (virtuned/api.py): a text seen again is known
by its digest without hashing it again, in a cache bounded by count and by the
memory of the texts it keeps; what it finds is still the parsed host of that
content (tests/test_fleet_fit.py: that cache and its bound). And what a request
leaves behind: nothing for the garbage collector."""

from __future__ import annotations

import gc
import hashlib

import pytest

from tests.synthetic_hosts import capabilities
from virtuned import api, caching

SMALL = capabilities(2, 4, 2)


@pytest.fixture(autouse=True)
def empty_caches():
    """The digests and parsed hosts of earlier tests are not this test's."""
    for cache in (api.RECENT_DIGESTS, api.HOST_DOCUMENTS):
        cache.clear()
    yield
    for cache in (api.RECENT_DIGESTS, api.HOST_DOCUMENTS):
        cache.clear()


@pytest.fixture
def hashed(monkeypatch) -> list[int]:
    """The sizes of the documents hashed with sha256 from here on."""
    sizes, real = [], caching.sha256
    monkeypatch.setattr(caching, "sha256", lambda data: sizes.append(len(data)) or
                        real(data))
    return sizes


def test_the_digest_is_the_sha256_of_the_documents_utf8():
    text = SMALL.replace("Intel", "Intel\u00ae")
    expected = hashlib.sha256(text.encode()).hexdigest()
    assert api.document_digest(text) == api.document_digest(text.encode()) == expected
    assert api.document_digest(text) == expected  # found again: the same


def test_a_text_seen_again_is_not_hashed_again(hashed):
    first = api.host_document(SMALL, "a")
    again = api.host_document(SMALL, "b")
    equal = api.host_document("".join([SMALL[:10], SMALL[10:]]), "c")  # another object
    assert hashed == [len(SMALL.encode())]
    assert first.cells is again.cells is equal.cells
    assert [first.source, again.source, equal.source] == ["a", "b", "c"]


def test_a_changed_text_gives_the_new_host():
    first = api.host_document(SMALL, "h")
    less = SMALL.replace("<memory unit='KiB'>67108864</memory>",
                         "<memory unit='KiB'>1048576</memory>", 1)
    changed = api.host_document(less, "h")
    assert [cell.memory_kib for cell in first.cells] == [67108864, 67108864]
    assert [cell.memory_kib for cell in changed.cells] == [1048576, 67108864]
    assert api.host_document(SMALL, "h").cells is first.cells


def test_the_recent_digests_are_bounded_by_count_the_oldest_out_first():
    texts = [f"<capabilities>{i}</capabilities>" for i in range(api.RECENT_COUNT + 10)]
    for text in texts:
        api.document_digest(text)
    assert api.RECENT_DIGESTS.keys() == texts[10:]
    assert api.RECENT_DIGESTS.weight <= api.RECENT_BYTES


def test_the_recent_digests_are_bounded_by_the_memory_of_their_texts(hashed):
    eighth = api.RECENT_BYTES // 8
    texts = [str(i % 10) * eighth for i in range(10)]
    for text in texts:
        api.document_digest(text)
    assert len(api.RECENT_DIGESTS) < 8
    assert api.RECENT_DIGESTS.keys() == texts[-len(api.RECENT_DIGESTS):]
    assert api.RECENT_DIGESTS.weight <= api.RECENT_BYTES
    api.document_digest(texts[-1])
    assert len(hashed) == 10  # the last one was found


def test_a_text_too_big_to_keep_is_hashed_each_time_and_pushes_out_nothing(hashed):
    api.document_digest(SMALL)
    huge = "x" * (api.RECENT_BYTES // 4 + 1)
    for _ in range(2):
        api.document_digest(huge)
    assert api.RECENT_DIGESTS.keys() == [SMALL]
    assert hashed == [len(SMALL), len(huge), len(huge)]


NFV = """<domain type="kvm">
  <name>nfv</name>
  <memory unit="GiB">2</memory>
  <vcpu>4</vcpu>
</domain>
"""
OPERATIONS = {
    "compile": lambda: api.compile(NFV, traits=["dedicated cpus", "video qxl"]),
    "compile on a host": lambda: api.compile(NFV, traits=["dedicated cpus"], host=SMALL),
    "explain": lambda: api.explain(NFV, traits=["dedicated cpus"], host=SMALL),
    "plan": lambda: api.plan(NFV, traits=["dedicated cpus"], host=SMALL),
    "fit": lambda: api.fit(NFV, traits=["guest numa nodes 2", "dedicated cpus"],
                           hosts=[SMALL, capabilities(1, 2, 2)], host_names=["a", "b"]),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_request_leaves_no_reference_cycle(operation):
    """Its tree, plan and placement go with their last reference: a cycle would keep
    them (a document, a search's memo) until the collector finds it, and make it
    work on every request of a long-lived process."""
    run = OPERATIONS[operation]
    run()  # caches filled: what stays in them is not garbage
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            run()
        assert gc.collect() == 0
    finally:
        gc.enable()
