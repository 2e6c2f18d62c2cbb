"""The demo: what each family of methods buys on LeNet-300-100 / Fashion-MNIST, and what they
buy combined, each row one recipe (netshrink.recipes) measured in the same run.

The recipes share one folder of stages, so the dense model trains once (and a rerun reuses
it: the demo resumes); every other row starts from its file. Rows:

- dense float32: the trained baseline (and the teacher);
- pruned 92%: magnitude at Deep Compression's layer rates, fine-tuned with the mask (smaller
  to store, no faster);
- structured: half the hidden neurons removed (smaller and faster);
- int8: static, calibrated;
- shared (Deep Compression): pruned 92%, 4-bit k-means weight sharing, entropy-coded .nsz file;
- student alone / distilled: a 784-100-10 MLP, trained on the labels or from the dense net;
- combined: structured (recovered by distillation from the dense net), pruned, fine-tuned,
  4-bit k-means weight sharing, .nsz; "combined, int8" the same with static int8 instead of
  the codebooks (the rates and the student's T and alpha chosen on validation by
  benchmarks/demo_choices.py).

Each row: test accuracy of the model loaded from its file, the file's bytes, latency at batch
1 and 256 on the fastest runtime it can be deployed on (all rows and runtimes timed
alternately in one call per batch size, 2 threads, real test images), as ratios to the dense
model on its fastest runtime. Writes demo.md, demo.csv, demo.json, demo.png and the
resolved recipes (config.json) into the output folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from netshrink.fileio import atomic_copy, atomic_write

BATCHES = (1, 256)
# Deep Compression's LeNet-300-100 rates (fc1 92%, fc2 91%, fc3 74% removed: 92% overall);
# a flat 90% of every layer leaves the 10-way output layer too few weights.
DEEP_COMPRESSION = {"1": 0.92, "3": 0.91, "5": 0.74}
# The combined row's rates and the distilled student's T and alpha were chosen on the
# validation split by benchmarks/demo_choices.py (docs/results/demo/choices.csv).
COMBINED_RATES = {"1": 0.8, "3": 0.7, "5": 0.4}
COMBINED_SHARE = {"bits": 4, "train": {"epochs": 1.0, "lr": 1e-4, "batch_size": 60}}
STUDENT_DISTILL = {"temperature": 1.0, "alpha": 0.5}
THREADS = 2
# medians of 60 calls: with 30, two runs on one idle machine (2026-12-03) read the dense
# model at batch 256 25% apart
REPEATS = 60


TEACHER = "teacher.safetensors"  # the dense row's model, copied beside the demo's tables


def _base(epochs: float, seed: int, dataset: str) -> tuple[dict, dict, dict]:
    """(the common recipe head, the training stage, the fine-tuning budget) of every row."""
    lr = {"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60}
    train = {"train": {"epochs": epochs, "lr_schedule": "cosine", **lr}}
    tune = {"epochs": max(1.0, round(0.3 * epochs, 1)), "lr": 1e-3, "lr_schedule": "cosine",
            "batch_size": 60}
    head = {"data": dataset, "seed": seed, "model": "lenet300",
            "measure": {"batch_sizes": list(BATCHES)}}
    return head, train, tune


def combined_recipe(rates: dict, tail: str, name: str = "combined", epochs: float = 10.0,
                    seed: int = 0, dataset: str = "fashion-mnist") -> dict:
    """Structured 50% (recovered by distillation from the dense net), magnitude pruning at
    `rates` ({layer: fraction removed}), fine-tuning, then `tail`: "share4" (4-bit k-means
    codebooks) or "int8" (static), written as .nsz."""
    head, train, tune = _base(epochs, seed, dataset)
    last = {"share4": {"share": dict(COMBINED_SHARE)},
            "int8": {"quantize": {"method": "static"}}}
    if tail not in last:
        from netshrink.errors import NetshrinkError

        raise NetshrinkError(f"tail={tail!r} must be one of {', '.join(last)}")
    return {**head, "name": name, "stages": [
        train, {"structured": {"sparsity": 0.5}},
        {"distill": {"teacher": "train", "temperature": 4.0, "alpha": 0.9, "train": tune}},
        {"prune": {"sparsity": 0.0, "scope": "layerwise", "layers": dict(rates)}},
        {"finetune": {**tune, "epochs": max(1.0, round(0.8 * epochs, 1))}},
        last[tail], {"export": {"format": "nsz"}}]}


def recipes(epochs: float = 10.0, seed: int = 0, dataset: str = "fashion-mnist",
            teacher: str = f"runs/demo/{TEACHER}") -> dict[str, dict]:
    """{row: recipe} of the demo. The distilled student's teacher is the dense row's model
    file (the demo copies it to OUT/teacher.safetensors once the dense recipe has run)."""
    head, train, tune = _base(epochs, seed, dataset)
    prune = {"prune": {"sparsity": 0.0, "scope": "layerwise", "layers": DEEP_COMPRESSION}}

    def recipe(name: str, *stages, model="lenet300") -> dict:
        return {**head, "name": name, "model": model, "stages": [train, *stages]}

    student = {"name": "mlp", "args": {"widths": [100]}}
    return {
        "dense float32": recipe("dense"),
        "pruned 92%": recipe("pruned", prune, {"finetune": tune}),
        "structured 50%": recipe("structured", {"structured": {"sparsity": 0.5}},
                                 {"finetune": tune}),
        "int8": recipe("int8", {"quantize": {"method": "static"}}),
        "shared 4-bit .nsz": recipe("shared", prune, {"finetune": tune},
                                    {"share": dict(COMBINED_SHARE)},
                                    {"export": {"format": "nsz"}}),
        "student alone": recipe("student", model=student),
        "student distilled": {**recipe("distilled", model=student),
                              "stages": [{"distill": {"teacher": {"file": teacher},
                                                      **STUDENT_DISTILL,
                                                      "train": train["train"]}}]},
        "combined": combined_recipe(COMBINED_RATES, "share4", "combined", epochs, seed,
                                    dataset),
        "combined, int8": combined_recipe(COMBINED_RATES, "int8", "combined-int8", epochs,
                                          seed, dataset),
    }


def write_recipes(folder: Path) -> list[Path]:
    """The demo's recipes as YAML files (recipes/demo/ in the repository is this output)."""
    import yaml

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data) -> bool:
            return True

    paths = []
    for label, recipe in recipes().items():
        name = recipe["name"]
        head = (f"# The demo's row `{label}` (netshrink demo runs all nine rows sharing one "
                "folder of\n# stages; written by netshrink.demo.write_recipes, checked by "
                "tests/test_demo.py).\n")
        if label == "student distilled":
            head += "# Its teacher is the dense row's model: run `netshrink demo` first.\n"
        head += f"#\n#   netshrink run recipes/demo/{name}.yaml --out runs/demo/recipes/{name}\n"
        body = yaml.dump(recipe, Dumper=NoAliases, sort_keys=False, default_flow_style=None,
                         width=96)
        paths.append(Path(folder) / f"{name}.yaml")
        atomic_write(paths[-1], head + body)
    return paths


def run(out: Path, epochs: float = 10.0, seed: int = 0, dataset: str = "fashion-mnist"
        ) -> list[dict]:
    """Run the demo's recipes into `out`, print the table, write it with a plot."""
    import netshrink
    from netshrink.recipes import load_recipe

    out = Path(out)
    plan = recipes(epochs, seed, dataset, teacher=str(out / TEACHER))
    stages = out / "stages"
    results = {}
    print(f"netshrink demo: LeNet-300-100 on {dataset}, {epochs:g} epochs, seed {seed}; "
          f"{len(plan)} recipes sharing {stages}")
    for i, (label, recipe) in enumerate(plan.items(), start=1):
        print(f"[{i}/{len(plan)}] {label}")
        result = netshrink.run(recipe, out / "recipes" / recipe["name"], stages=stages,
                               measure=False)
        results[label] = result
        if label == "dense float32":
            atomic_copy(result.row("train")["file"], out / TEACHER)  # reruns reuse it
    atomic_write(out / "config.json", json.dumps(
        {label: load_recipe(r).to_dict() for label, r in plan.items()}, indent=2) + "\n")
    rows = _rows(results)
    _measure(rows, dataset, seed)
    _write(rows, out)
    return rows


def _rows(results: dict) -> list[dict]:
    rows = []
    for label, result in results.items():
        last = result.rows[-1]
        rows.append({"model": label, "stage": last["stage"], "file": last["file"],
                     "test_accuracy": last["test_accuracy"], "file_bytes": last["bytes"]})
    return rows


def _measure(rows: list[dict], dataset: str, seed: int) -> None:
    """Latency of every row's model on each runtime it can be deployed on (float: PyTorch and
    onnxruntime; static int8: compile_int8's fastest integer program), all timed alternately
    in one call per batch size; each row keeps its fastest, and the ratios are to the dense
    model on its fastest runtime (the bar a user who deploys float32 would set)."""
    import tempfile

    import netshrink
    from netshrink import data
    from netshrink.data import tensors_of
    from netshrink.measure import compare_latency
    from netshrink.prune.speedup import export_float, onnx_session
    from netshrink.quant.int8 import as_deployed, is_static
    from netshrink.recipes.report import deployed
    from netshrink.train import evaluate

    test = data.load(dataset, seed=seed).test
    images = tensors_of(test)[0]
    models = {r["model"]: deployed(netshrink.load(r["file"])) for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {name: onnx_session(export_float(m, images[:1], Path(tmp) / f"{i}.onnx"),
                                       THREADS)
                    for i, (name, m) in enumerate(models.items()) if not is_static(m)}
        for batch in BATCHES:
            x = images[:batch]
            sides = {}
            for row in rows:
                name, model = row["model"], models[row["model"]]
                if name in sessions:
                    session = sessions[name]
                    feed = {session.get_inputs()[0].name: x.numpy()}
                    sides[(name, "torch")] = lambda m=model, x=x: m(x)
                    sides[(name, "onnxruntime")] = lambda s=session, f=feed: s.run(None, f)
                    continue
                program, runtime, note = as_deployed(model, x, runtime="auto",
                                                     threads=THREADS)
                sides[(name, runtime)] = lambda p=program, x=x: p(x)
                if note:
                    row["runtime_note"] = note
                if "deployed_accuracy" not in row:
                    row["deployed_accuracy"] = evaluate(program, test)[1]
            labels = {f"{name} | {runtime}": (name, runtime) for name, runtime in sides}
            stats = compare_latency({label: sides[key] for label, key in labels.items()},
                                    repeats=REPEATS, warmup=3, num_threads=THREADS, settle=1,
                                    isolate=True)
            for row in rows:
                timed = {key[1]: 1e3 * stats[label].median for label, key in labels.items()
                         if key[0] == row["model"]}
                runtime = min(timed, key=timed.get)
                row[f"latency_ms_b{batch}"] = timed[runtime]
                row[f"runtime_b{batch}"] = runtime
                row[f"by_runtime_ms_b{batch}"] = timed
    dense = rows[0]
    for row in rows:
        row["x_smaller"] = dense["file_bytes"] / row["file_bytes"]
        row["accuracy_change"] = row["test_accuracy"] - dense["test_accuracy"]
        for batch in BATCHES:
            row[f"speedup_b{batch}"] = (dense[f"latency_ms_b{batch}"]
                                        / row[f"latency_ms_b{batch}"])


def _write(rows: list[dict], out: Path) -> None:
    from netshrink.bench.report import write_csv

    head = ("| model | test accuracy | change | file bytes | x smaller | latency ms b1 | "
            "speed-up b1 | latency ms b256 | speed-up b256 | runtime |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['model']} | {100 * r['test_accuracy']:.2f}% | "
            f"{100 * r['accuracy_change']:+.2f} | {r['file_bytes']:,d} | {r['x_smaller']:.1f} | "
            f"{r['latency_ms_b1']:.3f} | {r['speedup_b1']:.2f} | {r['latency_ms_b256']:.3f} | "
            f"{r['speedup_b256']:.2f} | {_runtimes(r)} |")
    table = "\n".join(lines) + "\n"
    print(table, end="")
    atomic_write(out / "demo.md", "# netshrink demo\n\n" + table + _note())
    atomic_write(out / "demo.json", json.dumps(rows, indent=2) + "\n")
    write_csv(rows, out / "demo.csv")
    _plot(rows, out / "demo.png")
    print(f"written: {out / 'demo.md'}, demo.csv, demo.json, demo.png, config.json")


def _runtimes(row: dict) -> str:
    b1, b256 = row["runtime_b1"], row["runtime_b256"]
    return b1 if b1 == b256 else f"b1: {b1}; b256: {b256}"


def _note() -> str:
    return ("\nAccuracy of the model loaded from each row's file; bytes of that file; latency: "
            f"median of {REPEATS} alternated, isolated calls per batch size, {THREADS} threads, "
            "real test images, each model as deployed (masks and codebooks computed into plain "
            "weights) on every runtime it can run on (float: PyTorch and onnxruntime; static int8: "
            "netshrink's integer program, compile_int8 choosing its runtime), all sides in one "
            "run; each row shows its fastest, and the ratios are to the dense model on its "
            "fastest runtime. demo.json has every side's time and the int8 programs' accuracy "
            "as run.\n")


def _plot(rows: list[dict], path: Path) -> None:
    from netshrink.bench.report import new_figure, save_figure

    fig = new_figure(10, 4)
    size, speed = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for r in rows:
        accuracy = 100 * r["test_accuracy"]
        size.scatter(r["file_bytes"], accuracy)
        size.annotate(r["model"], (r["file_bytes"], accuracy), fontsize=7)
        speed.scatter(r["latency_ms_b256"], accuracy)
        speed.annotate(r["model"], (r["latency_ms_b256"], accuracy), fontsize=7)
    size.set_xscale("log")
    size.set_xlabel("file bytes (log)")
    speed.set_xlabel("latency, ms per 256 images")
    for ax in (size, speed):
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
