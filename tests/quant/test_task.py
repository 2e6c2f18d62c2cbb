import torch

from netshrink.bench import TrialSpec
from netshrink.bench.sweep import run_trial
from netshrink.reproduce import quantization as repro


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
    assert torch.get_num_threads() >= 1


def test_reproduction_plan_and_table_quote_tflite_as_published():
    default, full = repro.plan(False), repro.plan(True)
    assert default["models"]["resnet"]["train"]["epochs"] < full["models"]["resnet"]["train"][
        "epochs"]
    specs = repro.trials(default, "fashion-mnist", [0])
    assert {s.model for s in specs} == {"lenet5", "resnet"}
    rows = [{"model": "lenet5", "metrics": {f"{k}_{f}": 1.0 for k in ("float", "ptq", "qat")
                                            for f in ("top1", "latency_ms_b1",
                                                      "latency_ms_b256", "bytes")}}]
    table = repro.summarize(rows)
    text = repro.markdown(table, default, False)
    assert "| Mobilenet-v1-1-224 | 0.709 | 0.657 | 0.70 | 180 | 145 | 80.2 | 16.9 | 4.3 |" in text
    assert "| Resnet_v2_101 | 0.770 | 0.768 | N/A | 3973 | 2868 | N/A | 178.3 | 44.9 |" in text
    assert "v1.15.2/tensorflow/lite/g3doc/performance/model_optimization.md" in text
