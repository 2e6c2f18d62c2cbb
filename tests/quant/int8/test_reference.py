"""The reference arithmetic: exact integer sums, one rounding in each output stage."""

import torch

from netshrink.quant.int8 import reference
from netshrink.quant.int8.program import QParams


def test_the_output_stage_rounds_half_to_even_then_clamps():
    q = QParams(0.5, 10, 0, 127)
    values = torch.tensor([0.25, 0.75, -100.0, 100.0, 1.0])
    assert reference.output_stage(values, q, 0, 127).tolist() == [10, 12, 0, 127, 12]
    assert reference.output_stage(values, q, 10, 11).tolist() == [10, 11, 10, 11, 11]


def test_levels_of_real_numbers_match_the_output_stage():
    q = QParams(0.1, 3, 0, 127)
    for value in (-1.0, 0.0, 0.05, 0.15, 6.0, 20.0, float("inf")):
        real = torch.tensor([min(value, 1e9)], dtype=torch.float64)
        expected = reference.output_stage(real, q, 0, 127)
        assert q.level(value) == int(expected)


def test_real_values_of_stored_integers():
    q = QParams(0.25, 4, 0, 255)
    assert reference.real(torch.tensor([4, 8, 0], dtype=torch.uint8), q).tolist() == \
        [0.0, 1.0, -1.0]
