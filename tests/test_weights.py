"""Expanded weights against what they must equal by construction."""

from __future__ import annotations

import io
import re
from xml.etree import ElementTree

import numpy as np
import pytest
import torch

from distillgen.engine.models import load_model
from distillgen.engine.weights import expanded_weights
from distillgen.units import parse_spec
from tests.conftest import run_cli, write

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
    kernels = np.stack(expanded_weights(model, "3", "5", [0, 3, 4]))  # 1x1's ReLU -> 5x5's ReLU
    assert np.array_equal(kernels, model.module[4].weight[[0, 3, 4]].numpy())


def test_through_a_bottleneck_the_kernels_multiply(nets):
    model = nets("bottleneck")
    w1 = model.module[2].weight[:, :, 0, 0].numpy()  # [b, i]
    w2 = model.module[4].weight.numpy()  # [j, b, 5, 5]
    expected = np.einsum("jbyx,bi->jiyx", w2, w1)
    kernels = np.stack(expanded_weights(model, "1", "5", list(range(5))))
    assert kernels.shape == (5, 4, 5, 5)
    np.testing.assert_allclose(kernels, expected, rtol=1e-5, atol=1e-7)


def test_through_two_convolutions_the_kernels_convolve(nets):
    model = nets("stacked")
    wb, wc = model.module[2].weight.numpy(), model.module[4].weight.numpy()  # [b, i, 3, 3], [j, b, 3, 3]
    expected = np.zeros((2, 4, 5, 5), np.float32)
    for p in range(3):
        for r in range(3):
            expected[:, :, p : p + 3, r : r + 3] += np.einsum("jb,biyx->jiyx", wc[:, :, p, r], wb)
    kernels = np.stack(expanded_weights(model, "1", "5", [0, 1]))
    np.testing.assert_allclose(kernels, expected, rtol=1e-5, atol=1e-6)


def test_the_model_is_left_as_it_was(nets):
    model = nets("pooled")
    x = torch.rand(1, 3, 32, 32)
    before = model.module(x)
    kernels = np.stack(expanded_weights(model, "1", "4", [0, 1]))
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
    kernels = np.stack(
        expanded_weights(model, "mixed3a", "mixed3b", [first_5x5 + j for j in branch], canvas=224)
    )
    expected = np.einsum("jbyx,bi->jiyx", w5[branch], w1)
    assert kernels.shape == (3, 256, 5, 5)
    np.testing.assert_allclose(kernels, expected, rtol=1e-4, atol=1e-6)


def test_a_unit_another_branch_does_not_reach_is_a_kernel_of_zeros_not_a_crash():
    """mixed4a:1 is the 1x1 branch's: the 5x5 branch has no path to it (issue 26's IndexError)."""
    model = load_model("lucent:inceptionv1@untrained")
    first_5x5 = 192 + 204  # mixed4a concatenates 1x1 (192), 3x3 (204), 5x5 (48), pool (64)
    unreached, reached = expanded_weights(model, "mixed4a_5x5", "mixed4a", [1, first_5x5 + 3], canvas=224)
    assert unreached.shape == (48, 1, 1) and not unreached.any()
    assert reached.shape == (48, 1, 1) and reached[3, 0, 0] == 1 and np.count_nonzero(reached) == 1


def test_weights_are_computed_in_passes_that_fit_memory_and_give_the_same_kernels(monkeypatch):
    from distillgen.engine import weights
    from distillgen.jobs import WeightsJob

    inception = load_model("lucent:inceptionv1@untrained")
    # every activation up to mixed4a at 448 px, four copies: a few hundred MB a unit
    assert 1 <= weights.pass_size(inception, "mixed4a", torch.device("cpu")) <= 8
    model = load_model("shapes")
    jobs = [WeightsJob("shapes", model.fingerprint, "mixed3", "mixed4", unit) for unit in range(7)]
    whole = weights.compute(model, jobs, torch.device("cpu"), lambda n: None, None)
    monkeypatch.setattr(weights, "pass_size", lambda *args: 3)  # passes of 3, 3 and 1 units
    advanced = []
    parts = weights.compute(model, jobs, torch.device("cpu"), advanced.append, None)
    assert advanced == [3, 3, 1]
    for one, other in zip(whole, parts, strict=True):
        a, b = (np.load(io.BytesIO(output.files["kernels.npy"])) for output in (one, other))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_torchvision_googlenet_and_shapes_give_finite_kernels():
    googlenet = load_model("torchvision:googlenet@untrained")
    kernels = expanded_weights(googlenet, "inception3a", "mixed3b", [0, 300], canvas=224)  # alias
    assert [k.shape[0] for k in kernels] == [256, 256]
    assert all(np.isfinite(k).all() and np.abs(k).sum() > 0 for k in kernels)
    assert kernels[0].shape == (256, 1, 1) and kernels[1].shape == (256, 3, 3)  # 1x1 and 3x3 branches
    shapes = load_model("shapes")
    (kernel,) = expanded_weights(shapes, "conv2", "mixed3", [43])  # through the pool and a branch
    assert kernel.shape[0] == 32 and np.isfinite(kernel).all()


WEIGHTS_ARTICLE = """
---
title: Weights
---
# Weights

```{weights} conv2 -> mixed3:43
:label: fig-many
:top: 6
The six strongest inputs.
```

```{weights} mixed3.b5x5_reduce:2 -> mixed3.b5x5:4
:label: fig-one
One kernel of the 5x5 branch.
```
"""


def test_a_unit_out_of_reach_is_a_figure_that_says_so(tmp_path):
    # mixed3 concatenates b1x1 (0-15), b3x3 (16-39), b5x5 (40-55), pool_proj (56-63)
    body = "```{weights} mixed3.b1x1 -> mixed3:43\n```\n\n```{weights} mixed3.b1x1:3 -> mixed3:43\n```\n"
    body += "\n```{weights} mixed3.b1x1:3 -> mixed3:3\n```\n"
    src = write(tmp_path / "src" / "w.md", "---\ntitle: W\n---\n\n" + body).parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c"))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "w" / "index.html").read_text()
    assert page.count("No connection: no path in the network leads from mixed3.b1x1") == 2
    assert "from mixed3.b1x1:3 to mixed3:43" in page
    assert len(_svgs(page)) == 1  # the reachable pair alone is drawn


def _svgs(page: str) -> list[str]:
    """The page's drawings, as drawn for a desktop (a grid too wide for a phone is drawn again
    for one: that copy is left out)."""
    return [svg for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S) if "kernel-grid narrow" not in svg]


def _numbers(pattern: str, svg: str) -> list[float]:
    """The numbers `pattern` finds, written with the typographic minus."""
    return [float(v.replace("\u2212", "-")) for v in re.findall(pattern, svg)]


def test_weights_figures_are_well_formed_exact_and_deterministic(tmp_path):
    src = write(tmp_path / "src" / "w.md", WEIGHTS_ARTICLE).parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c"))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "w" / "index.html").read_text()
    many, one = _svgs(page)
    for svg in (many, one):
        root = ElementTree.fromstring(svg)  # well-formed XML
        assert root.find("{http://www.w3.org/2000/svg}title").text.startswith("Weights into mixed3")
    assert many.count('class="kernel"') == 6 and one.count('class="kernel"') == 1
    # the single kernel is the 5x5 convolution's weight slice, cell by cell
    weight = load_model("shapes").module.mixed3.b5x5.conv.weight[4, 2].numpy()
    shown = _numbers(r"<rect[^>]*><title>([\u22120-9.e-]+)</title>", one)
    np.testing.assert_allclose(shown, weight.ravel(), rtol=1e-3, atol=1e-6)
    # strongest first: the titles' L2 norms decrease
    norms = _numbers(r"L2 norm ([0-9.e\u2212-]+)</title>", many)
    assert norms == sorted(norms, reverse=True) and len(norms) == 6
    again = run_cli("build", str(src), "-o", str(tmp_path / "out2"), "--cache-dir", str(tmp_path / "c2"))
    assert again.exit_code == 0 and _svgs((tmp_path / "out2" / "w" / "index.html").read_text()) == [many, one]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("conv2:3 mixed3:5", "write {weights} as 'source -> target:unit'"),
        ("mixed3 -> conv2:1", "'mixed3' does not come before 'conv2'"),
        ("conv9 -> mixed3:1", "unknown layer 'conv9'"),
        ("conv2:40 -> mixed3:1", "unit 40 is out of range for 'conv2'"),
        ("conv2 -> mixed3:1-2", "connects one source (unit or layer) to one target unit"),
    ],
)
def test_weights_mistakes_are_path_line_errors(tmp_path, argument, message):
    src = write(tmp_path / "src" / "w.md", f"---\ntitle: W\n---\n\n```{{weights}} {argument}\n```\n").parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c"))
    assert result.exit_code == 1
    assert f"{src / 'w.md'}:5: error: " in result.stderr and message in result.stderr, result.stderr
