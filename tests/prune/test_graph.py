"""netshrink.prune.graph: the groups of channels that must be removed together, traced with
torch.fx, and the operations that keep a group whole (with the reason)."""

import pytest
import torch
from torch import nn

from netshrink.errors import NetshrinkError
from netshrink.prune.graph import Member, channel_groups, forward_args, trace


def by_name(groups):
    return {g.name: g for g in groups}


def roles(group):
    return sorted((m.path, m.role, m.base, m.inner) for m in group.members)


def test_member_positions():
    assert Member("x", "in", base=2, inner=3).positions(2).tolist() == [[2, 3, 4], [5, 6, 7]]
    assert Member("x", "out").positions(3).tolist() == [[0], [1], [2]]


def test_a_linear_stack_couples_each_output_with_the_next_input_and_fixes_the_model_output():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.Dropout(),
                          nn.Linear(5, 2))
    groups = by_name(channel_groups(model, torch.randn(3, 4)))
    assert set(groups) == {"0", "2", "4"}
    assert (groups["0"].size, groups["0"].kind, groups["0"].fixed) == (6, "channels", None)
    assert roles(groups["0"]) == [("0", "out", 0, 1), ("2", "in", 0, 1)]
    assert roles(groups["2"]) == [("2", "out", 0, 1), ("4", "in", 0, 1)]
    assert groups["4"].fixed is not None  # the model's output size is its interface
    assert groups["0"].producers == [Member("0", "out")] and groups["0"].paths() == ["0", "2"]


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def test_batchnorm_and_a_flatten_into_a_linear():
    model = ConvNet().train()
    group = by_name(channel_groups(model, torch.randn(2, 1, 4, 4)))["conv"]
    assert group.fixed is None and group.size == 3
    assert roles(group) == [("bn", "norm", 0, 1), ("conv", "out", 0, 1), ("fc", "in", 0, 16)]
    assert model.training  # traced in eval mode, mode restored


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 4, 1), nn.Conv2d(2, 4, 1)
        self.c, self.d = nn.Conv2d(4, 3, 1), nn.Conv2d(4, 2, 1)
        self.head = nn.Conv2d(5, 1, 1)

    def forward(self, x):
        y = self.a(x) + self.b(x)  # a's and b's channels are the same channels
        return self.head(torch.cat([self.c(y), self.d(y)], dim=1))


def test_a_sum_merges_groups_and_a_concatenation_offsets_them():
    groups = by_name(channel_groups(Residual(), torch.randn(1, 2, 3, 3)))
    assert roles(groups["a"]) == [("a", "out", 0, 1), ("b", "out", 0, 1), ("c", "in", 0, 1),
                                  ("d", "in", 0, 1)]
    assert groups["a"].producers == [Member("a", "out"), Member("b", "out")]
    assert ("head", "in", 0, 1) in roles(groups["c"]) and ("head", "in", 3, 1) in roles(
        groups["d"])
    assert "b" not in groups  # one group, named after its first producer


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        return torch.nn.functional.linear(self.fc1(x), self.fc2.weight)


class ReadsWeight(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc2(self.fc1(x)) * self.fc1.weight.mean()


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)
        self.twin = nn.Linear(4, 4)
        self.twin.weight = self.fc2.weight

    def forward(self, x):
        return self.fc3(self.twin(self.fc2(self.fc1(x))))


def test_what_the_graph_cannot_follow_keeps_a_group_whole_with_the_reason():
    groups = by_name(channel_groups(Functional(), torch.randn(2, 3)))
    assert groups["fc1"].fixed == "linear (an operation the graph does not follow)"
    groups = by_name(channel_groups(ReadsWeight(), torch.randn(2, 3)))
    assert groups["fc1"].fixed == "fc1's weights are read directly"
    groups = by_name(channel_groups(Tied(), torch.randn(2, 3)))
    assert groups["fc1"].fixed == "fc2 shares its weights with another layer"
    assert by_name(channel_groups(Tied(), torch.randn(2, 3), skip_shared=False))["fc1"].fixed \
        is None


def test_a_grouped_convolution_reads_and_makes_channels_in_even_groups():
    model = nn.Sequential(nn.Conv2d(2, 4, 1), nn.Conv2d(4, 4, 3, groups=2), nn.Conv2d(4, 1, 1))
    groups = by_name(channel_groups(model, torch.randn(1, 2, 5, 5)))
    assert (groups["0"].fixed, groups["0"].blocks) == (None, 2)
    assert roles(groups["0"]) == [("0", "out", 0, 1), ("1", "in", 0, 1)]
    assert (groups["1"].fixed, groups["1"].blocks) == (None, 2)
    model = nn.Sequential(nn.Conv2d(2, 4, 1), nn.Conv2d(4, 8, 3, groups=4), nn.Conv2d(8, 1, 1))
    groups = by_name(channel_groups(model, torch.randn(1, 2, 5, 5)))
    assert groups["0"].fixed == ("grouped convolution 1: 4 channels in 4 groups cannot lose "
                                 "the same number from each")
    assert (groups["1"].fixed, groups["1"].blocks) == (None, 4)


class Branching(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return x


def test_an_untraceable_model_is_one_error_naming_the_way_out():
    with pytest.raises(NetshrinkError, match=r"torch\.fx cannot trace Branching: .*"
                                             r"StructuredConfig\(targets=\('heads', 'ffn'\)\)"):
        trace(Branching())
    with pytest.raises(NetshrinkError, match="cannot trace"):
        channel_groups(Branching(), torch.randn(1, 2))


def test_an_example_that_does_not_run_is_refused():
    with pytest.raises(NetshrinkError, match=r"the example does not run through Sequential"):
        channel_groups(nn.Sequential(nn.Linear(4, 2)), torch.randn(3, 5))


class Keywords(nn.Module):
    def forward(self, ids, mask=None, scale=2.0):
        return ids * scale


def test_forward_args_orders_keywords_and_traces_defaults_as_constants():
    x = torch.ones(2)
    assert forward_args(Keywords(), x) == ((x,), {})
    assert forward_args(Keywords(), [x, x]) == ((x, x), {})
    args, constants = forward_args(Keywords(), {"scale": 3.0, "ids": x})
    assert args == (x, None, 3.0) and constants == {"mask": None}
    with pytest.raises(NetshrinkError, match=r"the example's keywords extra are not arguments "
                                             r"of the forward \(it takes ids, mask, scale\)"):
        forward_args(Keywords(), {"ids": x, "extra": x})
    with pytest.raises(NetshrinkError, match="the example has no 'ids', an argument of the "
                                             "forward without a default"):
        forward_args(Keywords(), {"mask": x})
    with pytest.raises(NetshrinkError, match=r"the example must be a tensor, .* got int"):
        forward_args(Keywords(), 3)
