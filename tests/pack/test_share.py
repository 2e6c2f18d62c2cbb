"""Weight sharing: k-means, the parametrization, the verb, and what must survive it."""

import copy

import pytest
import torch
from torch import nn

import netshrink
from netshrink.data import from_tensors
from netshrink.errors import NetshrinkError
from netshrink.pack import ShareConfig, kmeans_1d, share_, shared
from netshrink.train import TrainConfig, fit
from tests.user_models import TiedLM, TokenTransformer, build, call


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4))


def test_kmeans_1d_converges_to_lloyd_fixed_point_with_linear_init():
    torch.manual_seed(0)
    x = torch.cat([torch.randn(300) - 4, torch.randn(300) + 4])
    centroids, labels = kmeans_1d(x, 4)
    assert torch.all(centroids[1:] > centroids[:-1])
    for k in range(len(centroids)):  # each centroid is the mean of its members
        assert torch.isclose(centroids[k], x[labels == k].double().mean())
    nearest = (x[:, None].double() - centroids[None]).abs().argmin(1)
    assert torch.equal(nearest, labels)  # and each value sits with its nearest centroid


def test_kmeans_1d_few_distinct_values_and_inits():
    x = torch.tensor([0.5, -0.5, 0.5, 2.0])
    centroids, labels = kmeans_1d(x, 8)
    assert centroids.tolist() == [-0.5, 0.5, 2.0]
    assert torch.equal(centroids[labels].float(), x)
    for init in ("linear", "density", "random"):
        c, lab = kmeans_1d(torch.randn(500), 8, init=init)
        assert 1 <= len(c) <= 8 and lab.max() == len(c) - 1


def test_share_keeps_pruned_zeros_and_at_most_2_bits_values():
    model = _mlp()
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    keep = {n: m.clone() for n, m in netshrink.prune.current_mask(model).items()}
    report = share_(model, bits=2)
    for layer in (model[0], model[2]):
        values = layer.weight.detach().unique()
        assert len(values[values != 0]) <= 4
    assert torch.equal(model[0].weight != 0, keep["0.weight"])
    assert [r.name for r in report.layers] == ["0.weight", "2.weight"]
    assert all(r.clusters <= 4 for r in report.layers)


def test_centroid_gradient_is_the_sum_of_its_members_gradients():
    model = _mlp()
    share_(model, bits=3)
    x = torch.randn(5, 12)
    plain = copy.deepcopy(model[0].weight.detach()).requires_grad_(True)
    torch.nn.functional.linear(x, plain, model[0].bias).sum().backward()
    model[0](x).sum().backward()
    index = model[0].parametrizations.weight[0].index.long()
    codebook_grad = model[0].parametrizations.weight.original.grad
    for k in range(codebook_grad.numel()):
        assert torch.isclose(codebook_grad[k], plain.grad[index == k + 1].sum(), atol=1e-5)


def test_fine_tuning_moves_centroids_not_the_zeros():
    torch.manual_seed(0)
    x = torch.randn(128, 12)
    splits = from_tensors((x, torch.randint(0, 4, (128,))), (x[:32], torch.zeros(32).long()))
    model = _mlp()
    netshrink.prune_(model, "magnitude", sparsity=0.6)
    share_(model, bits=3)
    before = model[0].weight.detach().clone()
    fit(model, splits, TrainConfig(epochs=2, batch_size=32, device="cpu"), progress=False)
    after = model[0].weight.detach()
    assert not torch.equal(before, after)
    assert torch.equal(after == 0, before == 0)
    assert len(after.unique()) <= 9


def test_deep_copy_and_state_dict_round_trip():
    model = _mlp()
    share_(model, bits=4)
    twin = copy.deepcopy(model)
    x = torch.randn(3, 12)
    assert torch.equal(twin(x), model(x))
    with torch.no_grad():
        twin[0].parametrizations.weight.original.add_(1.0)
    assert not torch.equal(twin(x), model(x))  # the copy owns its codebook
    fresh = copy.deepcopy(model)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh(x), model(x))


def test_shared_layers_survive_save_and_load_into_a_fresh_user_model(tmp_path):
    model, inputs, _ = build("residual_cnn")
    model.eval()
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    share_(model, bits=3, layers={"head": 5})
    path = netshrink.save(model, tmp_path / "m.safetensors")
    fresh, _, _ = build("residual_cnn", seed=1)
    loaded = netshrink.load(path, model=fresh.eval())
    assert torch.equal(call(loaded, inputs), call(model, inputs))
    assert len(list(shared(loaded))) == len(list(shared(model)))


def test_attention_embedding_and_tied_weights_share():
    model = TokenTransformer().eval()
    tokens = torch.randint(0, 40, (2, 7))
    share_(model, bits=4)
    names = [n for n, *_ in shared(model)]
    assert "embed.weight" in names and "encoder.layers.0.self_attn.in_proj_weight" in names
    model(tokens)  # MultiheadAttention reads in_proj_weight directly
    tied = TiedLM()
    share_(tied, bits=3)
    assert tied.out.weight.data_ptr() != 0 and torch.equal(tied.out.weight, tied.embed.weight)
    assert len(list(shared(tied))) == 2  # embed (tied with out) and mix


def test_refusals_name_the_culprit():
    with pytest.raises(NetshrinkError, match="bits=9"):
        ShareConfig(bits=9)
    with pytest.raises(NetshrinkError, match="init"):
        ShareConfig(init="kmeans++")
    with pytest.raises(NetshrinkError, match="matches no layer"):
        share_(_mlp(), skip=("fc9",))
    with pytest.raises(NetshrinkError, match="unknown share option"):
        share_(_mlp(), width=3)
    model = _mlp()
    share_(model, bits=3)
    with pytest.raises(NetshrinkError, match="prune before sharing"):
        netshrink.prune_(model, "magnitude", sparsity=0.5)
    with pytest.raises(NetshrinkError, match="quantize before sharing"):
        netshrink.quantize_(model, netshrink.quant.QAT())
    with pytest.raises(NetshrinkError, match="shared already"):
        share_(model, bits=3)
    with pytest.raises(NetshrinkError, match="codebook"):
        model[0].weight = torch.zeros(16, 12)


def test_config_round_trips():
    config = ShareConfig(bits=4, layers={"conv*": 8}, skip=("head",), init="density")
    assert ShareConfig.from_dict(config.to_dict()) == config


def test_dynamic_int8_of_a_shared_model_runs():
    model = _mlp()
    share_(model, bits=3)
    x = torch.randn(4, 12)
    reference = model(x)
    netshrink.quantize_(model, netshrink.quant.Dynamic())
    assert torch.allclose(model(x), reference, atol=0.05)
