"""Stat checks split with a forked child (forked.py): the same answer as one process gives,
from both halves, and from this process alone wherever a fork is unsafe or fails."""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
import time

from distillgen import cache as cache_module
from distillgen import forked
from distillgen.cache import Cache
from distillgen.forked import Ahead

ITEMS = list(range(3 * forked.FORK_FROM))
EACH = 1e-3  # seconds an item: a split always pays in these tests, unless said otherwise


def found_with_pid(part):
    """Every 1000th item, with the process that checked it."""
    return [(item, os.getpid()) for item in part if item % 1000 == 0]


def test_the_second_half_is_checked_by_a_child_and_the_answer_is_whole(monkeypatch):
    monkeypatch.setattr(forked.threading, "active_count", lambda: 1)  # idle threads of other tests
    found = forked.in_two(ITEMS, found_with_pid, EACH)
    assert [item for item, _ in found] == [item for item in ITEMS if item % 1000 == 0]
    pids = {pid for _, pid in found}
    assert os.getpid() in pids and len(pids) == 2
    assert {pid for item, pid in found if item < len(ITEMS) // 2} == {os.getpid()}


def test_a_half_the_child_could_not_check_is_checked_here(monkeypatch):
    forks = counted_forks(monkeypatch, forked.FORK_FROM)
    parent = os.getpid()

    def failing_in_the_child(part):
        if os.getpid() != parent:
            raise OSError("the child failed")
        return found_with_pid(part)

    found = forked.in_two(ITEMS, failing_in_the_child, EACH)
    assert forks == [1]
    assert found == [(item, parent) for item in ITEMS if item % 1000 == 0]


def test_no_fork_while_another_thread_runs_or_for_a_few_items():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        found = forked.in_two(ITEMS, found_with_pid, EACH)
    finally:
        stop.set()
        other.join()
    assert {pid for _, pid in found} == {os.getpid()}
    few = forked.in_two(ITEMS[: forked.FORK_FROM - 1], found_with_pid, EACH)
    assert {pid for _, pid in few} == {os.getpid()}


def counted_forks(monkeypatch, fork_from: int = 2) -> list[int]:
    """Forks from here on, split from `fork_from` items, however many threads run and however
    much memory this process holds."""
    forks: list[int] = []
    real = os.fork
    monkeypatch.setattr(forked, "FORK_FROM", fork_from)
    monkeypatch.setattr(forked.threading, "active_count", lambda: 1)  # idle threads of other tests
    monkeypatch.setattr(forked, "_resident_bytes", lambda: 0)
    monkeypatch.setattr(forked.os, "fork", lambda: forks.append(1) or real())
    return forks


def test_the_cache_index_check_split_finds_damage_in_the_childs_half(tmp_path, monkeypatch):
    _, keys = indexed_cache(tmp_path, 6)
    (tmp_path / "objects" / keys[-1][:2] / keys[-1] / "image0.png").write_bytes(b"damaged")
    forks = counted_forks(monkeypatch)
    again = Cache(tmp_path, trust="code")
    again.preload(keys)
    assert forks == [1]

    def checked_again(self, key, folder):
        raise AssertionError(f"{key} checked again after the split check")

    monkeypatch.setattr(cache_module.Index, "_untouched", checked_again)
    found = [again.get(key) for key in keys]
    assert all(artifact is not None and artifact.trusted for artifact in found[:-1])
    assert found[-1] is None and list((tmp_path / "quarantine").iterdir())  # the child's half


def test_a_process_holding_much_memory_checks_here_where_a_fork_would_cost_more(monkeypatch):
    # ITEMS at a microsecond each: half saves 18 ms; a fork of a process holding 1 GiB costs ~40
    monkeypatch.setattr(forked.threading, "active_count", lambda: 1)
    monkeypatch.setattr(forked, "_resident_bytes", lambda: 2**30)
    assert {pid for _, pid in forked.in_two(ITEMS, found_with_pid, 1e-6)} == {os.getpid()}
    monkeypatch.setattr(forked, "_resident_bytes", lambda: 50 * 2**20)
    assert len({pid for _, pid in forked.in_two(ITEMS, found_with_pid, 1e-6)}) == 2


def test_what_this_process_holds_is_measured():
    held = forked._resident_bytes()
    with mmap.mmap(-1, 64 * 2**20) as grown:  # fresh pages, not memory malloc kept from before
        for page in range(0, len(grown), mmap.PAGESIZE):
            grown[page] = 1  # written, so resident
        assert forked._resident_bytes() - held >= 60 * 2**20


def indexed_cache(root, count: int) -> tuple[Cache, list[str]]:
    """A cache of `count` indexed entries, as a later build opens it."""
    keys = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(count)]
    cache = Cache(root, trust="code")
    for key in keys:
        cache.put(key, {"image0.png": key.encode()}, {})
    cache.save_index()
    later = time.time_ns() + 60 * 10**9  # files older than the index: not "racily clean"
    os.utime(root / "index.json", ns=(later, later))
    return Cache(root, trust="code"), keys


def test_the_child_checking_every_entry_from_the_start_answers_the_lookups(tmp_path, monkeypatch):
    cache, keys = indexed_cache(tmp_path, 6)
    (tmp_path / "objects" / keys[0][:2] / keys[0] / "image0.png").write_bytes(b"damaged")
    forks = counted_forks(monkeypatch)
    with Ahead(cache.check_ahead()) as ahead:
        cache.expect(ahead, 0)
        cache.put(keys[1], {"image0.png": b"stored again since"}, {})  # its own verdict, not the child's
        monkeypatch.setattr(cache_module.Index, "_untouched", lambda self, key, folder: key == keys[1])
        cache.preload(keys)
        found = [cache.get(key) for key in keys]
    assert forks == [1]
    assert found[0] is None and list((tmp_path / "quarantine").iterdir())  # damaged
    assert all(artifact is not None and artifact.trusted for artifact in found[1:])  # the child's word


def test_ahead_answers_from_a_child_in_order_or_does_the_work_when_asked(monkeypatch):
    forks = counted_forks(monkeypatch)
    ahead = Ahead((os.getpid, 1.0), (lambda: "second", 1.0))
    assert ahead.result(1) == "second" and ahead.result(0) != os.getpid() and forks == [1]
    ahead.close()
    assert Ahead((os.getpid, 0.0)).result() == os.getpid() and forks == [1]  # not worth a fork


def test_works_after_a_failure_of_the_child_are_done_here(monkeypatch):
    counted_forks(monkeypatch)
    parent = os.getpid()

    def fails_in_the_child():
        if os.getpid() != parent:
            raise OSError("the child failed")
        return "done here"

    with Ahead((lambda: "from the child", 1.0), (fails_in_the_child, 1.0), (os.getpid, 1.0)) as ahead:
        assert ahead.result(2) == parent and ahead.result(1) == "done here"
        assert ahead.result(0) == "from the child"


def test_closing_stops_a_child_whose_answer_is_not_wanted(monkeypatch):
    counted_forks(monkeypatch)
    start = time.monotonic()
    with Ahead((lambda: time.sleep(60), 60.0)):
        pass
    assert time.monotonic() - start < 30
