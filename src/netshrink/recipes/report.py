"""A recipe's table: per stage, the accuracy, bytes and latency of the model in its file.

Latency is measured once every stage has run, all stages' models timed in one
`netshrink.measure.compare_latency` call per batch size (alternated, so load from elsewhere
hits every side alike), on real test examples, with the recipe's thread count, each model as
deployed (masks and shared codebooks computed once into plain weights; a statically quantized
model compiled by netshrink.quant.compile_int8 for each batch size, on the recipe's `runtime`,
the fastest by default). Ratios are to the reference stage: the one just before the first stage
that compresses (prune, quantize, ...), the dense trained model.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn
from torch.nn.utils import parametrize

from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_write
from netshrink.recipes.stages import KINDS

if TYPE_CHECKING:
    import torch

    from netshrink.data.splits import Splits
    from netshrink.recipes.runner import RunResult
    from netshrink.recipes.schema import Recipe


def reference_stage(recipe: Recipe, rows: list[dict]) -> str:
    """The stage ratios are taken to: the last before the first compressing stage."""
    names = [r["stage"] for r in rows]
    for stage in recipe.stages:
        if KINDS[stage.kind].compresses:
            return names[names.index(stage.name) - 1]
    return names[-1]


def deployed(model: nn.Module) -> nn.Module:
    """The model as it runs once shipped: every parametrization (masks, shared codebooks)
    computed once into a plain weight (a mask's zeros stay zeros), in eval mode."""
    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return model.eval()


def compiled_for(
    recipe: Recipe,
    stage: str,
    model: nn.Module,
    example: torch.Tensor,
    splits: Splits,
) -> tuple[nn.Module, str, str | None]:
    """(what to time, runtime label, why it is not compiled or None) for one stage's model
    at one batch size: netshrink.quant.int8.as_deployed on the recipe's runtime (a statically
    quantized model compiled; float and dynamic ones, and under auto a model compile_int8
    cannot lower, as the PyTorch modules they are)."""
    from netshrink.quant.int8 import as_deployed

    settings = recipe.measure
    try:
        return as_deployed(model, example, data=splits, runtime=recipe.runtime,
                           threads=settings["threads"], repeats=settings["repeats"])
    except NetshrinkError as err:
        raise NetshrinkError(f"stage {stage!r}: runtime {recipe.runtime!r}: {err} (runtime: "
                             "auto times the integer modules instead)") from None


def measure_rows(
    recipe: Recipe,
    rows: list[dict],
    files: dict[str, Path],
    splits: Splits,
    model_factory: Callable[[], nn.Module] | None,
) -> None:
    """Add latency (ms per batch) at each of the recipe's batch sizes to every row, the
    runtime each stage was timed on, and a compiled stage's test accuracy as compiled."""
    import netshrink
    from netshrink.data import tensors_of
    from netshrink.measure import compare_latency
    from netshrink.train import evaluate

    settings = recipe.measure
    loaded = {name: deployed(netshrink.load(path, model=model_factory() if model_factory
                                            else None)) for name, path in files.items()}
    inputs = tensors_of(splits.test)[0]
    runtimes: dict[str, dict[int, str]] = {name: {} for name in loaded}
    for batch in settings["batch_sizes"]:
        example = inputs[:batch]
        timed = {}
        for row in rows:
            name = row["stage"]
            timed[name], runtimes[name][batch], note = compiled_for(recipe, name, loaded[name],
                                                                    example, splits)
            if note:
                row["runtime_note"] = note
            elif timed[name] is not loaded[name] and "runtime_accuracy" not in row:
                row["runtime_accuracy"] = evaluate(timed[name], splits.test)[1]
        stats = compare_latency({n: (lambda m=m, x=example: m(x)) for n, m in timed.items()},
                                repeats=settings["repeats"], warmup=settings["warmup"],
                                num_threads=settings["threads"], settle=1,
                                isolate=True)
        for row in rows:
            s = stats[row["stage"]]
            row[f"latency_ms_b{batch}"] = 1e3 * s.median
            row[f"latency_p90_ms_b{batch}"] = 1e3 * s.p90
    for row in rows:
        row["runtime"] = runtime_label(runtimes[row["stage"]])
    reference = reference_stage(recipe, rows)
    base = next(r for r in rows if r["stage"] == reference)
    for row in rows:
        row["reference"] = reference
        row["x_smaller"] = base["bytes"] / row["bytes"]
        for batch in settings["batch_sizes"]:
            key = f"latency_ms_b{batch}"
            row[f"speedup_b{batch}"] = base[key] / row[key]


def runtime_label(by_batch: dict[int, str]) -> str:
    """One runtime, or each batch size's when they differ ('b1: onnxruntime; b256: torch')."""
    if len(set(by_batch.values())) == 1:
        return next(iter(by_batch.values()))
    return "; ".join(f"b{batch}: {label}" for batch, label in by_batch.items())


def write_tables(recipe: Recipe, result: RunResult) -> None:
    """results.json, results.csv and results.md in the run's folder."""
    out = Path(result.out)
    rows = result.rows
    atomic_write(out / "results.json", json.dumps(rows, indent=2, default=str) + "\n")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (json.dumps(v) if isinstance(v, dict | list) else v)
                         for k, v in row.items()})
    atomic_write(out / "results.csv", buffer.getvalue())
    atomic_write(out / "results.md", markdown(recipe, rows))


def markdown(recipe: Recipe, rows: list[dict]) -> str:
    sizes = recipe.measure["batch_sizes"]
    head = ["stage", "test accuracy", "file bytes", "x smaller"]
    for b in sizes:
        head += [f"latency ms (batch {b})", f"speed-up (batch {b})"]
    head.append("runtime")
    lines = [f"# {recipe.name}", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["stage"], f"{100 * r['test_accuracy']:.2f}%", f"{r['bytes']:,d}",
                 _num(r.get("x_smaller"))]
        for b in sizes:
            cells += [_num(r.get(f"latency_ms_b{b}"), 3), _num(r.get(f"speedup_b{b}"))]
        cells.append(r.get("runtime", "-"))
        lines.append("| " + " | ".join(cells) + " |")
    reference = rows[0].get("reference")
    if reference:
        lines += ["", f"Ratios to stage `{reference}`; latency: median of "
                  f"{recipe.measure['repeats']} alternated, isolated calls, "
                  f"{recipe.measure['threads']} threads, on test examples; accuracy of the model "
                  "loaded from each stage's file."]
    compiled = [r for r in rows if "runtime_accuracy" in r]
    if compiled:
        lines += ["", f"Statically quantized stages are timed as `netshrink.quant.compile_int8` "
                  f"runs them (runtime {recipe.runtime}); test accuracy as compiled: "
                  + ", ".join(f"{r['stage']} {100 * r['runtime_accuracy']:.2f}%"
                              for r in compiled) + "."]
    return "\n".join(lines) + "\n"


def _num(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
