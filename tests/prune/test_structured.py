"""Structured pruning: removed channels really go, the rest computes what it did, and the
smaller model saves, loads, quantizes and exports."""

import copy

import pytest
import torch
from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.prune import StructuredCollapseError, StructuredConfig, current_mask
from netshrink.prune.structured import call
from tests import user_models


def _pruned(name, config=None, **kw):
    model, x, _ = user_models.build(name)
    model.eval()
    original = copy.deepcopy(model)
    result = netshrink.prune_(model, config or StructuredConfig(sparsity=0.5), example=x, **kw)
    return original, model.eval(), x, result


def _plan(model):
    return model.netshrink_transforms[-1]["layers"]


def test_kept_channels_of_the_first_layer_give_the_original_outputs():
    original, model, x, _ = _pruned("residual_cnn")
    kept = _plan(model)["stem.0"]["out"]
    assert len(kept) == 4 and model.stem[0].out_channels == 4
    with torch.no_grad():
        assert torch.allclose(model.stem[0](x), original.stem[0](x)[:, kept], atol=1e-6)
        assert torch.allclose(model.stem(x), original.stem(x)[:, kept], atol=1e-6)


def test_linear_neurons_removed_and_the_next_layer_reads_the_kept_ones():
    model = netshrink.models.create("lenet300", (1, 8, 8), 10).eval()
    original = copy.deepcopy(model)
    x = torch.rand(5, 1, 8, 8)
    netshrink.prune_(model, StructuredConfig(sparsity=0.5), example=x)
    kept = _plan(model)["1"]["out"]
    assert (model[1].out_features, model[3].in_features, model[3].out_features) == (150, 150, 50)
    with torch.no_grad():
        assert torch.allclose(model[1](x.flatten(1)), original[1](x.flatten(1))[:, kept])
    assert model(x).shape == (5, 10)


def test_residual_channels_are_removed_together():
    _, model, _, result = _pruned("residual_cnn")
    plan = _plan(model)
    kept = plan["stem.0"]["out"]
    for path, axis in [("stem.1", "norm"), ("conv1", "in"), ("conv2", "out"), ("bn2", "norm"),
                       ("depthwise", "depthwise"), ("pointwise", "in")]:
        assert plan[path][axis] == kept, path
    assert model.depthwise.groups == model.depthwise.out_channels == 4
    assert result.kept_whole == {"head": "the model's output"}
    assert result.parameters_after < result.parameters_before
    assert result.flops_after < result.flops_before


def test_concatenation_and_two_inputs_keep_offsets():
    original, model, x, _ = _pruned("two_inputs")
    plan = _plan(model)
    conv, side = plan["conv"]["out"], plan["side"]["out"]
    assert plan["head"]["in"] == conv + [4 + i for i in side]
    with torch.no_grad():
        assert torch.allclose(model.conv(x[0]), original.conv(x[0])[:, conv], atol=1e-6)
    assert call(model, x).shape == (64, 5)


def test_flatten_into_linear_removes_each_channel_s_positions():
    model = netshrink.models.create("lenet5", (1, 28, 28), 10).eval()
    netshrink.prune_(model, StructuredConfig(sparsity=0.5), example=torch.rand(2, 1, 28, 28))
    kept = _plan(model)["3"]["out"]  # the second conv's 8 kept channels of 16
    columns = _plan(model)["7"]["in"]
    assert len(columns) == 8 * 25 and columns[:25] == list(range(kept[0] * 25,
                                                                  kept[0] * 25 + 25))


def test_heads_and_feed_forward_neurons_of_a_transformer():
    _, model, x, result = _pruned("token_transformer")
    layer = model.encoder.layers[0]
    assert layer.self_attn.num_heads == 1 and layer.self_attn.head_dim == 8
    assert layer.linear1.out_features == 16 and layer.linear2.in_features == 16
    assert {c.kind for c in result.changed.values()} == {"heads", "ffn"}
    assert call(model, x).shape == (64, 5)


def test_saved_model_loads_alone_and_into_a_fresh_instance(tmp_path):
    for name in ("residual_cnn", "two_inputs", "token_transformer", "conv1d", "shared_mlp"):
        original, model, x, _ = _pruned(name)
        path = netshrink.save(model, tmp_path / f"{name}.safetensors")
        fresh = copy.deepcopy(original)
        for p in fresh.parameters():
            p.data.normal_()
        loaded = netshrink.load(path, model=fresh).eval()
        with torch.no_grad():
            assert torch.equal(call(loaded, x), call(model, x)), name
    zoo = netshrink.models.create("resnet", (1, 8, 8), 10, depth=8).eval()
    x = torch.rand(3, 1, 8, 8)
    netshrink.prune_(zoo, StructuredConfig(sparsity=0.5), example=x)
    loaded = netshrink.load(netshrink.save(zoo, tmp_path / "resnet.safetensors")).eval()
    assert torch.equal(loaded(x), zoo(x))


def test_a_file_for_another_model_is_refused(tmp_path):
    _, model, _, _ = _pruned("residual_cnn")
    path = netshrink.save(model, tmp_path / "m.safetensors")
    with pytest.raises(NetshrinkError, match="does not match"):
        netshrink.load(path, model=user_models.SharedMLP())


def test_masks_of_kept_entries_are_carried():
    model, x, _ = user_models.build("residual_cnn")
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    before = current_mask(model)
    netshrink.prune_(model, StructuredConfig(sparsity=0.5), example=x)
    kept_out, kept_in = _plan(model)["conv1"]["out"], _plan(model)["conv1"]["in"]
    after = current_mask(model)
    assert torch.equal(after["conv1.weight"], before["conv1.weight"][kept_out][:, kept_in])
    assert model.conv1.weight[~after["conv1.weight"]].abs().sum() == 0


def test_pruned_model_quantizes_and_round_trips(tmp_path):
    from netshrink.quant import Dynamic, Static

    for config in (Dynamic(), Static()):
        original, model, x, _ = _pruned("residual_cnn")
        netshrink.quantize_(model, config, data=x)
        model.eval()
        path = netshrink.save(model, tmp_path / "q.safetensors")
        loaded = netshrink.load(path, model=copy.deepcopy(original)).eval()
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x)), type(config).__name__


def test_pruned_model_exports_to_onnx_with_the_same_outputs(tmp_path):
    pytest.importorskip("onnxruntime")
    from netshrink.prune.speedup import export_float, onnx_session

    _, model, x, _ = _pruned("residual_cnn")
    session = onnx_session(export_float(model, x[:1], tmp_path / "m.onnx"), threads=1)
    out = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(out), model(x), atol=1e-5)


def test_global_scope_and_per_layer_rates():
    model, x, _ = user_models.build("residual_cnn")
    result = netshrink.prune_(model, StructuredConfig(scope="global", sparsity=0.5,
                                                      layers={"conv1": 0.25}), example=x)
    assert result.changed["conv1"].after == 6
    pooled = [c for n, c in result.changed.items() if n != "conv1"]
    assert sum(c.before - c.after for c in pooled) == sum(c.before for c in pooled) // 2


def test_taylor_needs_labels_and_uses_them():
    model, x, _ = user_models.build("residual_cnn")
    with pytest.raises(NetshrinkError, match="labels"):
        netshrink.prune_(model, StructuredConfig(criterion="taylor"), example=x)
    y = torch.randint(0, 5, (len(x),))
    result = netshrink.prune_(model, StructuredConfig(criterion="taylor"), (x, y))
    assert result.changed["stem.0"].after == 4


@pytest.mark.parametrize("values, field", [({"criterion": "l3"}, "criterion"),
                                           ({"sparsity": 1.0}, "sparsity"),
                                           ({"scope": "all"}, "scope"),
                                           ({"targets": ("neurons",)}, "targets"),
                                           ({"layers": {"conv1": 2}}, "layers"),
                                           ({"skip": "conv1"}, "skip"),
                                           ({"seed": -1}, "seed")])
def test_bad_configs_name_the_field(values, field):
    with pytest.raises(NetshrinkError, match=field):
        StructuredConfig(**values)


def test_config_round_trips_and_refuses_unknown_keys():
    config = StructuredConfig(criterion="random", targets=("heads",), skip=("a",))
    assert StructuredConfig.from_dict(config.to_dict()) == config
    with pytest.raises(NetshrinkError, match="ratio"):
        StructuredConfig.from_dict({"ratio": 0.5})


def test_unknown_layer_pattern_is_refused():
    model, x, _ = user_models.build("residual_cnn")
    with pytest.raises(NetshrinkError, match="conv9"):
        netshrink.prune_(model, StructuredConfig(skip=("conv9",)), example=x)


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return self.conv(x) if x.sum() > 0 else -self.conv(x)


def test_an_untraceable_model_is_one_clear_error_and_stays_unchanged():
    model = _Branchy()
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(NetshrinkError, match=r"torch\.fx cannot trace _Branchy"):
        netshrink.prune_(model, StructuredConfig(), example=torch.rand(1, 1, 5, 5))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_collapse_is_refused_with_the_layer_named():
    model = nn.Sequential(nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 64), nn.ReLU(),
                          nn.Linear(64, 3))
    with torch.no_grad():
        model[0].weight.mul_(1e-3)
    with pytest.raises(StructuredCollapseError, match="every unit of 0") as err:
        netshrink.prune_(model, StructuredConfig(scope="global", sparsity=0.9),
                         example=torch.rand(2, 4))
    assert err.value.layers == ("0",)


def test_quantized_models_are_refused():
    from netshrink.quant import Dynamic

    model, x, _ = user_models.build("residual_cnn")
    netshrink.quantize_(model, Dynamic())
    with pytest.raises(NetshrinkError, match="prune structure first"):
        netshrink.prune_(model, StructuredConfig(), example=x)


def test_weights_read_directly_stay_whole():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.scale = nn.Parameter(torch.ones(1, 4, 1, 1))
            self.head = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            return self.head(self.conv(x) * self.scale)

    model = Scaled()
    result = netshrink.prune_(model, StructuredConfig(), example=torch.rand(1, 1, 5, 5))
    assert "conv" in result.kept_whole and not result.changed
    assert model.conv.out_channels == 4


def test_grouped_convolutions_lose_the_same_number_of_channels_in_every_group():
    """A grouped (not depthwise) convolution is pruned group by group and stays grouped; the
    report no longer names it (tests/prune/test_grouped.py checks the outputs)."""
    class Grouped(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 8, 3, padding=1)
            self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
            self.mix = nn.Conv2d(8, 6, 1)
            self.head = nn.Linear(6, 3)

        def forward(self, x):
            x = torch.relu(self.grouped(torch.relu(self.stem(x))))
            return self.head(torch.relu(self.mix(x)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    model, x = Grouped().eval(), torch.rand(2, 1, 6, 6)
    before = model(x)
    result = netshrink.prune_(model, StructuredConfig(sparsity=0.5), example=x)
    assert result.kept_whole == {"head": "the model's output"}
    assert list(result.changed) == ["stem", "grouped", "mix"] and model.mix.out_channels == 3
    assert model.grouped.weight.shape == (4, 2, 3, 3) and model.grouped.groups == 2
    for kept in (_plan(model)["stem"]["out"], _plan(model)["grouped"]["out"]):
        assert sum(k < 4 for k in kept) == sum(k >= 4 for k in kept) == 2
    assert model(x).shape == before.shape


def test_random_criterion_is_seeded():
    plans = []
    for _ in range(2):
        model, x, _ = user_models.build("residual_cnn")
        netshrink.prune_(model, StructuredConfig(criterion="random", seed=3), example=x)
        plans.append(_plan(model))
    assert plans[0] == plans[1]


class _KeywordWithDefault(nn.Module):
    """A forward of keyword tensors, one optional: what a user's encoder often looks like."""

    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(5, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, features, scale=None):
        h = torch.relu(self.dense(features))
        return self.head(h if scale is None else h * scale)


def test_keyword_inputs_are_followed_through_the_graph(tmp_path):
    original, model, x, result = _pruned("keyword_inputs", StructuredConfig(sparsity=0.5),
                                         data=None)
    kept = _plan(model)["dense"]["out"]
    assert model.dense.out_features == 8 and model.embed.embedding_dim == 8
    assert _plan(model)["embed"]["out"] == kept  # coupled through the addition
    with torch.no_grad():
        assert torch.allclose(model.dense(x["features"]),
                              original.dense(x["features"])[:, kept], atol=1e-6)
    assert call(model, x).shape == (64, 2) and result.flops_after < result.flops_before
    netshrink.save(model, tmp_path / "small.safetensors")
    fresh = netshrink.load(tmp_path / "small.safetensors", model=user_models.KeywordInputs())
    with torch.no_grad():
        assert torch.allclose(call(fresh.eval(), x), call(model, x), atol=1e-6)


def test_a_keyword_left_out_takes_its_default_and_a_wrong_one_is_named():
    model = _KeywordWithDefault().eval()
    netshrink.prune_(model, StructuredConfig(sparsity=0.5),
                     example={"features": torch.randn(4, 5)})
    assert model.dense.out_features == 8
    with pytest.raises(NetshrinkError, match=r"colour .*takes features, scale"):
        netshrink.prune_(_KeywordWithDefault(), StructuredConfig(sparsity=0.5),
                         example={"features": torch.randn(4, 5), "colour": torch.ones(1)})


class LogitsAndWeights(nn.Module):
    """Returns (logits, attention weights), as nn.MultiheadAttention's users often do."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 16)
        self.attn = nn.MultiheadAttention(16, 4)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        h = self.proj(x).transpose(0, 1)
        out, weights = self.attn(h, h, h, need_weights=True)
        return self.head(out.mean(0)), weights


def test_taylor_on_a_tuple_output_needs_a_loss_and_works_with_one():
    torch.manual_seed(0)
    model, x, y = LogitsAndWeights(), torch.randn(16, 6, 8), torch.randint(0, 3, (16,))
    config = StructuredConfig(criterion="taylor")
    with pytest.raises(NetshrinkError, match=r"taylor.*returns a tuple.*loss_fn="):
        netshrink.prune_(copy.deepcopy(model), config, (x, y))
    result = netshrink.prune_(model, config, (x, y),
                              loss_fn=lambda out, t: nn.functional.cross_entropy(out[0], t))
    assert result.parameters_after < result.parameters_before


def test_taylor_on_a_model_that_cannot_take_the_data_is_one_clear_error():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    with pytest.raises(NetshrinkError, match=r"criterion 'taylor'.*float64: use model\.float"):
        netshrink.prune_(model, StructuredConfig(criterion="taylor"), (x, y),
                         example=x.double())
