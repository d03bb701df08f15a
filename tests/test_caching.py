"""The one cache (virtuned/caching.py): bounded, least recently used out first, and
file stamps that change when a file does."""

import threading

from virtuned import caching


def test_the_least_recently_used_entry_goes_first():
    cache = caching.Bounded(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now "b" is the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)


def test_a_cache_never_grows_past_its_size():
    cache = caching.Bounded(8)
    for i in range(1000):
        cache.put(i, i)
    assert len(cache) == 8
    assert [cache.get(i) for i in range(992, 1000)] == list(range(992, 1000))


def test_per_thread_caches_make_once_per_thread():
    cache = caching.PerThread(4)
    made = []

    def make():
        made.append(threading.get_ident())
        return object()

    first = cache.get_or_make("k", make)
    assert cache.get_or_make("k", make) is first
    other = []
    thread = threading.Thread(target=lambda: other.append(cache.get_or_make("k", make)))
    thread.start()
    thread.join()
    assert other[0] is not first and len(made) == 2
    for key in range(10):
        cache.get_or_make(key, object)
    assert cache.get_or_make("k", make) is not first  # pushed out by newer keys


def test_a_stamp_changes_with_the_file(tmp_path):
    path = tmp_path / "p.vt"
    assert caching.stamp(path) is None
    path.write_text("video qxl\n")
    first = caching.stamp(path)
    assert caching.unchanged([(path, first)])
    path.write_text("video vga and more\n")
    assert not caching.unchanged([(path, first)])


def test_a_shelf_keeps_documents_whole_and_trims_the_least_recently_used(tmp_path):
    shelf = caching.Shelf(tmp_path, size=100)
    assert shelf.get("a" * 64) is None
    for name in "abcde":
        shelf.put(name * 64, name.encode() * 30)  # 30 bytes each
    shelf.trim()
    kept = sorted(path.name[0] for path in tmp_path.iterdir())
    assert sum(path.stat().st_size for path in tmp_path.iterdir()) <= 100
    assert kept == ["c", "d", "e"]
    assert shelf.get("e" * 64) == b"e" * 30


def test_a_weighed_cache_never_holds_more_than_its_size():
    cache = caching.Bounded(10, weight=len)
    held = []
    for i in range(200):
        cache.put(i, "x" * (i % 7 + 1))
        held.append(cache.weight)
        assert sum(len(cache.get(key)) for key in cache.keys()) == cache.weight
    assert max(held) <= 10
    cache.put(199, "y")  # replaced: its new weight counts, not both
    assert cache.weight == sum(len(cache.get(key)) for key in cache.keys())


def test_a_cache_directory_is_trusted_only_when_this_user_alone_may_write_in_it(tmp_path):
    """What the CLI's caches hold is loaded as code (pickled tables, compiled
    methods): a directory another user owns, or may write in, is never used."""
    import os

    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    assert caching.owned(directory) is True
    for mode in (0o720, 0o702, 0o777):
        directory.chmod(mode)
        assert caching.owned(directory) is False, oct(mode)
    directory.chmod(0o755)  # others may read it, not write in it
    assert caching.owned(directory) is True
    assert caching.owned(tmp_path / "missing") is False
    if os.getuid() == 0:  # another user's, by ownership
        os.chown(directory, 65534, 65534)
        assert caching.owned(directory) is False
