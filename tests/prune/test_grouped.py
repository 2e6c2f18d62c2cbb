"""Structured pruning of grouped convolutions (1 < groups < in_channels): the same number of
channels leaves every group, on both sides of the convolution, and the pruned model computes
what a model built by hand from the kept channels computes."""

import copy

import pytest
import torch
from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.prune import StructuredConfig, criteria, current_mask
from netshrink.prune.graph import channel_groups
from netshrink.prune.rewrite import replay, shrink_layer


class GroupedCNN(nn.Module):
    """conv(3->a) -> BN -> ReLU -> grouped conv(a->b, groups=4) -> BN -> ReLU -> 1x1 -> pool
    -> Linear; the widths are arguments so a reference can be built at the pruned sizes."""

    def __init__(self, a=16, b=32, c=12, classes=5):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, a, 3, padding=1), nn.BatchNorm2d(a)
        self.grouped, self.bn2 = nn.Conv2d(a, b, 3, padding=1, groups=4), nn.BatchNorm2d(b)
        self.point = nn.Conv2d(b, c, 1)
        self.head = nn.Linear(c, classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.grouped(x)))
        return self.head(torch.relu(self.point(x)).mean(dim=(2, 3)))


class ResNeXtBlock(nn.Module):
    """A stem, one ResNeXt block (1x1 reduce, 3x3 grouped, 1x1 expand, skip add), then a
    grouped 3x3 on the residual channels (so the skip is constrained by groups too)."""

    def __init__(self, wide=16, narrow=8, classes=5):
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(3, wide, 3, padding=1), nn.BatchNorm2d(wide)
        self.reduce, self.bn1 = nn.Conv2d(wide, narrow, 1, bias=False), nn.BatchNorm2d(narrow)
        self.grouped = nn.Conv2d(narrow, narrow, 3, padding=1, groups=4, bias=False)
        self.bn2 = nn.BatchNorm2d(narrow)
        self.expand, self.bn3 = nn.Conv2d(narrow, wide, 1, bias=False), nn.BatchNorm2d(wide)
        self.mix = nn.Conv2d(wide, wide, 3, padding=1, groups=2)
        self.head = nn.Linear(wide, classes)

    def forward(self, x):
        x = torch.relu(self.bn0(self.stem(x)))
        y = torch.relu(self.bn1(self.reduce(x)))
        y = torch.relu(self.bn2(self.grouped(y)))
        x = torch.relu(x + self.bn3(self.expand(y)))
        return self.head(torch.relu(self.mix(x)).mean(dim=(2, 3)))


def _seeded(cls, **kw):
    torch.manual_seed(0)
    model = cls(**kw)
    for m in model.modules():  # statistics that are not the identity, so BN is checked
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def _prune(cls, config=None, **kw):
    model = _seeded(cls, **kw)
    original = copy.deepcopy(model)
    x = torch.rand(4, 3, 8, 8)
    result = netshrink.prune_(model, config or StructuredConfig(sparsity=0.5), example=x)
    return original, model.eval(), x, result


def _plan(model):
    return model.netshrink_transforms[-1]["layers"]


def _grouped_weight(weight, out_keep, in_keep, groups, in_channels):
    """A grouped convolution's weight at the kept rows, each row taking the kept input
    channels of its own group (written out channel by channel)."""
    rows_per_group, width = weight.shape[0] // groups, in_channels // groups
    rows = []
    for o in out_keep:
        g = o // rows_per_group
        columns = [c - g * width for c in in_keep if c // width == g]
        rows.append(weight[o, columns])
    return torch.stack(rows)


def _copy_bn(new, old, keep):
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(new, name).data.copy_(getattr(old, name).data[keep])


def _assert_grouped_divisible(model):
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1:
            assert m.in_channels % m.groups == 0 and m.out_channels % m.groups == 0, name
            assert m.weight.shape[1] == m.in_channels // m.groups, name


@pytest.mark.parametrize("config", [StructuredConfig(sparsity=0.5),
                                    StructuredConfig(criterion="l2", sparsity=0.4),
                                    StructuredConfig(criterion="bn_scale", scope="global"),
                                    StructuredConfig(criterion="random", sparsity=0.6, seed=1)])
def test_grouped_cnn_equals_a_reference_built_from_the_kept_channels(config):
    original, model, x, result = _prune(GroupedCNN, config)
    plan = _plan(model)
    k1, k2 = plan["conv1"]["out"], plan["grouped"]["out"]
    k3 = plan["point"].get("out", list(range(12)))  # bn_scale cannot rank it (no BN)
    assert plan["grouped"]["in"] == k1 and plan["point"]["in"] == k2
    assert len(k1) < 16 and len(k2) < 32 and model.grouped.groups == 4
    for kept, width in ((k1, 4), (k2, 8)):  # as many kept in every group
        counts = torch.bincount(torch.tensor(kept) // width, minlength=4)
        assert counts.min() == counts.max() > 0
    _assert_grouped_divisible(model)
    assert "grouped" not in result.kept_whole and "conv1" not in result.kept_whole
    assert result.parameters_after < result.parameters_before

    ref = GroupedCNN(len(k1), len(k2), len(k3)).eval()
    with torch.no_grad():
        ref.conv1.weight.copy_(original.conv1.weight[k1])
        ref.conv1.bias.copy_(original.conv1.bias[k1])
        _copy_bn(ref.bn1, original.bn1, k1)
        ref.grouped.weight.copy_(_grouped_weight(original.grouped.weight, k2, k1, 4, 16))
        ref.grouped.bias.copy_(original.grouped.bias[k2])
        _copy_bn(ref.bn2, original.bn2, k2)
        ref.point.weight.copy_(original.point.weight[k3][:, k2])
        ref.point.bias.copy_(original.point.bias[k3])
        ref.head.weight.copy_(original.head.weight[:, k3])
        ref.head.bias.copy_(original.head.bias)
        out = model(x)
        assert out.shape == original(x).shape == (4, 5)
        assert torch.allclose(out, ref(x), atol=1e-5)
        # the grouped layer alone: the original's kept outputs with the removed inputs zeroed
        h = torch.relu(original.bn1(original.conv1(x)))
        gone = torch.ones(16, dtype=torch.bool)
        gone[k1] = False
        zeroed = h.masked_fill(gone[None, :, None, None], 0.0)
        assert torch.allclose(model.grouped(h[:, k1]), original.grouped(zeroed)[:, k2],
                              atol=1e-5)


def test_resnext_block_couples_the_skip_and_prunes_every_group_evenly():
    original, model, x, result = _prune(ResNeXtBlock)
    plan = _plan(model)
    skip = plan["stem"]["out"]
    for path, axis in [("expand", "out"), ("bn3", "norm"), ("reduce", "in"), ("mix", "in")]:
        assert plan[path][axis] == skip, path
    assert plan["grouped"]["in"] == plan["reduce"]["out"]
    assert (model.grouped.in_channels, model.grouped.out_channels) == (4, 4)  # 1 per group
    assert (model.mix.in_channels, model.mix.out_channels, model.mix.groups) == (8, 8, 2)
    _assert_grouped_divisible(model)
    assert result.kept_whole == {"head": "the model's output"}
    assert result.parameters_after < result.parameters_before
    with torch.no_grad():
        assert model(x).shape == original(x).shape

    kr, kg, km = plan["reduce"]["out"], plan["grouped"]["out"], plan["mix"]["out"]
    ref = ResNeXtBlock(len(skip), len(kr)).eval()
    ref.mix = nn.Conv2d(len(skip), len(km), 3, padding=1, groups=2)
    ref.head = nn.Linear(len(km), 5)
    with torch.no_grad():
        ref.stem.weight.copy_(original.stem.weight[skip])
        ref.stem.bias.copy_(original.stem.bias[skip])
        _copy_bn(ref.bn0, original.bn0, skip)
        ref.reduce.weight.copy_(original.reduce.weight[kr][:, skip])
        _copy_bn(ref.bn1, original.bn1, kr)
        ref.grouped.weight.copy_(_grouped_weight(original.grouped.weight, kg, kr, 4, 8))
        _copy_bn(ref.bn2, original.bn2, kg)
        ref.expand.weight.copy_(original.expand.weight[skip][:, kg])
        _copy_bn(ref.bn3, original.bn3, skip)
        ref.mix.weight.copy_(_grouped_weight(original.mix.weight, km, skip, 2, 16))
        ref.mix.bias.copy_(original.mix.bias[km])
        ref.head.weight.copy_(original.head.weight[:, km])
        ref.head.bias.copy_(original.head.bias)
        assert torch.allclose(model(x), ref(x), atol=1e-5)


@pytest.mark.parametrize("cls", [GroupedCNN, ResNeXtBlock])
def test_pruned_grouped_models_save_and_load_into_a_fresh_instance(cls, tmp_path):
    _, model, x, _ = _prune(cls)
    path = netshrink.save(model, tmp_path / "m.safetensors")
    fresh = cls()
    for p in fresh.parameters():
        p.data.normal_()
    loaded = netshrink.load(path, model=fresh).eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_masked_grouped_weights_carry_their_masks_per_group():
    model = _seeded(GroupedCNN)
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    before = current_mask(model)["grouped.weight"]
    netshrink.prune_(model, StructuredConfig(sparsity=0.5), example=torch.rand(2, 3, 8, 8))
    plan = _plan(model)
    after = current_mask(model)["grouped.weight"]
    expected = _grouped_weight(before, plan["grouped"]["out"], plan["grouped"]["in"], 4, 16)
    assert torch.equal(after, expected)


class _Impossible(nn.Module):
    """Channels that cannot lose the same number from every group: a stem of 4 channels read
    by a convolution in 4 groups (one channel each), and 6 channels read in 2 and in 3 groups
    (equal per group in both means one channel per sixth)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.wide = nn.Conv2d(4, 8, 3, padding=1, groups=4)
        self.six = nn.Conv2d(8, 6, 1)
        self.halves = nn.Conv2d(6, 6, 1, groups=2)
        self.thirds = nn.Conv2d(6, 6, 1, groups=3)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = torch.relu(self.six(torch.relu(self.wide(torch.relu(self.stem(x))))))
        return self.head((self.halves(x) + self.thirds(x)).mean(dim=(2, 3)))


def test_channels_that_cannot_lose_the_same_number_per_group_are_kept_whole_with_a_reason():
    torch.manual_seed(0)
    model, x = _Impossible().eval(), torch.rand(2, 1, 6, 6)
    before = model(x)
    result = netshrink.prune_(model, StructuredConfig(sparsity=0.5), example=x)
    assert "grouped convolution wide" in result.kept_whole["stem"]
    assert "4 groups" in result.kept_whole["stem"]
    assert "6 groups" in result.kept_whole["halves"]  # lcm of 2 and 3
    assert "6 groups" in result.kept_whole["six"]
    assert set(result.changed) == {"wide"}  # 8 outputs in 4 groups: 1 of 2 per group goes
    assert (model.wide.in_channels, model.wide.out_channels, model.wide.groups) == (4, 4, 4)
    assert model.stem.out_channels == 4 and model.halves.out_channels == 6
    assert model(x).shape == before.shape


def test_a_grouped_convolution_reading_a_concatenation_is_kept_whole_with_a_reason():
    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 4, 1), nn.Conv2d(1, 4, 1)
            self.grouped = nn.Conv2d(8, 8, 1, groups=2)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            y = self.grouped(torch.cat([self.a(x), self.b(x)], dim=1))
            return self.head(y.mean(dim=(2, 3)))

    groups = {g.name: g for g in channel_groups(Cat(), torch.rand(1, 1, 4, 4))}
    assert "grouped convolution grouped" in groups["a"].fixed
    assert "concatenation" in groups["a"].fixed and groups["b"].fixed == groups["a"].fixed
    assert groups["grouped"].fixed is None and groups["grouped"].blocks == 2


def test_graph_records_the_groups_a_slot_is_read_in():
    groups = {g.name: g for g in channel_groups(GroupedCNN(), torch.rand(1, 3, 8, 8))}
    assert (groups["conv1"].blocks, groups["conv1"].fixed) == (4, None)
    assert (groups["grouped"].blocks, groups["grouped"].fixed) == (4, None)
    assert groups["point"].blocks == 1
    assert ("grouped", "in", 0, 1) in {(m.path, m.role, m.base, m.inner)
                                       for m in groups["conv1"].members}


def test_group_l1_counts_each_input_channel_s_column_of_its_group_s_filters():
    model = _seeded(GroupedCNN)
    group = next(g for g in channel_groups(model, torch.rand(1, 3, 8, 8)) if g.name == "conv1")
    found = criteria.scores(model, [group], "group_l1", torch.Generator())["conv1"]
    w = model.grouped.weight.detach()  # [32, 4, 3, 3]: channel c is column c % 4 of rows
    expected = torch.stack([model.conv1.weight[c].abs().sum() + model.bn1.weight[c].abs()
                            + w[(c // 4) * 8:(c // 4) * 8 + 8, c % 4].abs().sum()
                            for c in range(16)]).detach()
    assert torch.allclose(found, expected, atol=1e-5)


def test_taylor_ranks_grouped_channels_and_prunes_them_evenly():
    model = _seeded(GroupedCNN)
    x, y = torch.rand(16, 3, 8, 8), torch.randint(0, 5, (16,))
    result = netshrink.prune_(model, StructuredConfig(criterion="taylor"), (x, y))
    assert result.changed["grouped"].after == 16 and model.grouped.groups == 4
    _assert_grouped_divisible(model)
    assert model(x).shape == (16, 5)


def test_shrink_layer_slices_each_group_s_inputs_and_refuses_uneven_groups():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 6, 3, groups=2))
    old = model[0]
    shrink_layer(model, "0", {"out": torch.tensor([0, 2, 4, 5]),
                              "in": torch.tensor([1, 3, 4, 6])})
    new = model[0]
    assert (new.in_channels, new.out_channels, new.groups) == (4, 4, 2)
    assert torch.equal(new.weight,
                       _grouped_weight(old.weight, [0, 2, 4, 5], [1, 3, 4, 6], 2, 8))
    x = torch.rand(1, 8, 5, 5)
    zeroed = x * torch.tensor([0, 1, 0, 1, 1, 0, 1, 0.0])[None, :, None, None]
    assert torch.allclose(new(x[:, [1, 3, 4, 6]]), old(zeroed)[:, [0, 2, 4, 5]], atol=1e-6)
    for spec, words in [({"in": torch.tensor([0, 1, 4])}, "input channels"),
                        ({"out": torch.tensor([0, 1, 3])}, "output channels"),
                        ({"in": torch.tensor([4, 5, 0, 1])}, "input channels")]:
        with pytest.raises(NetshrinkError, match=f"same number of {words}"):
            shrink_layer(nn.Sequential(nn.Conv2d(8, 6, 3, groups=2)), "0", spec)


def test_replay_of_a_file_with_uneven_groups_is_refused():
    entry = {"kind": "structured", "layers": {"grouped": {"in": [0, 1, 2, 4, 8, 12]}}}
    with pytest.raises(NetshrinkError, match=r"grouped.*same number of input channels"):
        replay(GroupedCNN(), entry)
