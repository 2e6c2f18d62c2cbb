"""The quantization reproduction: its plan, and TFLite's table quoted as published."""

from netshrink.reproduce import quantization as repro


def test_reproduction_plan_and_table_quote_tflite_as_published():
    default, full = repro.plan(False), repro.plan(True)
    assert default["models"]["resnet"]["train"]["epochs"] < full["models"]["resnet"]["train"][
        "epochs"]
    specs = repro.trials(default, "fashion-mnist", [0])
    assert {s.model for s in specs} == {"lenet5", "resnet"}
    rows = [{"model": "lenet5", "metrics": {f"{k}_{f}": 1.0 for k in ("float", "ptq", "qat")
                                            for f in ("top1", "latency_ms_b1",
                                                      "latency_ms_b256", "bytes")}}]
    rows[0]["metrics"].update({"ptq_runtime_b1": "onnxruntime", "ptq_runtime_b256": "torch",
                               "ptq_compiled_top1": 0.5})
    table = repro.summarize(rows)
    text = repro.markdown(table, default, False)
    assert "- lenet5 ptq: onnxruntime / torch; top-1 as compiled 0.5000" in text
    assert "- lenet5 float: torch / torch\n" in text  # older trials, without runtimes: torch
    assert "| Mobilenet-v1-1-224 | 0.709 | 0.657 | 0.70 | 180 | 145 | 80.2 | 16.9 | 4.3 |" in text
    assert "| Resnet_v2_101 | 0.770 | 0.768 | N/A | 3973 | 2868 | N/A | 178.3 | 44.9 |" in text
    assert "v1.15.2/tensorflow/lite/g3doc/performance/model_optimization.md" in text
