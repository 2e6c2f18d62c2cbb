"""Every pruning score on models whose forward returns a tuple or a dict (a loss_fn picks)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from netshrink import NetshrinkError, measure
from netshrink.prune import prune_, score_weights

METHODS = {
    "taylor": {"examples": 32},
    "snip": {"batch_size": 32},
    "grasp": {"samples_per_class": 4},
    "obd": {"hessian": "hutchinson", "samples": 2},
    "synflow": {"iterations": 2},
}


class TwoHeads(nn.Module):
    """Class logits and an auxiliary output, as a tuple or as a dict."""

    def __init__(self, as_dict: bool):
        super().__init__()
        self.as_dict = as_dict
        self.body = nn.Linear(6, 12)
        self.cls = nn.Linear(12, 3)
        self.aux = nn.Linear(12, 2)

    def forward(self, x):
        h = torch.relu(self.body(x))
        if self.as_dict:
            return {"logits": self.cls(h), "aux": self.aux(h)}
        return self.cls(h), self.aux(h)


def _logits(out):
    return out["logits"] if isinstance(out, dict) else out[0]


def _loss(out, y):
    aux = out["aux"] if isinstance(out, dict) else out[1]
    return F.cross_entropy(_logits(out), y) + aux.pow(2).mean()


@pytest.fixture(autouse=True)
def one_thread():
    with measure.threads(1):
        yield


@pytest.mark.parametrize("as_dict", [False, True])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_score_prunes_a_model_with_several_outputs(method, as_dict):
    torch.manual_seed(0)
    model = TwoHeads(as_dict)
    x, y = torch.randn(24, 6), torch.randint(0, 3, (24,))
    mask = prune_(model, method, (x, y), sparsity=0.5, scope="layerwise", loss_fn=_loss,
                  **METHODS[method])
    for name, keep in mask.items():
        assert int(keep.sum()) == keep.numel() - round(0.5 * keep.numel()), name
    assert torch.isfinite(_logits(model(x))).all()


@pytest.mark.parametrize("as_dict", [False, True])
def test_the_default_loss_on_several_outputs_is_refused_clearly(as_dict):
    model = TwoHeads(as_dict)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    kind = "dict" if as_dict else "tuple"
    with pytest.raises(NetshrinkError, match=f"returns a {kind}.*loss_fn"):
        prune_(model, "snip", (x, y), sparsity=0.5)


@pytest.mark.parametrize("method", ["taylor", "snip", "grasp", "obd"])
def test_a_head_the_loss_leaves_out_scores_zero_instead_of_failing(method):
    """The loss reads only the logits: the auxiliary head's gradient is zero, not an error."""
    torch.manual_seed(0)
    model = TwoHeads(as_dict=False)
    x, y = torch.randn(24, 6), torch.randint(0, 3, (24,))
    scores = score_weights(model, method, (x, y), loss_fn=lambda out, y: F.cross_entropy(
        out[0], y), **METHODS[method])
    assert float(scores["aux.weight"].abs().sum()) == 0
    assert float(scores["cls.weight"].abs().sum()) > 0
