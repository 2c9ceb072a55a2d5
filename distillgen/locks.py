"""Locks between builds: one in the cache while computing, one beside the output while writing.

A build holds at most one of them at a time (the cache lock for one compute round, the output
lock for the write phase, which starts after the last round), so two builds can never wait on
each other in a cycle. The lock files stay in place (waiters must share the inode); the holder
writes its PID into it so that a waiting build can say whom it waits for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout


class Busy(Exception):
    """Another build holds the lock and the caller asked not to wait (--no-wait)."""


@contextmanager
def held(path: Path, what: str, *, wait: bool, echo: Callable[[str], None]) -> Iterator[None]:
    """Hold the lock file `path` (created when missing); `what` names the folder it guards.
    OSError when it cannot be created (a read-only folder, a full disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = holder(path)
        if not wait:
            raise Busy(f"another build{owner} is using {what}; try again when it is done") from None
        echo(f"waiting for another build using {what}{owner}…")
        lock.acquire()
    try:
        _write_pid(path)
        yield
    finally:
        lock.release()


def holder(path: Path) -> str:
    """' (pid N)' of the build that last held the lock, or '' when unknown."""
    try:
        pid = int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return ""
    return f" (pid {pid})"


def _write_pid(path: Path) -> None:
    with suppress(OSError):  # a read-only cache can still be locked and read; the PID is a courtesy
        path.write_text(f"{os.getpid()}\n", encoding="ascii")


def alive(pid: int) -> bool:
    """Whether a process with this PID exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
