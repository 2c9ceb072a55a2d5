"""Stat checks split with a forked child, as git splits the stat checks of its index across
threads (`core.preloadIndex`). A no-change build beside an atlas checks the files of 40,000
cache entries, ~100,000 stats at ~2.5 µs each, nearly all of it in the system call; on two
cores two processes take half the time each. Python's threads cannot: each `os.stat` gives up
the interpreter, and then waits for the other thread to give it back.

A fork only where it is safe and pays: POSIX, no other thread running (a thread's locks would
stay held in the child), and a half that takes longer to check than the fork costs. A fork
copies the process's page tables, and each side then copies every page it writes to while the
other lives: about 35-40 ms per GiB the process holds (measured on 2 cores), so a notebook
holding gigabytes checks here, and a build in a new process splits. Elsewhere, all of it here.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Found = TypeVar("Found")

FORK_FROM = 8192  # items; below, a fork's fixed costs (a process, a pipe) outweigh what it saves
FORK_SECONDS_PER_GIB = 0.04  # what a fork costs per GiB resident, see above


def in_two(items: Sequence[Item], check: Callable[[Sequence[Item]], list[Found]], each: float) -> list[Found]:
    """`check(items)`, its second half checked by a forked child while this process checks
    the first, where that pays (`each`: seconds to check one item here). `check` only reads
    (the file system, and memory as it was at the fork) and returns what it found, a short
    list: usually nothing. If the child fails, its half is checked here."""
    if not _pays(len(items), each):
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


def _pays(count: int, each: float) -> bool:
    if count < FORK_FROM or not hasattr(os, "fork") or threading.active_count() > 1:
        return False
    saved = count / 2 * each
    return saved > 2 * FORK_SECONDS_PER_GIB * _resident_bytes() / 2**30  # twice: a margin


def _resident_bytes() -> int:
    """What this process holds in memory now (Linux), else the most it held."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource  # POSIX, as fork is

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes there, KiB elsewhere


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
