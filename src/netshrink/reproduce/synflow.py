"""Tanaka et al. (2020), Pruning neural networks without any data by iteratively conserving
synaptic flow: Random, Magnitude, SNIP, GraSP and SynFlow applied at initialization (global
scope) to a small VGG and a small ResNet, then trained; test accuracy against compression
10^0 .. 10^3 in steps of 10^0.5, with layer collapse (a layer left with no weight) marked.
"""

from __future__ import annotations

from pathlib import Path

from netshrink.bench import TrialSpec
from netshrink.bench.report import aggregate, new_figure, save_figure, write_csv
from netshrink.reproduce import ReproOptions
from netshrink.reproduce.template import Run, find, pm

METHODS = ("random", "magnitude", "snip", "grasp", "synflow")
EXPONENTS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)  # compression 10^e; 10^0 is the dense network
PAPER = ("Paper (Tanaka et al. 2020, Fig. 6: VGG-11/16, ResNet-18, WideResNet-18 on CIFAR-10/"
         "100 and Tiny ImageNet, 3 seeds): SynFlow matches or beats Random, Magnitude, SNIP and "
         "GraSP at every compression from 10^0 to 10^3, with the gap widening at high "
         "compression; it never suffers layer collapse, while the other methods collapse "
         "(accuracy falls to chance) at high compression on some models.")


def settings(options: ReproOptions) -> dict:
    train = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
             "batch_size": 128, "lr_schedule": "cosine"}
    if options.full:
        models = [["vgg", {"width": 64}], ["resnet", {"depth": 20, "width": 16}]]
        train |= {"epochs": 160.0}
    else:
        models = [["vgg", {"width": 8}], ["resnet", {"depth": 8, "width": 8}]]
        train |= {"epochs": 0.5}
    return {"models": models, "data": list(options.data or ("fashion-mnist",)),
            "data_args": {"val_size": 5000}, "seeds": list(options.seeds or (0, 1, 2)),
            "methods": list(METHODS), "exponents": list(EXPONENTS), "train": train,
            "synflow_iterations": 100}


def describe(options: ReproOptions, s: dict) -> str:
    what = ("full run: VGG-11 with BatchNorm at full width (64) and ResNet-20 (width 16), "
            "160 epochs") if options.full else (
        "scaled down from the paper: an eighth-width VGG-11 with BatchNorm (width 8, 145k "
        "weights) and a ResNet-8 (width 8, 19k weights) instead of VGG-11/16 and ResNet-18, "
        "half an epoch of training (215 iterations) instead of 160 epochs")
    return (f"{what}; data {', '.join(s['data'])} (CIFAR is not among netshrink's data sets); "
            "SGD momentum 0.9, lr 0.1 with cosine decay (the paper: step decay), weight decay "
            "5e-4, batch 128; PyTorch's default initialization; pruning at initialization, "
            f"global scope, SynFlow with {s['synflow_iterations']} iterations; seeds "
            f"{s['seeds']}.")


def stages(s: dict, options: ReproOptions) -> list[list[TrialSpec]]:
    return [trials(s)]


def trials(s: dict) -> list[TrialSpec]:
    """Seed by seed (so a partial run has whole curves), one dense trial per model and seed."""
    trials = []
    for seed in s["seeds"]:
        for data in s["data"]:
            for name, args in s["models"]:
                trials.append(TrialSpec("prune", name, data, args, s["data_args"],
                                        {"method": "random", "compression": 1.0},
                                        s["train"], seed))
                for method in s["methods"]:
                    options = ({"iterations": s["synflow_iterations"]}
                               if method == "synflow" else {})
                    for e in s["exponents"]:
                        params = {"method": method, "compression": 10.0**e}
                        if options:
                            params["options"] = options
                        trials.append(TrialSpec("prune", name, data, args, s["data_args"],
                                                params, s["train"], seed))
    return trials


def flat_rows(rows: list[dict], methods: list[str]) -> list[dict]:
    """One row per trained network; the dense trial stands for every method at 10^0.

    `untrainable`: test accuracy within a point of chance (what layer collapse does to a
    network that it disconnects).
    """
    from netshrink import data as datasets

    chance = {name: 1 / datasets.load(name).num_classes
              for name in {row["data"] for row in rows}}
    out = []
    for row in rows:
        m = row["metrics"]
        base = {"data": row["data"], "model": row["model"], "seed": row["seed"],
                "compression": row["params"]["compression"],
                "test_accuracy": m["test_accuracy"],
                "early_stop_test_accuracy": m["early_stop_test_accuracy"],
                "collapsed": int(bool(m["collapsed"])), "collapsed_layers":
                m["collapsed_layers"], "density": m["density"],
                "untrainable": int(m["test_accuracy"] <= chance[row["data"]] + 0.01)}
        if row["params"]["compression"] == 1.0:
            out += [{**base, "method": method} for method in methods]
        else:
            out.append({**base, "method": row["params"]["method"]})
    return out


def checks(table: list[dict], s: dict) -> list[str]:
    """The issue's targets, measured on this run."""
    lines = []
    compressions = sorted({r["compression"] for r in table})
    for data in s["data"]:
        for name, _ in s["models"]:
            below = []
            for c in compressions:
                sf = find(table, data=data, model=name, method="synflow", compression=c)
                rnd = find(table, data=data, model=name, method="random", compression=c)
                if not sf or not rnd:
                    continue
                hi = sf["test_accuracy_mean"] + (sf["test_accuracy_std"] or 0)
                lo = rnd["test_accuracy_mean"] - (rnd["test_accuracy_std"] or 0)
                if hi < lo:
                    below.append(f"{c:.3g}")
            lines.append(f"- {name}: SynFlow below Random beyond the spread at "
                         f"{', '.join(below) if below else 'no compression'} "
                         f"({'NOT met' if below else 'met'})")
    sf_collapse = [r for r in table if r["method"] == "synflow" and r["collapsed_mean"]]
    learned = [r for r in sf_collapse if r["untrainable_mean"] < 1]
    others = sorted({(r["model"], r["method"]) for r in table
                     if r["method"] != "synflow" and r["collapsed_mean"]})
    lines.append("- SynFlow layer collapse up to 10^3: "
                 + ("none (met)" if not sf_collapse else
                    "at " + ", ".join(f"{r['model']} {r['compression']:.3g}"
                                      for r in sf_collapse) + " (NOT met)"))
    if learned:
        lines.append("  (where SynFlow emptied a layer yet the network trained above chance, the "
                     "emptied layers are bypassed, e.g. the convolutions of a residual branch "
                     "whose shortcut was kept, so the network stayed connected: "
                     + ", ".join(f"{r['model']} {r['compression']:.3g}" for r in learned)
                     + "; emptied layers per network in networks.csv)")
    lines.append("- other methods that collapse (model, method): "
                 + (", ".join(f"{m} {meth}" for m, meth in others) if others else
                    "none (NOT met: the paper reports collapse for some)"))
    return lines


def markdown(table: list[dict], s: dict, note: str) -> str:
    parts = ["# SynFlow and pruning at initialization (Tanaka et al. 2020)", "", note, "",
             "Test accuracy (%) after training, mean ± sample std over seeds, by compression "
             "(1/density of the prunable weights). `C k/n`: layer collapse (a layer left with no "
             "weight) in k of n seeds; 10.0 is chance.",
             ""]
    compressions = sorted({r["compression"] for r in table})
    for data in s["data"]:
        for name, args in s["models"]:
            parts += [f"## {name} {args} on {data}", "",
                      "| compression | " + " | ".join(s["methods"]) + " |",
                      "|---|" + "---|" * len(s["methods"])]
            for c in compressions:
                cells = []
                for method in s["methods"]:
                    r = find(table, data=data, model=name, method=method, compression=c)
                    if not r:
                        cells.append("")
                        continue
                    cell = pm(r["test_accuracy_mean"], r["test_accuracy_std"], digits=1)
                    if r["collapsed_mean"]:
                        k = round(r["collapsed_mean"] * r["collapsed_n"])
                        cell += f" C {k}/{r['collapsed_n']}"
                    cells.append(cell)
                parts.append(f"| {c:.3g} | " + " | ".join(cells) + " |")
            parts.append("")
    parts += ["Targets (issue 4):", *checks(table, s), "", PAPER, ""]
    return "\n".join(parts)


def plot(table: list[dict], s: dict, out: Path) -> list[Path]:
    """Accuracy against compression per model; a collapsed point is drawn as a red cross."""
    paths = []
    for data in s["data"]:
        fig = new_figure(6.0 * len(s["models"]), 4.4)
        for i, (name, args) in enumerate(s["models"]):
            ax = fig.add_subplot(1, len(s["models"]), i + 1)
            for method in s["methods"]:
                rows = sorted((r for r in table if (r["data"], r["model"], r["method"]) ==
                               (data, name, method)), key=lambda r: r["compression"])
                if not rows:
                    continue
                xs = [r["compression"] for r in rows]
                ys = [100 * r["test_accuracy_mean"] for r in rows]
                es = [100 * (r["test_accuracy_std"] or 0) for r in rows]
                ax.errorbar(xs, ys, yerr=es, marker="o", markersize=4, capsize=3, label=method)
                hit = [(x, y) for x, y, r in zip(xs, ys, rows, strict=True)
                       if r["collapsed_mean"]]
                if hit:
                    ax.scatter(*zip(*hit, strict=True), marker="x", s=80, color="red",
                               zorder=5)
            ax.set_xscale("log")
            ax.set_xlabel("compression (x = layer collapse)")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"{name} {args} on {data}")
            ax.grid(True, which="both", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
        fig.tight_layout()
        path = out / f"accuracy_{data}.png"
        paths.append(save_figure(fig, path))
    return paths


def tables(run: Run) -> str:
    out, s = run.out, run.settings
    nets = flat_rows(run.rows, s["methods"])
    write_csv(nets, out / "networks.csv")
    table = aggregate(nets, ["data", "model", "method", "compression"],
                      ["test_accuracy", "early_stop_test_accuracy", "collapsed", "density",
                       "untrainable"])
    write_csv(table, out / "summary.csv")
    plot(table, s, out)
    return markdown(table, s, run.note)
