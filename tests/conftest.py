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



def _any_inputs_data(n=240):
    """{case: (model class, inputs, labels)}: labels a model can learn from its inputs."""
    from user_models import KeywordInputs, TokenTransformer, TwoInputs

    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 16, (n, 7), generator=g)
    image, vector = torch.rand(n, 1, 8, 8, generator=g), torch.randn(n, 6, generator=g)
    brightness = 10 * (image.mean(dim=(1, 2, 3)) - 0.5)
    features, words = torch.randn(n, 5, generator=g), torch.randint(0, 16, (n, 4), generator=g)
    return {
        "tokens": (lambda: TokenTransformer(classes=2, vocab=16), tokens,
                   ((tokens >= 8).sum(1) >= 4).long()),
        "pair": (lambda: TwoInputs(classes=3), (image, vector),
                 (vector[:, 0] + brightness > 0).long() + (vector[:, 1] > 0.5).long()),
        "keywords": (KeywordInputs, {"features": features, "tokens": words},
                     (features[:, 0] + (words >= 8).float().mean(1) > 0.5).long()),
    }


@pytest.fixture(scope="session")
def any_inputs():
    """{case: (model builder, Splits)} for models of token ids ("tokens"), two positional
    inputs ("pair") and keyword inputs ("keywords"); call the builder after
    torch.manual_seed for a seeded model, and do not modify the Splits."""
    from netshrink import data

    return {case: (build, data.from_tensors((x, y), val_size=40))
            for case, (build, x, y) in _any_inputs_data().items()}
