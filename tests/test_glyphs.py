"""The glyphs task, the zoo's other networks (glyphs, shapes-vgg), and their stimuli."""

import json

import numpy as np
import pytest
import torch

from distillgen import datasets, stimuli
from distillgen.engine.models import load_model
from distillgen.units import SpecError, fingerprint, parse_spec
from distillgen.zoo import ZOO
from distillgen.zoo.glyphs_data import CLASSES, FINE_CLASSES, fine_batch, glyphs_batch, glyphs_with_headings
from distillgen.zoo.train import accuracy, train, weights_checksum

NEW = [(name, seed) for name in ("glyphs", "glyphs-aux", "shapes-vgg") for seed in ZOO[name].seeds]


def test_glyphs_are_deterministic_balanced_and_visible():
    images, labels = glyphs_batch(100, seed=5)
    again, labels_again = glyphs_batch(100, seed=5)
    assert images.tobytes() == again.tobytes() and np.array_equal(labels, labels_again)
    assert not np.array_equal(images, glyphs_batch(100, seed=6)[0])
    assert images.shape == (100, 3, 64, 64) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.bincount(labels).tolist() == [20] * len(CLASSES)
    contrast = (images.max(axis=(2, 3)) - images.min(axis=(2, 3))).max(axis=1)
    # Every glyph, wedge and boundary shows; a plain image may be one smooth colour.
    assert (contrast[labels != CLASSES.index("plain")] > 0.25).all()
    # Other sizes draw the same scene at another resolution (probe sets for 224-pixel models).
    assert glyphs_batch(4, seed=5, size=96)[0].shape == (4, 3, 96, 96)


def test_fine_labels_say_which_way_each_bird_faces():
    images, labels, headings = glyphs_with_headings(200, seed=4)
    same, same_labels, fine = fine_batch(200, seed=4)
    assert images.tobytes() == same.tobytes() == glyphs_batch(200, seed=4)[0].tobytes()
    assert np.array_equal(labels, same_labels)
    birds = labels == CLASSES.index("bird")
    assert set(headings[birds]) == {-1.0, 1.0} and set(headings[labels >= CLASSES.index("wedge")]) == {0.0}
    names = [FINE_CLASSES[f] for f in fine]
    for name, label, heading in zip(names, labels, headings, strict=True):
        if label == CLASSES.index("bird"):
            assert name == ("bird facing right" if heading > 0 else "bird facing left")
        else:
            assert name == CLASSES[label]
    # A right-facing bird's beak reaches further right of its ink's centroid than its crest
    # reaches left; a left-facing bird's the other way.
    ink = np.abs(images - images[:, :, :1, :1]).sum(1) > 0.3

    def reach_right(i):
        xs = np.nonzero(ink[i])[1]
        return (xs.max() - xs.mean()) - (xs.mean() - xs.min())

    # (Measured on thresholded ink, so an image whose colours are close may miss.)
    assert np.mean([reach_right(i) > 0 for i in np.flatnonzero(birds & (headings > 0))]) >= 0.9
    assert np.mean([reach_right(i) < 0 for i in np.flatnonzero(birds & (headings < 0))]) >= 0.9


def test_the_bird_faces_both_ways_and_is_not_symmetric():
    """The bird's mirror image is not its rotation by 180°: the crest stays on top."""
    bird = stimuli.facing(0, 64)
    mirrored, turned = bird[:, ::-1], bird[::-1, ::-1]
    area = bird.sum()
    assert np.abs(mirrored - turned).sum() > 0.3 * area
    assert np.abs(bird - mirrored).sum() > 0.3 * area
    assert bird[:28].sum() > bird[36:].sum()  # the crest is above the head


@pytest.mark.parametrize("heading", [0, 10, 35, 60, 89, 100, 150, 180, 215, 250, 275, 330])
def test_facing_mirrored_is_facing_the_other_way(heading):
    assert np.allclose(stimuli.facing(180 - heading, 64)[:, ::-1], stimuli.facing(heading, 64), atol=1e-6)


def test_facing_subsets_split_the_sweep():
    subsets = stimuli.SUBSETS["facing"]
    values = stimuli.sweep(0, 360, 24, periodic=True)
    left = [v for v in values if subsets["left-facing"](v)]
    right = [v for v in values if subsets["right-facing"](v)]
    assert 180.0 in left and 0.0 in right and not set(left) & set(right)
    assert len(left) == len(right) == 11  # 90° and 270° are neither
    for family, named in stimuli.SUBSETS.items():
        assert family in stimuli.FAMILIES and named


@pytest.mark.parametrize(("orientation", "frequency"), [(0, 16), (0, 8), (90, 12), (180, 16), (270, 20)])
def test_boundary_has_the_stated_frequency_on_one_side_only(orientation, frequency):
    image = stimuli.boundary(orientation, 64, frequency=frequency)
    # Rotate so that the texture is on the right: columns 36.. textured, columns ..28 smooth.
    image = np.rot90(image, k=orientation // 90)
    textured, smooth = image[:, 36:], image[:, :28]
    spectrum = np.abs(np.fft.rfft(textured - textured.mean(), axis=0)).mean(axis=1)
    assert int(np.argmax(spectrum)) == frequency
    assert np.ptp(smooth) < 1e-6 and abs(smooth.mean() - textured.mean()) < 0.02  # no brightness edge
    sweep = stimuli.boundary_frequency(frequency, 64, orientation=orientation)
    assert np.array_equal(sweep, stimuli.boundary(orientation, 64, frequency=frequency))


def test_new_stimuli_render_at_other_sizes():
    for family in ("facing", "boundary", "boundary-frequency"):
        function, _, (first, _, _), _ = stimuli.FAMILIES[family]
        assert function(first, 224).shape == (224, 224)


def test_retraining_the_new_networks_gives_the_same_checksum():
    checksums = {}
    for name in ("glyphs", "glyphs-aux", "shapes-vgg"):
        first = train(seed=3, steps=3, batch=10, name=name, held_out=10, threads=1).model.state_dict()
        second = weights_checksum(
            train(seed=3, steps=3, batch=10, name=name, held_out=10, threads=1).model.state_dict()
        )
        checksums[name] = weights_checksum(first)
        assert checksums[name] == second, name
        if name == "glyphs-aux":  # the auxiliary classifier is trained with the network, then dropped
            assert first.keys() == load_model("glyphs@untrained").module.state_dict().keys()
    # Its loss changed the network's training: the same seed gives other weights than glyphs'.
    assert checksums["glyphs-aux"] != checksums["glyphs"]


@pytest.mark.parametrize(("name", "seed"), NEW)
def test_shipped_weights_load_and_reach_their_card(name, seed):
    entry = ZOO[name]
    path = entry.weights(seed)
    card = json.loads(path.with_suffix(".json").read_text())
    assert path.stat().st_size < 400_000
    assert torch.load(path, weights_only=True)  # a plain state dict
    model = load_model(name if seed == 0 else f"{name}@{seed}")
    assert model.checksum == card["checksum"]
    assert card["accuracy"] >= 0.9 and card["seed"] == seed
    # The 10-minute budget on 2 cores (timed with nothing else running).
    assert 0 < card["train_seconds"] <= 600
    assert card["command"].startswith(f"distillgen zoo train {name} --seed {seed} ")
    assert card["task"] == entry.task and card["architecture"] == entry.architecture
    # A quick fresh sample the card's number was not measured on.
    assert accuracy(model.module, n=300, seed=88_000_007, task=entry.task) >= card["accuracy"] - 0.05


def test_new_specs_parse_print_and_load():
    for text in (
        "glyphs",
        "glyphs@1",
        "glyphs@untrained",
        "glyphs-aux@1",
        "shapes-vgg",
        "shapes-vgg@untrained",
    ):
        spec = parse_spec(text)
        assert str(spec) == text and spec.kind in ZOO
        assert fingerprint(spec)
    vgg = load_model("shapes-vgg@untrained")
    assert {"block1", "block2", "block3", "block4", "fc"} <= set(vgg.layers)
    assert not {"mixed3", "mixed4"} & set(vgg.layers)
    glyphs = load_model("glyphs@untrained")
    assert glyphs.layers["mixed4"].shape == (96, 8, 8) and glyphs.layers["fc"].shape == (len(CLASSES),)
    assert len({load_model(s).checksum for s in ("glyphs", "glyphs@1", "glyphs@untrained")}) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("glyphs@7", r"no shipped weights for 'glyphs@7': the glyphs seeds are glyphs@0, glyphs@1;"),
        ("shapes-vgg@1", r"the shapes-vgg seeds are shapes-vgg@0; train another with 'distillgen zoo train"),
        ("glyph", r"unknown model spec 'glyph' \(did you mean 'glyphs'\?\)"),
        ("shapes_vgg", r"did you mean 'shapes-vgg'"),
    ],
)
def test_bad_zoo_specs(text, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(text)


def test_glyphs_probe_dataset(tmp_path):
    data = datasets.dataset("glyphs", 20, 3, tmp_path)
    assert (
        data.source == "glyphs"
        and data.fingerprint != datasets.dataset("shapes", 20, 3, tmp_path).fingerprint
    )
    pictures = datasets.images(data, 64)
    assert pictures.shape == (20, 3, 64, 64)
    assert np.array_equal(pictures, glyphs_batch(20, 3)[0])


def test_cli_lists_and_trains_the_zoo(tmp_path):
    from tests.conftest import run_cli

    listing = run_cli("models")
    assert listing.exit_code == 0
    assert all(
        spec in listing.output for spec in ("glyphs@1", "glyphs-aux@1", "shapes-vgg", "shapes-vgg@untrained")
    )
    out = tmp_path / "vgg.pt"
    trained = run_cli("zoo", "train", "shapes-vgg", "--steps", "2", "-o", str(out))
    assert trained.exit_code == 0, trained.output
    # Not a terminal, so no bar: progress lines, the last one when training ends.
    assert "training shapes-vgg (seed 0), steps: 2/2 (100%)" in trained.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["name"] == "shapes-vgg" and card["architecture"] == "vgg" and card["steps"] == 2
    assert card["command"] == "distillgen zoo train shapes-vgg --seed 0 --steps 2 -o vgg.pt"
    assert (
        torch.load(out, weights_only=True).keys()
        == load_model("shapes-vgg@untrained").module.state_dict().keys()
    )
