"""Latency rows of pruned models: every side of a (runtime, batch) in one alternated run.
(What is asserted is the table's shape, never a timing.)"""

import pytest
import torch

import netshrink
from netshrink.prune import StructuredConfig
from netshrink.prune.speedup import format_rows, frozen, latency_rows
from netshrink.prune.structured import call
from tests import user_models


def test_rows_for_every_runtime_batch_and_model():
    pytest.importorskip("onnxruntime")
    dense = netshrink.models.create("lenet5", (1, 8, 8), 10)
    pruned = netshrink.models.create("lenet5", (1, 8, 8), 10)
    netshrink.prune_(pruned, StructuredConfig(), example=torch.rand(2, 1, 8, 8))
    rows = latency_rows({"dense": dense, "pruned": pruned}, lambda n: torch.rand(n, 1, 8, 8),
                        batches=(1, 4), threads=1, repeats=2, warmup=1)
    assert [(r["runtime"], r["batch"], r["model"]) for r in rows] == [
        (rt, b, m) for rt in ("torch", "torchscript", "onnxruntime") for b in (1, 4)
        for m in ("dense", "pruned")]
    assert all(r["speedup"] == 1.0 for r in rows if r["model"] == "dense")
    assert all(r["threads"] == 1 for r in rows)
    assert "| onnxruntime | 4 | pruned |" in format_rows(rows)


@pytest.mark.parametrize("name", ["residual_cnn", "conv1d", "two_inputs", "token_transformer"])
def test_frozen_model_computes_what_the_eager_one_does(name):
    model, x, _ = user_models.build(name)
    model.eval()
    netshrink.prune_(model, StructuredConfig(sparsity=0.5), example=x)
    with torch.no_grad():
        expected = call(model, x)
        got = frozen(model, x)(*(x if isinstance(x, tuple) else (x,)))
    assert torch.allclose(got, expected, atol=1e-5)


def test_an_untraceable_forward_is_one_clear_error():
    class Keywords(torch.nn.Module):
        def forward(self, *, features):
            return features

    with pytest.raises(netshrink.NetshrinkError, match="TorchScript could not trace"):
        frozen(Keywords(), torch.rand(2, 3))
