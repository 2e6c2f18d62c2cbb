"""netshrink.quant.int8.program: the integer program's values, ops and their bookkeeping,
on a program written by hand."""

import math

import pytest
import torch

from netshrink.quant.int8.program import (
    Add,
    Dense,
    Dequantize,
    Program,
    QParams,
    Quantize,
    Reshape,
    Value,
)
from netshrink.quant.kernels import ConvGeometry

Q = QParams(scale=0.5, zero_point=10)


@pytest.mark.parametrize(("real", "level"), [
    (0.0, 10), (1.0, 12), (0.25, 10), (0.75, 12),  # 0.5 and 1.5 steps: half to even
    (-5.0, 0), (-100.0, 0), (1000.0, 255), (math.inf, 255), (-math.inf, 0),
])
def test_level_rounds_half_to_even_and_clamps(real, level):
    assert Q.level(real) == level


def test_a_narrow_range_clamps_too():
    relu7 = QParams(0.1, 0, qmin=0, qmax=127)
    assert relu7.level(100.0) == 127 and relu7.level(-1.0) == 0
    assert str(relu7) == "scale=0.1 zero_point=0 [0, 127]"


def program():
    torch.manual_seed(0)
    conv = Dense(["x_q"], "c", source="conv", weight=torch.ones(4, 2, 3, 3, dtype=torch.int8),
                 weight_scale=torch.ones(4), input_qparams=Q,
                 geometry=ConvGeometry((1, 1), (1, 1), (1, 1), 1), lo=10)
    fc = Dense(["flat", "c_sum"], "y", source="fc", weight=torch.ones(3, 64, dtype=torch.int8),
               weight_scale=torch.ones(3), input_qparams=Q, residual="c_sum")
    values = {"x": Value("x", (2, 2, 4, 4)), "x_q": Value("x_q", (2, 2, 4, 4), Q),
              "c": Value("c", (2, 4, 4, 4), Q), "c_sum": Value("c_sum", (2, 4, 4, 4), Q),
              "flat": Value("flat", (2, 64), Q), "y": Value("y", (2, 3)),
              "out": Value("out", (2, 3))}
    ops = [Quantize(["x"], "x_q", source="input"), conv,
           Add(["c", "c"], "c_sum", source="add", lo=10, hi=200),
           Reshape(["c_sum"], "flat", source="flatten", shape=(64,)), fc,
           Dequantize(["y"], "out", source="output")]
    return Program(values, ops, ["x"], ["out"])


def test_values_ops_producers_and_consumers():
    p = program()
    assert Value("x", (1,)).integer is False and p.values["c"].integer
    assert p.qparams("c") == Q
    with pytest.raises(ValueError, match="value 'y' is a float"):
        p.qparams("y")
    assert p.producer("c_sum").kind == "Add" and p.producer("x") is None
    assert [op.kind for op in p.consumers("c_sum")] == ["Reshape", "Dense"]
    assert p.consumers("out") == []
    assert p.count("Dense") == 2 and p.count("Add") == 1 and p.count("MaxPool") == 0
    assert p.ops[1].conv and not p.ops[4].conv


def test_summary_is_one_line_per_op_with_how_its_output_is_stored():
    lines = program().summary().splitlines()
    assert len(lines) == 6
    assert lines[0] == ("Quantize   x -> x_q: scale=0.5 zero_point=10 [0, 255] clamp [0, 255]"
                        "  (input)")
    assert lines[2].startswith("Add        c, c -> c_sum: ") and "clamp [10, 200]" in lines[2]
    assert lines[3].endswith("scale=0.5 zero_point=10 [0, 255]  (flatten)")  # no clamp stage
    assert lines[4] == "Dense      flat, c_sum -> y + residual: float32  (fc)"


def test_macs_count_one_weight_row_per_output_element():
    # conv: 2 * 3 * 3 products for each of 4 * 4 * 4 outputs; fc: 64 for each of 3 outputs
    assert program().macs() == 18 * 64 + 64 * 3
