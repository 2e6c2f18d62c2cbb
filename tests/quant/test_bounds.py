import pytest
import torch
from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.quant import Dynamic
from netshrink.quant.bounds import (
    INT32_MAX,
    accumulator_bound,
    check_layer,
    pair_sum_bound,
)


def test_bound_is_fan_in_times_largest_integers():
    assert accumulator_bound(100, 8, 8) == 100 * 255 * 127
    assert accumulator_bound(10, 4, 4) == 10 * 15 * 7
    # the largest 8-bit fan-in that cannot overflow int32
    assert accumulator_bound(66_311, 8, 8) <= INT32_MAX < accumulator_bound(66_312, 8, 8)


def test_overflow_guard_names_the_layer():
    with pytest.raises(NetshrinkError, match=r"'encoder\.fc'.*int32"):
        check_layer("encoder.fc", 70_000, 8, 8)
    assert check_layer("encoder.fc", 70_000, 7, 8) == 70_000 * 127 * 127


def test_int16_pair_guard_for_saturating_kernels():
    assert pair_sum_bound(8, 8) > 32767 >= pair_sum_bound(7, 8)
    assert pair_sum_bound(8, 7) <= 32767
    with pytest.raises(NetshrinkError, match=r"'conv1'.*saturate"):
        check_layer("conv1", 27, 8, 8, pairs_in_int16=True, kernel="onednn")
    check_layer("conv1", 27, 7, 8, pairs_in_int16=True, kernel="onednn")


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.small = nn.Linear(4, 4)
        self.huge = nn.Linear(140_000, 2)

    def forward(self, x):
        return self.huge(x)


def test_quantize_refuses_a_model_that_can_overflow_and_skip_works():
    model = Wide()
    with pytest.raises(NetshrinkError, match="'huge'"):
        netshrink.quantize_(model, Dynamic(activation_bits=8, kernel="reference"))
    assert isinstance(model.small, nn.Linear)  # refused before anything was changed
    model = Wide()
    netshrink.quantize_(model, Dynamic(activation_bits=8, kernel="reference", skip=("huge",)))
    assert isinstance(model.huge, nn.Linear)
    assert type(model.small).__name__ == "QuantLinear"


def test_a_saved_model_too_wide_for_this_kernel_is_refused_at_run_time():
    model = nn.Sequential(nn.Linear(8, 2))
    netshrink.quantize_(model, Dynamic(activation_bits=8, kernel="reference"))
    layer = model[0]
    layer.kernel_name = "onednn"
    from netshrink.quant import kernels

    if not (kernels.onednn_available() and kernels.OneDNN().pairs_in_int16(torch.device("cpu"))):
        pytest.skip("this CPU multiplies int8 without int16 pair sums")
    with pytest.raises(NetshrinkError, match="saturate"):
        model(torch.randn(2, 8))
