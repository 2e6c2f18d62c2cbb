"""netshrink.prune.functional.forward: the model run on substitute weights, any inputs."""

import torch
from torch import nn

from netshrink.prune.functional import forward


class Keywords(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 2), nn.Linear(4, 2)

    def forward(self, x, y):
        return self.a(x) + self.b(y)


def test_substitute_weights_are_used_and_the_model_is_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    before = {n: p.clone() for n, p in model.named_parameters()}
    x = torch.randn(5, 4)
    zero = torch.zeros_like(model[2].weight)
    out = forward(model, {"2.weight": zero}, x)
    assert torch.equal(out, model[2].bias.expand(5, 2))  # only 2.weight replaced
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert torch.allclose(forward(model, {}, x), model(x))


def test_gradients_flow_to_the_substitutes_not_the_model():
    torch.manual_seed(0)
    model = nn.Linear(4, 1, bias=False)
    w = model.weight.detach().clone().requires_grad_(True)
    x = torch.randn(6, 4)
    forward(model, {"weight": w}, x).sum().backward()
    assert torch.allclose(w.grad, x.sum(0, keepdim=True))
    assert model.weight.grad is None


def test_tuples_are_positional_and_dicts_keyword_arguments():
    torch.manual_seed(0)
    model = Keywords()
    x, y = torch.randn(2, 3), torch.randn(2, 4)
    expected = model(x, y)
    assert torch.allclose(forward(model, {}, (x, y)), expected)
    assert torch.allclose(forward(model, {}, {"y": y, "x": x}), expected)
    doubled = {"a.weight": 2 * model.a.weight}
    assert torch.allclose(forward(model, doubled, (x, y)), expected + x @ model.a.weight.T)
