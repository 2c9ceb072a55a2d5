"""The content-addressed cache: keys, atomic entries, damage detection, model descriptions."""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from pathlib import Path

from distillgen.cache import Cache
from distillgen.jobs import FeatureVisJob, FeatureVisSettings
from distillgen.units import Layer, ModelInfo, fingerprint, parse_spec

KEY = "ab" + "0" * 62


def cache_with_warnings(root: Path) -> tuple[Cache, list[str]]:
    warnings: list[str] = []
    return Cache(root, warn=lambda path, message: warnings.append(f"{path}: {message}")), warnings


def test_put_then_get_returns_the_files_and_record(tmp_path):
    cache, warnings = cache_with_warnings(tmp_path)
    assert cache.get(KEY) is None
    stored = cache.put(KEY, {"image0.png": b"png bytes"}, {"result": {"values": [1.5]}})
    loaded = cache.get(KEY)
    assert loaded is not None and loaded.folder == stored.folder
    assert loaded.file("image0.png").read_bytes() == b"png bytes"
    assert loaded.record["result"] == {"values": [1.5]} and loaded.record["key"] == KEY
    assert warnings == []
    assert [p.name for p in loaded.folder.parent.iterdir()] == [KEY]  # no staging folders left


def test_damaged_entries_are_quarantined_reported_and_replaced(tmp_path):
    cache, warnings = cache_with_warnings(tmp_path)

    def damage(how) -> None:
        entry = cache.put(KEY, {"image0.png": b"png bytes"}, {})
        how(entry)
        assert cache.get(KEY) is None
        assert not entry.folder.exists()  # moved aside, so the next build computes it again

    damage(lambda entry: entry.file("image0.png").write_bytes(b"png"))  # truncated
    assert "does not match its recorded checksum" in warnings[-1] and "moved to" in warnings[-1]
    damage(lambda entry: entry.file("image0.png").unlink())
    assert "No such file" in warnings[-1]
    damage(lambda entry: (entry.folder / "record.json").write_text("{not json"))
    assert "damaged cache entry" in warnings[-1]
    assert len(list((tmp_path / "quarantine").iterdir())) == 3  # kept for inspection
    cache.put(KEY, {"image0.png": b"fresh"}, {})
    fresh = cache.get(KEY)
    assert fresh.file("image0.png").read_bytes() == b"fresh"
    assert sorted(p.name for p in fresh.folder.iterdir()) == ["image0.png", "record.json"]


def test_an_entry_under_the_wrong_key_is_not_trusted(tmp_path):
    cache, warnings = cache_with_warnings(tmp_path)
    other = "ab" + "1" * 62
    entry = cache.put(KEY, {"a.png": b"x"}, {})
    entry.folder.rename(entry.folder.with_name(other))
    assert cache.get(other) is None and "another key" in warnings[-1]


def test_model_descriptions_round_trip(tmp_path):
    cache, warnings = cache_with_warnings(tmp_path)
    info = ModelInfo(
        "shapes",
        64,
        "none",
        OrderedDict(conv1=Layer("conv1", (16, 64, 64))),
        "c0ffee",
        {"c1": "conv1"},
        "card",
    )
    assert cache.model_info("f" * 64) is None
    cache.put_model_info("f" * 64, info)
    assert cache.model_info("f" * 64) == info
    (tmp_path / "models" / f"{'f' * 64}.json").write_text("[]")
    assert cache.model_info("f" * 64) is None and "damaged model description" in warnings[-1]


def test_job_keys_change_with_every_setting_and_nothing_else():
    spec = parse_spec("shapes")
    base = FeatureVisJob(str(spec), fingerprint(spec), "mixed3", 5)
    assert base.key == FeatureVisJob(str(spec), fingerprint(spec), "mixed3", 5).key
    variants = [
        dataclasses.replace(base, layer="mixed4"),
        dataclasses.replace(base, unit=6),
        dataclasses.replace(base, objective="neuron"),
        dataclasses.replace(base, diversity=3),
        dataclasses.replace(base, fingerprint="0" * 64),
        dataclasses.replace(base, model="shapes@untrained"),
    ]
    for name, value in [("steps", 10), ("size", 32), ("lr", 0.1), ("seed", 1), ("fft", False)]:
        variants.append(
            dataclasses.replace(base, settings=dataclasses.replace(base.settings, **{name: value}))
        )
    variants.append(dataclasses.replace(base, settings=FeatureVisSettings(decorrelate=False)))
    variants.append(dataclasses.replace(base, settings=FeatureVisSettings(transforms="none")))
    keys = {job.key for job in variants}
    assert len(keys) == len(variants) and base.key not in keys


def test_fingerprint_follows_the_weights_file(tmp_path):
    model_py = tmp_path / "net.py"
    model_py.write_text("import torch\ndef make():\n    return torch.nn.Conv2d(3, 4, 3)\n")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"first")
    spec = parse_spec(f"{model_py}:make@{weights}")
    before = fingerprint(spec)
    assert fingerprint(spec) == before
    weights.write_bytes(b"second")
    assert fingerprint(spec) != before
    untrained = fingerprint(parse_spec("shapes@untrained"))
    assert untrained != fingerprint(parse_spec("shapes"))


def test_records_are_json(tmp_path):
    cache, _ = cache_with_warnings(tmp_path)
    cache.put(KEY, {"a.png": b"x"}, {"job": {"kind": "featurevis"}})
    record = json.loads((cache.get(KEY).folder / "record.json").read_text())
    assert record["files"]["a.png"] == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"


def test_a_kinds_revision_changes_only_its_own_keys(monkeypatch):
    from distillgen.jobs import Dataset, UniversalityJob, WeightsJob

    def jobs():  # new values each time: a job hashes its key once
        weights = WeightsJob("shapes", "fp", "mixed3", "mixed4", 1)
        universality = UniversalityJob(
            "shapes", "fp", "mixed4", "shapes@1", "fp1", "mixed4", Dataset("shapes", "d")
        )
        return weights, universality

    before = [job.key for job in jobs()]
    monkeypatch.setattr(UniversalityJob, "revision", UniversalityJob.revision + 1)
    weights, universality = jobs()
    assert weights.key == before[0] and universality.key != before[1]
