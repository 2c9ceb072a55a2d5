"""Model specs and unit addresses: every spec form, and every way to get one wrong."""

import os
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
from pathlib import Path

import pytest
import torch

from distillgen.engine.models import ModelError, ModelStore, load_model
from distillgen.units import ModelSpec, SpecError, UnitRef, parse_spec, parse_units
from tests.conftest import ARTICLES, ROOT, run_cli, write


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shapes", ModelSpec("shapes", "0")),
        ("shapes@1", ModelSpec("shapes", "1")),
        ("shapes@untrained", ModelSpec("shapes", "0", untrained=True)),
        ("lucent:inceptionv1", ModelSpec("lucent", "inceptionv1")),
        ("torchvision:googlenet@untrained", ModelSpec("torchvision", "googlenet", untrained=True)),
    ],
)
def test_spec_forms(text, expected):
    assert parse_spec(text) == expected
    assert str(parse_spec(text)) == text


def test_file_specs_resolve_against_the_article_folder(tmp_path):
    spec = parse_spec("nets/model.py:build@nets/w.pth", tmp_path)
    assert spec == ModelSpec("python", str(tmp_path / "nets/model.py"), "build", str(tmp_path / "nets/w.pth"))
    assert parse_spec("net.pt", tmp_path) == ModelSpec("torchscript", str(tmp_path / "net.pt"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shapes@7", "no shipped weights for 'shapes@7': the shapes seeds are shapes@0, shapes@1;"),
        ("lucent:resnet50", "lucent ships one model"),
        ("torchvision:resnet18@v2", "unknown tag '@v2'"),
        ("alexnet", "unknown model spec 'alexnet'"),
    ],
)
def test_bad_specs(text, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(text)


def test_unit_addresses():
    assert parse_units("mixed3:5") == [UnitRef("mixed3", 5)]
    assert parse_units("mixed3:0-2, 9,conv2:1") == [
        UnitRef("mixed3", 0),
        UnitRef("mixed3", 1),
        UnitRef("mixed3", 2),
        UnitRef("mixed3", 9),
        UnitRef("conv2", 1),
    ]
    assert parse_units("mixed4c:447") == [UnitRef("mixed4c", 447)]
    for bad, message in [
        ("5", "names no layer"),
        ("mixed3:7-2", "runs backwards"),
        ("mixed3:x", "not a unit address"),
    ]:
        with pytest.raises(SpecError, match=message):
            parse_units(bad)


def test_shapes_layers_and_bad_addresses():
    model = load_model("shapes")
    assert model.layers["mixed3"].shape == (64, 16, 16)
    assert model.check_units(parse_units("mixed3:0-63,conv2:31"))[-1] == UnitRef("conv2", 31)
    with pytest.raises(
        ModelError,
        match=r"unknown layer 'mixd3' in model 'shapes' \(did you mean 'mixed3'\?\); layers: conv1, conv2, mixed3, mixed4, fc",
    ):
        model.layer("mixd3")
    with pytest.raises(
        ModelError,
        match=r"unknown layer 'mixed3.b3x4' .*did you mean 'mixed3.b3x3'.*layers in mixed3: mixed3.b1x1",
    ):
        model.layer("mixed3.b3x4")
    with pytest.raises(
        ModelError, match=r"unit 64 is out of range for 'mixed3' in model 'shapes': it has 64 units \(0-63\)"
    ):
        model.check_units(parse_units("mixed3:64"))


def test_lucent_inceptionv1_architecture_uses_the_circuits_names():
    model = load_model(parse_spec("lucent:inceptionv1@untrained"))
    assert model.layers["mixed4c"].channels == 512  # the concatenated output, as in the papers
    assert model.check_units(parse_units("mixed4c:447")) == [UnitRef("mixed4c", 447)]
    assert model.layer("mixed3b_5x5").channels == 96
    with pytest.raises(ModelError, match=r"it has 512 units \(0-511\)"):
        model.check_units(parse_units("mixed4c:512"))


def test_lucent_inceptionv1_branches_belong_to_their_blocks_and_unit_pages_read_the_block_before():
    from distillgen.jobs import FeatureVisJob
    from distillgen.unitpages import unit_page

    model = load_model(parse_spec("lucent:inceptionv1@untrained"))
    assert model.block_of("mixed4a_5x5") == model.block_of("mixed4a_5x5_pre_relu_conv") == "mixed4a"
    assert model.block_of("conv2d0_pre_relu_conv") == "conv2d0" and model.block_of("maxpool4") == "maxpool4"
    convs = ["conv2d0", "maxpool0", "conv2d1", "conv2d2", "maxpool1", "mixed3a", "mixed3b", "maxpool4"]
    convs += ["mixed4a", "mixed4b", "mixed4c", "mixed4d", "mixed4e", "maxpool10", "mixed5a", "mixed5b"]
    assert model.convolutional_layers() == convs
    with pytest.raises(ModelError, match=r"layers: conv2d0, maxpool0, conv2d1, conv2d2, maxpool1, mixed3a, "):
        model.layer("mixed9")
    for layer in ("mixed4a", "mixed4a_5x5"):  # a branch's page reads what its block reads
        page = unit_page(FeatureVisJob(model.spec, model.fingerprint, layer, 1), model, diversity=0)
        # mixed3b, not its pooled copy maxpool4: a pool's units are its input's
        assert page.inputs.source == "mixed3b" and {job.source for job in page.outputs} == {layer}
        assert {job.layer for job in page.outputs} == {"mixed4b"}
    before = unit_page(FeatureVisJob(model.spec, model.fingerprint, "mixed3b", 1), model, diversity=0)
    assert {job.layer for job in before.outputs} == {"mixed4a"}
    assert model.layers["maxpool4"].pooled and not model.layers["mixed4a"].pooled
    shapes = load_model("shapes")  # module paths: as before
    assert shapes.convolutional_layers() == ["conv1", "conv2", "mixed3", "mixed4"]
    assert shapes.block_of("mixed3.b3x3_reduce") == "mixed3"


@pytest.fixture(scope="module")
def resnet50():
    return load_model(parse_spec("torchvision:resnet50@untrained"))


def test_a_resnet_is_addressed_as_it_is_built_stages_blocks_and_inner_layers(resnet50):
    model = resnet50
    assert model.top_level() == [
        *("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc")
    ]
    assert model.layers["layer3"].shape == (1024, 14, 14) and model.layers["layer3.2"].channels == 1024
    assert model.layers["layer3.2.conv2"].shape == (256, 14, 14)
    # a stage's last block makes the stage's very output: one layer, two names
    assert model.layer("layer3.5") is model.layers["layer3"] and model.aliases["layer3.5"] == "layer3"
    # a block's bn3 is changed in place by the skip's addition and the ReLU: not a layer
    assert "layer3.2.bn3" not in model.layers and "layer3.2.bn3" not in model.aliases
    assert model.check_order("layer3.1", "layer3.2") is None
    with pytest.raises(
        ModelError, match=r"unknown layer 'layer3.9' .*; layers in layer3: layer3.0, layer3.1, "
    ):
        model.layer("layer3.9")
    with pytest.raises(
        ModelError, match=r"unknown layer 'layer5' .*; layers: conv1, bn1, relu, maxpool, layer1, "
    ):
        model.layer("layer5")
    outline = model.outline()
    assert outline[4:7] == [(0, "layer1"), (1, "layer1.0"), (2, "layer1.0.conv1")]
    assert (1, "layer3.5") in outline and (2, "layer3.5.conv1") in outline  # an alias keeps its layers


def test_distillgen_models_lists_a_resnet_stage_first_then_its_blocks():
    listing = run_cli("models", "torchvision:resnet18@untrained")
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("layer ("))
    rows = [line.split()[0] for line in lines[header + 1 :]]
    assert rows[:8] == [
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer1.0",
        "layer1.0.conv1",
        "layer1.0.bn1",
    ]
    assert "  layer1.1 (= layer1)" in listing.output


def test_figures_of_a_resnets_stage_block_and_inner_layer_and_a_circuit_between_blocks(tmp_path, resnet50):
    """The kinds on ResNet-50 through check, plan, compute and render (unit pages aside: the
    outgoing weights of a 1,024-unit stage into a 2,048-unit one are an hour on this CPU)."""

    src = tmp_path / "src"
    src.mkdir()
    (src / "resnet.md").write_text(
        textwrap.dedent(
            """\
            ---
            title: ResNet stages
            model: torchvision:resnet50@untrained
            featurevis: {steps: 2, size: 32, count: 16}
            ---

            ```{featurevis} layer3:0, layer3.2:1, layer3.2.conv2:2
            Units of a stage, a block and a layer inside it.
            ```

            ```{examples} layer3:0
            :count: 12
            :top: 2
            A stage's unit's strongest images.
            ```

            ```{examples} layer3.2.conv2:2
            :count: 12
            :top: 2
            An inner layer's.
            ```

            ```{circuit} layer3.2:1
            :inputs: layer3.1
            :top: 2
            Between two blocks.
            ```
            """
        )
    )
    article, outcome = computed(src, tmp_path / "cache")
    addresses = {job.kind: set() for _, _, planned in article.figures() for job in planned.jobs}
    for _, _, planned in article.figures():
        for job in planned.jobs:
            addresses[job.kind].add(job.address)
    assert {"layer3:0", "layer3.2:1", "layer3.2.conv2:2"} <= addresses["featurevis"]
    assert addresses["examples"] == {"layer3:0", "layer3.2.conv2:2"}
    assert addresses["weights"] == {"layer3.1 -> layer3.2:1"}
    body, _, _ = article.render(outcome.artifacts)
    assert body.count("<figure") == 4 and "layer3.1:" in body
    # the circuit's kernels sum the skip path of layer3.2 with its convolutions': the caption says so
    assert (
        "The expanded weights from layer3.1 to layer3.2 add up every path between them, the skip "
        "connection of layer3.2 among them" in body
    )
    # a block adds its skip path; a stage's last block is the stage (an alias), its skip too
    assert [name for name, layer in resnet50.layers.items() if layer.residual][:4] == [
        *("layer1.0", "layer1.1", "layer1", "layer2.0")
    ]
    assert resnet50.skips_between("layer1.0", "layer2.0") == ("layer1.1", "layer1", "layer2.0")
    assert resnet50.skips_between("layer2", "layer3.1") == ("layer3.0", "layer3.1")
    assert resnet50.skips_between("layer3.0.conv1", "layer3.1") == ("layer3.1",)  # not around its source
    assert resnet50.skips_between("layer2", "layer3.0.conv2") == ()  # the skip joins after it


def test_torchvision_googlenet_with_circuits_aliases():
    model = load_model(parse_spec("torchvision:googlenet@untrained"))
    assert model.aliases["mixed4c"] == "inception4c"
    assert model.check_units(parse_units("mixed4c:447")) == [UnitRef("inception4c", 447)]
    assert model.layers["inception4c"].channels == 512
    with pytest.raises(
        ModelError, match="torchvision has no model 'googlenett' \\(did you mean 'googlenet'\\?\\)"
    ):
        load_model(parse_spec("torchvision:googlenett@untrained"))


def test_offline_download_says_which_file_to_place_where(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, dst, progress=True):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ModelError) as caught:
        load_model("lucent:inceptionv1")
    message = str(caught.value)
    assert "inception5h.pth" in message
    assert str(tmp_path / "hub" / "checkpoints" / "inception5h.pth") in message
    assert "TORCH_HOME" in message


MODEL_PY = """
import torch
from torch import nn

class Tiny(nn.Module):
    input_size = 32
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)
    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.head(x.mean(dim=(2, 3)))

def build():
    torch.manual_seed(0)
    return Tiny()

def broken():
    raise RuntimeError("no GPU here")

def not_a_model():
    return 42
"""


def test_python_factory_state_dict_and_torchscript(tmp_path):
    (tmp_path / "model.py").write_text(textwrap.dedent(MODEL_PY))
    plain = load_model(parse_spec("model.py:build", tmp_path))
    assert plain.input_size == 32 and plain.layers["conv"].channels == 4

    trained = plain.module.state_dict()
    trained["conv.bias"] = trained["conv.bias"] + 1.0
    torch.save(trained, tmp_path / "w.pth")
    loaded = load_model(parse_spec("model.py:build@w.pth", tmp_path))
    assert torch.equal(loaded.module.conv.bias, trained["conv.bias"])
    assert loaded.checksum != plain.checksum

    # TorchScript cannot be hooked, so it is refused with the form that works.
    torch.jit.script(plain.module).save(str(tmp_path / "tiny.pt"))
    with pytest.raises(
        ModelError, match="TorchScript, whose layers cannot be hooked.*model.py:factory@w.pth"
    ):
        load_model(parse_spec("tiny.pt", tmp_path))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.py:build", "model file not found"),
        ("model.py:biuld", "has no function 'biuld' \\(did you mean 'build'\\?\\)"),
        ("model.py:broken", "model.py:broken\\(\\) failed: RuntimeError: no GPU here"),
        ("model.py:not_a_model", "returned int, not a torch nn.Module"),
        ("model.py:build@nope.pth", "weights file not found"),
        ("w.pth", "is not a TorchScript file; a state dict needs its architecture"),
    ],
)
def test_bad_model_files(tmp_path, spec, message):
    (tmp_path / "model.py").write_text(textwrap.dedent(MODEL_PY))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "w.pth")
    with pytest.raises(ModelError, match=message):
        load_model(parse_spec(spec, tmp_path))


def test_model_store_loads_each_spec_once():
    store = ModelStore()
    assert store.get("shapes@untrained") is store.get(parse_spec("shapes@untrained"))


def test_models_command():
    listing = run_cli("models")
    assert listing.exit_code == 0 and "lucent:inceptionv1" in listing.output
    card = run_cli("models", "shapes")
    assert card.exit_code == 0
    assert "held-out accuracy" in card.output.lower()
    assert "mixed3" in card.output and "64×16×16" in card.output and "checksum" in card.output
    bad = run_cli("models", "shapes@9")
    assert bad.exit_code == 1 and "error: no shipped weights" in bad.stderr


def test_rebuilding_the_example_site_does_not_import_torch(example_build, tmp_path):
    # example_build computed every figure into the articles' cache; a rebuild only reads it.
    code = (
        "import sys; from pathlib import Path; from distillgen.diagnostics import Reporter;"
        "from distillgen.site import build;"
        f"r = build(Path({str(ARTICLES)!r}), Path({str(tmp_path / 'out')!r}), Reporter());"
        "assert r.computed == 0, r;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=600)


def test_lucent_and_torchvision_models_load_weights_from_a_file_the_author_names(tmp_path):
    """Offline, `lucent:inceptionv1@FILE` and `torchvision:NAME@FILE` read a state dict
    (weights_only); the weights file keys the figures and its sha256 is the record's checksum."""
    import hashlib

    from distillgen.units import fingerprint

    for spec, layer in (("lucent:inceptionv1", "conv2d0"), ("torchvision:resnet18", "conv1")):
        untrained = load_model(parse_spec(f"{spec}@untrained"))
        state = untrained.module.state_dict()
        weight = next(name for name in state if name.startswith(layer) and name.endswith("weight"))
        state[weight] = state[weight] * 2
        path = tmp_path / f"{spec.split(':')[1]}.pth"
        torch.save(state, path)
        parsed = parse_spec(f"{spec}@{path.name}", tmp_path)
        assert str(parsed) == f"{spec}@{path}" and parse_spec(str(parsed)) == parsed
        loaded = load_model(parsed)
        assert torch.equal(loaded.module.state_dict()[weight], state[weight])
        assert loaded.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
        assert fingerprint(parsed) != fingerprint(parse_spec(f"{spec}@untrained"))
        assert list(loaded.layers) == list(untrained.layers)


def test_a_training_checkpoint_loads_and_another_architectures_weights_say_what_differs(tmp_path):
    """Training scripts save the weights inside a checkpoint (torchvision's reference scripts
    under "model", Lightning and timm under "state_dict", beside the optimizer and the epoch),
    and DataParallel prefixes every name with "module.": each loads as its plain state dict.
    Weights of another architecture are an error that counts what differs."""
    from distillgen.engine.models import ModelError

    state = load_model(parse_spec("torchvision:resnet18@untrained")).module.state_dict()
    state["conv1.weight"] = state["conv1.weight"] * 2
    checkpoints = {
        "reference.pth": {"model": state, "epoch": 3, "optimizer": {"param_groups": [{"lr": 0.1}]}},
        "parallel.pth": {"state_dict": {f"module.{name}": tensor for name, tensor in state.items()}},
    }
    for name, checkpoint in checkpoints.items():
        torch.save(checkpoint, tmp_path / name)
        loaded = load_model(parse_spec(f"torchvision:resnet18@{name}", tmp_path))
        assert torch.equal(loaded.module.state_dict()["conv1.weight"], state["conv1.weight"]), name
    torch.save(state, tmp_path / "resnet18.pth")
    with pytest.raises(ModelError) as raised:
        load_model(parse_spec("torchvision:resnet34@resnet18.pth", tmp_path))
    assert "do not fit 'torchvision:resnet34@" in str(raised.value)
    assert "96 of its 218 tensors are not in the file (layer1.2.bn1.bias, " in str(raised.value)
    # a file's own names are quoted and cut short: it may come from anyone
    torch.save({"\x1b[2J" * 100: torch.zeros(1)}, tmp_path / "hostile.pth")
    with pytest.raises(ModelError) as raised:
        load_model(parse_spec("torchvision:resnet18@hostile.pth", tmp_path))
    assert "1 in the file are not its own ('\\x1b[2J" in str(raised.value)
    assert "\x1b" not in str(raised.value) and len(str(raised.value)) < 600


def test_a_bad_weights_file_is_an_error_at_the_articles_line(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    torch.save({"conv.weight": [1, 2]}, src / "lists.pth")  # a dict, but not of tensors
    torch.save({"conv.weight": torch.zeros(1)}, src / "other.pth")  # another model's
    article = "---\ntitle: W\n---\n\n" + "".join(
        f"```{{featurevis}} layer1:0\n:model: torchvision:resnet18@{name}\nA caption.\n```\n\n"
        for name in ("missing.pth", "lists.pth", "other.pth")
    )
    (src / "a.md").write_text(article)
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    path = src / "a.md"
    assert f"{path}:6: error: weights file not found: {src / 'missing.pth'}" in result.stderr
    assert (
        f"{path}:11: error: {src / 'lists.pth'} holds a dict, but not one of tensors by name" in result.stderr
    )
    assert f"{path}:16: error: the weights in {src / 'other.pth'} do not fit 'torchvision:resnet18@" in (
        result.stderr
    )


# ViT-B/32: ViT-B/16's blocks and widths with 32-pixel patches (7×7 tokens), a quarter of its cost
VIT_ARTICLE = """\
---
title: A vision transformer
model: torchvision:vit_b_32@untrained
featurevis: {steps: 2, size: 32, count: 16}
dictionaries:
  v3: {layer: encoder.layers.encoder_layer_3, features: 32, k: 4, steps: 20, batch: 256, count: 8}
---

```{featurevis} encoder.layers.encoder_layer_3:5, encoder.layers.encoder_layer_3.mlp.1:7
A block's output and an MLP neuron.
```

```{examples} encoder.layers.encoder_layer_3.mlp.1:7
:count: 8
:top: 2
An MLP neuron's strongest images.
```

```{tuning} encoder.layers.encoder_layer_3:5
:range: 0 180 4
A block's unit over orientations.
```

```{ablation} encoder.layers.encoder_layer_3:5
:edit: zero encoder.layers.encoder_layer_2:0-99
:count: 8
:top: 2
Removing a hundred units of the block before.
```

```{examples} v3:1
:count: 8
:top: 2
A dictionary feature of the block.
```

```{attribution} encoder.layers.encoder_layer_3:5
:inputs: encoder.layers.encoder_layer_2
:method: gradient
:count: 8
:examples: 2
:top: 2
What carries a block's unit: the block before's units over the patch grid, no weights beside.
```
"""


def test_a_vision_transformers_tokens_are_read_as_a_map_over_the_patch_grid():
    from distillgen.engine.hooks import as_map, from_map, token_grid

    model = load_model(parse_spec("torchvision:vit_b_16@untrained"))
    block, neuron = (
        model.layers["encoder.layers.encoder_layer_3"],
        model.layers["encoder.layers.encoder_layer_3.mlp.1"],
    )
    assert block.tokens and block.shape == (768, 14, 14) and neuron.shape == (3072, 14, 14)
    assert model.fixed_size and not load_model("shapes").fixed_size
    assert (token_grid(197), token_grid(196), token_grid(10), token_grid(11)) == (14, 14, 3, 0)
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)  # a class token and 2×2 patches
    grid = as_map(tokens)
    assert grid.shape == (2, 3, 2, 2) and grid[1, 2, 1, 0] == tokens[1, 1 + 2, 2]  # row 1, column 0
    assert torch.equal(from_map(grid, tokens), tokens)  # the class token kept


def test_a_vision_transformer_article_builds_and_its_kernels_are_an_error(tmp_path):
    import json

    src = tmp_path / "src"
    src.mkdir()
    (src / "vit.md").write_text(VIT_ARTICLE)
    cache, out = tmp_path / "cache", tmp_path / "out"
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache), "--yes", "-q")
    assert result.exit_code == 0, result.output
    records = json.loads((out / "vit" / "figures.json").read_text())["figures"]
    kinds = {record["job"]["kind"] for record in records}
    assert {"featurevis", "examples", "tuning", "ablation", "dictionary", "attribution"} <= kinds
    attribution = next(r["result"] for r in records if r["job"]["kind"] == "attribution")
    assert attribution["stages"][0]["size"] == 768 and attribution["stages"][0]["total"] != 0
    assert "no fixed weights join" in (out / "vit" / "index.html").read_text()
    examples = [r["result"] for r in records if r["job"]["kind"] == "examples"]
    assert all(e["receptive_field"] == 32 for e in examples)  # the patch of the token that fires
    assert all(
        x1 - x0 == 32 and x0 % 32 == 0 for e in examples for x0, _, x1, _ in (x["box"] for x in e["examples"])
    )
    ablation = next(r["result"] for r in records if r["job"]["kind"] == "ablation")
    assert ablation["mean_after"] != ablation["mean_before"]
    assert (
        out / "units" / "torchvision-vit_b_32@untrained" / "encoder.layers.encoder_layer_3" / "5.html"
    ).exists()

    (src / "vit.md").write_text(
        "---\ntitle: C\nmodel: torchvision:vit_b_32@untrained\n---\n\n"
        "```{circuit} encoder.layers.encoder_layer_3:5\n:inputs: encoder.layers.encoder_layer_2\nA caption.\n```\n"
    )
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (
        f"{src / 'vit.md'}:6: error: no expanded weights join 'encoder.layers.encoder_layer_2' and "
        "'encoder.layers.encoder_layer_3': the path between them runs through attention"
    ) in result.stderr


INCEPTION_ARTICLE = """\
---
title: Every kind on InceptionV1
model: lucent:inceptionv1@untrained
featurevis: {steps: 2, size: 32, count: 16}
dictionaries:
  m3: {layer: mixed3a, features: 32, k: 4, steps: 20, batch: 256, count: 8}
---

```{featurevis} mixed3b:330, mixed4a:1
:param: maco
Two units, one of a 5x5 branch, by MACO (the probe images' spectrum).
```

A unit in the text: {unit}`mixed4c:447`.

```{circuit} mixed3b:330
:inputs: mixed3a
:top: 3
Its strongest inputs, across the concatenation of mixed3b's branches.
```

```{weights} mixed3a:2 -> mixed3b:330
An expanded weight.
```

```{weights} mixed4a_5x5 -> mixed4a:1
A branch that does not reach the unit.
```

```{tuning} mixed3b:330
:range: 0 180 4
Over orientations.
```

```{examples} mixed3b:330
:dataset: photos
:top: 2
Its strongest images, from a folder.
```

```{ablation} mixed3b:330
:edit: zero mixed3a:0-31
:dataset: photos
:top: 2
Removing inputs, on its strongest images of the folder.
```

```{attribution} mixed3b:330
:inputs: mixed3a
:dataset: photos
:examples: 2
:top: 3
What carries it on its two strongest photographs: integrated gradients, complete.
```

```{universality} mixed3a
:other: torchvision:googlenet@untrained
:other-layer: inception3a
:count: 8
:pairs: 2
InceptionV1 against torchvision's GoogLeNet.
```

```{examples} m3:1
:count: 8
:top: 2
A dictionary feature.
```
"""


def test_every_kind_builds_on_inceptionv1_and_a_circuits_kernel_is_its_expanded_weight(tmp_path):
    """Check, plan, compute and render of every kind on lucent's InceptionV1 (unit pages
    aside: a layer's outgoing weights are minutes on this CPU); integrated gradients are
    complete within their tolerance. The circuit's kernel from a
    mixed3a unit into a unit of mixed3b's 5x5 branch is the bottleneck times the 5x5 conv, as
    computed by hand: the other branches of the concatenation add nothing."""
    import numpy as np
    from PIL import Image

    from distillgen.kernels import read
    from distillgen.kinds import KINDS
    from distillgen.zoo.shapes_data import shapes_batch

    src = tmp_path / "src"
    (src / "photos").mkdir(parents=True)
    for index, picture in enumerate(shapes_batch(8, seed=2, size=96)[0]):  # resized to 224 px
        pixels = (picture.transpose(1, 2, 0) * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(src / "photos" / f"{index}.jpg")
    (src / "inception.md").write_text(INCEPTION_ARTICLE)
    article, outcome = computed(src, tmp_path / "cache")
    jobs = [job for _, _, planned in article.figures() for job in planned.jobs]
    inputs = {each.kind for need in article.needs for each in need.job.inputs()}  # the folder's ranking
    assert {job.kind for job in jobs} | {n.job.kind for n in article.needs} | inputs == set(KINDS)
    assert all(each.key in outcome.artifacts for need in article.needs for each in need.job.inputs())
    body, _, _ = article.render(outcome.artifacts)
    assert body.count("<figure") == 10 and "No connection" in body
    (attribution,) = [job for job in jobs if job.kind == "attribution"]
    (stage,) = outcome.artifacts[attribution.key].result(attribution).stages
    assert stage.error <= attribution.tolerance  # complete at 64 steps, through true ReLU gradients

    model = load_model("lucent:inceptionv1@untrained")
    modules = dict(model.module.named_modules())
    w1 = modules["mixed3b_5x5_bottleneck_pre_relu_conv"].weight[:, :, 0, 0].numpy()  # [32, 256]
    w5 = modules["mixed3b_5x5_pre_relu_conv"].weight.numpy()  # [96, 32, 5, 5]
    # the circuit's job and the {weights} figure's are one: the same kernels, computed once
    (circuit_job,) = {
        j.key: j for j in jobs if j.kind == "weights" and j.address == "mixed3a -> mixed3b:330"
    }.values()
    kernels = read(outcome.artifacts[circuit_job.key].file("kernels.npy"))
    expected = np.einsum("byx,bi->iyx", w5[330 - 320], w1)  # 320: the 5x5 branch's first channel
    np.testing.assert_allclose(kernels, expected, rtol=1e-4, atol=1e-6)


def test_a_weights_file_travels_to_ray_workers_with_a_torchvision_spec(tmp_path, monkeypatch):
    """A Ray worker has no shared filesystem: the state dict travels in the shipment, and the
    worker loads the architecture by name with the file it wrote (engine/remote.py)."""
    from distillgen.engine.remote import _materialize
    from distillgen.executors import shipment

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "node"))  # the worker node's
    (tmp_path / "node").mkdir()

    path = tmp_path / "w.pth"
    torch.save(load_model(parse_spec("torchvision:resnet18@untrained")).module.state_dict(), path)
    spec = str(parse_spec(f"torchvision:resnet18@{path}"))
    shipped = shipment(spec)
    assert shipped.files == {"weights": path.read_bytes()}
    rebuilt = _materialize(shipped)
    assert (rebuilt.kind, rebuilt.name) == ("torchvision", "resnet18") and rebuilt.weights != str(path)
    assert Path(rebuilt.weights).read_bytes() == path.read_bytes()
    assert shipment("torchvision:resnet18@untrained").files == {}


def test_a_node_removes_the_model_folders_no_worker_took_for_a_day(tmp_path, monkeypatch):
    # Found in review: every version of an author's model a worker rebuilt stayed in the node's
    # temp folder (a day of this suite's runs left 92 of them, 1.4 GB)
    from distillgen.batches import Shipment
    from distillgen.engine.remote import MODEL_FOLDER, _materialize

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old, recent = tmp_path / f"{MODEL_FOLDER}old", tmp_path / f"{MODEL_FOLDER}recent"
    for folder, days in ((old, 2), (recent, 0.5)):
        write(folder / "w.pth", "weights")
        then = time.time() - days * 86400
        os.utime(folder, (then, then))
    other = tmp_path / "someone-else's"
    write(other / "file", "kept")
    os.utime(other, (0, 0))
    shipped = Shipment("torchvision:resnet18@w.pth", {"weights": b"the author's weights"})
    rebuilt = _materialize(shipped)
    assert Path(rebuilt.weights).read_bytes() == b"the author's weights"
    assert not old.exists() and recent.exists() and other.exists()


def test_aliases_name_layers_that_exist_and_only_a_transformers_tokens_are_tokens():
    """Found in review: on MobileNetV2 a block's last layer was an alias of a container that
    was itself an alias, or was left out (`distillgen models` raised KeyError); and a CNN's
    flattened map or a 1-D convolution was read as a transformer's tokens."""
    from torch import nn

    from distillgen.engine.models import _describe

    mobilenet = load_model(parse_spec("torchvision:mobilenet_v2@untrained"))
    assert all(target in mobilenet.layers for target in mobilenet.aliases.values())
    assert mobilenet.outline() and not mobilenet.fixed_size
    assert run_cli("models", "torchvision:mobilenet_v2@untrained").exit_code == 0

    class Flattened(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 64, 3, padding=1, stride=8)  # 64 x 8 x 8
            self.flat = nn.Flatten(2)  # 64 x 64: a square "token" count that is channels
            self.mix = nn.Conv1d(64, 16, 1)  # 16 x 64: 16 = 4 x 4, channels again

        def forward(self, x):
            return self.mix(self.flat(self.conv(x)))

    described = _describe("flattened", Flattened(), 64, "none")
    assert list(described.layers) == ["conv"] and not described.fixed_size


def computed(src: Path, cache: Path):
    """The one article in `src` checked, planned and computed (the article's figures, not the
    unit pages of a build): (article, outcome); no error reported."""
    from distillgen.compute import Options
    from distillgen.diagnostics import Reporter
    from distillgen.project import Project

    reporter = Reporter()
    project = Project.open(src, reporter, Options(device="cpu"), cache_dir=cache)
    (article,) = project.load_articles()
    project.plan([article])
    outcome = project.compute([article])
    assert not reporter.errors, [str(d) for d in reporter.diagnostics]
    return article, outcome
