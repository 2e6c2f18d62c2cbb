"""Each score is what its paper defines, checked against an independent computation."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from netshrink.prune import OBD, SNIP, GraSP, SynFlow, Taylor, prunable
from netshrink.prune.hessian import exact_diagonal, hutchinson_diagonal
from netshrink.prune.scores import Context


def tiny_net(bias=True):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5, bias=bias), nn.Tanh(), nn.Linear(5, 3, bias=bias)
                         ).double()


def tiny_data(n=40):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,),
                                                                               generator=g)


def context(model, x=None, y=None, input_shape=None):
    weights = {n: p.detach() for n, p in prunable(model).items()}
    return Context(model, weights, x, y, F.cross_entropy, torch.Generator().manual_seed(0),
                   input_shape)


def loss_at(model, name, index, value, x, y):
    param = dict(model.named_parameters())[name]
    with torch.no_grad():
        old = param.view(-1)[index].item()
        param.view(-1)[index] = value
        loss = F.cross_entropy(model(x), y).item()
        param.view(-1)[index] = old
    return loss


def test_obd_hessian_diagonal_equals_a_second_difference():
    model, (x, y) = tiny_net(), tiny_data()
    weights = {n: p.detach() for n, p in prunable(model).items()}
    diag = exact_diagonal(model, weights, lambda: [(x[:25], y[:25]), (x[25:], y[25:])],
                          F.cross_entropy, chunk=16)
    h = 1e-4
    for name, w in weights.items():
        for index in range(w.numel()):
            centre = w.view(-1)[index].item()
            brute = (loss_at(model, name, index, centre + h, x, y)
                     - 2 * loss_at(model, name, index, centre, x, y)
                     + loss_at(model, name, index, centre - h, x, y)) / h**2
            assert diag[name].view(-1)[index].item() == pytest.approx(brute, rel=1e-4, abs=1e-6)


def test_obd_saliency_is_half_h_w_squared_and_predicts_small_deletions():
    model, (x, y) = tiny_net(), tiny_data()
    score = OBD(hessian="exact")
    saliency = score.scores(context(model, x, y))
    diag = score.diagonal(context(model, x, y))
    w = dict(model.named_parameters())["2.weight"].detach()
    assert torch.allclose(saliency["2.weight"], diag["2.weight"] * w**2 / 2)


def test_hutchinson_is_exact_when_the_hessian_is_diagonal():
    """loss = sum w_i^4 through a bias-free Linear(1, k) on input 1: H = diag(12 w^2), so every
    Rademacher probe gives v * Hv = diag(H) exactly."""
    model = nn.Linear(1, 6, bias=False).double()
    weights = {"weight": model.weight.detach()}
    batches = lambda: [(torch.ones(1, 1, dtype=torch.float64), torch.zeros(1))]  # noqa: E731
    quartic = lambda out, y: out.pow(4).sum()  # noqa: E731
    estimate = hutchinson_diagonal(model, weights, batches, quartic, samples=1,
                                   generator=torch.Generator().manual_seed(0))
    assert torch.allclose(estimate["weight"], 12 * model.weight.detach() ** 2)


def test_hutchinson_estimates_the_exact_diagonal():
    model, (x, y) = tiny_net(), tiny_data()
    weights = {n: p.detach() for n, p in prunable(model).items()}
    batches = lambda: [(x, y)]  # noqa: E731
    exact = exact_diagonal(model, weights, batches, F.cross_entropy)
    estimate = hutchinson_diagonal(model, weights, batches, F.cross_entropy, samples=150,
                                   generator=torch.Generator().manual_seed(0))
    for name in weights:
        error = (estimate[name] - exact[name]).norm() / exact[name].norm()
        assert error < 0.35, name  # about 0.25 measured; a wrong estimator gives ~1


def test_obd_picks_hutchinson_above_its_exact_limit():
    score = OBD(exact_limit=10)
    assert score.method_for({"w": torch.zeros(5)}) == "exact"
    assert score.method_for({"w": torch.zeros(11)}) == "hutchinson"


def bag_net_and_data():
    """nn.EmbeddingBag has no forward-mode derivative, which the exact diagonal's jvp needs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.EmbeddingBag(30, 4, mode="mean"), nn.Linear(4, 3))
    return model, torch.randint(0, 30, (24, 5)), torch.randint(0, 3, (24,))


def test_obd_estimates_the_diagonal_where_the_exact_one_cannot_run():
    model, x, y = bag_net_and_data()
    score = OBD()
    scores = score.scores(context(model, x, y))
    assert score.last_method == "hutchinson"
    assert list(scores) == ["1.weight"] and torch.isfinite(scores["1.weight"]).all()
    assert (scores["1.weight"] != 0).any()


def test_obd_exact_on_a_model_without_forward_derivatives_is_one_clear_error():
    from netshrink.errors import NetshrinkError

    model, x, y = bag_net_and_data()
    with pytest.raises(NetshrinkError, match=r"forward-mode.*hessian='hutchinson'"):
        OBD(hessian="exact").scores(context(model, x, y))


def test_taylor_and_snip_are_w_times_gradient():
    model, (x, y) = tiny_net(), tiny_data()
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    expected = {n: (p.detach() * p.grad).abs() for n, p in prunable(model).items()}
    taylor = Taylor(examples=None).scores(context(model, x, y))
    snip = SNIP(batch_size=len(x)).scores(context(model, x, y))
    total = sum(e.sum() for e in expected.values())
    for name, e in expected.items():
        assert torch.allclose(taylor[name], e)
        assert torch.allclose(snip[name], e / total)
    assert sum(s.sum() for s in snip.values()).item() == pytest.approx(1.0)


def test_grasp_is_w_times_hessian_gradient_product_at_temperature():
    model, (x, y) = tiny_net(), tiny_data(30)
    temperature = 5.0
    params = list(prunable(model).values())

    def loss():
        return F.cross_entropy(model(x) / temperature, y)

    g = torch.autograd.grad(loss(), params)
    vec = [t.detach() for t in g]
    g2 = torch.autograd.grad(loss(), params, create_graph=True)
    hg = torch.autograd.grad(sum((a * b).sum() for a, b in zip(g2, vec, strict=True)), params)
    score = GraSP(samples_per_class=100, temperature=temperature).scores(context(model, x, y))
    for (name, p), h in zip(prunable(model).items(), hg, strict=True):
        # the paper removes the largest S(-w) = -w Hg; keeping the largest w Hg is the same
        assert torch.allclose(score[name], p.detach() * h)


def test_grasp_samples_the_same_number_of_each_class():
    model, (x, y) = tiny_net(), tiny_data(60)
    _chosen_x, chosen_y = GraSP(samples_per_class=4)._balanced(context(model, x, y))
    assert torch.bincount(chosen_y).tolist() == [4, 4, 4]


def test_synflow_conserves_score_through_each_layer():
    """Tanaka et al.'s conservation law: for a ReLU network without biases, the scores into a
    layer sum to the scores out of it (both equal R)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 7, bias=False), nn.ReLU(), nn.Linear(7, 5, bias=False),
                          nn.ReLU(), nn.Linear(5, 3, bias=False))
    scores = SynFlow().scores(context(model, input_shape=(6,)))
    sums = [scores[n].sum().item() for n in ("0.weight", "2.weight", "4.weight")]
    assert sums[0] == pytest.approx(sums[1], rel=1e-10)
    assert sums[1] == pytest.approx(sums[2], rel=1e-10)
    # neuron-wise: into each hidden unit of layer 0 = out of it into layer 2
    assert torch.allclose(scores["0.weight"].sum(1), scores["2.weight"].sum(0), rtol=1e-10)
    ones = torch.ones(1, 6)
    with torch.no_grad():
        r = (model[4].weight.abs() @ model[2].weight.abs() @ model[0].weight.abs()
             @ ones.T).sum().item()
    assert sums[0] == pytest.approx(r, rel=1e-6)


def test_synflow_is_data_free_and_never_changes_the_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3))
    model.train()
    before = {n: t.clone() for n, t in model.state_dict().items()}
    scores = SynFlow().scores(context(model, input_shape=(6,)))
    assert all(torch.equal(t, before[n]) for n, t in model.state_dict().items())
    assert model.training
    assert all((s >= 0).all() for s in scores.values())



class Product(nn.Module):
    """x W^T by a module netshrink does not prune, holding a weight it shares."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 6))

    def forward(self, x):
        return x @ self.weight.t()


class TiedLayers(nn.Module):
    """One weight held by a layer netshrink does not prune and by a Linear (as an embedding
    and its output layer share one): only the Linear's name is prunable."""

    def __init__(self, tied=True):
        super().__init__()
        self.pre, self.b = Product(), nn.Linear(6, 6, bias=False)
        self.head = nn.Linear(6, 3, bias=False)
        if tied:
            self.b.weight = self.pre.weight

    def forward(self, x):
        return self.head(torch.relu(self.b(torch.relu(self.pre(x)))))


def test_synflow_scores_a_tied_weight_by_both_of_its_uses():
    torch.manual_seed(0)
    tied = TiedLayers()
    untied = TiedLayers(tied=False)
    untied.load_state_dict({"pre.weight": tied.b.weight, "b.weight": tied.b.weight,
                            "head.weight": tied.head.weight})
    scores = SynFlow().scores(context(tied, input_shape=(6,)))
    assert sorted(scores) == ["b.weight", "head.weight"]
    weights = {n: p.detach() for n, p in untied.named_parameters()}
    apart = SynFlow().scores(Context(untied, weights, None, None, F.cross_entropy,
                                     torch.Generator().manual_seed(0), (6,)))
    assert torch.allclose(scores["b.weight"], apart["pre.weight"] + apart["b.weight"],
                          rtol=1e-10)


def test_synflow_prunes_a_model_with_tied_weights_iteratively():
    from netshrink.prune import density, prune_

    torch.manual_seed(0)
    model = TiedLayers()
    prune_(model, "synflow", sparsity=0.5, input_shape=(6,), iterations=3)
    assert density(model) == pytest.approx(0.5, abs=0.02)
    assert torch.equal(model.pre.weight, model.b.weight)
