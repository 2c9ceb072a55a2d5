"""Expanded weights against what they must equal by construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distillgen.engine.models import load_model
from distillgen.engine.weights import expanded_weights
from distillgen.units import parse_spec
from tests.conftest import write

NETS = """
import torch
from torch import nn

def _seeded(layers):
    torch.manual_seed(0)
    net = nn.Sequential(*layers)
    net.input_size = 32
    return net

def bottleneck():
    # a: 3x3 conv, b: 1x1 bottleneck, c: 5x5 conv, each followed by a ReLU
    return _seeded([nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.ReLU(),
                    nn.Conv2d(2, 5, 5, padding=2), nn.ReLU()])

def stacked():
    return _seeded([nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1), nn.ReLU(),
                    nn.Conv2d(3, 2, 3, padding=1), nn.ReLU()])

def pooled():
    return _seeded([nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(4, 2, 3, padding=1), nn.ReLU()])
"""


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    path = write(tmp_path_factory.mktemp("nets") / "nets.py", NETS)
    return lambda name: load_model(parse_spec(f"{path}:{name}"))


def test_adjacent_layers_give_the_weight_slice_exactly(nets):
    model = nets("bottleneck")
    kernels = expanded_weights(model, "3", "5", [0, 3, 4])  # the 1x1's ReLU -> the 5x5 conv's ReLU
    assert np.array_equal(kernels, model.module[4].weight[[0, 3, 4]].numpy())


def test_through_a_bottleneck_the_kernels_multiply(nets):
    model = nets("bottleneck")
    w1 = model.module[2].weight[:, :, 0, 0].numpy()  # [b, i]
    w2 = model.module[4].weight.numpy()  # [j, b, 5, 5]
    expected = np.einsum("jbyx,bi->jiyx", w2, w1)
    kernels = expanded_weights(model, "1", "5", list(range(5)))
    assert kernels.shape == (5, 4, 5, 5)
    np.testing.assert_allclose(kernels, expected, rtol=1e-5, atol=1e-7)


def test_through_two_convolutions_the_kernels_convolve(nets):
    model = nets("stacked")
    wb, wc = model.module[2].weight.numpy(), model.module[4].weight.numpy()  # [b, i, 3, 3], [j, b, 3, 3]
    expected = np.zeros((2, 4, 5, 5), np.float32)
    for p in range(3):
        for r in range(3):
            expected[:, :, p : p + 3, r : r + 3] += np.einsum("jb,biyx->jiyx", wc[:, :, p, r], wb)
    kernels = expanded_weights(model, "1", "5", [0, 1])
    np.testing.assert_allclose(kernels, expected, rtol=1e-5, atol=1e-6)


def test_the_model_is_left_as_it_was(nets):
    model = nets("pooled")
    x = torch.rand(1, 3, 32, 32)
    before = model.module(x)
    kernels = expanded_weights(model, "1", "4", [0, 1])
    assert kernels.shape[:2] == (2, 4) and np.abs(kernels).sum() > 0
    assert torch.equal(model.module(x), before)  # ReLU and max-pool are back
    assert all(not m._forward_hooks for m in model.module.modules())
    assert all(not p.requires_grad for p in model.module.parameters())


def test_inceptionv1_5x5_branch_is_bottleneck_times_5x5():
    model = load_model("lucent:inceptionv1@untrained")
    modules = dict(model.module.named_modules())
    w1 = modules["mixed3b_5x5_bottleneck_pre_relu_conv"].weight[:, :, 0, 0].numpy()  # [32, 256]
    w5 = modules["mixed3b_5x5_pre_relu_conv"].weight.numpy()  # [96, 32, 5, 5]
    first_5x5 = 128 + 192  # mixed3b concatenates 1x1 (128), 3x3 (192), 5x5 (96), pool (64)
    branch = [0, 7, 95]
    kernels = expanded_weights(model, "mixed3a", "mixed3b", [first_5x5 + j for j in branch], canvas=224)
    expected = np.einsum("jbyx,bi->jiyx", w5[branch], w1)
    assert kernels.shape == (3, 256, 5, 5)
    np.testing.assert_allclose(kernels, expected, rtol=1e-4, atol=1e-6)


def test_torchvision_googlenet_and_shapes_give_finite_kernels():
    googlenet = load_model("torchvision:googlenet@untrained")
    kernels = expanded_weights(googlenet, "inception3a", "mixed3b", [0, 300], canvas=224)  # alias
    assert kernels.shape[:2] == (2, 256) and np.isfinite(kernels).all() and np.abs(kernels).sum() > 0
    shapes = load_model("shapes")
    kernels = expanded_weights(shapes, "conv2", "mixed3", [43])  # through the pool and a branch
    assert kernels.shape[:2] == (1, 32) and np.isfinite(kernels).all()
