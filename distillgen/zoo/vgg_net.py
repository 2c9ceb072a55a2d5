"""A plain VGG-style network for the shapes task: no Inception blocks, other layer names and
shapes than the shapes network, so universality can be tested across architectures.

    block1  3×3, 16 channels, then 2×2 max-pool           64 → 32 px
    block2  3×3, 32 channels, then 2×2 max-pool           32 → 16 px
    block3  3×3, 48 channels, then 2×2 max-pool           16 → 8 px
    block4  3×3, 64 channels                               8 px
    fc      global average pool, linear to the classes

Every named layer's output is after its ReLU. Trained with BatchNorm, shipped folded, like the
shapes network (`shapes_net.fold_batchnorm`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from distillgen.zoo.shapes_net import ConvReLU

WIDTHS = (16, 32, 48, 64)


class VGGNet(nn.Module):
    input_size = 64

    def __init__(self, classes: int = 5, batchnorm: bool = False) -> None:
        super().__init__()
        cin = 3
        for index, width in enumerate(WIDTHS, start=1):
            setattr(self, f"block{index}", ConvReLU(cin, width, 3, batchnorm))
            cin = width
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - 0.5
        x = F.max_pool2d(self.block1(x), 2)
        x = F.max_pool2d(self.block2(x), 2)
        x = F.max_pool2d(self.block3(x), 2)
        x = self.block4(x)
        return self.fc(x.mean(dim=(2, 3)))
