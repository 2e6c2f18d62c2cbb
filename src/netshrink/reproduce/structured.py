"""Structured pruning that makes the model faster: ResNet-20 and the small VGG on Fashion-MNIST,
channels removed by each criterion, fine-tuned, accuracy against the *measured* speed-up;
Torch-Pruning at the same ratios and fine-tuning budget beside ours in the same run; the
unstructured-magnitude model at the same parameter count as the control (same size, no
speed-up); network slimming's published VGG result beside (Liu et al. 2017)."""

from __future__ import annotations

from pathlib import Path

from netshrink.bench import TrialSpec
from netshrink.bench.report import aggregate, new_figure, save_figure, write_csv
from netshrink.prune import StructuredConfig
from netshrink.prune.speedup import RUNTIMES
from netshrink.reproduce import ReproOptions
from netshrink.reproduce.template import Run, find, pm

PAPER = ("Network slimming (Liu et al. 2017, Table 1): VGGNet on CIFAR-10 with 70% of the "
         "channels removed: 93.77% -> 93.78% test accuracy, 20.04M -> 2.30M parameters "
         "(the issue quotes 2.25M), trained with lambda = 1e-4 and fine-tuned after pruning. "
         "Not comparable in data or scale to this run (CIFAR-10, 16x wider network, 160 "
         "epochs); shown for the protocol.")
TARGETS = ("ResNet-20 with half its channels removed: >= 3x faster at batch 64 and >= 1.4x at "
           "batch 1 (measured, same run), <= 1 point of accuracy lost after fine-tuning (mean "
           "of 3 seeds), and at least Torch-Pruning's accuracy at every ratio tried (its "
           "latency at the same ratio is measured beside).")


def settings(options: ReproOptions) -> dict:
    full = options.full
    return {
        "models": {"resnet": {"depth": 20, "width": 16}, "vgg": {"width": 16}},
        "data": (options.data or ("fashion-mnist",))[0],
        "data_args": {"val_size": 5000 if full else 500},
        "train_size": None if full else 12000,
        "test_size": None,
        "seeds": list(options.seeds or (0, 1, 2)),
        "sparsities": [0.3, 0.5, 0.7] if full else [0.5],
        "criteria": ["l1", "group_l1", "l2", "taylor", "bn_scale", "random"] if full else
                    ["l1", "group_l1", "taylor", "bn_scale", "random"],
        "torch_pruning": ["l1", "taylor", "bn_scale"] if full else ["l1"],
        "train": {"optimizer": "adam", "lr": 2e-3, "batch_size": 128,
                  "epochs": 15.0 if full else 4.0, "lr_schedule": "cosine"},
        "finetune": {"lr": 1e-3, "epochs": 5.0 if full else 2.0},
        # recovery arms: the default criterion distilled from the dense base at the same
        # budget, and three times the budget for it, Torch-Pruning and the unpruned net
        # (ResNet-20 only; distillation at three times the budget with --full)
        "recovery_arms": [
            {"engine": "netshrink", "criterion": "group_l1", "recovery": "distill",
             "budget": 1, "models": ["resnet", "vgg"]},
            {"engine": "netshrink", "criterion": "group_l1", "recovery": "finetune",
             "budget": 3, "models": ["resnet"]},
            {"engine": "torch-pruning", "criterion": "l1", "recovery": "finetune",
             "budget": 3, "models": ["resnet"]},
            *([{"engine": "netshrink", "criterion": "group_l1", "recovery": "distill",
                "budget": 3, "models": ["resnet"]}] if full else []),  # 1 h more: --full only
            # the dense base trained as long again: what the longer budget gives unpruned
            {"engine": "dense", "criterion": "l1", "recovery": "finetune", "budget": 3,
             "models": ["resnet"]},
        ],
        "slimming": 1e-5 if full else 0.0,
        "latency": {"batches": [1, 64], "threads": 2, "repeats": 30 if full else 20},
    }


def describe(options: ReproOptions, s: dict) -> str:
    val = s["data_args"]["val_size"]
    size = ("the full training set" if s["train_size"] is None else
            f"the first {s['train_size']:,} training images (validation {val}, test: "
            + ("all test images" if s["test_size"] is None else
               f"the first {s['test_size']:,} test images") + ")")
    return (f"{'full' if options.full else 'default'} run: ResNet-20 and the quarter-width VGG "
            f"on {s['data']}, {size}; dense nets trained {s['train']['epochs']:g} epochs "
            f"(Adam, cosine), then each arm prunes {', '.join(f'{x:.0%}' for x in s['sparsities'])}"
            f" of every channel group (layerwise; bn_scale global, as network slimming) and "
            f"fine-tunes {s['finetune']['epochs']:g} epoch(s); criteria {', '.join(s['criteria'])}"
            f"; Torch-Pruning {', '.join(s['torch_pruning'])} at the same ratios and budget; "
            + "".join(f"{_recovery_name(arm, s)} ({', '.join(arm['models'])}); "
                      for arm in s.get("recovery_arms", []))
            +
            "the unstructured-magnitude control at the l1 architecture's parameter count; "
            f"seeds {s['seeds']}. Latency: seed {s['seeds'][0]}'s architectures, batch "
            f"{' and '.join(map(str, s['latency']['batches']))}, torch (eager), TorchScript "
            "(traced, frozen, optimized for inference) and onnxruntime, "
            f"{s['latency']['threads']} threads, {s['latency']['repeats']} alternated runs. "
            + ("" if s["slimming"] else "Bases trained without the slimming penalty (bn_scale "
               "ranks plain BatchNorm scales; --full trains with lambda = 1e-5). ")
            + ("The default is scaled down to fit the shared 2-core machine: a training "
               f"subset, {s['train']['epochs']:g} epochs, one ratio; --full runs the longer "
               "protocol."
               if not options.full else ""))


def _scope(criterion: str) -> str:
    return "global" if criterion == "bn_scale" else "layerwise"


def _arms(s: dict) -> list[list[str]]:
    arms = [["netshrink", c, _scope(c)] for c in s["criteria"]]
    arms += [["torch-pruning", c, _scope(c)] for c in s["torch_pruning"]]
    return [*arms, ["unstructured", "l1", "layerwise"]]


def _base_key(arm: dict) -> str:
    """The key of the plain arm a recovery arm shares its architecture with."""
    return f"{arm['engine']}:{arm['criterion']}:{_scope(arm['criterion'])}"


def _speed_key(arm: dict) -> str:
    """The latency rows of a recovery arm's architecture (the dense net's own for "dense")."""
    return "dense" if arm["engine"] == "dense" else _base_key(arm)


def _recovery_key(arm: dict) -> str:
    """The table key of a recovery arm: its base arm's, then how it recovered."""
    key = _base_key(arm)
    if arm["recovery"] == "distill":
        key += ":distill"
    return key + (f":x{arm['budget']:g}" if arm["budget"] != 1 else "")


def _recovery_name(arm: dict, s: dict) -> str:
    how = "distilled from the dense net" if arm["recovery"] == "distill" else "fine-tuned"
    return (f"{_arm_name(arm['engine'], arm['criterion'])}, {how} "
            f"{arm['budget'] * s['finetune']['epochs']:g} epochs")


def _subset(s: dict) -> dict:
    return {"train_size": s["train_size"], "test_size": s["test_size"]}


def bases(s: dict) -> dict[tuple[str, int], TrialSpec]:
    return {(model, seed): TrialSpec("structured_base", model, s["data"], args, s["data_args"],
                                     {**_subset(s), "slimming": s["slimming"]}, s["train"], seed)
            for model, args in s["models"].items() for seed in s["seeds"]}


def prune_trials(s: dict) -> list[TrialSpec]:
    out = []
    for (model, seed), base in bases(s).items():
        for sparsity in s["sparsities"]:
            for engine, criterion, scope in _arms(s):
                out.append(TrialSpec(
                    "structured", model, s["data"], s["models"][model], s["data_args"],
                    {"base": base.trial_id, "engine": engine, "criterion": criterion,
                     "scope": scope, "sparsity": sparsity, "finetune": s["finetune"],
                     **_subset(s)}, s["train"], seed))
        for arm in s.get("recovery_arms", []):
            if model not in arm["models"]:
                continue
            finetune = {**s["finetune"], "epochs": arm["budget"] * s["finetune"]["epochs"]}
            for sparsity in s["sparsities"]:
                out.append(TrialSpec(
                    "structured", model, s["data"], s["models"][model], s["data_args"],
                    {"base": base.trial_id, "engine": arm["engine"],
                     "criterion": arm["criterion"], "scope": _scope(arm["criterion"]),
                     "sparsity": sparsity, "finetune": finetune,
                     "recovery": arm["recovery"], **_subset(s)}, s["train"], seed))
    return out


def latency_trials(s: dict) -> list[TrialSpec]:
    seed = s["seeds"][0]
    return [TrialSpec("structured_latency", model, s["data"], s["models"][model],
                      s["data_args"], {"base": bases(s)[(model, seed)].trial_id,
                                       "arms": _arms(s), "sparsity": sparsity,
                                       "train_size": s["train_size"], **s["latency"]},
                      s["train"], seed)
            for model in s["models"] for sparsity in s["sparsities"]]


def stages(s: dict, options: ReproOptions) -> list[list[TrialSpec]]:
    return [list(bases(s).values()), prune_trials(s), latency_trials(s)]


def _arm_name(engine: str, criterion: str) -> str:
    return {"netshrink": f"netshrink {criterion}", "torch-pruning": f"Torch-Pruning {criterion}",
            "unstructured": "unstructured magnitude (control)",
            "dense": "dense, nothing removed (control)"}[engine]


def rows_of(run: Run) -> tuple[list[dict], list[dict]]:
    """(accuracy rows, one per pruning trial), (latency rows, one per arm, runtime, batch)."""
    s = run.settings
    base_accuracy = {spec.trial_id: run.row(spec)["metrics"]["test_accuracy"]
                     for spec in bases(s).values() if run.row(spec) is not None}
    accuracy = []
    for spec in prune_trials(s):
        row = run.row(spec)
        if row is None or spec.params["base"] not in base_accuracy:
            continue
        p = spec.params
        base = base_accuracy[p["base"]]
        key, name = f"{p['engine']}:{p['criterion']}:{p['scope']}", _arm_name(p["engine"],
                                                                              p["criterion"])
        if "recovery" in p:
            arm = {**p, "budget": p["finetune"]["epochs"] / s["finetune"]["epochs"]}
            key, name = _recovery_key(arm), _recovery_name(arm, s)
        accuracy.append({"model": spec.model, "seed": spec.seed, "sparsity": p["sparsity"],
                         "arm": name, "key": key,
                         **row["metrics"], "base_test_accuracy": base,
                         "accuracy_lost": base - row["metrics"]["test_accuracy"]})
    latency = []
    for spec in latency_trials(s):
        row = run.row(spec)
        if row is None:
            continue
        for key, value in row["metrics"].items():
            parts = key.split("|")
            if len(parts) == 4 and parts[3] == "speedup":
                latency.append({"model": spec.model, "sparsity": spec.params["sparsity"],
                                "key": parts[0], "runtime": parts[1], "batch": int(parts[2]),
                                "speedup": value,
                                "median_ms": row["metrics"][key.replace("speedup",
                                                                        "median_ms")]})
    return accuracy, latency


def _speed(latency: list[dict], model: str, sparsity: float, key: str, runtime: str,
           batch: int) -> str:
    row = find(latency, model=model, sparsity=sparsity, key=key, runtime=runtime, batch=batch)
    return f"{row['speedup']:.2f}x" if row else "n/a"


def markdown(table: list[dict], latency: list[dict], s: dict, note: str) -> str:
    parts = ["# Structured pruning: accuracy against measured speed-up", "", note, "",
             "Test accuracy (%) after fine-tuning, mean ± std over seeds; accuracy lost = the "
             "dense base's accuracy minus the fine-tuned pruned net's, per seed; parameters "
             "(non-zero for the control); speed-ups are measured latency ratios against the "
             "dense net in one run (sides alternated), never FLOPs ratios.", ""]
    for model in s["models"]:
        for sparsity in s["sparsities"]:
            parts += [f"## {model}, {sparsity:.0%} of the channels removed", "",
                      "| arm | accuracy | accuracy lost | params | FLOPs | torch b1 | torch b64 "
                      "| TorchScript b1 | TorchScript b64 | onnxruntime b1 | onnxruntime b64 |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]
            dense = [r for r in table if r["model"] == model and r["sparsity"] == sparsity]
            if dense:
                d = aggregate(dense, ["model"], ["base_test_accuracy", "parameters_before",
                                                 "flops_before"])[0]
                accuracy = pm(d["base_test_accuracy_mean"], d["base_test_accuracy_std"])
                parts.append(f"| dense | {accuracy} | | {d['parameters_before_mean']:,.0f} | "
                             f"{d['flops_before_mean']:,.0f} | "
                             + " | ".join(["1.00x"] * 2 * len(RUNTIMES)) + " |")
            arms = [(":".join(arm), ":".join(arm)) for arm in _arms(s)]
            arms += [(_recovery_key(arm), _speed_key(arm))
                     for arm in s.get("recovery_arms", []) if model in arm["models"]]
            for key, speed_key in arms:
                a = find(aggregate([r for r in table if r["key"] == key],
                                   ["model", "sparsity", "arm"],
                                   ["test_accuracy", "accuracy_lost", "parameters_after",
                                    "flops_after"]), model=model, sparsity=sparsity)
                if not a:
                    continue
                parts.append("| " + " | ".join([
                    a["arm"], pm(a["test_accuracy_mean"], a["test_accuracy_std"]),
                    pm(a["accuracy_lost_mean"], a["accuracy_lost_std"]),
                    f"{a['parameters_after_mean']:,.0f}", f"{a['flops_after_mean']:,.0f}",
                    *[_speed(latency, model, sparsity, speed_key, rt, b) for rt in RUNTIMES
                      for b in s["latency"]["batches"]]]) + " |")
            parts.append("")
    parts += ["## The issue's targets", "", TARGETS, "", *findings(table, latency, s), "",
              PAPER, ""]
    return "\n".join(parts)


def findings(table: list[dict], latency: list[dict], s: dict) -> list[str]:
    lines = []
    if 0.5 in s["sparsities"]:
        default = StructuredConfig().criterion
        key = f"netshrink:{default}:layerwise"
        for runtime in RUNTIMES:
            b64 = find(latency, model="resnet", sparsity=0.5, key=key, runtime=runtime,
                       batch=64)
            b1 = find(latency, model="resnet", sparsity=0.5, key=key, runtime=runtime, batch=1)
            if b64 and b1:
                lines.append(
                    f"- ResNet-20, 50%, netshrink {default}, {runtime}: {b64['speedup']:.2f}x "
                    f"at batch 64 (target 3x: {'met' if b64['speedup'] >= 3 else 'not met'}), "
                    f"{b1['speedup']:.2f}x at batch 1 (target 1.4x: "
                    f"{'met' if b1['speedup'] >= 1.4 else 'not met'})")
        for criterion in dict.fromkeys(("l1", default)):
            lost = find(aggregate([r for r in table
                                   if r["key"] == f"netshrink:{criterion}:layerwise"],
                                  ["model", "sparsity"], ["accuracy_lost"]),
                        model="resnet", sparsity=0.5)
            if lost:
                value = lost["accuracy_lost_mean"]
                lines.append(f"- ResNet-20, 50%, netshrink {criterion}: {100 * value:.2f} points "
                             f"lost after fine-tuning, mean of {lost['n']} seeds (target <= 1: "
                             f"{'met' if value <= 0.01 else 'not met'})")
        arms = [arm for arm in s.get("recovery_arms", []) if "resnet" in arm["models"]]
        dense = next((arm for arm in arms if arm["engine"] == "dense"), None)
        control = dense and _resnet_half(table, _recovery_key(dense), "test_accuracy")
        for arm in arms:
            lost = _resnet_half(table, _recovery_key(arm), "accuracy_lost")
            if lost:
                value = lost["accuracy_lost_mean"]
                lines.append(f"- ResNet-20, 50%, {_recovery_name(arm, s)}: {100 * value:.2f} "
                             f"points lost, mean of {lost['n']} seeds (target <= 1: "
                             f"{'met' if value <= 0.01 else 'not met'})")
        for arm in arms:
            ours = _resnet_half(table, _recovery_key(arm), "test_accuracy")
            if control and ours and arm is not dense and arm["budget"] == dense["budget"]:
                diff = ours["test_accuracy_mean"] - control["test_accuracy_mean"]
                lines.append(f"- ResNet-20, 50%, {_recovery_name(arm, s)}: {100 * diff:+.2f} "
                             "points against the dense net trained as long (the same budget, "
                             "nothing removed)")
    for model in s["models"]:
        for sparsity in s["sparsities"]:
            acc = aggregate([r for r in table if r["model"] == model and
                             r["sparsity"] == sparsity], ["key"], ["test_accuracy"])
            theirs = find(acc, key="torch-pruning:l1:layerwise")
            for criterion in ("l1", "group_l1"):
                ours = find(acc, key=f"netshrink:{criterion}:layerwise")
                if ours and theirs:
                    diff = ours["test_accuracy_mean"] - theirs["test_accuracy_mean"]
                    lines.append(f"- {model} {sparsity:.0%}: netshrink {criterion} "
                                 f"{100 * diff:+.2f} points against Torch-Pruning l1 (same "
                                 "ratio, same budget, same bases)")
    return lines


def _resnet_half(table: list[dict], key: str, metric: str) -> dict | None:
    """The seeds' mean of `metric` for arm `key` on ResNet-20 at 50% (None if not run)."""
    return find(aggregate([r for r in table if r["key"] == key], ["model", "sparsity"],
                          [metric]), model="resnet", sparsity=0.5)


def plot(table: list[dict], latency: list[dict], s: dict, out: Path) -> None:
    fig = new_figure(11, 4.2)
    for i, model in enumerate(s["models"]):
        ax = fig.add_subplot(1, len(s["models"]), i + 1)
        for arm in _arms(s):
            key = ":".join(arm)
            points = []
            for sparsity in s["sparsities"]:
                a = find(aggregate([r for r in table if r["key"] == key and r["model"] == model
                                    and r["sparsity"] == sparsity], ["key"],
                                   ["test_accuracy"]), key=key)
                speed = find(latency, model=model, sparsity=sparsity, key=key,
                             runtime="torch", batch=64)
                if a and speed:
                    points.append((speed["speedup"], a["test_accuracy_mean"]))
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=_arm_name(*arm[:2]))
        ax.set_xlabel("measured speed-up, torch, batch 64")
        ax.set_ylabel("test accuracy after fine-tuning")
        ax.set_title(model)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    save_figure(fig, out / "accuracy_vs_speedup.png")


def tables(run: Run) -> str:
    table, latency = rows_of(run)
    write_csv(table, run.out / "accuracy.csv")
    write_csv(latency, run.out / "latency.csv")
    plot(table, latency, run.settings, run.out)
    return markdown(table, latency, run.settings, run.note)
