"""Models a user writes, which netshrink has never seen: the kinds the toolkit must handle.

Each builder returns (model, example inputs, number of classes). Inputs are a tensor, or a
tuple of tensors for a forward that takes several.
"""

import torch
import torch.nn.functional as F
from torch import nn

from netshrink.data.inputs import call  # noqa: F401  (model(x), model(*x) or model(**x))


class ResidualCNN(nn.Module):
    """Conv-BN stem, a residual block, a depthwise conv with padding='same', a linear head."""

    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(8, 8, 3, padding="same", groups=8)
        self.pointwise = nn.Conv2d(8, 12, 1)
        self.head = nn.Linear(12, classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        x = torch.relu(self.pointwise(self.depthwise(x)))
        return self.head(x.mean(dim=(2, 3)))


class SharedMLP(nn.Module):
    """One Linear applied twice, then a head."""

    def __init__(self, classes=5):
        super().__init__()
        self.inp = nn.Linear(16, 24)
        self.shared = nn.Linear(24, 24)
        self.head = nn.Linear(24, classes)

    def forward(self, x):
        x = torch.relu(self.inp(x))
        x = torch.relu(self.shared(x))
        x = torch.relu(self.shared(x))
        return self.head(x)


class TokenTransformer(nn.Module):
    """Embedding + two nn.TransformerEncoderLayer (batch first), mean pooling, a linear head."""

    def __init__(self, classes=5, vocab=40, dim=16):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        layer = nn.TransformerEncoderLayer(dim, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


class Conv1dNet(nn.Module):
    """Conv1d with 'same' and reflect padding, BatchNorm1d, a stride, a linear head."""

    def __init__(self, classes=5):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 4, padding="same")
        self.bn = nn.BatchNorm1d(8)
        self.conv2 = nn.Conv1d(8, 8, 3, stride=2, padding=1, padding_mode="reflect")
        self.head = nn.Linear(8, classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv1(x)))
        return self.head(torch.relu(self.conv2(x)).mean(dim=2))


class TwoInputs(nn.Module):
    """A forward that takes two tensors (an image and a vector)."""

    def __init__(self, classes=5):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.side = nn.Linear(6, 8)
        self.head = nn.Linear(4 + 8, classes)

    def forward(self, image, vector):
        a = torch.relu(self.conv(image)).mean(dim=(2, 3))
        return self.head(torch.cat([a, torch.relu(self.side(vector))], dim=1))


class TiedLM(nn.Module):
    """An embedding whose table is also the output layer's weight (tied weights)."""

    def __init__(self, vocab=30, dim=12):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mix = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, vocab, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, tokens):
        return self.out(torch.tanh(self.mix(self.embed(tokens))).mean(dim=1))


class KeywordInputs(nn.Module):
    """A forward called with keyword inputs: float features and int64 token ids."""

    def __init__(self, classes=2, vocab=16):
        super().__init__()
        self.dense = nn.Linear(5, 16)
        self.embed = nn.Embedding(vocab, 16)
        self.head = nn.Linear(16, classes)

    def forward(self, features, tokens):
        return self.head(torch.relu(self.dense(features) + self.embed(tokens).mean(dim=1)))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, depthwise 3x3, 1x1 project, BatchNorm, ReLU6 and
    Hardswish, a residual around it, global pooling."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16),
                                    nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),
                                       nn.BatchNorm2d(16), nn.Hardswish())
        self.project = nn.Sequential(nn.Conv2d(16, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.project(self.depthwise(self.expand(x)))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ConvNeXtBlock(nn.Module):
    """ConvNeXt's block: depthwise 7x7, LayerNorm over channels through a permute, GELU, and a
    layer-scale parameter multiplied in the forward."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 2, stride=2)
        self.depthwise = nn.Conv2d(8, 8, 7, padding=3, groups=8)
        self.norm = nn.LayerNorm(8)
        self.up, self.down = nn.Linear(8, 32), nn.Linear(32, 8)
        self.gamma = nn.Parameter(torch.full((8,), 0.5))
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.stem(x)
        y = self.down(F.gelu(self.up(self.norm(self.depthwise(x).permute(0, 2, 3, 1)))))
        x = x + (self.gamma * y).permute(0, 3, 1, 2)
        return self.head(x.mean((2, 3)))


class UNetish(nn.Module):
    """An encoder, nn.Upsample back, a torch.cat skip connection, a 1x1 output convolution."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Conv2d(1, 8, 3, padding=1)
        self.enc2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.dec = nn.Conv2d(24, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 5, 1)

    def forward(self, x):
        a = F.relu(self.enc1(x))
        b = F.relu(self.enc2(a))
        d = F.relu(self.dec(torch.cat([self.up(b), a], dim=1)))
        return self.out(d).mean((2, 3))


def _images(n=64):
    return torch.rand(n, 1, 8, 8)


BUILDERS = {
    "residual_cnn": lambda: (ResidualCNN(), _images(), 5),
    "shared_mlp": lambda: (SharedMLP(), torch.randn(64, 16), 5),
    "token_transformer": lambda: (TokenTransformer(), torch.randint(0, 40, (64, 7)), 5),
    "conv1d": lambda: (Conv1dNet(), torch.randn(64, 3, 12), 5),
    "two_inputs": lambda: (TwoInputs(), (_images(), torch.randn(64, 6)), 5),
    "keyword_inputs": lambda: (KeywordInputs(), {"features": torch.randn(64, 5),
                                                 "tokens": torch.randint(0, 16, (64, 4))}, 2),
    "tied_lm": lambda: (TiedLM(), torch.randint(0, 30, (64, 5)), 30),
    "inverted_residual": lambda: (InvertedResidual(), _images(), 5),
    "convnext_block": lambda: (ConvNeXtBlock(), _images(), 5),
    "unet": lambda: (UNetish(), _images(), 5),
}


def build(name: str, seed: int = 0):
    """(model, inputs, classes) of a user model, seeded."""
    torch.manual_seed(seed)
    model, inputs, classes = BUILDERS[name]()
    return model, inputs, classes
