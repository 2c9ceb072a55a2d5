"""Stat checks split with a forked child, as git splits the stat checks of its index across
threads (`core.preloadIndex`). A no-change build beside an atlas stats ~100,000 cache files and
~50,000 output files at ~2.5 µs each, nearly all of it in the system call; on two cores two
processes take half the time each. Python's threads cannot: each `os.stat` gives up the
interpreter, and then waits for the other thread to give it back.

A fork only where it is safe and pays: POSIX, no other thread running (a thread's locks would
stay held in the child), and enough items to outweigh the fork; elsewhere, all of it here.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Found = TypeVar("Found")

FORK_FROM = 8192  # items; below, a fork (~5-10 ms for a build's memory) costs more than it saves


def in_two(items: Sequence[Item], check: Callable[[Sequence[Item]], list[Found]]) -> list[Found]:
    """`check(items)`, its second half checked by a forked child while this process checks
    the first. `check` only reads (the file system, and memory as it was at the fork) and
    returns what it found, a short list: usually nothing. If the child fails, its half is
    checked here."""
    if len(items) < FORK_FROM or not hasattr(os, "fork") or threading.active_count() > 1:
        return check(items)
    half = len(items) // 2
    reader, writer = os.pipe()
    try:
        child = os.fork()
    except OSError:  # no memory or processes left for it
        os.close(reader)
        os.close(writer)
        return check(items)
    if child == 0:
        _child(writer, reader, lambda: check(items[half:]))
    os.close(writer)
    try:
        found = check(items[:half])
        with os.fdopen(reader, "rb") as stream:
            answer = stream.read()
    finally:
        _, status = os.waitpid(child, 0)
    if status != 0 or not answer:
        return found + check(items[half:])
    return found + pickle.loads(answer)  # from the child forked above, nobody else


def _child(writer: int, reader: int, work: Callable[[], list]) -> None:
    """The child's whole life: its half, the answer down the pipe, and an exit that runs
    nothing of the parent's (no atexit, no buffers flushed twice, no `finally` above)."""
    code = 1
    try:
        os.close(reader)
        answer = pickle.dumps(work())
        with os.fdopen(writer, "wb") as stream:
            stream.write(answer)
        code = 0
    finally:
        os._exit(code)
