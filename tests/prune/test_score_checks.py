"""Data-driven pruning scores check the data against the model before they score: wrong
shapes, labels out of range, float labels and NaN are one clear error naming the method; layer
patterns that name no layer are refused with the layers there are."""

import pytest
import torch

import netshrink
from netshrink import models
from netshrink.errors import DataError, NetshrinkError


def _model():
    torch.manual_seed(0)
    return models.create("mlp", (1, 4, 4), 3, widths=[8])


X, Y = torch.rand(64, 1, 4, 4), torch.randint(0, 3, (64,))
NAN_X = X.masked_fill(X > 0.9, float("nan"))


@pytest.mark.parametrize(("method", "data", "short", "error", "words"), [
    ("snip", (torch.rand(64, 1, 5, 5), Y), {}, NetshrinkError,
     "snip: the model cannot run on the data's inputs"),
    ("grasp", (torch.rand(64, 1, 5, 5), Y), {}, NetshrinkError, "grasp: the model cannot run"),
    ("taylor", (torch.rand(64, 3), Y), {}, NetshrinkError, "taylor: the model cannot run"),
    ("snip", (X, torch.full((64,), 7)), {}, NetshrinkError,
     "snip: label 7 is out of range for the model's 3 outputs"),
    ("obd", (X, torch.full((64,), 3)), {}, NetshrinkError, "obd: label 3 is out of range"),
    ("taylor", (X, Y.float()), {}, DataError, "labels are float32"),
    ("grasp", (NAN_X, Y), {}, DataError, "grasp: the data's inputs hold"),
    ("snip", (NAN_X, Y), {}, DataError, "snip: the data's inputs hold"),
    ("magnitude", None, {"skip": ["nolayer"]}, NetshrinkError,
     "skip: 'nolayer' matches no layer of the model; the layers are 1.weight, 3.weight"),
    ("magnitude", None, {"layers": {"fc9": 0.5}}, NetshrinkError,
     "layers: 'fc9' matches no layer"),
    ("synflow", None, {"input_shape": (1, 5, 5)}, NetshrinkError,
     r"synflow runs the model on an all-ones float input of shape \(1, 5, 5\)"),
    ("snip", None, {}, NetshrinkError, "snip"),
])
def test_bad_data_for_a_score_is_one_error_naming_the_method(method, data, short, error,
                                                             words):
    with pytest.raises(error, match=words):
        netshrink.prune_(_model(), method, data, sparsity=0.5, **short)
