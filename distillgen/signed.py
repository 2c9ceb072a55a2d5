"""Pickles only this machine's user wrote: what builds keep between processes (checked
articles, atlas plans, page groups) in a cache folder that may come from someone else.

Unpickling runs code, so every file is signed with HMAC-SHA256 under a key that never leaves
this user (`~/.cache/distillgen/secret`, made on first use), after a version that names what
it holds; a file that fails either is ignored. Without a key (no writable home) nothing is
kept.
"""

from __future__ import annotations

import gc
import hmac
import os
import pickle
import secrets
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from distillgen.cache import write_file


def dump(path: Path, version: bytes, value: object) -> None:
    """Keep `value` at `path`, signed; nothing where no key can be kept. Raises what pickling
    or writing raises: callers keep things only to save work, and ignore a failure."""
    key = secret()
    if key is None:
        return
    payload = version + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    write_file(path, hmac.digest(key, payload, "sha256") + payload)


def load(path: Path, version: bytes) -> object | None:
    """What `dump` kept at `path` under `version`; None when it is missing, not signed by
    this user's key, of another version, or of classes that moved since."""
    key = secret()
    if key is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    signature, payload = data[:32], data[32:]
    if not payload.startswith(version):
        return None
    if not hmac.compare_digest(signature, hmac.digest(key, payload, "sha256")):
        return None  # not written by this user
    enabled = gc.isenabled()
    gc.disable()  # a collection mid-load scans the whole build's objects: 3-8x slower
    try:
        return pickle.loads(payload[len(version) :])
    except Exception:  # written by older code whose classes moved
        return None
    finally:
        if _freezing:  # the collections of the build that holds it never traverse it
            gc.freeze()
        if enabled:
            gc.enable()


_freezing = False


@contextmanager
def loads_frozen() -> Iterator[None]:
    """Within (a build): what `load` returns is frozen out of the collector's view as loaded,
    since it lives as long as the build (an atlas's plan: 500,000 objects, whose traversal
    took 0.06 s of a no-change build); everything frozen is thawed when it ends, and serve
    freezes what its builds keep between them after each (serve.py)."""
    global _freezing
    _freezing, before = True, _freezing
    try:
        yield
    finally:
        _freezing = before
        if not before:
            gc.unfreeze()


def prune(folder: Path, spared: Collection[Path], most: int) -> None:
    """Remove the kept files of `folder` but the newest `most` and those `spared` (the ones a
    build took or kept: a site of more atlases than `most` must not evict its own every time).
    Raises what listing or removing raises: callers ignore it."""
    kept = sorted((p for p in folder.glob("*.pickle") if p not in spared), key=lambda p: p.stat().st_mtime_ns)
    for stale in kept[:-most]:
        stale.unlink(missing_ok=True)


def secret() -> bytes | None:
    """This user's signing key, made on first use; None where it cannot be kept."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "distillgen"
    path = home / "secret"
    with suppress(OSError):
        key = path.read_bytes()
        if len(key) == 32:
            return key
    try:
        home.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        write_file(path, key)
        return key
    except OSError:
        return None
