"""Calibration refuses NaN / infinite data (which would give a model that outputs NaN) and data
that does not fit the model, by name; skip patterns must name layers."""

import pytest
import torch

import netshrink
from netshrink import models
from netshrink.errors import DataError, NetshrinkError
from netshrink.quant import QAT, Static


def _model():
    torch.manual_seed(0)
    return models.create("mlp", (1, 4, 4), 3, widths=[8])


X = torch.rand(32, 1, 4, 4)


@pytest.mark.parametrize(("config", "data", "error", "words"), [
    (Static(), X.masked_fill(X > 0.9, float("inf")), DataError,
     r"calibration inputs hold \d+ NaN or infinite values"),
    (Static(), X.masked_fill(X > 0.9, float("nan")), DataError, "calibration inputs hold"),
    (Static(), torch.rand(8, 3, 9, 9), NetshrinkError,
     "the calibration data does not fit the model"),
    (Static(skip=("nolayer",)), X, NetshrinkError, "skip: 'nolayer' matches no layer"),
    (QAT(), X.masked_fill(X > 0.5, float("nan")), DataError, "calibration inputs hold"),
])
def test_bad_calibration_data_is_refused_by_name(config, data, error, words):
    model = _model()
    with pytest.raises(error, match=words):
        netshrink.quantize_(model, config, data=data)
