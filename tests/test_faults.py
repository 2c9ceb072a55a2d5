"""Faults and concurrency (issue 12): each failure is a message and exit 1, never a traceback,
and the previous site stays as it was; damaged cache entries are quarantined and recomputed;
builds sharing a cache or an output folder take turns."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from filelock import FileLock

from distillgen import cli
from distillgen.cli import main
from tests.conftest import write

# The cheapest computed figure: one unit, 4 steps at 32 px (its unit page adds a diversity set
# and the weights into and out of the unit).
TINY = """
---
title: Tiny
model: shapes
---

A unit of the second layer.

```{featurevis} conv2:0
:steps: 4
:size: 32
One unit.
```
"""
CONSOLE = Path(sys.executable).with_name("distillgen")


def build(src: Path, out: Path, cache: Path, *extra: str):
    """An in-process build (stdout and stderr apart); catches nothing, so a traceback fails the test."""
    result = CliRunner().invoke(
        main, ["build", str(src), "-o", str(out), "--cache-dir", str(cache), *extra], catch_exceptions=False
    )
    return result


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if re.match(rf"\.{out.name}-(new|old)-", p.name))


@pytest.fixture(scope="module")
def computed(tmp_path_factory) -> Path:
    """The tiny site's cache, computed once; tests copy it."""
    root = tmp_path_factory.mktemp("computed")
    src = write(root / "src" / "tiny.md", TINY).parent
    result = build(src, root / "out", root / "cache")
    assert result.exit_code == 0, result.output
    return root / "cache"


@pytest.fixture
def tiny(tmp_path, computed) -> tuple[Path, Path, Path]:
    """(src, out, cache): the tiny site built once into out, with a private copy of its cache."""
    src = write(tmp_path / "src" / "tiny.md", TINY).parent
    cache = tmp_path / "cache"
    shutil.copytree(computed, cache)
    result = build(src, tmp_path / "out", cache)
    assert result.exit_code == 0 and "0 computed" in result.stderr, result.output
    return src, tmp_path / "out", cache


def assert_failed_cleanly(result, out: Path, before: dict[str, bytes], *words: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.stderr, result.stderr
    assert snapshot(out) == before  # the previous site, as it was
    assert leftovers(out) == []


# -- tracebacks that became messages -----------------------------------------------------------
def test_output_that_is_a_file_is_an_error(tiny, tmp_path):
    src, out, cache = tiny
    target = tmp_path / "site.html"
    target.write_text("not a folder")
    result = build(src, target, cache)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "site.html: error: is a file, not a folder; choose another -o" in result.stderr
    assert target.read_text() == "not a folder"


def test_a_cache_inside_the_output_is_refused(tiny):
    src, out, cache = tiny
    before = snapshot(out)
    result = build(src, out, out / "cache")
    assert_failed_cleanly(result, out, before, "the cache folder is inside the output folder")


def entry_of(cache: Path, kind: str, **fields) -> Path:
    """The cache folder of the one entry of `kind` whose job has these fields."""
    for record in (cache / "objects").glob("*/*/record.json"):
        job = json.loads(record.read_text())["job"]
        if job["kind"] == kind and all(job.get(k) == v for k, v in fields.items()):
            return record.parent
    raise AssertionError(f"no {kind} entry with {fields}")


def edit_record(entry: Path, change) -> None:
    record = json.loads((entry / "record.json").read_text())
    change(record)
    (entry / "record.json").write_text(json.dumps(record))


def replace_payload(entry: Path, name: str, content: bytes) -> None:
    """A new payload with its checksum updated: intact as far as checksums go."""
    import hashlib

    (entry / name).write_bytes(content)
    edit_record(entry, lambda r: r["files"].__setitem__(name, hashlib.sha256(content).hexdigest()))


def wrong_type_in_result(entry: Path) -> None:
    edit_record(entry, lambda r: r["result"].__setitem__("images", 5))  # TypeError where read


def wrong_type_of_files(entry: Path) -> None:
    edit_record(entry, lambda r: r.__setitem__("files", list(r["files"])))


def no_files_and_payload_deleted(entry: Path) -> None:
    edit_record(entry, lambda r: r.__setitem__("files", {}))
    for png in entry.glob("*.png"):
        png.unlink()


@pytest.mark.parametrize(
    "damage",
    [wrong_type_in_result, wrong_type_of_files, no_files_and_payload_deleted],
    ids=lambda f: f.__name__,
)
def test_a_damaged_featurevis_entry_is_quarantined_and_recomputed(tiny, damage):
    src, out, cache = tiny
    entry = entry_of(cache, "featurevis", layer="conv2", unit=0, diversity=0)
    damage(entry)
    result = build(src, out, cache)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"{entry.name}: warning: damaged cache entry" in result.stderr.replace(str(entry), entry.name)
    assert "1 computed" in result.stderr
    assert [p.name.startswith(entry.name) for p in (cache / "quarantine").iterdir()] == [True]
    assert (out / "tiny" / "index.html").is_file() and (entry / "record.json").is_file()
    assert "images" in json.loads((entry / "record.json").read_text())["result"]


def test_a_payload_of_the_wrong_shape_is_quarantined_and_recomputed(tiny):
    src, out, cache = tiny
    entry = entry_of(cache, "weights", layer="conv2", unit=0)  # the unit's inputs, on its page
    buffer = __import__("io").BytesIO()
    np.save(buffer, np.zeros(3, dtype=np.float32))  # a vector where a stack of kernels belongs
    replace_payload(entry, "kernels.npy", buffer.getvalue())
    result = build(src, out, cache)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "damaged cache entry" in result.stderr and entry.name in result.stderr
    assert "1 computed" in result.stderr
    assert np.load(entry / "kernels.npy").ndim == 3


def read_only(monkeypatch, folder: Path):
    """Make `folder` read-only for root too: a read-only tmpfs mounted on it where the test may
    mount (root ignores permission bits), else a simulated EROFS from the cache's write probe."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)], capture_output=True, timeout=30
    )
    if mounted.returncode == 0:
        return lambda: subprocess.run(["umount", str(folder)], check=True, timeout=30)
    from distillgen.cache import Cache

    def erofs(self):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self.root))

    monkeypatch.setattr(Cache, "check_writable", erofs)
    return lambda: None


def test_a_read_only_cache_is_an_error_when_a_figure_must_be_computed(tiny, tmp_path, monkeypatch):
    src, out, _ = tiny
    before = snapshot(out)
    cache = tmp_path / "read-only-cache"
    release = read_only(monkeypatch, cache)
    try:
        result = build(src, out, cache)
    finally:
        release()
    assert_failed_cleanly(result, out, before, "read-only-cache: error: cannot write figures to the cache")
    assert "read-only file system" in result.stderr


def test_a_full_disk_for_the_cache_is_an_error(tiny, monkeypatch):
    src, out, cache = tiny
    before = snapshot(out)
    write(src / "tiny.md", TINY.replace(":steps: 4", ":steps: 5"))  # a figure to compute

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", full)  # how cache.put writes payloads
    result = build(src, out, cache)
    assert_failed_cleanly(
        result, out, before, "cache: error: cannot write figures to the cache: no space left"
    )
    assert not list((cache / "objects").glob("*/.*"))  # no half-written entry


def test_a_full_disk_for_the_output_is_an_error(tiny, monkeypatch):
    src, out, cache = tiny
    before = snapshot(out)
    write(
        src / "tiny.md", TINY + "\nA new paragraph: its page must be written.\n"
    )  # unchanged ones are linked
    write_text = Path.write_text

    def full(self, *args, **kwargs):
        if f".{out.name}-new-" in str(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    result = build(src, out, cache)
    assert_failed_cleanly(result, out, before, "out: error: cannot write the site: no space left on the disk")


# -- work that would take days -----------------------------------------------------------------
def test_the_work_is_estimated_and_days_of_it_need_yes(tiny):
    src, out, cache = tiny
    before = snapshot(out)
    write(src / "tiny.md", TINY.replace(":steps: 4", ":steps: 10000").replace(":size: 32", ":size: 512"))
    entries = set((cache / "objects").glob("*/*"))
    result = build(src, out, cache)
    assert_failed_cleanly(result, out, before, "estimated compute: 10,000 image-steps, about", "pass --yes")
    assert set((cache / "objects").glob("*/*")) == entries  # refused before computing anything


def test_the_estimate_keeps_the_fastest_speed_measured(tmp_path):
    # A lone unit on a busy machine costs far more per image-step than a batch: had its speed
    # replaced the batch's, the example site's unit pages would be estimated at hours.
    from distillgen.cache import Cache
    from distillgen.compute import _remember_speed
    from distillgen.jobs import FeatureVisJob, FeatureVisSettings

    cache = Cache(tmp_path)
    settings = FeatureVisSettings(steps=100, size=64)
    batch = [FeatureVisJob("shapes", "fp", "mixed3", unit, settings=settings) for unit in range(4)]
    _remember_speed(cache, batch, "cpu", 40.0)  # 400 image-steps: 0.1 s each
    _remember_speed(cache, batch[:1], "cpu", 50.0)  # 100 image-steps: 0.5 s each
    assert cache.speeds("fp")["featurevis@cpu"] == pytest.approx(0.1)


def test_a_small_job_prints_its_estimate(tiny):
    src, out, cache = tiny
    write(src / "tiny.md", TINY.replace(":steps: 4", ":steps: 3"))
    result = build(src, out, cache)
    assert result.exit_code == 0, result.output
    assert re.search(r"estimated compute: 3 image-steps, about \d+ s on cpu", result.stderr)


# -- progress without a terminal ---------------------------------------------------------------
def test_progress_lines_at_a_steady_interval_without_a_terminal(tiny, monkeypatch):
    src, out, cache = tiny
    write(src / "tiny.md", TINY.replace(":steps: 4", ":steps: 40"))
    monkeypatch.setattr(cli, "PROGRESS_INTERVAL", 0.05)
    result = build(src, out, cache)  # CliRunner's stderr is not a terminal
    assert result.exit_code == 0, result.output
    line = re.compile(
        r"(?P<label>shapes: .*): (?P<done>\d+)/(?P<total>\d+) \(\d+%\), \d+ s elapsed(, ETA .*)?"
    )
    lines = [match for text in result.stderr.splitlines() if (match := line.fullmatch(text))]
    first = [m for m in lines if m["label"] == "shapes: featurevis of 1 unit"]
    assert len(first) >= 2, result.stderr  # some while it ran, one at its end
    assert first[-1]["done"] == first[-1]["total"] == "40"
    # One display for the whole build: the unit page's figures join the total as they start.
    assert len({m["label"] for m in lines}) >= 2
    counts = [(int(m["done"]), int(m["total"])) for m in lines]
    assert counts == sorted(counts) and counts[-1][0] == counts[-1][1] > 40


# -- leftovers and races -----------------------------------------------------------------------
def test_staging_folders_of_dead_builds_are_swept(tiny):
    src, out, cache = tiny
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, timeout=60
    )
    stale = out.parent / f".out-new-{dead.stdout.strip()}-x1y2"
    (stale / "tiny").mkdir(parents=True)
    result = build(src, out, cache)
    assert result.exit_code == 0, result.output
    assert leftovers(out) == []


def launch(src: Path, out: Path, cache: Path, *extra: str, slow_write: bool = False) -> subprocess.Popen:
    """A real build in its own process; `slow_write` makes each copied file take 50 ms, so that
    the test can kill it while it writes."""
    args = ["build", str(src), "-o", str(out), "--cache-dir", str(cache), *extra]
    if slow_write:
        code = (
            "import shutil, sys, time; copy = shutil.copyfile\n"
            "shutil.copyfile = lambda *a, **k: (time.sleep(0.05), copy(*a, **k))[1]\n"
            "from distillgen.cli import main; sys.argv[0] = 'distillgen'; main()"
        )
        command = [sys.executable, "-c", code, *args]
    else:
        command = [str(CONSOLE), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_build_killed_while_writing_leaves_nothing_after_the_next_build(tiny):
    src, out, cache = tiny
    shutil.rmtree(out)  # every file is then copied (a rebuild links the unchanged ones)
    process = launch(src, out, cache, slow_write=True)
    deadline = time.monotonic() + 120
    while not leftovers(out):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the build never started writing"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert leftovers(out)  # what a killed build leaves
    result = build(src, out, cache)
    assert result.exit_code == 0, result.output
    assert leftovers(out) == []
    assert (out / "tiny" / "index.html").is_file() and (out / ".distillgen-build").is_file()


def test_two_builds_sharing_a_cache_and_output_compute_each_figure_once(tmp_path):
    src = write(tmp_path / "src" / "tiny.md", TINY).parent
    out, cache = tmp_path / "out", tmp_path / "cache"
    builds = [launch(src, out, cache, "-v") for _ in range(2)]
    results = [process.communicate(timeout=600) for process in builds]
    for process, (_, stderr) in zip(builds, results, strict=True):
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
    totals = [re.search(r"(\d+) figure\(s\) \((\d+) computed\)", stderr) for _, stderr in results]
    figures, computed = int(totals[0][1]), [int(t[2]) for t in totals]
    assert sum(computed) == figures  # each figure computed by one build only
    assert leftovers(out) == []
    assert (out / "tiny" / "index.html").is_file() and (out / "units").is_dir()


def test_with_no_wait_a_busy_cache_is_an_error(tmp_path):
    src = write(tmp_path / "src" / "tiny.md", TINY).parent
    out, cache = tmp_path / "out", tmp_path / "cache"
    cache.mkdir()
    (cache / ".lock").write_text("4242\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from filelock import FileLock; l = FileLock({str(cache / '.lock')!r}); "
         "l.acquire(); print('held', flush=True); input()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        result = build(src, out, cache, "--no-wait")
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "another build (pid 4242) is using" in result.stderr and str(cache) in result.stderr
        waiting = launch(src, out, cache)
        seen = []
        for line in waiting.stderr:  # it says whom it waits for, then waits
            seen.append(line)
            if "waiting for another build" in line:
                break
        assert f"waiting for another build using {cache} (pid 4242)" in "".join(seen), seen
        assert waiting.poll() is None
        holder.stdin.write("\n")
        holder.stdin.flush()
        _, rest = waiting.communicate(timeout=600)
        assert waiting.returncode == 0, "".join(seen) + rest
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_the_lock_is_free_after_a_build(tiny):
    _, _, cache = tiny
    lock = FileLock(cache / ".lock")
    lock.acquire(timeout=0)
    lock.release()


# -- pruning the cache -------------------------------------------------------------------------
def entries(cache: Path) -> set[str]:
    return {folder.name for folder in (cache / "objects").glob("*/*") if folder.is_dir()}


def new_version(tiny) -> None:
    """Build a new version of the tiny site's figure: the earlier one's entries are unused."""
    src, out, cache = tiny
    hour_ago = time.time() - 3600
    for record in (cache / "objects").glob("*/*/record.json"):  # computed well before, not just now
        os.utime(record, (hour_ago, hour_ago))
    write(src / "tiny.md", TINY.replace(":steps: 4", ":steps: 5"))
    result = build(src, out, cache)
    assert result.exit_code == 0 and not re.search(r"\(0 computed\)", result.stderr), result.output


def pruned(result) -> tuple[int, int]:
    """(figures, unused figures pruned) from a build's summary."""
    assert result.exit_code == 0, result.output
    found = re.search(r"(\d+) figure\(s\).*, (\d+) unused figure\(s\) pruned", result.stderr)
    assert found, result.stderr
    return int(found[1]), int(found[2])


def test_prune_cache_removes_the_figures_no_page_uses_and_nothing_else(tiny):
    src, out, cache = tiny
    first = entries(cache)
    new_version(tiny)
    both = entries(cache)
    shard = next((cache / "objects").iterdir())
    (shard / ".0123456789ab-x").mkdir()  # what a killed build left half written
    (shard / "notes").mkdir()  # not ours
    (cache / "objects" / "backup" / ("e" * 64)).mkdir(parents=True)  # not in a shard: not ours
    result = build(src, out, cache, "--prune-cache", "--strict")
    figures, removed = pruned(result)
    kept = entries(cache)
    old = both - kept
    assert len(old) == removed > 0 and old <= first and len(kept) == figures + 2  # and notes, backup
    assert (shard / "notes").is_dir() and (cache / "objects" / "backup" / ("e" * 64)).is_dir()
    assert not (shard / ".0123456789ab-x").exists()
    assert not set(json.loads((cache / "index.json").read_text())["entries"]) & old
    again = build(src, out, cache, "--prune-cache")
    assert "0 computed" in again.stderr and pruned(again)[1] == 0  # nothing it uses went
    write(src / "tiny.md", TINY)  # the earlier version again: just what was pruned is computed
    assert f"({removed} computed)" in build(src, out, cache).stderr


def test_prune_cache_keeps_what_another_build_wrote_while_it_ran(tiny):
    # serve computing an edit while a pruning build waits for the cache's lock: its figures stay
    src, out, cache = tiny
    new_version(tiny)
    before = entries(cache)
    later = time.time() + 60
    for record in (cache / "objects").glob("*/*/record.json"):
        os.utime(record, (later, later))  # as if written after the pruning build started
    assert pruned(build(src, out, cache, "--prune-cache"))[1] == 0
    assert entries(cache) == before


def test_a_build_that_fails_prunes_nothing(tiny, monkeypatch):
    src, out, cache = tiny
    new_version(tiny)
    before = entries(cache)
    write(src / "tiny.md", TINY + "\nA new paragraph: its page must be written.\n")
    write_text = Path.write_text

    def full(self, *args, **kwargs):
        if f".{out.name}-new-" in str(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)  # the site cannot be written: last, before pruning
    result = build(src, out, cache, "--prune-cache")
    assert result.exit_code == 1 and "no space left on the disk" in result.stderr
    assert entries(cache) == before


def test_a_cache_that_cannot_be_pruned_is_a_warning_and_the_site_is_built(tiny, monkeypatch):
    src, out, cache = tiny
    new_version(tiny)
    before = entries(cache)
    rename = Path.rename

    def read_only_objects(self, target):
        if (cache / "objects") in self.parents:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", read_only_objects)
    result = build(src, out, cache, "--prune-cache", "--strict")
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert re.search(
        r"warning: [1-9]\d* folder\(s\) could not be removed: read-only file system", result.stderr
    )
    assert pruned(result)[1] == 0 and entries(cache) == before
    assert set(json.loads((cache / "index.json").read_text())["entries"]) == before  # none forgotten
    monkeypatch.setattr(Path, "rename", rename)
    (cache / ".lock").unlink()
    (cache / ".lock").mkdir()  # the lock cannot be taken: nothing is pruned
    result = build(src, out, cache, "--prune-cache")
    assert result.exit_code == 0 and "warning: the cache was not pruned:" in result.stderr
    assert "unused figure(s) pruned" not in result.stderr and entries(cache) == before


# -- serve -------------------------------------------------------------------------------------
def test_serve_exits_promptly_and_cleanly_on_sigterm(tiny):
    src, out, cache = tiny
    process = subprocess.Popen(
        [str(CONSOLE), "serve", str(src), "-o", str(out), "--cache-dir", str(cache), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stderr:
        if "serving" in line:
            break
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    stderr = process.stderr.read()
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert leftovers(out) == []
