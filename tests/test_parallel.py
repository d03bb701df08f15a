"""Work shared among forked processes (virtuned/parallel.py)."""

import pytest

from virtuned import caching, parallel


def test_shares_are_answered_in_the_order_of_the_items_and_caches_come_back():
    cache = caching.Bounded(100)

    def square(share):
        for item in share:
            cache.put(item, item * item)
        return [item * item for item in share]

    assert parallel.map_shared(square, list(range(10)), 3, cache) == \
        [i * i for i in range(10)]
    # what the children worked out is the parent's too
    assert sorted(cache.keys()) == list(range(10))


def test_an_error_in_a_child_is_raised_in_the_parent():
    def refuse(share):
        if 7 in share:
            raise ValueError("seven")
        return share

    with pytest.raises(ValueError, match="seven"):
        parallel.map_shared(refuse, list(range(10)), 2, caching.Bounded(4))
