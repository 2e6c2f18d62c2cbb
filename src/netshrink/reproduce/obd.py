"""LeCun, Denker and Solla (1990), Optimal Brain Damage: delete weights of a trained small
network in order of saliency h_kk w_k^2 / 2 against in order of magnitude, and follow the
training objective and the accuracy as the fraction deleted grows: without retraining (ranked
once, with OBD's predicted objective beside the measured one) and with retraining (delete,
retrain, re-rank: the paper's iterated procedure)."""

from __future__ import annotations

from pathlib import Path

from netshrink.bench import TrialSpec
from netshrink.bench.report import aggregate, new_figure, save_figure, write_csv
from netshrink.reproduce import ReproOptions
from netshrink.reproduce.template import Run, find, pm

METHODS = ("obd", "magnitude")
PAPER = ("Paper (LeCun et al. 1990, Figs. 1-2: a 2,578-parameter network on handwritten zip "
         "codes, MSE objective; as issue 4 summarizes the figures): OBD deletes far better "
         "than magnitude; the saliency predicts the objective's increase well up to about 30% "
         "of the parameters deleted; with retraining, about 60% can be deleted with no loss "
         "of accuracy.")
FIELDS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "predicted_train_loss",
          "train_loss_before", "train_loss_after", "test_accuracy_before",
          "test_accuracy_after", "train_accuracy_after")


def settings(options: ReproOptions) -> dict:
    step = 0.05 if options.full else 0.1
    fractions = [round(i * step, 4) for i in range(round(0.9 / step) + 1)] + [0.95]
    return {"model": "mlp", "model_args": {"widths": [32]},
            "data": list(options.data or ("digits",)), "data_args": {"val_size": 200},
            "seeds": list(options.seeds or ((0, 1, 2) if not options.full else range(10))),
            "fractions": fractions,
            "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 64,
                      "epochs": 1000.0 if options.full else 200.0, "eval_every": 200},
            "retrain": {"epochs": 100.0 if options.full else 20.0},
            "options": {"obd": {"hessian": "exact"}, "magnitude": {}}}


def _budget(train: dict) -> str:
    if train.get("iterations"):
        return f"{train['iterations']} iterations"
    return f"{train.get('epochs', 1.0):g} epochs"


def describe(options: ReproOptions, s: dict) -> str:
    return (f"{'full' if options.full else 'default'} run: an MLP 64-32-10 (2,400 weights, "
            "close to the paper's 2,578 free parameters) on scikit-learn's 8x8 digits (the "
            "paper's 9,300 zip-code digits and shared-weight network are not available), "
            f"trained {_budget(s['train'])} with Adam; cross-entropy objective (the "
            "paper: MSE); exact Hessian diagonal; deletion fractions "
            f"{s['fractions'][1]:g}..{s['fractions'][-1]:g}; retraining "
            f"{_budget(s['retrain'])} after each deletion step; seeds {s['seeds']}.")


def stages(s: dict, options: ReproOptions) -> list[list[TrialSpec]]:
    return [trials(s)]


def trials(s: dict) -> list[TrialSpec]:
    return [TrialSpec("deletion", s["model"], data, s["model_args"], s["data_args"],
                      {"method": method, "fractions": s["fractions"], "retrain": s["retrain"],
                       "options": s["options"][method]}, s["train"], seed)
            for data in s["data"] for method in METHODS for seed in s["seeds"]]


def curve_rows(rows: list[dict]) -> list[dict]:
    """One row per (trial, mode, fraction) from the flat metrics '{mode}.{fraction}.{field}'."""
    out: dict[tuple, dict] = {}
    for row in rows:
        method = row["params"]["method"]
        for key, value in row["metrics"].items():
            mode, rest = key.split(".", 1)
            if mode == "trained":
                continue
            fraction, field = rest.rsplit(".", 1)
            entry = out.setdefault((row["data"], method, row["seed"], mode, float(fraction)), {
                "data": row["data"], "method": method, "seed": row["seed"], "mode": mode,
                "fraction": float(fraction)})
            entry[field] = value
    return [out[k] for k in sorted(out)]


def findings(table: list[dict], data: str) -> list[str]:
    one = {m: {r["fraction"]: r for r in table if (r["data"], r["method"], r["mode"]) ==
               (data, m, "one-shot")} for m in METHODS}
    it = {m: {r["fraction"]: r for r in table if (r["data"], r["method"], r["mode"]) ==
              (data, m, "iterative")} for m in METHODS}
    lines = []
    fractions = sorted(f for f in one["obd"] if f > 0)
    better = [f for f in fractions if f in one["magnitude"] and
              one["obd"][f]["train_loss_mean"] < one["magnitude"][f]["train_loss_mean"]]
    lines.append(f"- without retraining, OBD's objective is below magnitude's at "
                 f"{len(better)} of {len(fractions)} deletion fractions")
    good = []
    for f in fractions:
        row = one["obd"][f]
        predicted, actual = row.get("predicted_train_loss_mean"), row["train_loss_mean"]
        if predicted is None or abs(predicted - actual) > 0.2 * actual:
            break
        good.append(f)
    lines.append("- OBD's predicted objective is within 20% of the measured objective up to "
                 f"{max(good):.0%} deleted" if good else
                 "- OBD's predicted objective is off by more than 20% from the first fraction")
    for m in METHODS:
        dense = it[m].get(0.0, {}).get("test_accuracy_after_mean")
        ok = []
        for f in sorted(x for x in it[m] if x > 0):
            if dense is None or it[m][f]["test_accuracy_after_mean"] < dense - 0.005:
                break
            ok.append(f)
        lines.append(f"- {m} with retraining: test accuracy within 0.5 points of the "
                     f"unpruned network up to {max(ok) if ok else 0:.0%} deleted")
    return lines


def markdown(table: list[dict], s: dict, note: str) -> str:
    parts = ["# Optimal Brain Damage (LeCun, Denker and Solla 1990)", "", note, "",
             "Training objective (mean cross-entropy on the training set) and test accuracy "
             "(%), mean ± std over seeds. One-shot: weights ranked once on the trained net and "
             "deleted without retraining; retrained: iterated delete-retrain-rerank, measured "
             "after retraining.", ""]
    for data in s["data"]:
        parts += [f"## {data}", "",
                  "| deleted | OBD loss | OBD predicted | magnitude loss | OBD acc | "
                  "magnitude acc | OBD acc retrained | magnitude acc retrained |",
                  "|---|---|---|---|---|---|---|---|"]
        for f in s["fractions"]:
            o = find(table, data=data, method="obd", mode="one-shot", fraction=f)
            mg = find(table, data=data, method="magnitude", mode="one-shot", fraction=f)
            oi = find(table, data=data, method="obd", mode="iterative", fraction=f)
            mi = find(table, data=data, method="magnitude", mode="iterative", fraction=f)
            if not o:
                continue
            parts.append("| " + " | ".join([
                f"{f:.0%}", pm(o["train_loss_mean"], o["train_loss_std"], 1, 3),
                pm(o.get("predicted_train_loss_mean"), o.get("predicted_train_loss_std"), 1, 3),
                pm(mg.get("train_loss_mean"), mg.get("train_loss_std"), 1, 3),
                pm(o["test_accuracy_mean"], o["test_accuracy_std"], digits=1),
                pm(mg.get("test_accuracy_mean"), mg.get("test_accuracy_std"), digits=1),
                pm(oi.get("test_accuracy_after_mean"), oi.get("test_accuracy_after_std"),
                   digits=1),
                pm(mi.get("test_accuracy_after_mean"), mi.get("test_accuracy_after_std"),
                   digits=1)]) + " |")
        parts += ["", "Measured:", *findings(table, data), ""]
    parts += [PAPER, ""]
    return "\n".join(parts)


def plot(table: list[dict], s: dict, out: Path) -> list[Path]:
    """Objective (log scale) and test accuracy against the fraction deleted."""
    curves = [("obd", "one-shot", "train_loss", "OBD, no retraining", "C0"),
              ("obd", "one-shot", "predicted_train_loss", "OBD predicted", "C0"),
              ("magnitude", "one-shot", "train_loss", "magnitude, no retraining", "C1"),
              ("obd", "iterative", "train_loss_after", "OBD, retrained", "C2"),
              ("magnitude", "iterative", "train_loss_after", "magnitude, retrained", "C3")]
    paths = []
    for data in s["data"]:
        fig = new_figure(11, 4.2)
        for i, kind in enumerate(("loss", "accuracy")):
            ax = fig.add_subplot(1, 2, i + 1)
            for method, mode, field, label, color in curves:
                if kind == "accuracy":
                    if field == "predicted_train_loss":
                        continue
                    field = "test_accuracy" + ("_after" if mode == "iterative" else "")
                rows = sorted((r for r in table if (r["data"], r["method"], r["mode"]) ==
                               (data, method, mode) and r.get(f"{field}_mean") is not None),
                              key=lambda r: r["fraction"])
                if rows:
                    ax.plot([r["fraction"] for r in rows],
                            [r[f"{field}_mean"] for r in rows], marker="o", markersize=3,
                            label=label, color=color,
                            linestyle="--" if "predicted" in field else "-")
            if kind == "loss":
                ax.set_yscale("log")
            ax.set_xlabel("fraction of weights deleted")
            ax.set_ylabel("training objective" if kind == "loss" else "test accuracy")
            ax.grid(True, which="both", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
        fig.suptitle(f"Optimal Brain Damage vs magnitude on {data}")
        fig.tight_layout()
        path = out / f"deletion_{data}.png"
        paths.append(save_figure(fig, path))
    return paths


def tables(run: Run) -> str:
    curves = curve_rows(run.rows)
    write_csv(curves, run.out / "curves.csv")
    table = aggregate(curves, ["data", "method", "mode", "fraction"], list(FIELDS))
    write_csv(table, run.out / "summary.csv")
    plot(table, run.settings, run.out)
    return markdown(table, run.settings, run.note)
