"""The demo: shrink LeNet-300-100 on Fashion-MNIST three ways and measure what each bought.

1. train the dense model (the baseline and the teacher);
2. prune 90% of every layer's weights by magnitude, retrain with the mask, make it permanent;
3. quantize the pruned model to int8 (static, calibrated) and save it as an int8 file;
4. distill the dense model into a 784-100-10 student, beside the same student trained alone.

Every row is measured in this run: test accuracy, non-zero parameters, bytes of the saved file,
and latency on a batch of 256 test images (2 threads, the candidates timed alternately).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import netshrink
from netshrink import data, measure, models
from netshrink.distill import DistillConfig
from netshrink.fileio import atomic_write
from netshrink.prune import squash_
from netshrink.quant import Static
from netshrink.train import TrainConfig, evaluate, fit, seed_everything


def run(out: Path, epochs: float = 10.0, seed: int = 0,
        dataset: str = "fashion-mnist") -> list[dict]:
    """Run the four steps, print a table and write it (Markdown and JSON) into `out`.

    The resolved configuration goes to `out/config.json` before anything trains.
    """
    splits = data.load(dataset, seed=seed)
    config = TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, epochs=epochs, seed=seed,
                         lr_schedule="cosine", device="cpu")
    retrain = TrainConfig(**{**config.to_dict(), "epochs": epochs / 2})
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "config.json", json.dumps({
        "data": dataset, "seed": seed, "train": config.to_dict(), "retrain": retrain.to_dict(),
        "prune": {"method": "magnitude", "sparsity": 0.9, "scope": "layerwise"},
        "quantize": Static().to_dict(),
        "distill": DistillConfig(temperature=4.0, alpha=0.9).to_dict(),
        "student": {"model": "mlp", "widths": [100]},
        "versions": {"netshrink": netshrink.__version__}}, indent=2) + "\n")
    print(f"netshrink demo on {splits!r}; {epochs:g} epochs per training, seed {seed}")

    def create(name: str, **kw):
        seed_everything(seed)
        return models.create(name, splits.input_shape, splits.num_classes, **kw)

    print("[1/4] training LeNet-300-100 (dense)")
    dense = create("lenet300")
    fit(dense, splits, config, log_csv=out / "dense.csv")

    print("[2/4] pruning 90% of every layer's weights (magnitude), retraining with the mask")
    pruned = copy.deepcopy(dense)
    netshrink.prune_(pruned, "magnitude", sparsity=0.9, scope="layerwise")
    fit(pruned, splits, retrain, log_csv=out / "pruned.csv")
    squash_(pruned)

    print("[3/4] quantizing the pruned model to int8 (static, calibrated on training images)")
    quantized = copy.deepcopy(pruned)
    netshrink.quantize_(quantized, Static(), data=splits)

    print("[4/4] distilling into a 784-100-10 student (T=4), and the same student alone")
    alone = create("mlp", widths=[100])
    fit(alone, splits, config, log_csv=out / "student_alone.csv")
    student = create("mlp", widths=[100])
    netshrink.distill(student, dense, splits, DistillConfig(temperature=4.0, alpha=0.9),
                      config, log_csv=out / "student_distilled.csv")

    candidates = {"dense": dense, "pruned 90%": pruned, "pruned 90% + int8": quantized,
                  "student alone": alone, "student distilled": student}
    rows = _measure(candidates, splits, out)
    _report(rows, out)
    return rows


def _measure(candidates: dict, splits, out: Path) -> list[dict]:
    batch = splits.test.tensors[0][:256]
    for model in candidates.values():
        model.eval()
    speed = measure.compare_latency({name: (lambda m=m: m(batch)) for name, m in
                                     candidates.items()}, repeats=40, warmup=5, num_threads=2)
    rows = []
    for name, model in candidates.items():
        path = netshrink.save(model, out / f"{name.replace(' ', '_').replace('%', '')}"
                                            ".safetensors")
        reloaded = netshrink.load(path)
        _, accuracy = evaluate(model, splits.test)
        _, reloaded_accuracy = evaluate(reloaded, splits.test)
        rows.append({
            "model": name,
            "test_accuracy": accuracy,
            "reloaded_accuracy": reloaded_accuracy,
            "nonzero_parameters": measure.count_nonzero(model),
            "file_bytes": measure.file_size(path),
            "latency_ms": 1000 * speed[name].median,
        })
    base = rows[0]
    for row in rows:
        row["smaller_file"] = base["file_bytes"] / row["file_bytes"]
        row["speedup"] = base["latency_ms"] / row["latency_ms"]
    return rows


def _report(rows: list[dict], out: Path) -> None:
    header = ("| model | test accuracy | non-zero parameters | file bytes | file x smaller | "
              "latency ms (256 images) | speed-up |")
    lines = [header, "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {100 * r['test_accuracy']:.2f}% | "
                     f"{r['nonzero_parameters']:,d} | {r['file_bytes']:,d} | "
                     f"{r['smaller_file']:.2f} | {r['latency_ms']:.2f} | {r['speedup']:.2f} |")
    table = "\n".join(lines)
    print(table)
    atomic_write(out / "demo.md", table + "\n")
    atomic_write(out / "demo.json", json.dumps(rows, indent=2) + "\n")
    print(f"written: {out / 'demo.md'}, {out / 'demo.json'} and the five model files")
