"""Model specs and unit addresses as authors write them; pure parsing, no torch.

    shapes, shapes@1, shapes@untrained          the embedded network (seed 0, 1), or its initialization
glyphs, glyphs@1, glyphs@untrained          the same architecture trained on the glyphs task
glyphs-aux, glyphs-aux@1                    the same, trained with an auxiliary heading classifier
shapes-vgg, shapes-vgg@untrained            a VGG-style network trained on the shapes task
lucent:inceptionv1[@untrained]              the Circuits thread's InceptionV1 (via lucent)
torchvision:<name>[@untrained]              a torchvision classifier with its default weights
path/model.py:factory[@weights.pth]         the author's own network (+ a state dict)
path/model.pt                               a TorchScript file

mixed3:5   mixed3:0-7   mixed3:0-3,9,conv2:1   units: layer, then unit numbers or ranges
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from distillgen.diagnostics import suggest
from distillgen.zoo import ZOO

SHIPPED_SEEDS = ZOO["shapes"].seeds  # zoo/weights/shapes-seed{N}.pt


class SpecError(ValueError):
    """A model spec or unit address that cannot be understood; the message says why."""


class ModelError(Exception):
    """A model that cannot be loaded or addressed; the message says what to do."""


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # a zoo network (a key of zoo.ZOO) | lucent | torchvision | python | torchscript
    name: str  # seed for a zoo network, model name, or file path
    factory: str | None = None
    weights: str | None = None  # a state dict's path: "python", and lucent or torchvision models
    untrained: bool = False

    def __str__(self) -> str:
        suffix = "@untrained" if self.untrained else ""
        if self.kind in ZOO:
            return self.kind + (suffix or ("" if self.name == "0" else f"@{self.name}"))
        if self.kind in ("lucent", "torchvision"):
            return f"{self.kind}:{self.name}" + (f"@{self.weights}" if self.weights else suffix)
        if self.kind == "python":
            return f"{self.name}:{self.factory}" + (f"@{self.weights}" if self.weights else "")
        return self.name


_PYTHON = re.compile(r"^(?P<file>.+\.py):(?P<factory>[A-Za-z_]\w*)(?:@(?P<weights>.+))?$")
_TORCHSCRIPT = (".pt", ".pth", ".ts", ".torchscript")
KNOWN_SPECS = (
    "shapes",
    "shapes@1",
    "shapes@untrained",
    "glyphs",
    "glyphs@1",
    "glyphs@untrained",
    "glyphs-aux",
    "glyphs-aux@1",
    "shapes-vgg",
    "shapes-vgg@untrained",
    "lucent:inceptionv1",
    "torchvision:googlenet",
)


def parse_spec(text: str, base: Path | None = None) -> ModelSpec:
    """Parse a spec; file paths are made absolute against `base` (the article's folder)."""
    text = text.strip()
    name, _, tag = text.partition("@")
    if name in ZOO:
        seeds = ZOO[name].seeds
        if tag in ("", "untrained") or (tag.isdigit() and int(tag) in seeds):
            seed = "0" if tag in ("", "untrained") else str(int(tag))
            return ModelSpec(name, seed, untrained=tag == "untrained")
        raise SpecError(
            f"no shipped weights for '{text}': the {name} seeds are "
            + ", ".join(f"{name}@{s}" for s in seeds)
            + f"; train another with 'distillgen zoo train {name} --seed N -o FILE' and use FILE"
        )
    if "/" not in name and ":" not in name and "." not in name:  # a misspelt zoo network
        close = suggest(name, ZOO)
        if close:
            raise SpecError(f"unknown model spec '{text}'{close}; the zoo ships " + ", ".join(ZOO))
    for prefix in ("lucent", "torchvision"):
        if name.startswith(prefix + ":"):
            model = name[len(prefix) + 1 :]
            if not re.fullmatch(r"[a-z][a-z0-9_]*", model):
                raise SpecError(f"'{model}' is not a model name in '{text}'")
            if prefix == "lucent" and model != "inceptionv1":
                raise SpecError(f"lucent ships one model, 'lucent:inceptionv1', not '{text}'")
            if tag not in ("", "untrained"):  # the weights, from a state dict the author has
                if not any(sign in tag for sign in "./\\"):  # a name, not a file: a misread tag
                    raise SpecError(
                        f"unknown tag '@{tag}' in '{text}': write '@untrained' for random weights, "
                        "or '@path/to/weights.pth' for a state dict you have"
                    )
                return ModelSpec(prefix, model, weights=str(_absolute(tag, base)))
            return ModelSpec(prefix, model, untrained=tag == "untrained")
    if match := _PYTHON.match(text):
        weights = match["weights"]
        return ModelSpec(
            "python",
            str(_absolute(match["file"], base)),
            factory=match["factory"],
            weights=str(_absolute(weights, base)) if weights else None,
        )
    if text.endswith(_TORCHSCRIPT):
        return ModelSpec("torchscript", str(_absolute(text, base)))
    raise SpecError(
        f"unknown model spec '{text}'; use one of: shapes, shapes@untrained, glyphs, shapes-vgg, "
        "lucent:inceptionv1[@weights.pth], torchvision:<name>[@weights.pth], "
        "path/model.py:factory[@weights.pth], path/model.pt"
    )


# the architectures distillgen can build with random weights: the zoo's, lucent's and torchvision's
UNTRAINED_KINDS = ("lucent", "torchvision", *ZOO)


def untrained(spec: ModelSpec) -> ModelSpec:
    """The same architecture with random weights (`shapes` → `shapes@untrained`), a baseline
    for what training made of a layer; SpecError for a model distillgen cannot initialize (an
    author's model file or TorchScript archive, whose architecture it only has with weights)."""
    if spec.kind not in UNTRAINED_KINDS:
        raise SpecError(f"'{spec}' has no untrained variant to compare with")
    return replace(spec, weights=None, untrained=True)  # an author's state dict too: random weights


def _absolute(path: str, base: Path | None) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() or base is None else (base / candidate)


@dataclass(frozen=True)
class UnitRef:
    layer: str
    unit: int

    def __str__(self) -> str:
        return f"{self.layer}:{self.unit}"


_LAYER_NAME = r"[A-Za-z_][\w.]*"
_ITEM = re.compile(rf"^(?:(?P<layer>{_LAYER_NAME}):)?(?P<first>\d+)(?:-(?P<last>\d+))?$")
MAX_UNITS = 4096  # per address: a typo like 0-99999 should not plan a huge job


def is_layer_name(text: str) -> bool:
    """A layer written alone (`mixed3`, `inception4c.branch1`), not a unit address."""
    return re.fullmatch(_LAYER_NAME, text) is not None


def parse_units(text: str) -> list[UnitRef]:
    """`mixed3:0-3,9,conv2:1` -> mixed3:0..3, mixed3:9, conv2:1 (an item without a layer keeps the last)."""
    units: list[UnitRef] = []
    layer: str | None = None
    for raw in text.split(","):
        item = raw.strip()
        match = _ITEM.match(item)
        if not match:
            raise SpecError(f"'{item}' is not a unit address; write layer:unit, layer:first-last or a list")
        layer = match["layer"] or layer
        if layer is None:
            raise SpecError(f"'{item}' names no layer; write it as layer:{item}")
        first, last = int(match["first"]), int(match["last"] or match["first"])
        if last < first:
            raise SpecError(f"the range '{item}' runs backwards; write {layer}:{last}-{first}")
        if len(units) + last - first + 1 > MAX_UNITS:
            raise SpecError(f"'{text}' names more than {MAX_UNITS} units")
        units.extend(UnitRef(layer, unit) for unit in range(first, last + 1))
    return units


# -- what a model offers to address, without torch -----------------------------------------


@dataclass(frozen=True)
class Layer:
    name: str
    shape: tuple[int, ...]  # output shape without the batch dimension, e.g. (64, 16, 16)
    # A transformer's tokens (batch × tokens × width), read as a map: the width's units over
    # the grid of patch tokens, the class token left out (engine/hooks.py, `as_map`).
    tokens: bool = False
    pooled: bool = False  # a pooling layer's output: its input's units, pooled (not a neighbour)
    residual: bool = False  # a block that adds maps: a skip connection around its layers

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def shape_text(self) -> str:
        return "×".join(map(str, self.shape)) + (" (tokens)" if self.tokens else "")


@dataclass
class ModelInfo:
    """A model's description: enough to validate addresses and key jobs without loading it.

    The engine's `LoadedModel` extends it with the module; the cache keeps it as JSON, so a
    build whose figures are all cached never imports torch.
    """

    spec: str
    input_size: int
    preprocessing: str  # "none" ([0, 1] RGB), "imagenet" (mean/std), or "lucent" (x*255-117)
    layers: OrderedDict[str, Layer]
    checksum: str  # sha256 of the state dict's tensors
    aliases: dict[str, str] = field(default_factory=dict)
    card: str = ""
    fixed_size: bool = False  # takes images of `input_size` only (a ViT): others are resized
    fingerprint: str = ""  # fingerprint(spec), set by the Catalog: jobs carry it in their keys
    # An article's dictionaries of this model, as layers (dictionaries.py): name -> (its
    # DictionaryJob, the trained jobs.Attached or None). Never stored with the description.
    dictionaries: dict = field(default_factory=dict)

    def layer(self, name: str) -> Layer:
        """The layer an author's name refers to (module path, alias, or lucent's '_' form)."""
        resolved = self.aliases.get(name, name)
        if resolved not in self.layers and resolved.replace("_", ".") in self.layers:
            resolved = resolved.replace("_", ".")
        if resolved in self.layers:
            return self.layers[resolved]
        names = [*self.layers, *self.aliases]
        parent = self.parent(name) if "." in name else None
        nearby = self.children(parent) if parent else self.top_level()
        # dictionary names are short ('m4'): one changed character is a likely typo
        hint = suggest(name, names) or suggest(name, self.dictionaries, cutoff=0.5)
        raise ModelError(
            f"unknown layer '{name}' in model '{self.spec}'{hint}; "
            f"{'layers in ' + parent if parent else 'layers'}: " + ", ".join(nearby)
        )

    def _nodes(self) -> list[str]:
        """The layers and module-path aliases (`layer3.5`, the stage `layer3`'s last block), in
        the network's order: what the model is built of, as an author can name it."""
        order = {name: index for index, name in enumerate(self.layers)}
        aliases = [a for a, target in self.aliases.items() if "." in a and target in order]
        return sorted([*self.layers, *aliases], key=lambda node: order[self.aliases.get(node) or node])

    def parent(self, name: str) -> str | None:
        """The layer (or alias) that `name` is directly inside: by module path (`layer3.5` of
        `layer3.5.conv1`), or lucent's flat names (`mixed4a` of `mixed4a_5x5`); None at the top."""
        path = name
        while "." in path:
            path = path.rsplit(".", 1)[0]
            if path in self.layers or path in self.aliases:
                return path
        block = self.block_of(name)
        return block if block != name else None

    def children(self, name: str) -> list[str]:
        """The layers and aliases directly inside `name`, in the network's order."""
        return [node for node in self._nodes() if self.parent(node) == name]

    def outline(self) -> list[tuple[int, str]]:
        """Every layer and module-path alias as the model is built, with its depth: each
        top-level layer (a ResNet's stage), then what is inside it (its blocks, among them the
        last, an alias of the stage; then their layers), depth first."""
        inside: dict[str, list[str]] = {}
        for node in self._nodes():
            if (parent := self.parent(node)) is not None:
                inside.setdefault(parent, []).append(node)
        found: list[tuple[int, str]] = []

        def visit(name: str, depth: int) -> None:
            found.append((depth, name))
            for child in inside.get(name, ()):
                visit(child, depth + 1)

        for top in self.top_level():
            visit(top, 0)
        return found

    def top_level(self) -> list[str]:
        """The layers inside no other (`block_of`), in the network's order."""
        return list(_top_level(tuple(self.layers)))

    def block_of(self, name: str) -> str:
        """The top-level layer that layer `name` (canonical) is part of, or `name` itself. A
        module path is part of its first component (`mixed3.b1x1` of `mixed3`); a flat name
        `X_…` that runs before a layer `X` is part of `X`: lucent's InceptionV1 names the
        branches of `mixed4a` `mixed4a_5x5`, `mixed4a_pool_reduce`, … and a convolution
        before its ReLU `conv2d0_pre_relu_conv`, all ahead of the block's own output."""
        return _blocks(tuple(self.layers)).get(name, name)

    def convolutional_layers(self) -> list[str]:
        """The top-level layers with a [channels, height, width] output."""
        return [n for n in self.top_level() if len(self.layers[n].shape) == 3]

    def check_units(self, units: list[UnitRef]) -> list[UnitRef]:
        """Canonical (resolved-layer) units; ModelError for a bad layer or unit number."""
        checked = []
        for ref in units:
            layer = self.layer(ref.layer)
            if ref.unit >= layer.channels:
                raise ModelError(
                    f"unit {ref.unit} is out of range for '{ref.layer}' in model '{self.spec}': "
                    f"it has {layer.channels} units (0-{layer.channels - 1})"
                )
            checked.append(UnitRef(layer.name, ref.unit))
        return checked

    def check_order(self, source: str, target: str) -> None:
        """ModelError unless layer `source` runs before `target` (both canonical names)."""
        order = list(self.layers)
        if order.index(source) >= order.index(target):
            raise ModelError(f"'{source}' does not come before '{target}' in the network")

    def skips_between(self, source: str, target: str) -> tuple[str, ...]:
        """The residual blocks whose skip connection carries `source`'s maps to `target`
        (canonical, in order): blocks made after `source` and by `target`, not around `source`
        (a block's skip starts at its input, before any layer inside it)."""
        order = list(self.layers)
        first, last = order.index(source), order.index(target)
        return tuple(
            name
            for name in order[first + 1 : last + 1]
            if self.layers[name].residual and not source.startswith(f"{self._block(name)}.")
        )

    def _block(self, name: str) -> str:
        """The module whose output a layer is: the deepest of its names (a stage stands for
        its last block, `layer1` for `layer1.2`, whose skip starts at that block's input)."""
        names = [name, *(alias for alias, target in self.aliases.items() if target == name)]
        return max(names, key=lambda each: each.count("."))

    def check_kernels(self, source: str, target: str) -> None:
        """ModelError when no kernel joins layers `source` and `target` (canonical, in order):
        a path through a transformer's attention, which mixes tokens by their content, not by
        fixed weights."""
        order = list(self.layers)
        between = order[order.index(source) : order.index(target) + 1]
        if any(self.layers[name].tokens for name in between):
            raise ModelError(
                f"no expanded weights join '{source}' and '{target}': the path between them runs "
                "through attention, which mixes tokens by their content, not by fixed weights; "
                "{attribution} shows what one unit carries of another on given inputs, {ablation} "
                "what removing it does"
            )

    def to_json(self) -> dict:
        return {
            "version": DESCRIPTION_VERSION,
            "spec": self.spec,
            "input_size": self.input_size,
            "preprocessing": self.preprocessing,
            "layers": [
                [
                    layer.name,
                    list(layer.shape),
                    *(["tokens"] if layer.tokens else []),
                    *(["pooled"] if layer.pooled else []),
                    *(["residual"] if layer.residual else []),
                ]
                for layer in self.layers.values()
            ],
            "checksum": self.checksum,
            "aliases": self.aliases,
            "card": self.card,
            "fixed_size": self.fixed_size,
        }

    @classmethod
    def from_json(cls, data: dict) -> ModelInfo:
        layers = OrderedDict(
            (
                name,
                Layer(
                    name,
                    tuple(shape),
                    tokens="tokens" in rest,
                    pooled="pooled" in rest,
                    residual="residual" in rest,
                ),
            )
            for name, shape, *rest in data["layers"]
        )
        return cls(
            data["spec"],
            int(data["input_size"]),
            data["preprocessing"],
            layers,
            data["checksum"],
            dict(data["aliases"]),
            data["card"],
            bool(data["fixed_size"]),
        )


WEIGHTS = Path(__file__).resolve().parent / "zoo" / "weights"
# Bumped when describing a model gives other layers or aliases (2: containers such as a
# ResNet's stages are layers; a submodule whose output is its parent's is an alias of it; 3:
# a transformer's token layers, and models that take one input size; 4: residual blocks): a
# cached description of another version is described again.
DESCRIPTION_VERSION = 4


def fingerprint(spec: ModelSpec) -> str:
    """A hash of everything that defines the model's weights, computed without torch.

    It keys the cached description and every figure of the model: shipped and local files by
    their bytes, downloaded weights by the package version that pins them, random
    initializations by the torch version that draws them.
    """
    parts = [str(spec)]
    if spec.kind in ZOO:
        parts.append(_file_digest(ZOO[spec.kind].source(), "model file"))
        if not spec.untrained:
            parts.append(_file_digest(ZOO[spec.kind].weights(int(spec.name)), "weights file"))
    elif spec.kind in ("lucent", "torchvision"):
        package = "torch-lucent" if spec.kind == "lucent" else "torchvision"
        parts.append(f"{package} {package_version(package)}")  # the architecture's code
        if spec.weights:
            parts.append(_file_digest(Path(spec.weights), "weights file"))
    else:
        parts.append(_file_digest(Path(spec.name), "model file"))
        if spec.weights:
            parts.append(_file_digest(Path(spec.weights), "weights file"))
    if spec.untrained:
        parts.append("torch " + package_version("torch"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


PACKAGE = Path(__file__).resolve().parent  # distillgen's own source folder


def source_fingerprint(module: str, package: Path = PACKAGE) -> str:
    """A hash of the code a module of this package runs when it draws something (stimuli, a
    probe set): its file and every module of the package it imports, transitively, read with
    `ast` and never imported. So an edit of a helper it draws with changes the keys of what it
    drew. A module importing none of the package is keyed by its bytes alone (as before this
    function: those keys stay)."""
    files = _package_sources(module, package)
    if len(files) == 1:
        return _file_digest(files[0], "source file")
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(package).as_posix()
        digest.update(name.encode() + b"\0" + bytes.fromhex(_file_digest(path, "source file")))
    return digest.hexdigest()


def _package_sources(module: str, package: Path) -> list[Path]:
    """The module's file and those of the package's modules it imports, transitively, sorted."""
    start = _module_file(module, package)
    if start is None:
        raise ModelError(f"source file of {module} not found in {package}")
    found, todo = {start}, [start]
    while todo:
        for name in _imports(todo.pop(), package):
            path = _module_file(name, package)
            if path is not None and path not in found:
                found.add(path)
                todo.append(path)
    return sorted(found)


def _module_file(module: str, package: Path) -> Path | None:
    """`package.a.b` as a file of `package` (a module or a package's __init__), or None."""
    root, _, rest = module.partition(".")
    if root != package.name:
        return None
    base = package.joinpath(*rest.split(".")) if rest else package
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path, package: Path) -> list[str]:
    """The modules of `package` a source file imports: `import p.a`, `from p.a import b` (`p.a.b`
    when b is a module, else `p.a`), relative imports resolved."""
    here = path.relative_to(package.parent).with_suffix("").parts  # ("distillgen", "zoo", "x")
    inside = here[:-1]  # the package a relative import starts from
    names = []
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parent = ".".join(inside[: len(inside) - node.level + 1]) if node.level else ""
            base = ".".join(part for part in (parent, node.module or "") if part)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                names.append(child if _module_file(child, package) is not None else base)
    return [name for name in names if name.split(".")[0] == package.name]


_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime, inode) -> sha256: a build asks hundreds of times


def _file_digest(path: Path, what: str) -> str:
    try:
        status = path.stat()
        seen = (str(path), status.st_size, status.st_mtime_ns, status.st_ino)
        if seen not in _DIGESTS:
            _DIGESTS[seen] = hashlib.sha256(path.read_bytes()).hexdigest()
        return _DIGESTS[seen]
    except FileNotFoundError:
        raise ModelError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ModelError(f"cannot read {what} {path}: {exc.strerror}") from None


def package_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=64)
def _top_level(names: tuple[str, ...]) -> tuple[str, ...]:
    """The layers of `names` that are their own block (an atlas asks once per unit page)."""
    blocks = _blocks(names)
    return tuple(name for name in names if blocks.get(name, name) == name)


@lru_cache(maxsize=64)
def _blocks(names: tuple[str, ...]) -> dict[str, str]:
    """ModelInfo.block_of for every layer inside another, from the layers' names in order."""
    blocks: dict[str, str] = {}
    later: list[str] = []  # the dotless names after the one at hand
    for name in reversed(names):
        if "." in name:
            blocks[name] = name.split(".")[0]
            continue
        outer = [block for block in later if name.startswith(block + "_")]
        if outer:
            blocks[name] = min(outer, key=len)  # the outermost: mixed4a, not mixed4a_5x5
        later.append(name)
    return blocks
