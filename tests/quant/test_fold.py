"""netshrink.quant.fold: BatchNorm folding is exact, finds only foldable pairs, keeps masks,
is recorded, and its structure is replayed."""

import pytest
import torch
from torch import nn

import netshrink
from netshrink import models
from netshrink.core.transforms import recorded
from netshrink.quant.fold import find_pairs, fold_, fold_batchnorm, replay_fold, traceable


def _randomize_bn(model):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


def test_batchnorm_folding_is_exact_in_eval_mode():
    torch.manual_seed(0)
    model = models.create("resnet", (1, 8, 8), 10, depth=8, width=4)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    x = torch.randn(4, 1, 8, 8)
    reference = model(x)
    pairs = fold_batchnorm(model)
    assert len(pairs) == 9  # stem, 2 per block x 3 blocks, 2 projection shortcuts
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert torch.allclose(model(x), reference, atol=1e-5)


class Branchy(nn.Module):
    """conv1's output feeds the BN and the sum: folding it would change the sum."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2)
        self.conv2, self.bn2 = nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2, track_running_stats=False)

    def forward(self, x):
        y = self.conv1(x)
        return self.bn1(y) + y + self.bn2(self.conv2(x))


class Looping(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent: torch.fx cannot trace it
            return self.bn(self.conv(x))
        return x


def test_find_pairs_only_where_folding_is_exact():
    torch.manual_seed(0)
    assert find_pairs(Branchy()) == []
    assert not traceable(Looping()) and find_pairs(Looping()) == []
    assert traceable(nn.Sequential(nn.Linear(2, 2)))
    assert find_pairs(nn.Sequential(nn.Linear(3, 2), nn.ReLU())) == []  # no BN at all
    mixed = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.BatchNorm1d(4),
                          nn.Unflatten(1, (4, 1)), nn.Conv1d(4, 2, 1), nn.BatchNorm1d(2))
    assert find_pairs(mixed) == [("0", "1"), ("5", "6")]  # the BN after a ReLU stays


def test_linear_batchnorm1d_folds_exactly_and_fold_records_it():
    torch.manual_seed(0)
    model = _randomize_bn(nn.Sequential(nn.Linear(5, 4, bias=False), nn.BatchNorm1d(4)))
    x = torch.randn(6, 5)
    reference = model(x)
    model.train()
    assert fold_(model) == [("0", "1")]
    assert not model.training and isinstance(model[1], nn.Identity)
    assert torch.allclose(model(x), reference, atol=1e-5)
    assert recorded(model) == [{"kind": "fold", "pairs": [["0", "1"]]}]
    plain = nn.Sequential(nn.Linear(2, 2))
    assert fold_(plain) == [] and recorded(plain) == []  # nothing folded, nothing recorded


def test_a_masked_layer_keeps_its_zeros_through_folding():
    torch.manual_seed(0)
    model = _randomize_bn(nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)))
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    keep = netshrink.prune.current_mask(model)["0.weight"]
    x = torch.randn(2, 2, 5, 5)
    reference = model(x)
    fold_batchnorm(model)
    assert torch.equal(model[0].weight != 0, keep)
    assert torch.allclose(model(x), reference, atol=1e-5)


def test_replay_fold_gives_a_fresh_model_the_folded_structure():
    torch.manual_seed(0)
    folded = _randomize_bn(nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2)))
    pairs = fold_(folded)
    fresh = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2))
    replay_fold(fresh, [list(p) for p in pairs])
    assert isinstance(fresh[1], nn.Identity) and fresh[0].bias.shape == (2,)
    assert not fresh[0].bias.any()
    fresh.load_state_dict(folded.state_dict())
    x = torch.randn(2, 1, 5, 5)
    assert torch.equal(fresh(x), folded(x))


class ConvReadTwice(nn.Module):
    """conv -> BN, and the conv's weight (or bias) also read directly by the forward."""

    def __init__(self, attr):
        super().__init__()
        self.conv, self.bn, self.attr = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), attr

    def forward(self, x):
        extra = nn.functional.conv2d(x, self.conv.weight, padding=1) if self.attr == "weight" \
            else self.conv.bias.view(1, -1, 1, 1)
        return self.bn(self.conv(x)) + extra


@pytest.mark.parametrize("attr", ["weight", "bias"])
def test_a_layer_whose_weights_are_read_directly_is_not_folded(attr):
    torch.manual_seed(0)
    model = ConvReadTwice(attr)
    model(torch.randn(16, 3, 8, 8))  # BatchNorm statistics that folding would move
    model.eval()
    x = torch.randn(2, 3, 8, 8)
    reference = model(x)
    assert find_pairs(model) == []
    fold_(model)
    assert torch.equal(model(x), reference)
    netshrink.prune_(model, "magnitude", sparsity=0.5)  # masked: read through its parametrization
    assert find_pairs(model) == []
