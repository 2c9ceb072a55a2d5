"""Freed memory kept for the engine's next step, not handed back to the system and faulted in again.

glibc's malloc serves a block above its mmap threshold (128 KiB, raised as blocks are freed,
never above 32 MiB) with a fresh mapping, unmaps it on `free`, and hands the top of its heap
back beyond its trim threshold. The engines allocate and free the same few megabytes of
activations and gradients at every step, so on a CPU each step faulted its memory in anew: the
scaffold's build (`distillgen new`, 149 figures) took 1.7 million page faults and 5-6 s of
system time; InceptionV1 at 224 px (its activations above 32 MiB) about a million per run of
8 units and 8 steps. With this, the scaffold's build takes 0.35 million and is 16-23 % faster;
InceptionV1's feature visualization (`benchmarks/featurevis.py --network-alone`, mixed4a, 16
units) takes 146 ms per image-step instead of 182; the images are the same to the bit.

PyTorch's CPU tuning guide suggests jemalloc or TCMalloc for this; they have to be preloaded
before the process starts. glibc's `mallopt` does the part that matters from inside it: while
the engine runs, blocks up to 256 MiB come from the heap (32 MiB before glibc 2.35, which
refuses more), and up to 1 GiB of freed heap is kept. After it, `reusing_memory` sets glibc's
thresholds where its own raising of them ends (which `mallopt` turns off for good) and hands
what is free back: `serve` and a Ray worker live on. Elsewhere than glibc, nothing changes.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 256 * 1024**2  # while the engine runs: a block this large is still mapped on its own
TRIM_THRESHOLD = 1024**3  # while the engine runs: free memory kept at the heap's top
MMAP_CEILING = 32 * 1024**2  # glibc's own threshold at most; the most glibc before 2.35 accepts
_depth = 0  # reusing_memory entered and not left (one engine run inside another's: never, so far)


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library this process runs on, if it is glibc (musl's and macOS's `mallopt` do
    nothing to speak of; Windows has no process-wide symbols to look up)."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):
        return None
    if not all(hasattr(libc, name) for name in ("gnu_get_libc_version", "mallopt", "malloc_trim")):
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


def keep_freed_memory() -> bool:
    """From now on in this process, freed blocks are kept for reuse (see above); whether it took."""
    libc = _glibc()
    if libc is None:
        return False
    mapped = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) or libc.mallopt(_M_MMAP_THRESHOLD, MMAP_CEILING)
    return bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) and mapped)


def give_back_freed_memory() -> None:
    """glibc as it stands once a process has freed large blocks (blocks over 32 MiB mapped on
    their own, more than 64 MiB free at the heap's top handed back), and what is free now
    handed back to the system (all of it, not only the heap's top)."""
    libc = _glibc()
    if libc is None:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_CEILING)
    libc.mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_CEILING)
    libc.malloc_trim(0)


@contextmanager
def reusing_memory() -> Iterator[None]:
    """Within: freed memory is reused, not faulted in again. After: what is free is handed
    back, and the process keeps no more than glibc would have it keep."""
    global _depth
    if _depth == 0:
        keep_freed_memory()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            give_back_freed_memory()
