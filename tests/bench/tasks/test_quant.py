"""The quantization task: float, PTQ and QAT of one model, measured."""

import pytest
import torch

from netshrink.bench import TrialSpec, run_trials
from netshrink.bench.sweep import run_trial
from netshrink.errors import NetshrinkError


def test_quantization_task_measures_float_ptq_and_qat(tmp_path):
    spec = TrialSpec(task="quantization", model="lenet5", data="digits",
                     train={"epochs": 2, "batch_size": 64, "lr": 3e-3, "device": "cpu"},
                     params={"qat": {"bits": 4, "activation_bits": 4, "lsq": True},
                             "qat_epochs": 0.5, "latency_repeats": 3})
    row = run_trial(spec, tmp_path)
    m = row["metrics"]
    for method in ("float", "ptq", "qat"):
        assert 0.0 <= m[f"{method}_top1"] <= 1.0
        assert m[f"{method}_latency_ms_b1"] > 0 and m[f"{method}_bytes"] > 0
    assert m["ptq_bytes"] < m["float_bytes"] / 3
    assert m["float_runtime_b1"] == "torch"
    assert m["ptq_runtime_b256"].split(",")[0] in ("torch", "onnxruntime")
    assert m["ptq_compiled_top1"] == pytest.approx(m["ptq_top1"], abs=0.02)
    assert torch.get_num_threads() >= 1


@pytest.mark.parametrize(("params", "words"), [
    ({"ptqq": {}}, "unknown quantization parameter ptqq"),
    ({"qat": {"bitz": 4}}, "params.qat"),
    ({"qat_epochs": 0}, "qat_epochs=0 must be a positive number"),
])
def test_bad_params_are_refused_before_anything_runs(tmp_path, params, words):
    with pytest.raises(NetshrinkError, match=words):
        run_trials([TrialSpec("quantization", "lenet5", "digits", params=params)], tmp_path)
