"""The content-addressed figure cache: one folder per job key, written atomically.

    <root>/objects/ab/abcdef…/record.json   provenance, with the sha256 of every payload file
    <root>/objects/ab/abcdef…/image.png      payload
    <root>/models/<fingerprint>.json         a model's description (layers, aliases, checksum)

An entry becomes visible by a single rename, so a crash never leaves half an entry under its
key. Reading checks the record's structure and every payload file against it, and the build
checks that the result fits its job (`Artifact.check`): a damaged entry is moved aside to
`<root>/quarantine/<key>-<time>` with a warning, treated as missing, and computed again, so no
figure ever reads one. The folder can be committed, so a site computed on a GPU rebuilds
anywhere.

`<root>/.lock` is held by a build while it computes (see compute.py), so that two builds
sharing a cache never compute the same figure twice.

Checking every entry on every build made a rebuild grow with the cache (1.3 ms a figure), so a
build keeps an index, as git does of its work tree: `<root>/index.json` holds, for every entry
it has fully checked, the digest of its record and the size, modification time and inode of
each of its files. An entry whose files the file system still describes so is trusted without
opening any of them (its record is read only when a page rendered again needs it); anything
else, a file touched, replaced or truncated behind the cache's back included, is checked in
full again. The index is trusted only by the same distillgen code that wrote it (`trust`), and
`distillgen verify`, the deep check, never reads it. Those stats are most of a no-change build
beside an atlas, so a forked child makes them from the build's start (`check_ahead`,
site.LookAhead, forked.py) while the build checks and plans its articles.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from distillgen.forked import Ahead, in_two
from distillgen.jobs import read_result
from distillgen.units import DESCRIPTION_VERSION, ModelInfo

RECORD = "record.json"
QUARANTINE = "quarantine"
INDEX = "index.json"
INDEX_VERSION = 1
ENTRY_SECONDS = 8e-6  # to check an indexed entry's files (2.5 on average) in a build, on 2 cores
INDEX_SECONDS_PER_BYTE = 4e-8  # to read the index and check its entries' files (~260 bytes each)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHARD = re.compile(r"[0-9a-f]{2}")  # objects/<the key's first two digits>/<key>
_LEFTOVER = re.compile(r"\.[0-9a-f]{12}-.+")  # put's staging and old folders, prune's removals


class Artifact:
    """A cache entry: its key, folder, the digest of its record (what identifies its content)
    and the names of its payload files. `trusted`: taken on the index's word, not checked in
    this build; its record is read when first asked for."""

    def __init__(
        self,
        key: str,
        folder: Path | str,
        digest: str,
        names: tuple[str, ...],
        record: dict | None = None,
        derived: dict | None = None,
        on_derive: Callable[[], None] = lambda: None,
    ) -> None:
        self.key, self.digest, self.names = key, digest, names
        self._where = os.fspath(folder)  # a Path only when asked for: an atlas has 30,000
        self.trusted = record is None
        if record is not None:
            self.__dict__["record"] = record  # cached_property's slot: nothing to read
        self.derived_values = {} if derived is None else derived  # kept in the index
        self._on_derive = on_derive

    @cached_property
    def folder(self) -> Path:
        return Path(self._where)

    @cached_property
    def record(self) -> dict:
        return json.loads((self.folder / RECORD).read_text(encoding="utf-8"))

    def file(self, name: str) -> Path:
        return self.folder / name

    def derived(self, name: str, compute: Callable[[], object]) -> object:
        """A value computed from the payload (JSON), kept in the index with the entry: a
        rebuild asks for it without opening the payload (a circuit's ranking of kernels)."""
        if name not in self.derived_values:
            self.derived_values[name] = compute()
            self._on_derive()
        return self.derived_values[name]

    def result(self, job):
        """The job's typed result (`job.Result`); ResultError if the record does not hold one.
        Read once: figures and the {value}s quoting them ask again (results are frozen)."""
        results = self.__dict__.setdefault("_results", {})
        if job.Result not in results:
            results[job.Result] = read_result(job, self.record.get("result"))
        return results[job.Result]

    def check(self, job) -> None:
        """ResultError unless the entry holds what `job` asks for: a result of its type that
        fits the job and the payload (lengths, file names, a kernel's shape). Checksums say a
        file is the one that was written, not that it was written for this job."""
        files = {name: self.folder / name for name in self.names}
        self.result(job).check(job, files)


class Cache:
    def __init__(
        self,
        root: Path,
        warn: Callable[[Path, str], None] = lambda path, message: None,
        readonly: bool = False,
        trust: str | None = None,
        vouched: dict[str, Artifact] | None = None,
    ) -> None:
        """`trust`: the digest of the code reading the cache, with which entries its index
        holds are trusted on their files' stat (None: every entry is checked in full).
        `vouched`: entries this process checked in an earlier build, taken without a stat
        (serve after an edit, warm.py); one this cache moves aside or replaces leaves it."""
        self.root = root
        # absolute: pages kept in the cache name its files, for builds run from anywhere
        self._objects = f"{os.path.abspath(root / 'objects')}{os.sep}"
        self._warn = warn
        # `distillgen verify` and nothing else: damaged entries are reported, never moved, and
        # model descriptions and speeds are not stored.
        self.readonly = readonly
        self.index = Index(root / INDEX, trust) if trust is not None and not readonly else None
        self.vouched = {} if vouched is None else vouched

    def _folder(self, key: str) -> Path:
        return Path(self._where(key))

    def _where(self, key: str) -> str:
        """The entry's folder as a string, absolute."""
        return f"{self._objects}{key[:2]}{os.sep}{key}"

    # -- artifacts -------------------------------------------------------------------------
    def get(self, key: str) -> Artifact | None:
        """The intact entry for `key`, or None (missing, or damaged: then it is quarantined
        and a warning says so). An entry the index vouches for is not opened (`trusted`);
        the caller checks the result of any other before `remember`ing it."""
        if (artifact := self.vouched.get(key)) is not None:
            artifact.trusted = True  # checked before: neither checked nor indexed again
            return artifact
        if self.index is not None and (artifact := self.index.trusted(key, self._where(key))) is not None:
            return artifact
        folder = self._folder(key)
        if not folder.exists():
            return None
        try:
            text = (folder / RECORD).read_bytes()
            record = json.loads(text)
            _check_record(record, key, folder)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.quarantine(key, reason)
            return None
        return Artifact(key, folder, _digest(text), tuple(record["files"]), record)

    def check_ahead(self) -> tuple[Callable[[], tuple], float]:
        """The check of every entry the index holds, for a forked child to do from the build's
        start (site.LookAhead), and the seconds it takes here (`Index.check_ahead`)."""
        if self.index is None:
            return (lambda: (None, [])), 0.0
        return self.index.check_ahead(self._where)

    def expect(self, ahead: Ahead, answer: int) -> None:
        """The entries' check is `ahead`'s answer number `answer` (`check_ahead`)."""
        if self.index is not None:
            self.index.expect(ahead, answer)

    def preload(self, keys: list[str]) -> None:
        """Check the index's entries for `keys` at once, before `get` is asked for each: what
        a no-change build spends most of its time on, halved on two cores (forked.py)."""
        unvouched = {key: self._where(key) for key in keys if key not in self.vouched}
        if self.index is not None and unvouched:  # serve's quick build never reads the index
            self.index.preload(unvouched)

    def payload_paths(self, artifacts) -> dict[str, str]:
        """Each payload file of `artifacts` by absolute path -> what it is (its entry's record
        digest and its name): what a page may copy, and how the output's manifest knows it."""
        return {
            f"{self._where(a.key)}{os.sep}{name}": f"{a.digest}/{name}" for a in artifacts for name in a.names
        }

    def remember(self, artifact: Artifact) -> None:
        """Index an entry checked in full, so that later builds trust it while it is untouched."""
        if self.index is not None and not artifact.trusted:
            self.index.add(artifact)

    def save_index(self) -> None:
        """Write the index if this build changed it; a read-only or full disk only costs the
        next build its checks."""
        if self.index is not None:
            self.index.save()

    def quarantine(self, key: str, reason: str) -> None:
        """Move a damaged entry aside (kept for inspection) so that it is computed again."""
        folder = self._folder(key)
        self._forget(key)
        if self.readonly:
            self._warn(folder, f"damaged cache entry ({reason})")
            return
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = self.root / QUARANTINE / f"{key}-{stamp}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(target)
        except FileNotFoundError:  # another build moved it first
            return
        except OSError as exc:  # a read-only cache: the entry stays, and is ignored
            self._warn(folder, f"damaged cache entry ({reason}); could not move it aside ({exc.strerror})")
            return
        self._warn(folder, f"damaged cache entry ({reason}); moved to {target} and computing it again")

    def _forget(self, key: str) -> None:
        self.vouched.pop(key, None)
        if self.index is not None:
            self.index.forget(key)

    def put(self, key: str, files: dict[str, bytes], record: dict) -> Artifact:
        """Store payload files and their record under `key`, replacing any old entry whole."""
        self.vouched.pop(key, None)
        record = {**record, "key": key, "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}}
        text = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")
        folder = self._folder(key)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=folder.parent))
        try:
            for name, content in files.items():
                (staging / name).write_bytes(content)
            (staging / RECORD).write_bytes(text)
            staging.chmod(0o755)
            if folder.exists():  # a damaged entry, or --no-cache: move it aside, then swap
                old = folder.with_name(f".{key[:12]}-old-{os.getpid()}")
                folder.rename(old)
                shutil.rmtree(old, ignore_errors=True)
            staging.rename(folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        artifact = Artifact(key, folder, _digest(text), tuple(files), record)
        self.remember(artifact)
        return artifact

    def prune(self, used: Collection[str], before: float) -> Pruned:
        """Remove every entry whose key is not in `used` (the keys of all a build's figures
        read) and whose record was written before `before` (one written since is the work of
        another build, done while that build ran), and what killed builds left half written or
        half removed. The caller holds the cache's lock, under which every entry is written.
        An entry leaves by a rename beside it, so a lookup finds it whole or not at all, and
        then its folder goes. What cannot be removed is counted, with the first reason."""
        pruned = Pruned()
        for shard in _folders(self.root / "objects"):
            if not _SHARD.fullmatch(shard.name):
                continue  # not ours
            for folder in _folders(shard):
                name = folder.name
                try:
                    if _SHA256.fullmatch(name) and name.startswith(shard.name):
                        if name in used or _written_since(folder / RECORD, before):
                            continue
                        size = sum(file.stat().st_size for file in os.scandir(folder) if file.is_file())
                        gone = folder.rename(shard / f".{name[:12]}-pruned-{name[12:]}")
                        self._forget(name)
                        pruned.removed += 1
                        pruned.freed += size
                    elif _LEFTOVER.fullmatch(name):
                        gone = folder
                    else:
                        continue  # not ours
                    shutil.rmtree(gone, ignore_errors=True)  # what stays is a leftover the next one removes
                except OSError as exc:
                    pruned.failed += 1
                    pruned.error = pruned.error or exc
        if self.index is not None:  # entries removed by hand
            gone_keys = [
                key for key in self.index.entries if key not in used and not os.path.isdir(self._where(key))
            ]
            for key in gone_keys:
                self._forget(key)
        self.save_index()
        return pruned

    # -- model descriptions ----------------------------------------------------------------
    def model_info(self, fingerprint: str) -> ModelInfo | None:
        path = self.root / "models" / f"{fingerprint}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") != DESCRIPTION_VERSION:
                return None  # made by other code: described again
            return ModelInfo.from_json(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            self._warn(path, "damaged model description; loading the model again")
            return None

    def put_model_info(self, fingerprint: str, info: ModelInfo) -> None:
        self._put_json(self.root / "models" / f"{fingerprint}.json", info.to_json())

    # -- measured speeds, for estimates of the work ahead ----------------------------------
    def speeds(self, fingerprint: str) -> dict[str, float]:
        """Seconds per unit of work (an image-step at 64 px, or a job) by `kind@device`."""
        path = self.root / "models" / f"{fingerprint}.speed.json"
        try:
            speeds = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(speeds, dict):
            return {}
        return {k: float(v) for k, v in speeds.items() if isinstance(v, int | float) and v > 0}

    def put_speed(self, fingerprint: str, kind: str, seconds_per_unit: float) -> None:
        speeds = {**self.speeds(fingerprint), kind: round(seconds_per_unit, 6)}
        self._put_json(self.root / "models" / f"{fingerprint}.speed.json", speeds)

    def check_writable(self) -> None:
        """OSError (read-only, permission, full disk) before any work is spent on figures."""
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=self.root) as probe:
            probe.write(b"x")
            probe.flush()

    def _put_json(self, path: Path, data: object) -> None:
        if not self.readonly:
            write_file(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_file(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` by rename: a reader sees the old file or the new one, never half
    of one (mode 0600, as mkstemp makes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem[:12]}-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass
class Pruned:
    """What `Cache.prune` removed: entries and their bytes; and what it could not remove."""

    removed: int = 0
    freed: int = 0
    failed: int = 0
    error: OSError | None = None


def _written_since(path: Path, moment: float) -> bool:
    try:
        return path.stat().st_mtime >= moment
    except FileNotFoundError:  # an entry without its record is no whole entry
        return False


def _folders(folder: Path) -> list[Path]:
    """The folders in `folder` ([] when it is not there)."""
    try:
        return [Path(entry.path) for entry in os.scandir(folder) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _check_record(record: object, key: str, folder: Path) -> None:
    """ValueError unless the record has the structure `put` writes and every payload file is
    there with its recorded checksum."""
    if not isinstance(record, dict):
        raise ValueError("its record is not a JSON object")
    if record.get("key") != key:
        raise ValueError("its record belongs to another key")
    files = record.get("files")
    if not isinstance(files, dict):
        raise ValueError("its record's 'files' is not a table of file names and checksums")
    for name, digest in files.items():
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ValueError(f"its record's checksum of {name!r} is not a sha256")
        if not _entry_file(name) or name == RECORD:
            raise ValueError(f"its record names a file {name!r} outside the entry")
        if _sha256(folder / name) != digest:
            raise ValueError(f"{name} does not match its recorded checksum")
    if not isinstance(record.get("result", {}), dict):
        raise ValueError("its record's 'result' is not a JSON object")


def _entry_file(name: object) -> bool:
    """Whether `name` names a file inside an entry's folder."""
    return isinstance(name, str) and "/" not in name and name not in ("", ".", "..")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(record_bytes: bytes) -> str:
    return hashlib.sha256(record_bytes).hexdigest()


def _stat(path: Path | str) -> list[int]:
    """What says a file is the one indexed: its size, modification time and inode."""
    status = os.stat(path)
    return [status.st_size, status.st_mtime_ns, status.st_ino]


class Index:
    """`<root>/index.json`: key -> [record digest, {file name: [size, mtime_ns, inode]},
    {name: derived value}] for every entry checked in full, written by the code whose digest
    is `trust`. As in git, an entry with a file modified no earlier than the index itself was
    written is "racily clean" (a change within the same tick of the file system's clock would
    not show) and is checked in full once more.

    JSON, never pickle: a cache folder can come from someone else."""

    def __init__(self, path: Path, trust: str) -> None:
        self.path, self.trust = path, trust
        self.changed = False
        self.written_ns = 0
        self._verdicts: dict[str, bool] = {}  # key -> untouched, as `preload` found it
        self.read_as: tuple[int, int, int] | None = None  # the index file's stat, as read
        self._ahead: Ahead | None = None  # a child checking every entry (`expect`)
        self._answer = 0
        self._changed: set[str] = set()  # keys added or forgotten since the index was read

    @cached_property
    def entries(self) -> dict[str, list]:
        """Read when first asked for: a build whose entries are all vouched for (warm.py)
        never asks."""
        try:
            with self.path.open("rb") as stream:
                status = os.fstat(stream.fileno())
                data = json.loads(stream.read())
            entries = data["entries"]
            if (data["version"], data["code"]) == (INDEX_VERSION, self.trust) and isinstance(entries, dict):
                self.written_ns = status.st_mtime_ns
                self.read_as = (status.st_size, status.st_mtime_ns, status.st_ino)
                return entries
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no index, or a damaged or older one: every entry is checked in full
        return {}

    def check_ahead(self, where: Callable[[str], str]) -> tuple[Callable[[], tuple], float]:
        """The check of every entry as a forked child does it from the build's start, and the
        seconds it takes here: the index read again (its stat, which must be that of this
        process's read) and the keys of the entries not untouched."""

        def check() -> tuple[tuple[int, int, int] | None, list[str]]:
            index = Index(self.path, self.trust)
            stale = [key for key in index.entries if not index._untouched(key, where(key))]
            return index.read_as, stale

        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        return check, size * INDEX_SECONDS_PER_BYTE

    def expect(self, ahead: Ahead, answer: int) -> None:
        self._ahead, self._answer = ahead, answer

    def preload(self, folders: dict[str, str]) -> None:
        """Check the files of every entry of `folders` (key -> its folder) that the index
        holds before they are looked up one by one (a no-change build beside an atlas stats
        100,000 files): as a forked child checked them from the build's start (`expect`), if
        its answer comes sooner than this check would take; else here, half of them in a child
        of their own (forked.py)."""
        entries, untouched = self.entries, self._untouched
        held = [(key, folder) for key, folder in folders.items() if key in entries]
        if (
            self._ahead is not None
            and self._ahead.due[self._answer] - time.monotonic() < len(held) * ENTRY_SECONDS / 2
        ):
            self._take_ahead()
        held = [(key, folder) for key, folder in held if key not in self._verdicts]

        def stale(part: Sequence[tuple[str, str]]) -> list[str]:
            return [key for key, folder in part if not untouched(key, folder)]

        stale_keys = set(in_two(held, stale, ENTRY_SECONDS))
        self._verdicts.update((key, key not in stale_keys) for key, _ in held)

    def _take_ahead(self) -> None:
        """The verdicts of the child checking every entry, if it read the index read here;
        not for entries added or forgotten since."""
        ahead, self._ahead = self._ahead, None
        if ahead is None or not ahead.forked:  # else its check would be done here, of every entry
            return
        read_as, stale = ahead.result(self._answer)
        if read_as is None or read_as != self.read_as:
            return
        stale_keys, changed = set(stale), self._changed
        self._verdicts.update((key, key not in stale_keys) for key in self.entries if key not in changed)

    def trusted(self, key: str, folder: str) -> Artifact | None:
        """The entry as the index knows it, if every one of its files is as indexed."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        verdict = self._verdicts.pop(key, None)
        if not (self._untouched(key, folder) if verdict is None else verdict):
            return None
        digest, files, derived = entry
        names = tuple(name for name in files if name != RECORD)
        return Artifact(key, folder, digest, names, derived=derived, on_derive=self._touch)

    def _untouched(self, key: str, folder: str) -> bool:
        """Whether the index's entry for `key` is well formed and each of its files is as
        indexed: its size, modification time and inode, and older than the index."""
        where = f"{folder}{os.sep}"  # strings, not Paths: an atlas stats tens of thousands
        # the loop below runs for every file of a site (written_ns: set when `entries` was read)
        written_ns, stat = self.written_ns, os.stat
        try:
            digest, files, derived = self.entries[key]
            if not (_SHA256.fullmatch(digest) and isinstance(derived, dict) and RECORD in files):
                return False
            for name, (size, mtime_ns, inode) in files.items():
                if not _entry_file(name) or mtime_ns >= written_ns:
                    return False
                now = stat(where + name)
                if now.st_mtime_ns != mtime_ns or now.st_size != size or now.st_ino != inode:
                    return False
        except (OSError, TypeError, ValueError, AttributeError):  # gone, or of the wrong shape
            return False
        return True

    def add(self, artifact: Artifact) -> None:
        try:
            files = {name: _stat(artifact.folder / name) for name in (*artifact.names, RECORD)}
        except OSError:
            return
        self.entries[artifact.key] = [artifact.digest, files, artifact.derived_values]
        self._verdicts.pop(artifact.key, None)
        self._changed.add(artifact.key)
        artifact._on_derive = self._touch
        self._touch()

    def _touch(self) -> None:
        self.changed = True

    def forget(self, key: str) -> None:
        self._verdicts.pop(key, None)
        self._changed.add(key)
        if self.entries.pop(key, None) is not None:
            self.changed = True

    def save(self) -> None:
        if self.changed:
            data = {"version": INDEX_VERSION, "code": self.trust, "entries": self.entries}
            with suppress(OSError):
                write_file(self.path, json.dumps(data, separators=(",", ":")))
                self.changed = False
