"""The shapes network: a small InceptionV1 with readable module names.

    conv1   5×5, 16 channels, then 2×2 max-pool            64 → 32 px
    conv2   3×3, 32 channels, then 2×2 max-pool            32 → 16 px
    mixed3  Inception block: 1×1 | 1×1→3×3 | 1×1→5×5 | pool→1×1, concatenated (64), then pool → 8 px
    mixed4  Inception block (96 channels)
    fc      global average pool, linear to the 5 classes

Every named layer's output is after its ReLU, so a unit's activation is what the next layer
sees. Branch modules (`mixed3.b3x3_reduce`, …) are addressable too.

Training puts a BatchNorm before every ReLU (without it, a third of mixed3 died during training
on some seeds); the shipped weights have it folded into the convolutions, so the network that
articles analyse is plain convolutions and ReLUs, like InceptionV1.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from distillgen.zoo.shapes_data import CLASSES


class ConvReLU(nn.Module):
    """A convolution and its ReLU; with `batchnorm`, a BatchNorm between them (training only:
    `fold_batchnorm` merges it into the convolution for the shipped, plain network)."""

    def __init__(self, cin: int, cout: int, kernel: int, batchnorm: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.bn = nn.BatchNorm2d(cout) if batchnorm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.relu(x if self.bn is None else self.bn(x))


class Concat(nn.Module):
    """Identity on the concatenated branches, so the block's output has a module to hook."""

    def forward(self, *branches: torch.Tensor) -> torch.Tensor:
        return torch.cat(branches, dim=1)


class Inception(nn.Module):
    def __init__(
        self,
        cin: int,
        b1: int,
        b3_reduce: int,
        b3: int,
        b5_reduce: int,
        b5: int,
        pool: int,
        batchnorm: bool = False,
    ) -> None:
        super().__init__()
        self.b1x1 = ConvReLU(cin, b1, 1, batchnorm)
        self.b3x3_reduce = ConvReLU(cin, b3_reduce, 1, batchnorm)
        self.b3x3 = ConvReLU(b3_reduce, b3, 3, batchnorm)
        self.b5x5_reduce = ConvReLU(cin, b5_reduce, 1, batchnorm)
        self.b5x5 = ConvReLU(b5_reduce, b5, 5, batchnorm)
        self.pool_proj = ConvReLU(cin, pool, 1, batchnorm)
        self.concat = Concat()
        self.channels = b1 + b3 + b5 + pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.concat(
            self.b1x1(x),
            self.b3x3(self.b3x3_reduce(x)),
            self.b5x5(self.b5x5_reduce(x)),
            self.pool_proj(F.max_pool2d(x, 3, stride=1, padding=1)),
        )


class ShapesNet(nn.Module):
    input_size = 64

    def __init__(self, classes: int = len(CLASSES), batchnorm: bool = False) -> None:
        super().__init__()
        bn = batchnorm
        self.conv1 = ConvReLU(3, 16, 5, bn)
        self.conv2 = ConvReLU(16, 32, 3, bn)
        self.mixed3 = Inception(32, b1=16, b3_reduce=16, b3=24, b5_reduce=8, b5=16, pool=8, batchnorm=bn)
        self.mixed4 = Inception(64, b1=24, b3_reduce=24, b3=40, b5_reduce=8, b5=16, pool=16, batchnorm=bn)
        self.fc = nn.Linear(self.mixed4.channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - 0.5  # inputs are RGB in [0, 1]; centring them lets training start faster
        x = F.max_pool2d(self.conv1(x), 2)
        x = F.max_pool2d(self.conv2(x), 2)
        x = F.max_pool2d(self.mixed3(x), 2)
        x = self.mixed4(x)
        return self.fc(x.mean(dim=(2, 3)))


@torch.no_grad()
def fold_batchnorm(trained: nn.Module) -> nn.Module:
    """The plain network computing what `trained` computes in eval mode: each BatchNorm's
    scale and shift merged into the convolution before it. Works for any network built of
    `ConvReLU`s (the shapes and glyphs networks, the VGG-style one)."""
    plain = copy.deepcopy(trained)
    for module in plain.modules():
        if isinstance(module, ConvReLU) and module.bn is not None:
            bn = module.bn
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            module.conv.weight.copy_(module.conv.weight * scale[:, None, None, None])
            module.conv.bias.copy_((module.conv.bias - bn.running_mean) * scale + bn.bias)
            module.bn = None
    return plain.eval()
