"""Stat checks done by a forked child while the build goes on, as git spreads the stat checks of
its index over threads (`core.preloadIndex`). A no-change build beside an atlas checks the files
of 40,000 cache entries (~100,000 stats) and 50,000 output files, at ~2.5 µs a stat, nearly all
of it in the system call; on two cores a child does part of it at the same time. Python's
threads cannot: each `os.stat` gives up the interpreter, then waits for the other thread to
give it back.

A fork only where it is safe and pays: POSIX, no other thread running (a thread's locks would
stay held in the child), and work that takes longer than the fork costs. A fork copies the
process's page tables, and each side then copies every page it writes to while the other
lives: about 35-40 ms per GiB the process holds (measured on 2 cores), so a notebook holding
gigabytes does the work itself, and a build in a new process forks. Elsewhere the work is done
here, when its result is asked for.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, TypeVar

Item = TypeVar("Item")
Found = TypeVar("Found")

FORK_FROM = 8192  # items for `in_two`; below, a fork's fixed costs (a process, a pipe) outweigh it
FORK_SECONDS_PER_GIB = 0.04  # what a fork costs per GiB resident, see above


class Ahead:
    """`works` done in order by a forked child from now on, where that pays (each with the
    seconds it takes here); `result(i)` waits for the answer of `works[i]`. Where a fork would
    not pay, or the child fails, `result(i)` does that work here. A work only reads (the file
    system, and memory as it was at the fork) and returns a value that pickles, best small.
    `close()` (or the `with` block's end) stops a child whose answers are no longer wanted."""

    def __init__(self, *works: tuple[Callable[[], object], float]) -> None:
        self._works = [work for work, _ in works]
        self._answers: dict[int, object] = {}  # read in order from the child, or done here
        self._child: int | None = None
        start, self.due = time.monotonic(), list[float]()  # when each answer is expected (monotonic)
        for _, seconds in works:
            self.due.append((self.due[-1] if self.due else start) + seconds)
        if not _pays(sum(seconds for _, seconds in works)):
            return
        reader, writer = os.pipe()
        try:
            child = os.fork()
        except OSError:  # no memory or processes left for it
            os.close(reader)
            os.close(writer)
            return
        if child == 0:
            _child(writer, reader, self._works)
        os.close(writer)
        self._child, self._stream = child, os.fdopen(reader, "rb")

    @property
    def forked(self) -> bool:
        """Whether a child is at work (else `result` does the work here)."""
        return self._child is not None

    def result(self, index: int = 0) -> Any:
        while index not in self._answers:
            if self._child is None:  # none, or it failed: this work is done here
                self._answers[index] = self._works[index]()
                continue
            size = self._stream.read(8)
            answer = self._stream.read(int.from_bytes(size, "little")) if len(size) == 8 else b""
            if not answer:
                self.close()
                continue
            self._answers[len(self._answers)] = pickle.loads(answer)  # from the child forked above
        return self._answers[index]

    def close(self) -> None:
        if self._child is not None:
            self._stream.close()
            with suppress(ProcessLookupError):
                os.kill(self._child, signal.SIGKILL)
            os.waitpid(self._child, 0)
            self._child = None

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def in_two(items: Sequence[Item], check: Callable[[Sequence[Item]], list[Found]], each: float) -> list[Found]:
    """`check(items)`, its second half checked by a forked child while this process checks
    the first, where that pays (`each`: seconds to check one item here)."""
    if len(items) < FORK_FROM:
        return check(items)
    half = len(items) // 2
    with Ahead((lambda: check(items[half:]), half * each)) as second:
        return check(items[:half]) + second.result()


def _pays(seconds: float) -> bool:
    """Whether work of `seconds` is worth a fork (twice its cost: a margin), and safe."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return False
    return seconds > 2 * FORK_SECONDS_PER_GIB * _resident_bytes() / 2**30


def _resident_bytes() -> int:
    """What this process holds in memory now (Linux), else the most it held."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource  # POSIX, as fork is

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes there, KiB elsewhere


def _child(writer: int, reader: int, works: list[Callable[[], object]]) -> None:
    """The child's whole life: each work's answer down the pipe as it is found, and an exit
    that runs nothing of the parent's (no atexit, no buffers flushed twice, no `finally`
    above)."""
    code = 1
    try:
        os.close(reader)
        with os.fdopen(writer, "wb") as stream:
            for work in works:
                answer = pickle.dumps(work())
                stream.write(len(answer).to_bytes(8, "little") + answer)
                stream.flush()
        code = 0
    finally:
        os._exit(code)
