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
before the process starts. glibc's `mallopt` does the part that matters from inside it: blocks
up to 256 MiB come from the heap, and up to 1 GiB of freed heap is kept for reuse.
`reusing_memory` hands what is free back to the system when the engine is done, since `serve`
and a Ray worker live on after it. Elsewhere than glibc, nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 256 * 1024**2  # a block this large or larger is still mapped on its own
TRIM_THRESHOLD = 1024**3  # free memory kept at the heap's top before it is handed back


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (musl and macOS have no `mallopt` to speak of)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") else None


@cache
def keep_freed_memory() -> bool:
    """From now on in this process, freed blocks are kept for reuse (see above). Once per
    process (glibc keeps settings made by `mallopt` until the process ends); whether it took."""
    libc = _glibc()
    if libc is None:
        return False
    # mallopt returns 1 on success; setting either threshold ends glibc's own raising of them
    mapped = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    return bool(mapped and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def give_back_freed_memory() -> None:
    """Hand the memory malloc holds free back to the system (all of it, not only the heap's top)."""
    if (libc := _glibc()) is not None:
        libc.malloc_trim(0)


@contextmanager
def reusing_memory() -> Iterator[None]:
    """Within: freed memory is reused, not faulted in again. After: what is free is handed
    back, so a process that lives on (serve, a Ray worker) holds no more than it uses."""
    keep_freed_memory()
    try:
        yield
    finally:
        give_back_freed_memory()
