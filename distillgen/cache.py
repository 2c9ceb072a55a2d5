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
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from distillgen.jobs import read_result
from distillgen.units import ModelInfo

RECORD = "record.json"
QUARANTINE = "quarantine"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Artifact:
    key: str
    folder: Path
    record: dict

    def file(self, name: str) -> Path:
        return self.folder / name

    def result(self, job):
        """The job's typed result (`job.Result`); ResultError if the record does not hold one."""
        return read_result(job, self.record.get("result"))

    def check(self, job) -> None:
        """ResultError unless the entry holds what `job` asks for: a result of its type that
        fits the job and the payload (lengths, file names, a kernel's shape). Checksums say a
        file is the one that was written, not that it was written for this job."""
        files = {name: self.folder / name for name in self.record["files"]}
        self.result(job).check(job, files)


class Cache:
    def __init__(
        self,
        root: Path,
        warn: Callable[[Path, str], None] = lambda path, message: None,
        readonly: bool = False,
    ) -> None:
        self.root = root
        self._warn = warn
        # `distillgen verify` and nothing else: damaged entries are reported, never moved, and
        # model descriptions and speeds are not stored.
        self.readonly = readonly

    def _folder(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key

    # -- artifacts -------------------------------------------------------------------------
    def get(self, key: str) -> Artifact | None:
        """The intact entry for `key`, or None (missing, or damaged: then it is quarantined
        and a warning says so)."""
        folder = self._folder(key)
        if not folder.exists():
            return None
        try:
            record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
            _check_record(record, key, folder)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.quarantine(key, reason)
            return None
        return Artifact(key, folder, record)

    def quarantine(self, key: str, reason: str) -> None:
        """Move a damaged entry aside (kept for inspection) so that it is computed again."""
        folder = self._folder(key)
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

    def put(self, key: str, files: dict[str, bytes], record: dict) -> Artifact:
        """Store payload files and their record under `key`, replacing any old entry whole."""
        record = {**record, "key": key, "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}}
        folder = self._folder(key)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=folder.parent))
        try:
            for name, content in files.items():
                (staging / name).write_bytes(content)
            (staging / RECORD).write_text(
                json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
            staging.chmod(0o755)
            if folder.exists():  # a damaged entry, or --no-cache: move it aside, then swap
                old = folder.with_name(f".{key[:12]}-old-{os.getpid()}")
                folder.rename(old)
                shutil.rmtree(old, ignore_errors=True)
            staging.rename(folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return Artifact(key, folder, record)

    # -- model descriptions ----------------------------------------------------------------
    def model_info(self, fingerprint: str) -> ModelInfo | None:
        path = self.root / "models" / f"{fingerprint}.json"
        try:
            return ModelInfo.from_json(json.loads(path.read_text(encoding="utf-8")))
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
        if self.readonly:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem[:12]}-", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


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
        if "/" in name or name in ("", ".", "..", RECORD):
            raise ValueError(f"its record names a file {name!r} outside the entry")
        if _sha256(folder / name) != digest:
            raise ValueError(f"{name} does not match its recorded checksum")
    if not isinstance(record.get("result", {}), dict):
        raise ValueError("its record's 'result' is not a JSON object")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
