"""The shapes dataset, the shipped shapes networks and their training."""

import json

import numpy as np
import pytest
import torch

from distillgen.engine.models import WEIGHTS, load_model
from distillgen.units import SHIPPED_SEEDS
from distillgen.zoo.shapes_data import CLASSES, shapes_batch
from distillgen.zoo.train import accuracy, train, weights_checksum


def test_dataset_is_deterministic_and_balanced():
    images, labels = shapes_batch(250, seed=5)
    again, labels_again = shapes_batch(250, seed=5)
    other, _ = shapes_batch(250, seed=6)
    assert np.array_equal(images, again) and np.array_equal(labels, labels_again)
    assert not np.array_equal(images, other)
    assert images.shape == (250, 3, 64, 64) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.bincount(labels).tolist() == [50] * len(CLASSES)


def test_every_class_draws_something_visible():
    images, labels = shapes_batch(50, seed=1)
    for index in range(len(CLASSES)):
        members = images[labels == index]
        # A stroke or texture changes the image: per-image contrast well above the noise.
        contrast = (members.max(axis=(2, 3)) - members.min(axis=(2, 3))).max(axis=1)
        assert (contrast > 0.25).all(), CLASSES[index]


def test_retraining_gives_the_same_checksum():
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    first = weights_checksum(train(seed=3, steps=4, batch=16, held_out=200, threads=1).model.state_dict())
    second = weights_checksum(train(seed=3, steps=4, batch=16, held_out=200, threads=1).model.state_dict())
    other = weights_checksum(train(seed=4, steps=4, batch=16, held_out=200, threads=1).model.state_dict())
    assert first == second
    assert first != other
    # a process that trains (a test worker, a notebook) gets its own settings back
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before


@pytest.mark.parametrize("seed", SHIPPED_SEEDS)
def test_shipped_weights_reach_their_recorded_accuracy(seed):
    card = json.loads((WEIGHTS / f"shapes-seed{seed}.json").read_text())
    assert (WEIGHTS / f"shapes-seed{seed}.pt").stat().st_size < 2_000_000
    model = load_model("shapes" if seed == 0 else f"shapes@{seed}")
    assert model.checksum == card["checksum"]
    # A fresh test set the card's number was not measured on.
    fresh = accuracy(model.module, n=1000, seed=77_000_003)
    assert fresh >= card["accuracy"] - 0.03
    assert all(not p.requires_grad for p in model.module.parameters())


def test_shipped_cards_meet_the_bar_and_name_their_command():
    for seed in SHIPPED_SEEDS:
        card = json.loads((WEIGHTS / f"shapes-seed{seed}.json").read_text())
        assert card["accuracy"] >= 0.95 and card["seed"] == seed
        assert card["command"].startswith(f"distillgen zoo train shapes --seed {seed} ")
        assert card["train_seconds"] <= 600  # the 10-minute budget on 2 cores


def test_trained_weights_differ_from_the_initialization_and_between_seeds():
    checksums = {load_model(spec).checksum for spec in ("shapes", "shapes@1", "shapes@untrained")}
    assert len(checksums) == 3


def test_no_hooks_left_after_describing_a_model():
    model = load_model("shapes@untrained")
    assert all(not m._forward_hooks for m in model.module.modules())
    assert isinstance(model.module, torch.nn.Module)


def test_batchnorm_folds_into_the_plain_network_exactly():
    from distillgen.zoo.shapes_net import ShapesNet, fold_batchnorm

    torch.manual_seed(0)
    trained = ShapesNet(batchnorm=True)
    with torch.no_grad():
        trained(torch.from_numpy(shapes_batch(32, 1)[0]))  # running statistics move off 0/1
        for parameter in trained.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    trained.eval()
    plain = fold_batchnorm(trained)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    images = torch.from_numpy(shapes_batch(16, 2)[0])
    with torch.no_grad():
        assert torch.allclose(trained(images), plain(images), atol=1e-4)
