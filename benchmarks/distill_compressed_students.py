"""Distillation as the retraining step of pruning and of quantization-aware training.

Takes the default distillation reproduction's trained nets (Fashion-MNIST: the three seeds'
2x800 MLPs trained alone, and the ResNet-8 teacher) and compresses each MLP two ways:

- magnitude pruning (global) to --sparsity, then --prune-epochs of retraining;
- quantization-aware training with --bits-bit weights (per channel; 4 and 2 by default),
  --qat-epochs of fine-tuning, then conversion to integer layers.

Each retraining runs three times from the same compressed net with the same optimizer, budget
and seed: on the labels alone, distilled from the ResNet-8 (T, alpha as experiment 2), and
distilled from the uncompressed net itself (self-distillation, the usual recipe for QAT).
Test accuracy at the end of the budget (no early stopping: the same fixed schedule on both
sides), mean ± std over the seeds; rows go to results.csv, the resolved settings to config.json.

    netshrink reproduce distillation --workers 2     # once: the nets this script starts from
    PYTHONPATH=src python benchmarks/distill_compressed_students.py
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

import netshrink
from netshrink import data
from netshrink.distill import DistillConfig
from netshrink.fileio import atomic_write
from netshrink.quant import QAT, convert
from netshrink.train import TrainConfig, evaluate, fit


def nets(folder: Path, data_name: str) -> tuple[Path, dict[int, Path]]:
    """The reproduction's ResNet teacher and its 2x800 MLPs alone, by seed (from the nets it
    lists in distillation.csv, one row per trained net with its role and trial id)."""
    table = folder / "distillation.csv"
    rows = list(csv.DictReader(table.open())) if table.is_file() else []
    mine = [r for r in rows if r["data"] == data_name]
    teacher = next((r["trial_id"] for r in mine if r["role"] == "resnet"), None)
    if teacher is None:
        raise SystemExit(f"{folder} has no ResNet teacher for {data_name}; run "
                         f"`netshrink reproduce distillation` first")
    students = {int(r["seed"]): r["trial_id"] for r in mine if r["role"] == "small"}

    def model_file(trial_id: str) -> Path:
        return folder / "sweep" / "trials" / trial_id / "model.safetensors"

    return model_file(teacher), {s: model_file(t) for s, t in sorted(students.items())}


def retrain(model, teacher, splits, train: TrainConfig, soft: DistillConfig | None) -> None:
    """The same schedule on the labels alone (soft None) or distilled from the teacher."""
    if soft is None:
        fit(model, splits, train, progress=False)
    else:
        netshrink.distill(model, teacher, splits, soft, train, progress=False)


def compressions(args) -> list[tuple[str, Callable, Callable, float, float]]:
    """(name, compress(model, splits), finish(model), retraining epochs, learning rate)."""
    def prune(model, splits):
        netshrink.prune_(model, "magnitude", sparsity=args.sparsity, scope="global")

    out = [(f"pruned {args.sparsity:.0%}", prune, lambda model: None, args.prune_epochs, args.lr)]
    for bits in args.bits:
        def qat(model, splits, bits=bits):
            netshrink.quantize_(model, QAT(bits=bits), data=splits)
        out.append((f"QAT, {bits}-bit weights", qat, convert, args.qat_epochs, args.qat_lr))
    return out


def run(args: argparse.Namespace) -> list[dict]:
    teacher_file, student_files = nets(Path(args.reproduction), args.data)
    teacher = netshrink.load(teacher_file).eval()
    soft = DistillConfig(temperature=args.temperature, alpha=args.alpha,
                         cache_dir=str(Path(args.out) / "teacher-cache"))
    rows = []
    for seed, file in student_files.items():
        splits = data.load(args.data, seed=seed)
        dense = netshrink.load(file).eval()
        dense_acc = evaluate(dense, splits.test)[1]
        arms = {"labels": (None, None), "resnet": (teacher, soft), "self": (dense, soft)}
        for name, compress, finish, epochs, lr in compressions(args):
            for arm, (teaching, arm_soft) in arms.items():
                model = copy.deepcopy(dense)
                compress(model, splits)
                before = evaluate(model, splits.test)[1]
                start = time.perf_counter()
                retrain(model, teaching, splits, train_config(args, epochs, seed, lr), arm_soft)
                finish(model)
                rows.append({"seed": seed, "compression": name, "retraining": arm,
                             "dense": dense_acc, "before_retraining": before,
                             "test_accuracy": evaluate(model, splits.test)[1],
                             "density": netshrink.prune.density(model) if "pruned" in name
                             else 1.0,
                             "seconds": time.perf_counter() - start})
                print(rows[-1], flush=True)
    return rows


def train_config(args, epochs: float, seed: int, lr: float) -> TrainConfig:
    return TrainConfig(optimizer="adam", lr=lr, batch_size=128, epochs=epochs,
                       lr_schedule="cosine", seed=seed, device=args.device)


def table(rows: list[dict]) -> str:
    """Mean ± std over seeds of each compression and retraining."""
    def stat(values):
        values = [100 * v for v in values]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2f} ± {spread:.2f}%"

    lines = ["| compression | dense | before retraining | retrained on labels | "
             "distilled from the ResNet-8 | distilled from the dense net itself |",
             "|---|---|---|---|---|---|"]
    for comp in dict.fromkeys(r["compression"] for r in rows):
        by_arm = {a: [r for r in rows if r["compression"] == comp and r["retraining"] == a]
                  for a in ("labels", "resnet", "self")}
        accuracy = {a: [r["test_accuracy"] for r in by_arm[a]] for a in by_arm}
        gain = {a: 100 * (statistics.mean(accuracy[a]) - statistics.mean(accuracy["labels"]))
                for a in by_arm}
        lines.append(f"| {comp} | {stat([r['dense'] for r in by_arm['labels']])} | "
                     f"{stat([r['before_retraining'] for r in by_arm['labels']])} | "
                     f"{stat(accuracy['labels'])} | "
                     f"{stat(accuracy['resnet'])} ({gain['resnet']:+.2f}) | "
                     f"{stat(accuracy['self'])} ({gain['self']:+.2f}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reproduction", default="runs/reproduce/distillation",
                        help="the folder of `netshrink reproduce distillation`")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--sparsity", type=float, default=0.95)
    parser.add_argument("--prune-epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 2])
    parser.add_argument("--qat-epochs", type=float, default=1.0)
    parser.add_argument("--qat-lr", type=float, default=1e-4)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="runs/kd/compressed-students")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run(args)
    text = table(rows)
    print(text)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / "results.csv", buffer.getvalue())
    atomic_write(out / "results.md", text + "\n")
    atomic_write(out / "config.json", json.dumps(vars(args), indent=2) + "\n")


if __name__ == "__main__":
    main()
