"""Shared test set-up: where MNIST lives in development and CI, and small fixtures."""

import os
import sys
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "NETSHRINK_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["NETSHRINK_DATA"] = str(SHARED_DATA)

torch.set_num_threads(2)
sys.path.insert(0, str(Path(__file__).parent))  # `import user_models`: models users write


def mnist_available() -> bool:
    from netshrink.data import catalog
    from netshrink.errors import DataError

    try:
        catalog.locate("mnist")
    except DataError:
        return False
    return True


needs_mnist = pytest.mark.skipif(not mnist_available(), reason="MNIST files not found")


@pytest.fixture(scope="session")
def digits():
    from netshrink import data

    return data.load("digits")


# User-written models whose inputs are not one float tensor, and small seeded data for each:
# token ids (Embedding + TransformerEncoderLayer), two positional inputs, keyword inputs.

class TokenClassifier(torch.nn.Module):
    """int64 token ids (N, L) -> Embedding -> TransformerEncoderLayer -> mean -> Linear."""

    def __init__(self, vocab=16, width=16, classes=2):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.encoder = torch.nn.TransformerEncoderLayer(width, 2, 32, dropout=0.0,
                                                        batch_first=True)
        self.head = torch.nn.Linear(width, classes)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(1))


class PairClassifier(torch.nn.Module):
    """forward(a, b): two float tensors of different widths."""

    def __init__(self, classes=3):
        super().__init__()
        self.left, self.right = torch.nn.Linear(6, 24), torch.nn.Linear(4, 24)
        self.head = torch.nn.Linear(24, classes)

    def forward(self, a, b):
        return self.head(torch.relu(self.left(a) + self.right(b)))


class KeywordClassifier(torch.nn.Module):
    """forward(features=..., tokens=...): float features and int64 token ids, by keyword."""

    def __init__(self, vocab=16, classes=2):
        super().__init__()
        self.dense = torch.nn.Linear(5, 16)
        self.embed = torch.nn.Embedding(vocab, 16)
        self.head = torch.nn.Linear(16, classes)

    def forward(self, features, tokens):
        return self.head(torch.relu(self.dense(features) + self.embed(tokens).mean(1)))


def _any_inputs_data(n=240):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 16, (n, 7), generator=g)
    a, b = torch.randn(n, 6, generator=g), torch.randn(n, 4, generator=g)
    features, words = torch.randn(n, 5, generator=g), torch.randint(0, 16, (n, 4), generator=g)
    return {
        "tokens": (TokenClassifier, tokens, ((tokens >= 8).sum(1) >= 4).long()),
        "pair": (PairClassifier, (a, b), (a[:, 0] + b[:, 0] > 0).long()
                 + (a[:, 1] > 0.5).long()),
        "keywords": (KeywordClassifier, {"features": features, "tokens": words},
                     (features[:, 0] + (words >= 8).float().mean(1) > 0.5).long()),
    }


@pytest.fixture(scope="session")
def any_inputs():
    """{case: (model class, Splits)} for "tokens", "pair" and "keywords" (build the model
    after torch.manual_seed for a seeded one; do not modify the Splits)."""
    from netshrink import data

    return {case: (cls, data.from_tensors((x, y), val_size=40))
            for case, (cls, x, y) in _any_inputs_data().items()}
