"""The content-addressed figure cache: one folder per job key, written atomically.

    <root>/objects/ab/abcdef…/record.json   provenance, with the sha256 of every payload file
    <root>/objects/ab/abcdef…/image.png      payload
    <root>/models/<fingerprint>.json         a model's description (layers, aliases, checksum)

An entry becomes visible by a single rename, so a crash never leaves half an entry under its
key. Reading checks every payload file against the record: a damaged entry is reported and
treated as missing, and the recomputed one replaces it. The folder can be committed, so a site
computed on a GPU rebuilds anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from distillgen.jobs import read_result
from distillgen.units import ModelInfo

RECORD = "record.json"


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


class Cache:
    def __init__(self, root: Path, warn: Callable[[Path, str], None] = lambda path, message: None) -> None:
        self.root = root
        self._warn = warn

    def _folder(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key

    # -- artifacts -------------------------------------------------------------------------
    def get(self, key: str) -> Artifact | None:
        """The intact entry for `key`, or None (missing, or damaged: then a warning says so)."""
        folder = self._folder(key)
        if not folder.exists():
            return None
        try:
            record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
            for name, digest in record["files"].items():
                if _sha256(folder / name) != digest:
                    raise ValueError(f"{name} does not match its recorded checksum")
            if record["key"] != key:
                raise ValueError("its record belongs to another key")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._warn(folder, f"damaged cache entry ({reason}); computing it again")
            return None
        return Artifact(key, folder, record)

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
        folder = self.root / "models"
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(info.to_json(), indent=2, sort_keys=True) + "\n"
        handle, temporary = tempfile.mkstemp(prefix=f".{fingerprint[:12]}-", dir=folder)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, folder / f"{fingerprint}.json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
