"""Every pruning score on models whose inputs are token ids, two tensors or keyword arguments."""

import pytest
import torch
import torch.nn.functional as F

from netshrink import NetshrinkError, measure
from netshrink.data import inputs
from netshrink.prune import density, prunable, prune_
from netshrink.prune.api import score_weights

CASES = ["tokens", "pair", "keywords"]
METHODS = {
    "magnitude": {},
    "taylor": {"examples": 64},
    "snip": {"batch_size": 32},
    "grasp": {"samples_per_class": 8},
    "obd": {"hessian": "hutchinson", "samples": 2, "examples": 32},
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: a second thread only fights the other processes of a small machine."""
    with measure.threads(1):
        yield


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_score_prunes_models_of_any_input(any_inputs, case, method):
    build, splits = any_inputs[case]
    torch.manual_seed(0)
    model = build()
    mask = prune_(model, method, splits, sparsity=0.5, scope="layerwise", **METHODS[method])
    for name, keep in mask.items():
        assert int(keep.sum()) == keep.numel() - round(0.5 * keep.numel()), name
    assert density(model) == pytest.approx(mask.density())
    out = inputs.call(model, inputs.take(splits.test.inputs, slice(0, 4)))
    assert out.shape == (4, splits.num_classes) and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("case", CASES)
def test_taylor_scores_are_computed_on_the_inputs_as_given(any_inputs, case):
    """|w dL/dw| from netshrink equals plain autograd on model(x) / model(*x) / model(**x)."""
    build, splits = any_inputs[case]
    torch.manual_seed(0)
    model = build()
    got = score_weights(model, "taylor", splits, examples=None, batch_size=50)
    x, y = splits.train.tensors
    model.train()
    loss = F.cross_entropy(inputs.call(model, x), y)
    weights = prunable(model)
    grads = torch.autograd.grad(loss, list(weights.values()))
    for (name, w), g in zip(weights.items(), grads, strict=True):
        torch.testing.assert_close(got[name], (w * g).abs().detach(), rtol=1e-4, atol=1e-7)


def test_synflow_takes_the_input_shape_from_the_data(any_inputs):
    """Data-free, but asked with data it reads the data's shapes (a tuple of two here)."""
    build, splits = any_inputs["pair"]
    torch.manual_seed(0)
    model = build()
    from_data = score_weights(model, "synflow", splits)
    given = score_weights(model, "synflow", input_shape=((1, 8, 8), (6,)))
    assert from_data.keys() == given.keys()
    for name in given:
        torch.testing.assert_close(from_data[name], given[name])
    mask = prune_(model, "synflow", splits, sparsity=0.5, iterations=3)
    assert mask.kept() == mask.size() - round(0.5 * mask.size())
    with pytest.raises(NetshrinkError, match="pass input_shape"):
        score_weights(build(), "synflow")


@pytest.mark.parametrize("case", ["tokens", "keywords"])
def test_synflow_refuses_integer_inputs_clearly(any_inputs, case):
    build, splits = any_inputs[case]
    with pytest.raises(NetshrinkError, match="token ids or other integer inputs"):
        prune_(build(), "synflow", splits, sparsity=0.5, iterations=2)


def test_exact_hessian_diagonal_through_two_inputs(any_inputs):
    """OBD's exact h_kk (vmapped Hessian-vector products) equals autograd's full Hessian."""
    build, splits = any_inputs["pair"]
    torch.manual_seed(0)
    model = build().eval()
    got = score_weights(model, "obd", splits, hessian="exact", examples=None)
    image, vector = splits.train.inputs
    w = model.head.weight.detach()

    def loss_of(flat):
        hidden = torch.cat([torch.relu(model.conv(image)).mean(dim=(2, 3)),
                            torch.relu(model.side(vector))], dim=1)
        logits = F.linear(hidden, flat.view_as(w), model.head.bias)
        return F.cross_entropy(logits, splits.train.labels)

    h = torch.autograd.functional.hessian(loss_of, w.flatten()).diagonal().view_as(w)
    torch.testing.assert_close(got["head.weight"], h * w.pow(2) / 2, rtol=1e-4, atol=1e-8)
