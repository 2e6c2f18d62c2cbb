"""The model zoo: the networks the literature we reproduce was measured on.

Every builder takes `input_shape` (C, H, W) and `num_classes` so that one name works on
Fashion-MNIST (1x28x28), MNIST and the 8x8 digits alike.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from netshrink import checks
from netshrink.checks import show
from netshrink.errors import NetshrinkError
from netshrink.models.registry import output_shape


def _flat(input_shape: tuple[int, ...]) -> int:
    return math.prod(input_shape)


def _mlp(sizes: list[int], dropout: float = 0.0, input_dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    if input_dropout:
        layers.append(nn.Dropout(input_dropout))
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def lenet300(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """LeNet-300-100 (LeCun et al. 1998), the Lottery Ticket and Deep Compression MLP."""
    return _mlp([_flat(input_shape), 300, 100, num_classes])


def mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    widths: Sequence[int] = (1200, 1200),
    dropout: float = 0.0,
    input_dropout: float = 0.0,
) -> nn.Sequential:
    """Fully connected ReLU net; Hinton et al. distilled 2x1200 (dropout) into 2x800."""
    if not isinstance(widths, list | tuple) or not widths or not all(
            isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1
            for w in widths):
        raise NetshrinkError(f"mlp widths={show(widths)} must be a non-empty list of positive "
                             "integers, such as [300, 100]")
    widths = [int(w) for w in widths]
    for label, p in (("dropout", dropout), ("input_dropout", input_dropout)):
        checks.real(p, f"mlp {label}", 0, 1, high_open=True)
    return _mlp([_flat(input_shape), *widths, num_classes], dropout, input_dropout)


def lenet5(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """LeNet-5: conv 6 -> pool -> conv 16 -> pool -> fc 120 -> 84 -> classes (ReLU, max-pool).

    On 28x28 inputs the first conv pads by 2 as in the original 32x32 setting; on small inputs
    (8x8 digits) the second conv pads too, so the feature map does not vanish.
    """
    channels, height = input_shape[0], input_shape[1]
    pad2 = 0 if height // 2 >= 10 else 2
    features = nn.Sequential(
        nn.Conv2d(channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=pad2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    )
    flat = output_shape(features, input_shape)[0]
    return nn.Sequential(
        *features,
        nn.Linear(flat, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
    )


def lenet5_caffe(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """LeNet-5 as Caffe's MNIST example builds it, the network of Deep Compression's LeNet-5
    row: conv 20 (5x5) -> max-pool -> conv 50 (5x5) -> max-pool -> fc 500 -> ReLU -> classes
    (no ReLU after the convolutions, as in Caffe's prototxt); 431k weights on 28x28 inputs.
    On small inputs (8x8 digits) the convolutions pad by 2, so the feature map does not vanish.
    """
    channels, height = input_shape[0], input_shape[1]
    pad = 0 if height >= 16 else 2
    features = nn.Sequential(
        nn.Conv2d(channels, 20, 5, padding=pad), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5, padding=pad), nn.MaxPool2d(2),
        nn.Flatten(),
    )
    flat = output_shape(features, input_shape)[0]
    return nn.Sequential(*features, nn.Linear(flat, 500), nn.ReLU(), nn.Linear(500, num_classes))


def _conv_stack(channels: int, plan: list, input_hw: int, batchnorm: bool) -> nn.Sequential:
    """3x3 convolutions (padding 1) and 2x2 max-pools; a pool is skipped once the map is 1x1."""
    layers: list[nn.Module] = []
    size = input_hw
    for item in plan:
        if item == "M":
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            continue
        layers.append(nn.Conv2d(channels, item, 3, padding=1, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU())
        channels = item
    return nn.Sequential(*layers)


def _lottery_conv(input_shape, num_classes, plan):
    """Conv-2/4/6 of the Lottery Ticket paper: 3x3 convs, max-pools, fc 256-256-classes."""
    features = nn.Sequential(*_conv_stack(input_shape[0], plan, input_shape[1], False),
                             nn.Flatten())
    flat = output_shape(features, input_shape)[0]
    return nn.Sequential(*features, *_mlp([flat, 256, 256, num_classes])[1:])


def conv2(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    return _lottery_conv(input_shape, num_classes, [64, 64, "M"])


def conv4(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    return _lottery_conv(input_shape, num_classes, [64, 64, "M", 128, 128, "M"])


def conv6(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    return _lottery_conv(input_shape, num_classes, [64, 64, "M", 128, 128, "M", 256, 256, "M"])


def vgg(input_shape: tuple[int, ...], num_classes: int, width: int = 16) -> nn.Sequential:
    """A small VGG-11-style net with BatchNorm: 8 conv layers in 4 stages, global pooling, fc.

    `width` is the first stage's channel count (VGG-11 uses 64; 16 is a quarter width).
    """
    w = checks.positive_integer(width, "vgg width")
    plan = [w, "M", 2 * w, "M", 4 * w, 4 * w, "M", 8 * w, 8 * w, "M", 8 * w, 8 * w]
    return nn.Sequential(
        _conv_stack(input_shape[0], plan, input_shape[1], batchnorm=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8 * w, num_classes),
    )


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet (He et al. 2016): depth = 6n + 2, three stages of n blocks."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, depth: int, width: int):
        super().__init__()
        if (depth - 2) % 6 or depth < 8:
            raise NetshrinkError(f"resnet depth={depth} must be 6n+2 with n >= 1 (8, 14, 20, 32)")
        if width < 1:
            raise NetshrinkError(f"resnet width={width} must be a positive integer")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(input_shape[0], width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        blocks, cin = [], width
        for stage in range(3):
            cout = width * 2**stage
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, 2 if stage > 0 and i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.blocks(self.stem(x))).flatten(1))


def resnet(
    input_shape: tuple[int, ...],
    num_classes: int,
    depth: int = 20,
    width: int = 16,
) -> ResNet:
    """A small ResNet with BatchNorm and residual connections (ResNet-20 by default)."""
    return ResNet(input_shape, num_classes, checks.integer(depth, "resnet depth"),
                  checks.positive_integer(width, "resnet width"))
