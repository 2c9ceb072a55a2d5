"""Dictionaries (issue 17): the TopK SAE, its job and cache key, features as units through the
adapter (each kind against the computation by hand), and every mistake as path:line."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import re

import numpy as np
import pytest
import torch

from distillgen import datasets, stimuli
from distillgen.engine import dictionary as sae
from distillgen.engine import run_jobs
from distillgen.engine.features import arrays
from distillgen.engine.featurevis import preprocessor
from distillgen.engine.models import ModelStore
from distillgen.engine.probe import unit_maps
from distillgen.engine.weights import expanded_weights
from distillgen.jobs import (
    AblationJob,
    Attached,
    AttributionJob,
    AttributionStage,
    DictionaryJob,
    DictionarySettings,
    Edit,
    ExamplesJob,
    FeatureVisJob,
    FeatureVisSettings,
    Sweep,
    TuningJob,
    UniversalityJob,
    WeightsJob,
    job_key,
)
from distillgen.stimuli import sweep_images
from distillgen.units import fingerprint, parse_spec
from tests.conftest import run_cli, write

CPU = torch.device("cpu")
SMALL = DictionarySettings(features=64, k=4, steps=200, batch=512)
STORE = ModelStore()


def run(jobs: list) -> list:
    return run_jobs(STORE.get(jobs[0].model), jobs, CPU, lambda steps: None, STORE.get)


def dictionary_job(layer: str = "mixed4", settings: DictionarySettings = SMALL, spec: str = "shapes"):
    dataset = datasets.dataset("shapes", 100, 0, None)
    return DictionaryJob(spec, fingerprint(parse_spec(spec)), layer, dataset, settings)


@pytest.fixture(scope="session")
def trained():
    """A small dictionary on mixed4 and one on mixed3, as jobs carry them; and their arrays."""
    found = {}
    for name, layer in (("m4", "mixed4"), ("m3", "mixed3")):
        job = dictionary_job(layer)
        (output,) = run([job])
        data = output.files["dictionary.npz"]
        attached = Attached(
            name,
            "shapes",
            layer,
            SMALL.features,
            SMALL.k,
            output.result.checksum,
            base64.b64encode(data).decode(),
        )
        found[name] = (job, output, attached, arrays(data))
    return found


# -- the sparse autoencoder --------------------------------------------------------------


def test_a_topk_sae_recovers_a_known_sparse_dictionary():
    rng = np.random.default_rng(0)
    atoms = rng.normal(size=(48, 24))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    n, k = 20000, 3
    codes = np.zeros((n, len(atoms)))
    for row in range(n):
        codes[row, rng.choice(len(atoms), k, replace=False)] = rng.uniform(0.5, 1.5, k)
    samples = (codes @ atoms).astype(np.float32)
    weights = sae.train(samples, DictionarySettings(features=96, k=k, steps=3000, batch=256, lr=0.004))
    learned = weights["decoder"] / np.linalg.norm(weights["decoder"], axis=1, keepdims=True)
    best = (atoms @ learned.T).max(axis=1)  # each true atom's closest learned feature
    assert (best > 0.9).mean() >= 0.8, np.sort(best)
    fvu, l0, _ = sae.measures(weights, samples, k)
    assert fvu < 0.1 and l0 <= k


def test_training_is_deterministic(trained):
    job, output, _, _ = trained["m4"]
    (again,) = run([job])
    assert again.files["dictionary.npz"] == output.files["dictionary.npz"]
    assert again.result == output.result
    assert output.result.checksum == hashlib.sha256(output.files["dictionary.npz"]).hexdigest()


def test_the_result_holds_the_training_measures(trained):
    _, output, _, _ = trained["m4"]
    result = output.result
    assert 0 < result.fvu < 1 and 0 < result.mean_l0 <= SMALL.k
    assert len(result.density) == SMALL.features and result.dead == sum(d == 0 for d in result.density)
    assert result.samples == 100 * 8 * 8 and result.channels == 96
    assert len(result.neuron_purity) == 96 and len(result.feature_purity) == SMALL.features
    assert result.classes == ("line", "curve", "circle", "corner", "texture")


def test_the_key_changes_with_the_weights_the_layer_the_probe_set_and_every_setting():
    job = dictionary_job()
    probe = job.dataset
    others = [
        dictionary_job(spec="shapes@1"),
        dictionary_job(layer="mixed3"),
        *(
            dataclasses.replace(job, dataset=dataclasses.replace(probe, **change))
            for change in (
                {"source": "/probes/folder", "fingerprint": "f" * 64},  # another probe set
                {"fingerprint": "0" * 64},  # the generator (or the folder's files) changed
                {"count": 200},
                {"seed": 1},  # sample-seed
            )
        ),
        *(
            dictionary_job(settings=SMALL.__class__(**{**SMALL.__dict__, f: v}))
            for f, v in (
                ("features", 32),
                ("k", 2),
                ("steps", 100),
                ("batch", 256),
                ("lr", 0.01),
                ("seed", 1),
            )
        ),
    ]
    assert len({job.key, *(o.key for o in others)}) == len(others) + 1


def test_a_result_that_does_not_fit_its_job_is_refused(trained):
    from distillgen.jobs import ResultError

    job, output, _, _ = trained["m4"]
    files = {"dictionary.npz": None}
    output.result.check(job, files)
    result = output.result
    for bad in (
        {"neuron_purity": result.neuron_purity[:-1]},
        {"neuron_class": result.neuron_class[:-1]},
        {"feature_class": result.feature_class[:-1]},
        {"feature_purity": result.feature_purity[:-1]},
        {"feature_class": (len(result.classes), *result.feature_class[1:])},
        {"neuron_class": (-1, *result.neuron_class[1:])},
    ):
        with pytest.raises(ResultError):
            dataclasses.replace(result, **bad).check(job, files)


def test_a_job_that_reads_no_feature_keeps_its_key_and_one_that_does_is_keyed_by_the_checksum():
    job = FeatureVisJob("shapes", "f" * 64, "mixed4", 3)
    fields = {k: v for k, v in json.loads(json.dumps(job.__dict__, default=lambda o: o.__dict__)).items()}
    fields.pop("dictionaries")
    for later in ("spectrum", "magnitude"):  # MACO's, left out at their defaults (and unkeyed)
        fields.pop(later)
    fields["settings"].pop("param")
    key = {"kind": "featurevis", "engine": "1", "revision": FeatureVisJob.revision, **fields}
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"))
    # as before dictionaries: the field is left out of the key when it is empty
    assert job_key(job) == hashlib.sha256(canonical.encode()).hexdigest()
    one = Attached("m4", "shapes", "mixed4", 64, 4, "a" * 64, "AAAA")
    two = Attached("m4", "shapes", "mixed4", 64, 4, "b" * 64, "AAAA")
    reads = FeatureVisJob("shapes", "f" * 64, "m4", 3, dictionaries=(one,))
    assert reads.key != FeatureVisJob("shapes", "f" * 64, "m4", 3, dictionaries=(two,)).key
    same_checksum = Attached("m4", "shapes", "mixed4", 64, 4, "a" * 64, "BBBB")
    assert reads.key == FeatureVisJob("shapes", "f" * 64, "m4", 3, dictionaries=(same_checksum,)).key


# -- features through the adapter, against the computation by hand ----------------------


def _pre(weights, maps: torch.Tensor, feature: int) -> torch.Tensor:
    """A feature's activation by hand: its encoder row on the centred activations."""
    e, c, b = (torch.from_numpy(weights[n]) for n in ("encoder", "center", "bias"))
    return torch.einsum("c,nchw->nhw", e[feature], maps - c[None, :, None, None]) + b[feature]


def test_a_features_examples_are_those_of_its_encoder_direction(trained):
    _, _, attached, weights = trained["m4"]
    dataset = datasets.dataset("shapes", 200, 3, None)
    for feature in (1, 7):
        job = ExamplesJob("shapes", "x", "m4", feature, dataset, top=6, dictionaries=(attached,))
        (output,) = run([job])
        images = datasets.images(dataset, 64)
        maps = unit_maps(STORE.get("shapes"), "mixed4", list(range(96)), images, CPU)
        peaks = _pre(weights, maps, feature).flatten(1).amax(dim=1).numpy()
        by_hand = np.argsort(-peaks, kind="stable")[:6]
        assert [e.index for e in output.result.examples] == [int(i) for i in by_hand]
        assert [e.value for e in output.result.examples] == pytest.approx(peaks[by_hand], rel=1e-4, abs=1e-5)


def test_a_features_tuning_curve_is_its_peak_activation(trained):
    _, _, attached, weights = trained["m4"]
    sweep = Sweep("curve", "", "orientation", tuple(stimuli.sweep(0, 360, 6, True)))
    job = TuningJob("shapes", "x", "m4", (2, 5), sweep, dictionaries=(attached,))
    (output,) = run([job])
    maps = unit_maps(STORE.get("shapes"), "mixed4", list(range(96)), sweep_images(sweep), CPU)
    for column, feature in enumerate((2, 5)):
        by_hand = _pre(weights, maps, feature).flatten(1).amax(dim=1).numpy()
        got = [row[column] for row in output.result.responses]
        assert got == pytest.approx(by_hand, rel=1e-4, abs=1e-5)


def test_a_features_attribution_to_the_layer_it_reads_is_its_encoder_row_times_the_activations(trained):
    """A feature's activation is linear in the layer it reads: activation × gradient gives each
    neuron its encoder weight times its activation at the feature's peak, and integrated
    gradients from a black image are complete."""
    _, _, attached, weights = trained["m4"]
    dataset = datasets.dataset("shapes", 100, 0, None)
    feature = 3
    jobs = [
        AttributionJob(
            "shapes",
            "x",
            "m4",
            feature,
            (AttributionStage("mixed4"),),
            4,
            method,
            64,
            "black",
            0.01,
            "examples",
            dataset=dataset,
            top=4,
            maps=False,
            dictionaries=(attached,),
        )
        for method in ("gradient", "integrated")
    ]
    gradient, integrated = run(jobs)
    images = datasets.images(dataset, 64)[list(gradient.result.labels)]
    maps = unit_maps(STORE.get("shapes"), "mixed4", list(range(96)), images, CPU)  # [4, 96, 8, 8]
    peaks = _pre(weights, maps, feature).flatten(1).argmax(1)
    at_peak = maps.flatten(2)[torch.arange(len(images)), :, peaks]  # [4, 96]
    expected = at_peak * torch.from_numpy(weights["encoder"][feature])
    with np.load(io.BytesIO(gradient.files["attribution.npz"])) as arrays:
        np.testing.assert_allclose(arrays["all_0"], expected.numpy(), rtol=1e-4, atol=1e-5)
    (stage,) = integrated.result.stages
    assert stage.error <= 0.01 and abs(stage.change) > 0


def _images_and_job(attached, edits, layer="fc", unit=1):
    dataset = datasets.dataset("shapes", 50, 0, None)
    job = AblationJob(
        "shapes", "x", layer, unit, edits, "examples", dataset=dataset, top=10, dictionaries=(attached,)
    )
    (output,) = run([job])
    return datasets.images(dataset, 64)[list(output.result.labels)], output


def _hooked(model, layer: str, hook, images: np.ndarray) -> torch.Tensor:
    handle = dict(model.module.named_modules())[layer].register_forward_hook(hook)
    try:
        with torch.no_grad():
            return model.module(preprocessor(model.preprocessing)(torch.from_numpy(images)))
    finally:
        handle.remove()


def test_zeroing_a_feature_subtracts_its_topk_code_times_its_decoder_row(trained):
    _, trained_output, attached, weights = trained["m4"]
    feature = int(np.argmax(trained_output.result.density))  # the most active one
    images, output = _images_and_job(attached, (Edit("m4", (feature,), scale=0.0, whole=True),))
    model = STORE.get("shapes")
    d = torch.from_numpy(weights["decoder"][feature])

    def removing(code):
        def hook(_module, _inputs, out):
            n, c, h, w = out.shape
            samples = out.permute(0, 2, 3, 1).reshape(-1, c)
            z = code(samples)[:, feature].reshape(n, h, w)
            return out - torch.einsum("nhw,c->nchw", z, d)

        return hook

    # The SAE's own code (engine/dictionary.encode: TopK of the encoder's output), not the adapter.
    topk_code = removing(lambda samples: sae.encode(weights, samples, SMALL.k))
    after = _hooked(model, "mixed4", topk_code, images)[:, 1]
    assert list(output.result.after) == pytest.approx(after.numpy(), rel=1e-4, abs=1e-5)
    assert output.result.before != output.result.after
    # ... which is not relu of the activation: where the feature is not among the k kept, the
    # SAE adds nothing of it, so zeroing it removes nothing there.
    relu_code = removing(lambda samples: torch.relu(sae.encode(weights, samples, SMALL.features)))
    ungated = _hooked(model, "mixed4", relu_code, images)[:, 1]
    assert np.abs(ungated.numpy() - np.array(output.result.after)).max() > 1e-2


def test_ablating_neurons_of_the_layer_a_feature_reads_changes_the_feature(trained):
    _, _, attached, weights = trained["m4"]
    units = tuple(range(0, 96, 2))
    for feature in (3, 11):
        edits = (Edit("mixed4", units, scale=0.0, whole=True),)
        images, output = _images_and_job(attached, edits, layer="m4", unit=feature)
        maps = unit_maps(STORE.get("shapes"), "mixed4", list(range(96)), images, CPU)
        maps[:, list(units)] = 0
        by_hand = _pre(weights, maps, feature).flatten(1).amax(dim=1).numpy()
        assert list(output.result.after) == pytest.approx(by_hand, rel=1e-4, abs=1e-5)
        assert output.result.before != output.result.after


def test_weights_from_a_layer_into_its_own_features_are_the_encoder_rows(trained):
    _, _, m4, w4 = trained["m4"]
    jobs = [WeightsJob("shapes", "x", "mixed4", "m4", unit, dictionaries=(m4,)) for unit in (3, 9)]
    for unit, output in zip((3, 9), run(jobs), strict=True):
        kernel = np.load(__import__("io").BytesIO(output.files["kernels.npy"]))
        assert kernel.shape == (96, 1, 1)
        assert kernel[:, 0, 0] == pytest.approx(w4["encoder"][unit], rel=1e-4, abs=1e-6)


def _padded(kernels: list[np.ndarray], side: int) -> np.ndarray:
    out = []
    for k in kernels:
        top = (side - k.shape[1]) // 2
        out.append(np.pad(k, ((0, 0), (top, side - k.shape[1] - top), (top, side - k.shape[2] - top))))
    return np.stack(out)


def test_weights_between_features_are_decoder_pushed_forward_and_encoder_pulled_back(trained):
    _, _, m3, w3 = trained["m3"]
    _, _, m4, w4 = trained["m4"]
    job = WeightsJob("shapes", "x", "m3", "m4", 5, dictionaries=(m3, m4))
    (output,) = run([job])
    kernel = np.load(__import__("io").BytesIO(output.files["kernels.npy"]))
    neurons = _padded(expanded_weights(STORE.get("shapes"), "mixed3", "mixed4", list(range(96))), 10)
    # [mixed4 unit, mixed3 channel, h, w] -> feature 5 of m4 from every feature of m3
    into = np.einsum("o,oihw->ihw", w4["encoder"][5], neurons)
    by_hand = np.einsum("fi,ihw->fhw", w3["decoder"], into)
    assert kernel.shape[0] == 64
    assert _padded([kernel], 10)[0] == pytest.approx(
        by_hand, rel=1e-3, abs=1e-4 * float(np.abs(by_hand).max())
    )


def test_a_feature_visualization_maximizes_the_encoder_activation(trained):
    """Its objective is the feature's activation (mean over positions), computed by hand on its
    image; and it is maximized: higher than on a grey image and than on any of 200 drawings."""
    import io

    from PIL import Image

    _, _, attached, weights = trained["m4"]
    model = STORE.get("shapes")

    def activation(pixels: np.ndarray, feature: int) -> np.ndarray:
        maps = unit_maps(model, "mixed4", list(range(96)), pixels, CPU)
        return _pre(weights, maps, feature).flatten(1).mean(dim=1).numpy()

    drawings = datasets.images(datasets.dataset("shapes", 200, 0, None), 64)
    grey = np.full((1, 3, 64, 64), 0.5, np.float32)
    # 96 steps: with whole-pixel jitter, feature 3 leaves near-silence later than with lucent's
    # four resamplings (0.56 at 48 steps, 14.4 at 96; lucent's 2.1 and 17.4)
    settings = FeatureVisSettings(steps=96, size=64)
    for feature in (3, 7):
        job = FeatureVisJob("shapes", "x", "m4", feature, settings=settings, dictionaries=(attached,))
        (output,) = run([job])
        image = Image.open(io.BytesIO(output.files["image0.png"])).convert("RGB")
        pixels = np.asarray(image, np.float32).transpose(2, 0, 1)[None].copy() / 255
        (value,) = activation(pixels, feature)
        assert output.result.values[0] == pytest.approx(value, rel=0.05, abs=0.02)
        assert value > activation(grey, feature)[0] and value > activation(drawings, feature).max()
    assert "m4" not in dict(model.module.named_modules()) and "m4" not in model.layers  # removed


# -- articles: a build, and every mistake ----------------------------------------------

HEADER = """\
---
title: Features
dictionaries:
  m4: {layer: mixed4, features: 64, k: 4, steps: 200, count: 100}
featurevis: {steps: 4, size: 32}
---
"""


def build(tmp_path, body: str, header: str = HEADER, config: str | None = None):
    src = tmp_path / "src"
    write(src / "a.md", header + body)
    if config is not None:
        write(src / "distillgen.yml", config)
    return run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))


def test_a_built_article_shows_features_as_units_and_caches_them(tmp_path):
    body = """
Feature {unit}`m4:3`, whose largest loading is {value}`fig-dict.loading-1 of m4:3`.

```{featurevis} m4:0-1
```

```{examples} m4:3
:count: 100
:top: 4
```

```{dictionary} m4
:label: fig-dict
```

```{tuning} m4:3,5
:stimulus: curve
:range: 0 360 6
```

```{ablation} fc:1
:edit: zero unit m4:3
:on: examples
:count: 100
:top: 4
```

```{weights} mixed3 -> m4:3
:top: 2
```

```{weights} mixed4 -> m4:3
:top: 2
```

```{circuit} m4:3
:inputs: m3
:top: 2
```

```{universality} m4
:other: shapes
:other-layer: mixed4
:baseline: shuffled
:count: 50
:pairs: 2
```
"""
    result = build(
        tmp_path,
        body,
        HEADER.replace(
            "dictionaries:\n",
            "dictionaries:\n  m3: {layer: mixed3, features: 64, k: 4, steps: 100, count: 100}\n",
        ),
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    assert "m4:3" in page and "fraction of variance unexplained" in page
    decoders = [np.load(path)["decoder"] for path in (tmp_path / "cache").rglob("dictionary.npz")]
    (decoder,) = [d for d in decoders if d.shape[1] == 96]  # m4's: mixed4 has 96 neurons, mixed3 64
    direction = decoder[3] / np.linalg.norm(decoder[3])
    (loading,) = re.findall(r'<a class="value" href="#fig-dict"[^>]*>([^<]*)</a>', page)
    assert loading == f"{direction.max():.2f}"  # the feature's largest cosine with a neuron's axis
    assert (tmp_path / "out" / "units" / "shapes" / "m4" / "3.html").is_file()
    records = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    trained = [r for r in records if r["job"]["kind"] == "dictionary"]
    assert trained and {"fvu", "mean_l0", "dead"} <= set(trained[0]["result"]) and "seconds" in trained[0]
    header = HEADER.replace(
        "dictionaries:\n",
        "dictionaries:\n  m3: {layer: mixed3, features: 64, k: 4, steps: 100, count: 100}\n",
    )
    again = build(tmp_path, body, header)
    assert again.exit_code == 0 and "(0 computed)" in again.output, again.output
    changed = build(
        tmp_path, body, header.replace("mixed4, features: 64, k: 4", "mixed4, features: 64, k: 3")
    )
    assert changed.exit_code == 0, changed.output
    computed = int(re.search(r"(\d+) computed", changed.output)[1])
    assert computed >= 5  # the dictionary and every figure that reads it


def test_a_small_probe_set_and_a_folder_probe_set(tmp_path):
    """Purity over the probe's real size (10 drawings, not 16); a folder has no classes, and
    the figure says so; a figure reads two dictionaries of one layer."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(10):
        picture = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        (tmp_path / "src" / "imgs").mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture).save(tmp_path / "src" / "imgs" / f"{i}.png")
    header = HEADER.replace(
        "  m4: {layer: mixed4, features: 64, k: 4, steps: 200, count: 100}\n",
        "  m4: {layer: mixed4, features: 64, k: 4, steps: 50, count: 10}\n"
        "  f4: {layer: mixed4, features: 64, k: 4, steps: 50, count: 10, dataset: imgs}\n",
    )
    body = (
        "\n```{dictionary} m4\n```\n\n```{dictionary} f4\n```\n\n"
        "```{universality} m4\n:other: shapes\n:other-layer: f4\n:baseline: shuffled\n:count: 10\n```\n"
    )
    result = build(tmp_path, body, header)
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    tops = sorted(
        (r["job"]["dataset"]["source"] == "shapes", r["result"]["top"], len(r["result"]["feature_purity"]))
        for r in records
        if r["job"]["kind"] == "dictionary"
    )
    assert tops == [(False, 10, 0), (True, 10, 64)]
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    assert "share of the top 10 images" in page
    second = page.split("Figure 1</span>")[1].split("Figure 2</span>")[0]  # f4's figure
    assert page.count("The probe set has no classes") == 1 and "The probe set has no classes" in second
    assert "No neuron is shared by features of different classes" not in second


ERRORS = [
    ("```{featurevis} m5:3\n```\n", 8, "unknown layer 'm5' in model 'shapes' (did you mean 'm4'?)"),
    (
        "```{examples} m4:64\n```\n",
        8,
        "unit 64 is out of range for 'm4' in model 'shapes': it has 64 units (0-63)",
    ),
    ("```{dictionary} m5\n```\n", 8, "unknown dictionary 'm5' (did you mean 'm4'?)"),
    ("Chip {unit}`m4:99`.\n", 8, "out of range for 'm4'"),
]


@pytest.mark.parametrize("body, line, message", ERRORS)
def test_a_bad_feature_address_is_an_error_at_its_line(tmp_path, body, line, message):
    result = build(tmp_path, "\n" + body)
    assert result.exit_code == 1
    assert f"a.md:{line}: error:" in result.output and message in result.output, result.output
    assert "Traceback" not in result.output


def test_an_error_in_a_figure_that_reads_an_untrained_dictionary_is_reported_before_training(tmp_path):
    body = "\n```{universality} m4\n:other: shapes\n:other-layer: mixed4\n:baseline: shuffled\n:units: 999\n```\n"
    result = build(tmp_path, body)
    assert result.exit_code == 1
    assert "a.md:12: error:" in result.output and "unit 999 is out of range for 'm4'" in result.output
    assert "dictionary of" not in result.output and not list((tmp_path / "cache").rglob("*.npz"))


def test_two_different_dictionaries_of_one_name_in_two_articles_are_an_error(tmp_path):
    write(tmp_path / "src" / "b.md", HEADER.replace("k: 4", "k: 3") + "\nChip {unit}`m4:3`.\n")
    result = build(tmp_path, "\nChip {unit}`m4:3`.\n")
    assert result.exit_code == 1
    assert "b.md:4: error: two different dictionaries named 'm4' of model 'shapes'" in result.output
    assert "declared at a.md:4" in result.output, result.output
    assert "dictionary of" not in result.output  # before anything is computed
    same = build(tmp_path, "\nChip {unit}`m4:3`.\n", HEADER.replace("k: 4", "k: 3"))
    assert same.exit_code == 0, same.output


BAD_DECLARATIONS = [
    (
        "  m4: {layer: mixed4, featurs: 64}\n",
        4,
        "unknown key 'dictionaries.m4.featurs' (did you mean 'features'?)",
    ),
    ("  m4: {layer: mixed4, k: 0}\n", 4, "bad value for 'dictionaries.m4.k'"),
    ("  m4: {layer: mixed4, features: 8, k: 16}\n", 4, "must not exceed its features"),
    ("  m4: {features: 8}\n", 4, "'dictionaries.m4' needs a 'layer'"),
    ("  m4: {layer: mixd4}\n", 4, "unknown layer 'mixd4' in model 'shapes' (did you mean 'mixed4'?)"),
    ("  mixed3: {layer: mixed4}\n", 4, "has the name of a layer"),
    ("  4m: {layer: mixed4}\n", 4, "'4m' is not a dictionary name"),
    ("  m4: {layer: mixed4, model: shapes@7}\n", 4, "no shipped weights for 'shapes@7'"),
    ("  m4: mixed4\n", 4, "'dictionaries.m4' must be a mapping"),
    (  # every position of 20,000 images of conv1: 4.9 GiB of activations to train on
        "  c1:\n    layer: conv1\n    count: 20000\n",
        6,
        "dictionary 'c1' trains on every position of its 20,000 images of conv1 (16×64×64): 4.9 GiB of "
        "activations, more than 2 GiB; give it at most 8,192 images (count: 8192)",
    ),
]


@pytest.mark.parametrize("entry, line, message", BAD_DECLARATIONS)
def test_a_bad_declaration_is_an_error_at_its_line(tmp_path, entry, line, message):
    header = f"---\ntitle: Features\ndictionaries:\n{entry}---\n"
    result = build(tmp_path, "\nText.\n", header)
    assert result.exit_code == 1
    assert f"a.md:{line}: error:" in result.output and message in result.output, result.output
    assert "Traceback" not in result.output


def test_the_site_config_declares_dictionaries_for_every_article(tmp_path):
    header = "---\ntitle: Features\nfeaturevis: {steps: 4, size: 32}\n---\n"
    bad = build(tmp_path, "\nText.\n", header, "dictionaries:\n  m4: {layer: mixed4, k: nine}\n")
    assert bad.exit_code == 1 and "distillgen.yml:2: error: bad value for 'dictionaries.m4.k'" in bad.output
    config = "dictionaries:\n  m4: {layer: mixed4, features: 64, k: 4, steps: 200, count: 100}\n"
    good = build(tmp_path, "\n```{examples} m4:2\n:count: 100\n:top: 2\n```\n", header, config)
    assert good.exit_code == 0, good.output


def test_verify_recomputes_a_dictionary_and_a_features_image(tmp_path):
    body = "\n```{dictionary} m4\n:neurons: 0\n```\n\n```{featurevis} m4:1\n```\n"
    assert build(tmp_path, body).exit_code == 0
    result = run_cli("verify", str(tmp_path / "src"), "--cache-dir", str(tmp_path / "cache"), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["figures"]
    kinds = {row["kind"] for row in rows}
    assert {"dictionary", "featurevis"} <= kinds
    dictionary = next(row for row in rows if row["kind"] == "dictionary")
    assert dictionary["difference"] == 0 and "the same weights" in dictionary["note"]


def test_two_dictionaries_of_one_name_in_one_batch_each_read_their_own(trained):
    job, _, first, weights = trained["m4"]
    other_job = dictionary_job(settings=DictionarySettings(features=64, k=4, steps=50, batch=512, seed=1))
    (output,) = run([other_job])
    data = output.files["dictionary.npz"]
    second = Attached(
        "m4", "shapes", "mixed4", 64, 4, output.result.checksum, base64.b64encode(data).decode()
    )
    dataset = datasets.dataset("shapes", 60, 2, None)
    jobs = [ExamplesJob("shapes", "x", "m4", 3, dataset, top=5, dictionaries=(d,)) for d in (first, second)]
    together = run(jobs)
    alone = [run([job])[0] for job in jobs]
    assert [o.result for o in together] == [o.result for o in alone]
    assert together[0].result != together[1].result


def test_one_job_reads_two_dictionaries_of_one_layer(trained):
    _, _, m4, _ = trained["m4"]
    copy = Attached("m4b", "shapes", "mixed4", m4.features, m4.k, m4.checksum, m4.weights)
    dataset = datasets.dataset("shapes", 30, 0, None)
    job = UniversalityJob(
        "shapes", "x", "m4", "shapes", "x", "m4b", dataset, baseline="shuffled", dictionaries=(m4, copy)
    )
    (output,) = run([job])
    live = [i for i, r in enumerate(output.result.best_r) if r is not None]
    assert live and all(output.result.best_r[i] == pytest.approx(1.0, abs=1e-4) for i in live)


def test_a_notebook_figure_reads_the_projects_dictionaries(tmp_path):
    from distillgen import notebook
    from distillgen.notebook import Project

    config = (
        "featurevis: {steps: 4, size: 32}\n"  # the features' images: cheap ones
        "dictionaries:\n  m4: {layer: mixed4, features: 64, k: 4, steps: 200, count: 100}\n"
    )
    write(tmp_path / "articles" / "distillgen.yml", config)
    project = Project(tmp_path / "articles", cache_dir=tmp_path / "cache", device="cpu")
    figure = project.figure("examples", "shapes", "m4:3", count=100, top=3)
    assert len(figure.values["m4:3"].examples) == 3
    trained = notebook.dictionary("m4", project=project)  # the same dictionary, cached
    # the dictionary the examples were read through, taken from the cache; its 12 features' images computed
    # (and each image's faithfulness measures)
    assert trained.jobs[0].kind == "dictionary" and (trained.computed, trained.cached) == (24, 1)


@pytest.mark.ray
def test_on_ray_the_dictionary_travels_with_the_jobs_and_gives_the_same_figures(tmp_path):
    pytest.importorskip("ray")
    body = "\n```{examples} m4:3\n:count: 100\n:top: 3\n```\n\n```{ablation} fc:1\n:edit: zero unit m4:3\n:count: 100\n:top: 4\n```\n"
    assert build(tmp_path / "here", body).exit_code == 0
    src = tmp_path / "here" / "src"
    on_ray = run_cli(
        "build", str(src), "-o", str(tmp_path / "ray-out"), "--cache-dir", str(tmp_path / "ray-cache"),
        "--executor", "ray",
    )  # fmt: skip
    assert on_ray.exit_code == 0, on_ray.output

    def results(out):
        return [
            (r["job"]["kind"], r["result"])
            for r in json.loads((out / "a" / "figures.json").read_text())["figures"]
        ]

    on_worker, here = results(tmp_path / "ray-out"), results(tmp_path / "here" / "out")
    assert (
        [kind for kind, _ in on_worker]
        == [kind for kind, _ in here]
        == ["dictionary", "examples", "ablation"]
    )
    assert on_worker[:2] == here[:2]  # the same dictionary (checksum, measures) and the same examples
    # A worker sums in another thread layout: the ablation's responses agree to float rounding.
    (_, worker_ablation), (_, local_ablation) = on_worker[2], here[2]
    assert worker_ablation["labels"] == local_ablation["labels"]
    for field in ("before", "after", "mean_before", "mean_after"):
        np.testing.assert_allclose(worker_ablation[field], local_ablation[field], rtol=1e-5)


def test_features_are_matched_to_another_models_features(tmp_path):
    header = HEADER.replace(
        "dictionaries:\n",
        "dictionaries:\n  n4: {model: shapes@1, layer: mixed4, features: 64, k: 4, steps: 200, count: 100}\n",
    )
    body = "\n```{universality} m4\n:other: shapes@1\n:other-layer: n4\n:baseline: shuffled\n:count: 50\n:pairs: 2\n```\n"
    result = build(tmp_path, body, header)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "units" / "shapes@1" / "n4").is_dir()
    untrained = build(tmp_path, body.replace(":baseline: shuffled\n", ""), header)
    assert (
        untrained.exit_code == 1
        and "a.md:9: error: 'n4' is a dictionary: an untrained network has none" in (untrained.output)
    )
