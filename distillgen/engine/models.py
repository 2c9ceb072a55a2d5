"""From a model spec to a loaded network with the metadata figures need.

`load_model(spec)` returns a `LoadedModel`: the module (eval mode, parameters frozen), its
input size and preprocessing, every addressable layer with its output shape, aliases, and a
weights checksum that enters every job key. `ModelStore` loads each spec once per build.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from distillgen.diagnostics import shorten, suggest
from distillgen.engine.hooks import token_grid
from distillgen.units import WEIGHTS, Layer, ModelError, ModelInfo, ModelSpec, SpecError, parse_spec
from distillgen.zoo.train import weights_checksum


@dataclass
class LoadedModel(ModelInfo):
    """A model's description plus its module (eval mode, parameters frozen)."""

    module: nn.Module = field(kw_only=True, repr=False)


def load_model(spec: str | ModelSpec) -> LoadedModel:
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    loader = {
        "lucent": _load_lucent,
        "torchvision": _load_torchvision,
        "python": _load_python,
        "torchscript": _load_torchscript,
    }.get(parsed.kind, _load_zoo)
    model = loader(parsed)
    model.module.eval()
    for parameter in model.module.parameters():
        parameter.requires_grad_(False)
    return model


class ModelStore:
    """Loads each spec once per build; figures share the loaded module."""

    def __init__(self) -> None:
        self._models: dict[str, LoadedModel] = {}

    def get(self, spec: str | ModelSpec) -> LoadedModel:
        key = str(parse_spec(spec) if isinstance(spec, str) else spec)
        if key not in self._models:
            self._models[key] = load_model(spec)
        return self._models[key]


# -- loaders -------------------------------------------------------------------------------


def _load_zoo(spec: ModelSpec) -> LoadedModel:
    """A network of distillgen's zoo (`zoo.ZOO`): shipped weights, or the
    initialization from seed 0 for `@untrained`."""
    from distillgen.zoo import ZOO
    from distillgen.zoo.train import build

    torch.manual_seed(0)
    module = build(spec.kind)
    card = f"The {spec.kind} network with its initial random weights (seed 0), for baselines."
    if not spec.untrained:
        path = ZOO[spec.kind].weights(int(spec.name))
        if not path.is_file():
            raise ModelError(f"the weights of '{spec}' are missing from this installation ({path})")
        module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        card = _card_text(path.with_suffix(".json"))
    return _describe(str(spec), module, 64, "none", card=card)


def _load_lucent(spec: ModelSpec) -> LoadedModel:
    from lucent.modelzoo import inceptionv1
    from lucent.modelzoo.inceptionv1.InceptionV1 import model_urls

    torch.manual_seed(0)
    module = inceptionv1(pretrained=False)
    if spec.weights:
        _load_weights(module, Path(spec.weights), str(spec))
    elif not spec.untrained:
        _load_weights(module, _download(model_urls["inceptionv1"], str(spec)), str(spec))
    card = "InceptionV1 (GoogLeNet) as used in the Circuits thread, from lucent's model zoo."
    model = _describe(str(spec), module, 224, "lucent", card=card)
    return _with_file_checksum(model, spec)


def _load_torchvision(spec: ModelSpec) -> LoadedModel:
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(spec.name)
    except ValueError:
        names = torchvision.models.list_models(module=torchvision.models)
        raise ModelError(f"torchvision has no model '{spec.name}'{suggest(spec.name, names)}") from None
    torch.manual_seed(0)
    kwargs = {"aux_logits": False, "init_weights": True} if spec.name in ("googlenet", "inception_v3") else {}
    module = builder(weights=None, **kwargs)
    if spec.weights:
        _load_weights(module, Path(spec.weights), str(spec), skip="aux")
    elif not spec.untrained:
        url = torchvision.models.get_model_weights(spec.name).DEFAULT.url
        _load_weights(module, _download(url, str(spec)), str(spec), skip="aux", strict=False)
    aliases = _googlenet_aliases() if spec.name == "googlenet" else {}
    which = f"the weights of {spec.weights}" if spec.weights else "its default weights"
    card = f"torchvision's {spec.name}" + (" (random weights)" if spec.untrained else f" with {which}")
    model = _describe(str(spec), module, 224, "imagenet", aliases=aliases, card=card)
    return _with_file_checksum(model, spec)


def _load_python(spec: ModelSpec) -> LoadedModel:
    path = Path(spec.name)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    module_spec = importlib.util.spec_from_file_location(f"distillgen_user_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise ModelError(f"cannot import {path}: not a Python module")
    code = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(code)
    except Exception as exc:  # the author's code: report, do not crash
        raise ModelError(f"cannot import {path}: {type(exc).__name__}: {exc}") from None
    factory = getattr(code, spec.factory or "", None)
    if not callable(factory):
        functions = [n for n, v in vars(code).items() if callable(v) and not n.startswith("_")]
        raise ModelError(f"{path} has no function '{spec.factory}'{suggest(spec.factory or '', functions)}")
    try:
        module = factory()
    except Exception as exc:
        raise ModelError(f"{path}:{spec.factory}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(module, nn.Module):
        raise ModelError(f"{path}:{spec.factory}() returned {type(module).__name__}, not a torch nn.Module")
    if spec.weights:
        _load_weights(module, Path(spec.weights), str(spec))
    size = int(getattr(module, "input_size", 224))
    preprocessing = getattr(module, "preprocessing", "none")
    model = _describe(str(spec), module, size, preprocessing, card=f"{path}:{spec.factory}")
    return _with_file_checksum(model, spec)


def _load_torchscript(spec: ModelSpec) -> LoadedModel:
    """Recognized so the error is useful: a ScriptModule cannot be hooked (torch raises on
    register_forward_hook), and every figure reads intermediate layers through hooks."""
    path = Path(spec.name)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        with warnings.catch_warnings():  # torch says jit is deprecated; the file is refused anyway
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.load(str(path), map_location="cpu")
    except RuntimeError:
        raise ModelError(
            f"{path} is not a TorchScript file; a state dict needs its architecture: "
            f"write 'model.py:factory@{path.name}'"
        ) from None
    raise ModelError(
        f"{path} is TorchScript, whose layers cannot be hooked to read activations; "
        f"save its state dict (torch.save(model.state_dict(), 'w.pth')) and write "
        f"'model.py:factory@w.pth' with a factory that builds the architecture"
    )


# Where training scripts keep the weights inside a checkpoint: torchvision's reference scripts
# ("model"), PyTorch Lightning and timm ("state_dict"), PyTorch's tutorials ("model_state_dict").
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors by name in `path`: a state dict, or a checkpoint holding one under one of
    CHECKPOINT_KEYS (beside the optimizer's state, the epoch, …)."""
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(_unloadable(path, exc)) from None
    if not isinstance(state, dict):
        raise ModelError(f"{path} holds a {type(state).__name__}, not a state dict")
    if _tensors_by_name(state):
        return state
    nested = next((state[key] for key in CHECKPOINT_KEYS if _tensors_by_name(state.get(key))), None)
    if nested is None:
        named = ", ".join(_quoted(key) for key in list(state)[:6])
        raise ModelError(
            f"{path} holds a dict, but not one of tensors by name: not a state dict (its keys: {named}); "
            f"save the weights with torch.save(model.state_dict(), '{path.name}')"
        )
    return nested


def _tensors_by_name(value: object) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(key, str) and isinstance(tensor, torch.Tensor) for key, tensor in value.items())
    )


def _load_weights(module: nn.Module, path: Path, spec: str, skip: str = "", strict: bool = True) -> None:
    """The state dict in `path` into `module` (keys starting with `skip` left out: GoogLeNet's
    auxiliary heads, which distillgen builds without); ModelError when it does not fit."""
    state = {k: v for k, v in _load_state_dict(path).items() if not (skip and k.lower().startswith(skip))}
    wanted = set(module.state_dict())
    state = _unprefixed(state, wanted)
    missing, unexpected = sorted(wanted - state.keys()), sorted(state.keys() - wanted)
    if strict and (missing or unexpected):
        differ = _mismatch(missing, unexpected, wanted)
        raise ModelError(f"the weights in {path} do not fit '{spec}': {differ}")
    try:
        module.load_state_dict(state, strict=strict)
    except RuntimeError as exc:  # tensors of other shapes
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise ModelError(f"the weights in {path} do not fit '{spec}': {first[:300]}") from None


def _unprefixed(state: dict[str, torch.Tensor], wanted: set[str]) -> dict[str, torch.Tensor]:
    """`state` without the first name every one of its keys starts with (DataParallel's
    `module.`, a Lightning module's attribute), when that makes more of them the module's own."""
    prefix = next(iter(state), "").partition(".")[0] + "."
    if prefix == "." or not all(key.startswith(prefix) for key in state):
        return state
    stripped = {key[len(prefix) :]: tensor for key, tensor in state.items()}
    return stripped if len(stripped.keys() & wanted) > len(state.keys() & wanted) else state


def _mismatch(missing: list[str], unexpected: list[str], wanted: set[str]) -> str:
    """What differs between the module's tensors and the file's, in a line."""

    def some(keys: list[str], name=str) -> str:
        return ", ".join(name(key) for key in keys[:3]) + (", …" if len(keys) > 3 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} of its {len(wanted)} tensors are not in the file ({some(missing)})")
    if unexpected:  # the file's names, which may come from anyone: quoted and cut short
        parts.append(f"{len(unexpected)} in the file are not its own ({some(unexpected, _quoted)})")
    return "; ".join(parts) + "; are they another architecture's?"


def _quoted(key: object) -> str:
    """A name from a weights file, for a message: escaped (no terminal control codes) and short."""
    return shorten(repr(key), 60)


def _with_file_checksum(model: LoadedModel, spec: ModelSpec) -> LoadedModel:
    """A model loaded from a weights file the author names records that file's sha256."""
    if not spec.weights:
        return model
    return dataclasses.replace(model, checksum=hashlib.sha256(Path(spec.weights).read_bytes()).hexdigest())


def _unloadable(path: Path, exc: Exception) -> str:
    """One line saying what the author can do. torch's own message spans several lines and
    suggests weights_only=False, which would let the file run any code: not an option here."""
    pickled = _PICKLED_GLOBAL.search(str(exc))
    if pickled:
        return (
            f"cannot load {path}: it holds a pickled Python object ({pickled[1]}), which distillgen "
            f"never unpickles; save only the tensors with torch.save(model.state_dict(), '{path.name}')"
        )
    return (
        f"cannot load {path}: not a file written by torch.save, or damaged ({type(exc).__name__}); "
        f"save the weights with torch.save(model.state_dict(), '{path.name}')"
    )


_PICKLED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _download(url: str, spec: str) -> Path:
    """torch.hub's checkpoint cache; offline, say exactly which file to place where."""
    target = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if not target.is_file():
        try:
            torch.hub.download_url_to_file(url, str(target), progress=False)
        except Exception as exc:  # no network, proxy, HTTP error: all mean the same to an author
            raise ModelError(
                f"'{spec}' needs weights that could not be downloaded ({type(exc).__name__}). "
                f"Download {url} on a machine with network access and place it at {target} "
                "(or set TORCH_HOME to a folder whose hub/checkpoints/ holds it)"
            ) from None
    return target


def _googlenet_aliases() -> dict[str, str]:
    """The Circuits papers' names (mixed4c) for torchvision's (inception4c)."""
    blocks = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
    return {f"mixed{b}": f"inception{b}" for b in blocks}


# -- description ---------------------------------------------------------------------------


def _describe(
    spec: str,
    module: nn.Module,
    input_size: int,
    preprocessing: str,
    aliases: dict[str, str] | None = None,
    card: str = "",
) -> LoadedModel:
    module.eval()
    layers, inner = _layer_shapes(module, input_size)
    state = module.state_dict()
    # A transformer's position embedding is made for one grid of patches, so for one input size
    # (torchvision's ViT refuses any other); a CNN takes any (its layers up to the one read).
    grids = {layer.shape[-1] for layer in layers.values() if layer.tokens}
    fixed_size = bool(grids)
    if grids:
        card = (
            f"{card.rstrip('.')}. Its token layers are read as maps: the width's units over the "
            f"{'/'.join(f'{g}×{g}' for g in sorted(grids))} grid of patch tokens, the class token "
            f"left out; images are resized to {input_size}×{input_size} px, the only size it takes."
        ).strip()
    return LoadedModel(
        spec=spec,
        module=module,
        input_size=input_size,
        preprocessing=preprocessing,
        layers=layers,
        checksum=weights_checksum(state),
        aliases={**inner, **{a: n for a, n in (aliases or {}).items() if n in layers}},
        card=card,
        fixed_size=fixed_size,
    )


def _layer_shapes(module: nn.Module, input_size: int) -> tuple[OrderedDict[str, Layer], dict[str, str]]:
    """Output shape of every named submodule whose output is a tensor (leaves, blocks and
    containers: a ResNet's `layer3`, `layer3.1`, `layer3.1.conv2`), from one forward pass, in
    the order their outputs are made; and aliases: a submodule whose output *is* its parent's
    (a stage's last block, a concatenation inside a block) names the parent. Hooks always
    removed."""
    shapes: OrderedDict[str, Layer] = OrderedDict()
    outputs: dict[str, torch.Tensor] = {}  # kept alive: ids of freed tensors get reused
    versions: dict[str, int] = {}  # each output's version counter when it was made
    handles = []

    def record(name):
        def hook(module, _inputs, output):
            if not isinstance(output, torch.Tensor) or name in shapes:
                return
            if output.dim() in (2, 4):  # a pooling module's output holds its input's units
                shapes[name] = Layer(name, tuple(output.shape[1:]), pooled="Pool" in type(module).__name__)
            elif output.dim() == 3 and token_grid(output.shape[1]):  # a transformer's tokens
                side = token_grid(output.shape[1])
                shapes[name] = Layer(name, (output.shape[2], side, side), tokens=True)
            else:
                return
            outputs[name], versions[name] = output, output._version

        return hook

    try:
        for name, child in module.named_modules():
            if name and not isinstance(child, nn.ModuleList | nn.ModuleDict):  # not callable
                handles.append(child.register_forward_hook(record(name)))
        with torch.no_grad():
            module(torch.zeros(1, 3, input_size, input_size))
    except Exception as exc:
        raise ModelError(f"a forward pass on a 1×3×{input_size}×{input_size} input failed: {exc}") from None
    finally:
        for handle in handles:
            handle.remove()

    aliases = {}
    for name in list(shapes):
        parent = name.rsplit(".", 1)[0]
        if "." not in name or parent not in shapes:
            continue
        if outputs[name] is outputs[parent] and versions[name] == versions[parent]:
            aliases[name] = parent  # the same map (a stage's last block, a block's concat)
            del shapes[name]
        elif outputs[name] is outputs[parent] or name.endswith(".conv"):
            # a map its parent then changed in place (a ResNet block's bn3, by the skip's
            # addition and the ReLU), or a conv+ReLU wrapper's pre-ReLU conv: not a layer
            del shapes[name]
    grids = {name: layer.shape[-1] for name, layer in shapes.items() if layer.tokens}
    for name in _not_tokens(module, input_size, grids):
        del shapes[name]
    resolved = {}
    for alias, target in aliases.items():  # a stage's last block's last layer: the stage
        while target in aliases:
            target = aliases[target]
        if target in shapes:  # not when the parent was left out after all
            resolved[alias] = target
    modules = dict(module.named_modules())
    for name in [*shapes, *resolved]:  # a stage's last block's skip is the stage's output's
        block = modules[name]
        layer = resolved.get(name, name)
        if any(block.children()) and not shapes[layer].residual and _adds_maps(block):
            shapes[layer] = dataclasses.replace(shapes[layer], residual=True)
    return shapes, resolved


def _adds_maps(block: nn.Module) -> bool:
    """Whether a block's own code adds tensors (its submodules not looked into): a residual
    block's skip connection, whose identity expanded weights count as one of the paths. Read
    with torch.fx; a block it cannot trace is taken not to."""
    import operator

    import torch.fx

    class Shallow(torch.fx.Tracer):
        def is_leaf_module(self, _module: nn.Module, _name: str) -> bool:
            return True  # the block's own operations only

    try:
        graph = Shallow().trace(block)
    except Exception:  # data-dependent control flow, and the like
        return False
    adds = {operator.add, operator.iadd, torch.add}
    return any(
        (node.op == "call_function" and node.target in adds)
        or (node.op == "call_method" and node.target in ("add", "add_"))
        for node in graph.nodes
    )


def _not_tokens(module: nn.Module, input_size: int, candidates: dict[str, int]) -> list[str]:
    """Of the layers taken for a transformer's tokens (a 3-D output whose middle dimension is a
    square grid of `candidates[name]` patches a side, perhaps with a class token), those that
    are not: their grid does not follow the input's size (a 1-D convolution's channels, a
    flattened map's). A model that takes no other size (a ViT's position embedding) keeps all."""
    if not candidates:
        return []
    seen: dict[str, int] = {}
    modules = dict(module.named_modules())

    def record(name):
        def hook(_module, _inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() == 3:
                seen.setdefault(name, token_grid(output.shape[1]))

        return hook

    handles = [modules[name].register_forward_hook(record(name)) for name in candidates]
    try:
        with torch.no_grad():
            module(torch.zeros(1, 3, input_size // 2, input_size // 2))
    except Exception:
        pass  # the size is refused (as a ViT does), or fails later on: what was seen is enough
    finally:
        for handle in handles:
            handle.remove()
    return [name for name, side in candidates.items() if seen.get(name) == side]


def _card_text(path: Path) -> str:
    if not path.is_file():
        return ""
    card = json.loads(path.read_text())
    return card.get("text", "")


__all__ = [
    "WEIGHTS",
    "Layer",
    "LoadedModel",
    "ModelError",
    "ModelInfo",
    "ModelStore",
    "SpecError",
    "load_model",
]
