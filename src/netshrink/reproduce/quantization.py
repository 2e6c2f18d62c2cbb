"""TensorFlow Lite's quantization table (float / post-training / quantization-aware), our analogue.

TFLite's model optimization page lists, for four ImageNet CNNs, top-1 accuracy, latency and
size of the float model, after post-training quantization (PTQ) and after quantization-aware
training (QAT). We measure the same columns for LeNet-5 and the small ResNet on Fashion-MNIST
(static int8 PTQ; 4-bit QAT with learned step sizes) and for the MiniLM sentence encoder
(dynamic int8 PTQ; quality = cosine to the float32 embeddings), and print TFLite's published
rows beside ours.

Scaled down (default, about 40 minutes on two cores shared with other work): LeNet-5 trained
6 epochs and ResNet-20 2 epochs (the papers' networks train for tens of epochs), QAT
fine-tunes 2 and 0.5 epochs, one seed, latency medians of 30 alternating runs. (The earlier
default, 8 and 3 epochs with QAT 3 and 1, took 63 minutes under load, past the hour; ResNet-20
training and its QAT epoch were 45 of them.) --full: 20 float epochs for both, 5 QAT epochs,
seeds 0 1 2, 100 latency runs.

The integer models are timed as deployed: compiled by netshrink.quant.compile_int8 for each
batch size on the fastest runtime this machine has (one thread), named under the table; a model
compile_int8 cannot lower is timed as its integer modules, with the reason.
MiniLM's PTQ row is netshrink's int8 encoder as deployed: quantized with
minilm_onnx.INTEGER_CONFIG, exported as integer ONNX and run by onnxruntime (2 threads).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable

from netshrink.bench import TrialSpec
from netshrink.bench.report import write_csv
from netshrink.errors import NetshrinkError
from netshrink.reproduce import ReproOptions
from netshrink.reproduce.template import Run

TFLITE_SOURCE = (
    "TensorFlow Lite, 'Model optimization', Table 1 'Benefits of model quantization for "
    "select CNN models' (latency on Pixel 2, single big core): https://github.com/tensorflow/"
    "tensorflow/blob/v1.15.2/tensorflow/lite/g3doc/performance/model_optimization.md"
)
# Copied as published (strings, so nothing is reformatted).
TFLITE_HEADER = ("Model", "Top-1 Accuracy (Original)", "Top-1 Accuracy (Post Training Quantized)",
                 "Top-1 Accuracy (Quantization Aware Training)", "Latency (Original) (ms)",
                 "Latency (Post Training Quantized) (ms)",
                 "Latency (Quantization Aware Training) (ms)", "Size (Original) (MB)",
                 "Size (Optimized) (MB)")
TFLITE_ROWS = (
    ("Mobilenet-v1-1-224", "0.709", "0.657", "0.70", "180", "145", "80.2", "16.9", "4.3"),
    ("Mobilenet-v2-1-224", "0.719", "0.637", "0.709", "117", "121", "80.3", "14", "3.6"),
    ("Inception_v3", "0.78", "0.772", "0.775", "1585", "1187", "637", "95.7", "23.9"),
    ("Resnet_v2_101", "0.770", "0.768", "N/A", "3973", "2868", "N/A", "178.3", "44.9"),
)

SCALED_DOWN = ("scaled down from TFLite's ImageNet CNNs to Fashion-MNIST: LeNet-5 trained 6 "
               "epochs, ResNet-20 2 epochs, QAT 2 and 0.5 epochs, one seed (--full: 20 epochs, "
               "5 QAT epochs, 3 seeds); trimmed from 8 and 3 epochs (QAT 3 and 1), which took "
               "63 minutes on this project's loaded 2-core machine, to fit the hour")
PTQ = {"bits": 8, "observer": "mse"}
# LSQ's protocol (Esser et al. 2020): 4-bit weights and inputs, first and last layer at 8 bits.
QAT_SETTINGS = {"bits": 4, "activation_bits": 4, "lsq": True, "first_last_bits": 8}


def plan(full: bool) -> dict:
    """The protocol: models, their training, the PTQ and QAT settings, seeds."""
    float_epochs = {"lenet5": 20, "resnet": 20} if full else {"lenet5": 6, "resnet": 2}
    qat_epochs = {"lenet5": 5, "resnet": 5} if full else {"lenet5": 2, "resnet": 0.5}
    return {
        "models": {
            name: {"model_args": {"depth": 20, "width": 16} if name == "resnet" else {},
                   "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 128,
                             "epochs": float_epochs[name], "lr_schedule": "cosine",
                             "device": "cpu"},
                   "qat_epochs": qat_epochs[name], "qat_lr": 1e-4}
            for name in ("lenet5", "resnet")},
        "ptq": PTQ, "qat": QAT_SETTINGS, "seeds": [0, 1, 2] if full else [0],
        "latency_repeats": 100 if full else 30,
        "minilm": {"repeats": 30 if full else 10, "threads": 2, "batch": 32},
    }


def settings(options: ReproOptions) -> dict:
    data = options.data or ("fashion-mnist",)
    if len(data) != 1:
        raise NetshrinkError("reproduce quantization takes one data set (--data fashion-mnist)")
    protocol = plan(options.full)
    return {**protocol, "data": data[0], "seeds": list(options.seeds or protocol["seeds"])}


def describe(options: ReproOptions, s: dict) -> str:
    return f"reproduce quantization: {'the full protocol' if options.full else SCALED_DOWN}"


def stages(s: dict, options: ReproOptions) -> list[list[TrialSpec]]:
    return [trials(s, s["data"], s["seeds"])]


def trials(protocol: dict, data: str, seeds: Iterable[int]) -> list[TrialSpec]:
    out = []
    for name, m in protocol["models"].items():
        for seed in seeds:
            out.append(TrialSpec(
                task="quantization", model=name, data=data, model_args=m["model_args"],
                train=m["train"], seed=seed,
                params={"ptq": protocol["ptq"], "qat": protocol["qat"],
                        "qat_epochs": m["qat_epochs"], "qat_lr": m["qat_lr"],
                        "latency_repeats": protocol["latency_repeats"]}))
    return out


def summarize(rows: list[dict]) -> list[dict]:
    """One row per model and method: means over the seeds of the trials that finished."""
    table = []
    by_model: dict[str, list[dict]] = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row["metrics"])
    for model, metrics in by_model.items():
        for method in ("float", "ptq", "qat"):
            def mean(key, ms=metrics, method=method):
                return statistics.mean(m[f"{method}_{key}"] for m in ms)
            table.append({
                "model": model, "method": method, "seeds": len(metrics),
                "top1": mean("top1"), "top1_min": min(m[f"{method}_top1"] for m in metrics),
                "top1_max": max(m[f"{method}_top1"] for m in metrics),
                "latency_ms_b1": mean("latency_ms_b1"),
                "latency_ms_b256": mean("latency_ms_b256"),
                "size_mb": mean("bytes") / 1e6,
                **{f"runtime_b{b}": " / ".join(sorted({m.get(f"{method}_runtime_b{b}", "torch")
                                                       for m in metrics})) for b in (1, 256)},
                **({"compiled_top1": mean("compiled_top1")}
                   if all(f"{method}_compiled_top1" in m for m in metrics) else {})})
    return table


def minilm_rows(protocol: dict) -> list[dict]:
    """float32 (PyTorch) and int8 MiniLM (integer ONNX on onnxruntime): cosine to float32,
    latency (batch 32, timed alternately and isolated: each side after the other library's
    threads stopped spinning, warmed by its own untimed calls), file size."""
    import copy
    import tempfile
    from pathlib import Path

    import torch

    import netshrink
    from netshrink import measure
    from netshrink.models import minilm
    from netshrink.quant import minilm_onnx
    from netshrink.quant.sentences import EVALUATION

    settings = protocol["minilm"]
    float_model = minilm.pretrained()
    int8 = copy.deepcopy(float_model)
    netshrink.quantize_(int8, minilm_onnx.INTEGER_CONFIG)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_file = minilm_onnx.export(int8, Path(tmp) / "minilm-int8.onnx")
        runner = minilm_onnx.runner(onnx_file, threads=settings["threads"])
        sizes = {"float": netshrink.save(float_model, Path(tmp) / "float.safetensors")
                 .stat().st_size, "ptq": onnx_file.stat().st_size}
    reference = minilm.encode(float_model, EVALUATION)
    cosine = minilm.cosine_to(reference, minilm.encode(runner, EVALUATION))
    batch = minilm.tokenize(EVALUATION[:settings["batch"]])
    stats = measure.compare_latency({"float": lambda: float_model(**batch),
                                     "ptq": lambda: runner(**batch)},
                                    repeats=settings["repeats"], warmup=2,
                                    num_threads=settings["threads"], settle=1,
                                    isolate=True)
    torch.set_num_threads(1)
    return [{"model": "minilm", "method": name, "seeds": 1,
             "top1": 1.0 if name == "float" else float(cosine.mean()),
             "top1_min": 1.0 if name == "float" else float(cosine.min()),
             "top1_max": 1.0 if name == "float" else float(cosine.max()),
             "latency_ms_b1": float("nan"), "latency_ms_b256": 1000 * stats[name].median,
             "size_mb": sizes[name] / 1e6} for name in ("float", "ptq")]


def markdown(table: list[dict], protocol: dict, full: bool) -> str:
    lines = ["# Quantization: TensorFlow Lite's table, reproduced", "",
             f"Protocol: {'full' if full else 'default, ' + SCALED_DOWN}; "
             f"PTQ = static, {PTQ['bits']}-bit per-channel weights, inputs calibrated "
             f"({PTQ['observer']} observer) on 2,048 training images; QAT = "
             f"{QAT_SETTINGS['bits']}-bit weights and {QAT_SETTINGS['activation_bits']}-bit "
             f"inputs (first and last layer {QAT_SETTINGS['first_last_bits']}-bit, as LSQ), "
             "learned step sizes, fine-tuned from the float weights. Latency: median ms, "
             "alternating runs, one thread, batch 1 and 256 (MiniLM: batch of 32 sentences, "
             "2 threads). MiniLM's 'top-1' is the mean cosine of its embeddings to float32's on 72 "
             "sentences; its PTQ is dynamic int8 (7-bit weights, int8 embeddings, 8-bit inputs "
             "with one scale per call) exported as integer ONNX and run by onnxruntime; its "
             "float row is PyTorch.", "",
             "| Model | Top-1 (float) | Top-1 (PTQ) | Top-1 (QAT) | Latency b1 float / PTQ / "
             "QAT (ms) | Latency b256 float / PTQ / QAT (ms) | Size float (MB) | Size PTQ / "
             "QAT (MB) |", "|---|---|---|---|---|---|---|---|"]
    by_model: dict[str, dict] = {}
    for row in table:
        by_model.setdefault(row["model"], {})[row["method"]] = row

    def fmt(row, key, digits=4):
        value = (row or {}).get(key)
        return "N/A" if value is None or value != value else f"{value:.{digits}f}"

    for model, r in by_model.items():
        f, p, q = r.get("float"), r.get("ptq"), r.get("qat")
        lines.append(
            f"| {model} | {fmt(f, 'top1')} | {fmt(p, 'top1')} | {fmt(q, 'top1')} | "
            f"{fmt(f, 'latency_ms_b1', 2)} / {fmt(p, 'latency_ms_b1', 2)} / "
            f"{fmt(q, 'latency_ms_b1', 2)} | {fmt(f, 'latency_ms_b256', 1)} / "
            f"{fmt(p, 'latency_ms_b256', 1)} / {fmt(q, 'latency_ms_b256', 1)} | "
            f"{fmt(f, 'size_mb', 3)} | {fmt(p, 'size_mb', 3)} / {fmt(q, 'size_mb', 3)} |")
    lines += ["", "Runtimes timed (batch 1 / batch 256; integer models compiled by "
              "`netshrink.quant.compile_int8`, the fastest of its runtimes on this machine):", ""]
    lines += [f"- {r['model']} {r['method']}: {r['runtime_b1']} / {r['runtime_b256']}"
              + (f"; top-1 as compiled {r['compiled_top1']:.4f}" if "compiled_top1" in r else "")
              for r in table if "runtime_b1" in r]
    lines += ["", f"Published by TensorFlow Lite ({TFLITE_SOURCE}):", "",
              "| " + " | ".join(TFLITE_HEADER) + " |", "|" + "---|" * len(TFLITE_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in TFLITE_ROWS]
    return "\n".join(lines) + "\n"


def plot(table: list[dict], path: str | os.PathLike) -> None:
    from netshrink.bench.report import new_figure, save_figure

    models = sorted({r["model"] for r in table}, key=["lenet5", "resnet", "minilm"].index)
    fig = new_figure(13, 3.8, dpi=120)
    axes = fig.subplots(1, 3)
    for ax, key, label in ((axes[0], "top1", "top-1 (MiniLM: cosine)"),
                           (axes[1], "latency_ms_b256", "latency ms (batch 256; MiniLM 32)"),
                           (axes[2], "size_mb", "file MB")):
        for i, method in enumerate(("float", "ptq", "qat")):
            values = [next((r[key] for r in table if r["model"] == m and r["method"] == method),
                           0.0) for m in models]
            ax.bar([j + 0.27 * (i - 1) for j in range(len(models))], values, width=0.27,
                   label=method)
        ax.set_xticks(range(len(models)), models)
        ax.set_title(label)
    axes[0].set_ylim(0.8, 1.0)
    axes[2].set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    save_figure(fig, path)


def tables(run: Run) -> str:
    table = summarize(run.rows)
    try:
        table += minilm_rows(run.settings)
    except NetshrinkError as err:  # transformers or the model package missing
        print(f"MiniLM skipped: {err}")
    write_csv(table, run.out / "results.csv")
    if table:
        plot(table, run.out / "results.png")
    return markdown(table, run.settings, run.options.full)
