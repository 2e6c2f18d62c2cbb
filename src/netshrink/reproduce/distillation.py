"""Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network", reproduced.

Four experiments, each on MNIST (the paper's data) and Fashion-MNIST, over 3 seeds:

1. A big net (2x1200 ReLU, dropout, inputs jittered by up to 2 pixels) vs a small net (2x800,
   no regularization) vs the small net distilled from the big one at T in {1, 2, 4, 8, 20}
   (paper, MNIST: 67, 146 and 74 test errors, the last at T = 20).
2. The practical case: a small ResNet teacher distilled into the 2x800 MLP and into LeNet-5,
   each against the same student trained alone with the same budget and early stopping.
3. An ensemble of 10 nets vs one net vs one net distilled from the ensemble (the paper's speech
   table: 58.9% / 61.1% / 60.8% frame accuracy, 80% of the ensemble's gain kept).
4. A class left out of the transfer set (the paper's "omitted 3": 206 test errors, 133 of them
   on the 1010 threes; raising the 3's bias by 3.5, the value that optimizes the test set, gives
   109 errors, 14 on threes), then the same bias correction.

Every net trains with Adam and a cosine schedule and is tested at its early-stopping point
(minimum validation loss, 5,000 training images held out). The default run is scaled down to
finish within an hour on 2 cores: fewer epochs, a smaller ResNet, an ensemble of the seeds'
2x800 nets trained alone (3 instead of 10 members of its own), the temperatures other than
the paper's T = 20 on one seed, and each experiment only on the data where it can show
something (1 and 4 on MNIST, the paper's data; 2 and 3 on Fashion-MNIST, where the ResNet
leads the students by more than a point and the ensemble leads one net by more than the spread
over seeds; on MNIST it does not).
`--full` runs the longer protocol on both data sets. Both print their scale first.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from netshrink.bench import TrialSpec
from netshrink.bench import report as rep
from netshrink.reproduce import ReproOptions
from netshrink.reproduce.template import Run, sweep_dir

BIG = {"widths": [1200, 1200], "dropout": 0.5, "input_dropout": 0.2}
SMALL = {"widths": [800, 800]}
OMITTED_CLASS = 3
PAPER = {
    "big_errors": 67, "small_errors": 146, "distilled_errors": 74, "distilled_T": 20,
    "gap_closed": (146 - 74) / (146 - 67),
    "speech_single": 58.9, "speech_ensemble": 61.1, "speech_distilled": 60.8,
    "omit_errors": 206, "omit_errors_class": 133, "omit_class_count": 1010,
    "omit_bias_shift": 3.5, "omit_corrected_errors": 109, "omit_corrected_errors_class": 14,
}


# The protocol's soft-target settings (the same in every run, not scaled).
ALPHA = 0.9  # weight of the soft targets; "a considerably lower weight" on the hard labels
RESNET_T = 4.0  # experiment 2
ENSEMBLE_T, ENSEMBLE_ALPHA = 2.0, 0.5  # experiment 3, as in the speech experiment
OMIT_T = 20.0  # experiment 4, the temperature of the paper's MNIST result


@dataclass(frozen=True)
class Scale:
    """The budget of one run of the reproduction.

    epochs: passes over the training set for "big", "student" (every 2x800 and LeNet-5 run,
        alone or distilled: the same budget), "resnet" and "ensemble" (members of their own and
        the net distilled from them; not needed when ensemble_members is None).
    ensemble_members: the size of experiment 3's ensemble, each member trained for it; None:
        the ensemble is the seeds' 2x800 nets trained alone (one per seed, the "small" nets of
        experiments 1 and 2), shared by every seed's distilled 2x800, which trains for the
        students' epochs.
    shared_teachers: one big net and one ResNet per data set (trained with the first seed)
        teach the students of every seed, instead of one teacher per seed.
    only: experiments ("1" to "4") limited to some of `datasets`; the others run on all.
    temperature_seeds: how many of the seeds (the first ones) run the temperatures other than
        the paper's T = 20; None: all.
    """

    seeds: tuple[int, ...] = (0, 1, 2)
    datasets: tuple[str, ...] = ("mnist", "fashion-mnist")
    epochs: dict = field(default_factory=lambda: {"big": 25, "student": 20, "resnet": 15})
    temperatures: tuple[float, ...] = (1, 2, 4, 8, 20)
    only: dict = field(default_factory=lambda: {"1": ("mnist",), "2": ("fashion-mnist",),
                                                "3": ("fashion-mnist",), "4": ("mnist",)})
    temperature_seeds: int | None = 1
    resnet_args: dict = field(default_factory=lambda: {"depth": 8, "width": 16})
    ensemble_members: int | None = None
    ensemble_net: tuple = ("mlp", SMALL)
    shared_teachers: bool = True
    evals_per_epoch: int = 2

    def data_for(self, experiment: str) -> tuple[str, ...]:
        """The data sets experiment "1" ... "4" runs on."""
        allowed = self.only.get(experiment, self.datasets)
        return tuple(d for d in self.datasets if d in allowed)

    def seeds_for(self, temperature: float) -> tuple[int, ...]:
        """The seeds that distil the big net at `temperature`."""
        if temperature == PAPER["distilled_T"] or self.temperature_seeds is None:
            return self.seeds
        return self.seeds[:self.temperature_seeds]


DEFAULT = Scale()
FULL = Scale(epochs={"big": 100, "student": 50, "resnet": 30, "ensemble": 50},
             resnet_args={"depth": 20, "width": 16}, ensemble_members=10,
             ensemble_net=("mlp", dict(SMALL)), shared_teachers=False, evals_per_epoch=1,
             only={}, temperature_seeds=None)


def train_dict(epochs: float, scale: Scale) -> dict:
    per_epoch = math.ceil(55000 / 128)
    return {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": epochs,
            "lr_schedule": "cosine", "eval_every": max(1, per_epoch // scale.evals_per_epoch)}


@dataclass
class Plan:
    """The trials of one data set and seed, by role."""

    teachers: dict[str, TrialSpec] = field(default_factory=dict)
    students: dict[str, TrialSpec] = field(default_factory=dict)


def plan(data: str, seed: int, scale: Scale, extra: dict) -> Plan:
    """Stage one (trained alone) and stage two (distilled, needing stage one's models), for
    the experiments that run on `data`."""
    runs = {e for e in "1234" if data in scale.data_for(e)}
    epochs = scale.epochs
    s_train = train_dict(epochs["student"], scale)
    teacher_seed = scale.seeds[0] if scale.shared_teachers else seed
    ens_model, ens_args = scale.ensemble_net

    def alone(model, args, epochs, trial_seed=seed, **params):
        return TrialSpec("kd_train", model, data, dict(args), params=params,
                         train=train_dict(epochs, scale), seed=trial_seed)

    p = Plan()
    if runs & {"1", "4"}:
        p.teachers["big"] = alone("mlp", BIG, epochs["big"], teacher_seed, jitter=2)
    if "2" in runs:
        p.teachers["resnet"] = alone("resnet", scale.resnet_args, epochs["resnet"],
                                     teacher_seed)
    small_members = scale.ensemble_members is None
    if runs & {"1", "2"} or ("3" in runs and small_members):
        p.teachers["small"] = alone("mlp", SMALL, epochs["student"])
    if "2" in runs:
        p.teachers["lenet5"] = alone("lenet5", {}, epochs["student"])
    if "3" in runs and small_members:
        # every seed's plan trains its own "small" net; the ensemble refers to all of them
        ens_model, ens_args = "mlp", SMALL
        member_ids = [alone("mlp", SMALL, epochs["student"], s).trial_id for s in scale.seeds]
    elif "3" in runs:
        for k in range(scale.ensemble_members):
            p.teachers[f"member{k}"] = alone(ens_model, ens_args, epochs["ensemble"], member=k)
        member_ids = [p.teachers[f"member{k}"].trial_id for k in range(scale.ensemble_members)]

    def student(model, args, teacher_ids, train, **params):
        return TrialSpec("kd_distill", model, data, dict(args), train=train, seed=seed,
                         params={"teachers": teacher_ids, **params, **extra})

    big = [p.teachers["big"].trial_id] if "big" in p.teachers else []
    if "1" in runs:
        for t in scale.temperatures:
            if seed in scale.seeds_for(t):
                p.students[f"distilled_T{t:g}"] = student("mlp", SMALL, big, s_train,
                                                          temperature=float(t), alpha=ALPHA)
    if "2" in runs:
        resnet = [p.teachers["resnet"].trial_id]
        for name, model, args in (("mlp", "mlp", SMALL), ("lenet5", "lenet5", {})):
            p.students[f"{name}_from_resnet"] = student(model, args, resnet, s_train,
                                                        temperature=RESNET_T, alpha=ALPHA)
    if "3" in runs:
        p.students["ensemble"] = TrialSpec(
            "kd_ensemble", ens_model, data, dict(ens_args),
            seed=scale.seeds[0] if small_members else seed,  # shared members: one ensemble
            params={"members": member_ids, **extra})
        p.students["from_ensemble"] = student(
            ens_model, ens_args, member_ids,
            s_train if small_members else train_dict(epochs["ensemble"], scale),
            temperature=ENSEMBLE_T, alpha=ENSEMBLE_ALPHA)
    if "4" in runs:
        p.students["omitted"] = student("mlp", SMALL, big, s_train, temperature=OMIT_T,
                                        alpha=ALPHA, omit=[OMITTED_CLASS])
    return p


def describe_scale(scale: Scale, full: bool) -> str:
    """How this run is scaled down from the paper (printed first, saved with the results)."""
    mode = "--full" if full else "default (scaled down; --full for the longer protocol)"
    e = scale.epochs
    ens_model, ens_args = scale.ensemble_net
    if scale.ensemble_members is None:
        ensemble = (f"the {len(scale.seeds)} seeds' small 2x800 nets (trained alone, "
                    f"{e['student']:g} epochs), shared by the seeds; one 2x800 distilled for "
                    f"{e['student']:g} epochs at")
    else:
        ensemble = (f"{scale.ensemble_members} x {ens_model}" + (f" {ens_args}" if ens_args
                    else "") + f", {e['ensemble']:g} epochs each; one distilled at")
    teachers = (f"one big net and one ResNet per data set (seed {scale.seeds[0]}) teach every "
                "seed's students" if scale.shared_teachers else "one teacher per seed")

    def on(experiment: str) -> str:
        return f"[{', '.join(scale.data_for(experiment)) or 'no data set'}]"

    other_t = [t for t in scale.temperatures if t != PAPER["distilled_T"]]
    t_seeds = ("" if not other_t or scale.temperature_seeds is None else
               f" (T={', '.join(f'{t:g}' for t in other_t)} on the first "
               f"{scale.temperature_seeds} seed(s) only)")
    lines = [
        f"netshrink reproduce distillation: {mode}",
        f"  data {', '.join(scale.datasets)}; seeds {', '.join(map(str, scale.seeds))}; "
        "Adam lr 1e-3, batch 128, cosine schedule; early stopping on 5,000 held-out images; "
        f"{teachers}",
        f"  1. {on('1')} big 2x1200 (dropout 0.5, input dropout 0.2, jitter 2 px): "
        f"{e['big']:g} epochs; small 2x800: {e['student']:g} epochs; distilled at T in "
        f"{{{', '.join(f'{t:g}' for t in scale.temperatures)}}}{t_seeds}, alpha {ALPHA:g}",
        "     (paper: trained to convergence, SGD, dropout and max-norm constraints; T=20)",
        f"  2. {on('2')} resnet {scale.resnet_args}: {e['resnet']:g} epochs; students 2x800 "
        f"MLP and LeNet-5 at T={RESNET_T:g}, {e['student']:g} epochs, alone and distilled",
        f"  3. {on('3')} ensemble of {ensemble} T={ENSEMBLE_T:g}, alpha {ENSEMBLE_ALPHA:g}",
        "     (paper: 10 acoustic models of 85M parameters on 2000 h of speech, frame accuracy)",
        f"  4. {on('4')} class {OMITTED_CLASS} left out of the transfer set; 2x800 distilled "
        f"from the big net at T={OMIT_T:g}; bias shift chosen on validation (ours) and on test "
        "(the paper's choice)",
    ]
    if not full:
        d, f = DEFAULT, FULL
        lines.append(
            f"  default vs --full: epochs {d.epochs} vs {f.epochs}; resnet {d.resnet_args} vs "
            f"{f.resnet_args}; ensemble: the seeds' small nets vs {f.ensemble_members} x mlp "
            "2x800 of its own per seed; teachers shared by the seeds vs one per seed; "
            "each experiment on one data set vs every experiment on both; T != 20 on one seed "
            "vs all seeds")
    return "\n".join(lines)


def _stats(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _fmt(mean: float | None, sd: float | None, spec: str = ".1f") -> str:
    if mean is None:
        return "n/a"
    return f"{mean:{spec}} ± {sd:{spec}}" if sd is not None else f"{mean:{spec}}"


class Results:
    """Metrics by (data set, role) over the seeds."""

    def __init__(self, rows_by_role: dict[tuple[str, str], list[dict]]):
        self.rows = rows_by_role

    def values(self, data: str, role: str, metric: str) -> list[float]:
        """The metric of each distinct trial of the role (a shared teacher counts once)."""
        out = []
        unique = {row["trial_id"]: row for row in self.rows.get((data, role), [])}
        for row in unique.values():
            if row.get("status", "ok") == "ok" and row["metrics"].get(metric) is not None:
                out.append(float(row["metrics"][metric]))
        return out

    def stat(
        self,
        data: str,
        role: str,
        metric: str = "test_errors",
    ) -> tuple[float | None, float | None]:
        return _stats(self.values(data, role, metric))

    def cell(self, data: str, role: str, metric: str = "test_errors", spec: str = ".1f") -> str:
        return _fmt(*self.stat(data, role, metric), spec)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def experiment1(res: Results, data: str, scale: Scale) -> tuple[str, list[dict]]:
    big, small = res.stat(data, "big")[0], res.stat(data, "small")[0]
    paper = data == "mnist"
    lines = ["| net | test errors | paper (MNIST, of 10,000) | gap closed |", "|---|---|---|---|",
             f"| big 2x1200, dropout + jitter | {res.cell(data, 'big')} | "
             f"{PAPER['big_errors'] if paper else '—'} | |",
             f"| small 2x800 alone | {res.cell(data, 'small')} | "
             f"{PAPER['small_errors'] if paper else '—'} | |"]
    plot = []
    for t in scale.temperatures:
        role = f"distilled_T{t:g}"
        mean, sd = res.stat(data, role)
        gap = None if big is None or small is None else small - big
        closed = _ratio(None if mean is None or small is None else small - mean,
                        gap if gap and gap > 0 else None)
        paper_cell = PAPER["distilled_errors"] if paper and t == PAPER["distilled_T"] else "—"
        paper_gap = f" (paper {_pct(PAPER['gap_closed'])})" if paper and t == 20 else ""
        closed_cell = _pct(closed) if closed is not None else "n/a (no gap)"
        lines.append(f"| small distilled, T={t:g} | {_fmt(mean, sd)} | {paper_cell} | "
                     f"{closed_cell}{paper_gap} |")
        plot.append({"data": data, "net": "distilled 2x800", "T": float(t),
                     "test_errors_mean": mean, "test_errors_std": sd})
    for role, name in (("big", "big 2x1200 (teacher)"), ("small", "small 2x800 alone")):
        mean, sd = res.stat(data, role)
        plot += [{"data": data, "net": name, "T": float(t), "test_errors_mean": mean,
                  "test_errors_std": sd} for t in scale.temperatures]
    note = ""
    if big is not None and small is not None and big >= small:
        note = (f"\nThe big net ({big:.1f} errors) does not beat the small one ({small:.1f}) "
                f"at this budget on {data}, so there is no gap to close.\n")
    return "\n".join(lines) + "\n" + note, plot


def experiment2(res: Results, data: str) -> str:
    teacher_acc, _ = res.stat(data, "resnet", "test_accuracy")
    lines = ["| student | teacher (resnet) acc. | alone acc. | distilled acc. | gain (points) | "
             "beats alone by > 2 spreads | gap closed |", "|---|---|---|---|---|---|---|"]
    for name, alone, distilled in (("2x800 MLP", "small", "mlp_from_resnet"),
                                   ("LeNet-5", "lenet5", "lenet5_from_resnet")):
        a_mean, a_sd = res.stat(data, alone, "test_accuracy")
        d_mean, d_sd = res.stat(data, distilled, "test_accuracy")
        gain = None if a_mean is None or d_mean is None else d_mean - a_mean
        spread = max(a_sd or 0.0, d_sd or 0.0)
        beats = "n/a" if gain is None else ("yes" if gain > 2 * spread else "no")
        lead = None if teacher_acc is None or a_mean is None else teacher_acc - a_mean
        closed = _ratio(gain, lead) if lead is not None and lead > 0 else None
        lead_note = "" if lead is None or lead >= 0.01 else (
            " (teacher leads by < 1 point)" if lead > 0 else " (teacher does not lead)")
        lines.append(
            f"| {name} | {res.cell(data, 'resnet', 'test_accuracy', '.2%')} | "
            f"{_fmt(a_mean, a_sd, '.2%')} | {_fmt(d_mean, d_sd, '.2%')} | "
            f"{'n/a' if gain is None else f'{100 * gain:+.2f}'} | {beats} | "
            f"{_pct(closed)}{lead_note} |")
    return "\n".join(lines) + "\n"


def _single_net(scale: Scale) -> tuple[str, str]:
    """The role experiment 3 compares the ensemble with, and its name in the table."""
    if scale.ensemble_members is None:
        return "small", "one 2x800 trained alone (each seed's)"
    return "member0", f"one {scale.ensemble_net[0]} (member 0)"


def experiment3(res: Results, data: str, scale: Scale) -> str:
    single_role, single_name = _single_net(scale)
    single, s_sd = _stats(res.values(data, single_role, "test_accuracy"))
    ensemble, e_sd = res.stat(data, "ensemble", "test_accuracy")
    distilled, d_sd = res.stat(data, "from_ensemble", "test_accuracy")
    kept = _ratio(None if distilled is None or single is None else distilled - single,
                  None if ensemble is None or single is None else ensemble - single)
    paper_kept = (PAPER["speech_distilled"] - PAPER["speech_single"]) / (
        PAPER["speech_ensemble"] - PAPER["speech_single"])
    return "\n".join([
        "| system | test accuracy (ours) | paper (speech, frame accuracy) |", "|---|---|---|",
        f"| {single_name} | {_fmt(single, s_sd, '.2%')} | "
        f"{PAPER['speech_single']}% |",
        f"| ensemble of {scale.ensemble_members or len(scale.seeds)} | "
        f"{_fmt(ensemble, e_sd, '.2%')} | "
        f"{PAPER['speech_ensemble']}% |",
        f"| one net distilled from the ensemble | {_fmt(distilled, d_sd, '.2%')} | "
        f"{PAPER['speech_distilled']}% |",
        f"| share of the ensemble's gain kept | {_pct(kept)} | {_pct(paper_kept)} (the text: "
        "more than 80%) |",
    ]) + "\n"


def experiment4(res: Results, data: str) -> str:
    c = OMITTED_CLASS
    paper = data == "mnist"
    count, _ = res.stat(data, "omitted", f"test_count_class{c}")

    def p(key):
        return PAPER[key] if paper else "—"

    return "\n".join([
        f"| 2x800 distilled without class {c} | test errors | errors on class {c} "
        f"(of {count:.0f}) | bias shift | paper (MNIST) |" if count else
        f"| 2x800 distilled without class {c} | test errors | errors on class {c} | bias shift | "
        "paper (MNIST) |",
        "|---|---|---|---|---|",
        f"| as trained | {res.cell(data, 'omitted')} | "
        f"{res.cell(data, 'omitted', f'test_errors_class{c}')} | 0 | {p('omit_errors')} errors, "
        f"{p('omit_errors_class')} on {c}s |",
        f"| bias raised, shift chosen on validation (ours) | "
        f"{res.cell(data, 'omitted', 'corrected_val_test_errors')} | "
        f"{res.cell(data, 'omitted', f'corrected_val_errors_class{c}')} | "
        f"{res.cell(data, 'omitted', 'bias_shift_val', '.2f')} | |",
        f"| bias raised, shift chosen on test (the paper's choice) | "
        f"{res.cell(data, 'omitted', 'corrected_test_test_errors')} | "
        f"{res.cell(data, 'omitted', f'corrected_test_errors_class{c}')} | "
        f"{res.cell(data, 'omitted', 'bias_shift_test', '.2f')} | "
        f"{p('omit_corrected_errors')} errors, {p('omit_corrected_errors_class')} on {c}s, "
        f"shift {p('omit_bias_shift')} |",
    ]) + "\n"


def end_of_training(res: Results) -> str:
    """Every role's test accuracy at its early-stopping point (the tables above) and at the end
    of its training: early stopping on the validation loss can stop a net while its accuracy
    still rises, so both are shown."""
    lines = ["| data | net (role) | at early stopping | at the end | early-stopping iteration |",
             "|---|---|---|---|---|"]
    for data, role in res.rows:
        end = res.stat(data, role, "final_test_accuracy")
        if end[0] is None:
            continue
        lines.append(f"| {data} | {role} | {res.cell(data, role, 'test_accuracy', '.2%')} | "
                     f"{_fmt(*end, '.2%')} | "
                     f"{res.cell(data, role, 'early_stop_iteration', '.0f')} |")
    return "\n".join(lines) + "\n"


def pairs(scale: Scale) -> list[tuple[str, str, str, str]]:
    """(teacher role, alone role, distilled role, label): every teacher-student comparison."""
    out = [("big", "small", f"distilled_T{t:g}", f"big -> 2x800, T={t:g}")
           for t in scale.temperatures]
    out += [("resnet", "small", "mlp_from_resnet", f"resnet -> 2x800, T={RESNET_T:g}"),
            ("resnet", "lenet5", "lenet5_from_resnet", f"resnet -> LeNet-5, T={RESNET_T:g}"),
            ("ensemble", _single_net(scale)[0], "from_ensemble",
             f"ensemble -> one {scale.ensemble_net[0]}, T={ENSEMBLE_T:g}")]
    return out


EXPERIMENT_OF_TEACHER = {"big": "1", "resnet": "2", "ensemble": "3"}


def targets(res: Results, scale: Scale) -> str:
    """The issue's targets, checked on the measured figures (test accuracy, in points).

    A pair counts when its teacher leads the student trained alone by at least 1 point; the
    distilled student must then beat the one trained alone by more than twice the spread (the
    larger of the two sample standard deviations over seeds); at least one such pair should
    close half the gap; the net distilled from the ensemble should keep half its gain.
    """
    lines = ["| data | pair | teacher leads by | distilled gain | 2 x spread | beats alone by "
             "> 2 spreads | gap closed |", "|---|---|---|---|---|---|---|"]
    counted, beaten, halves, kept = 0, 0, 0, []
    for data in scale.datasets:
        for teacher, alone, distilled, label in pairs(scale):
            if data not in scale.data_for(EXPERIMENT_OF_TEACHER[teacher]):
                continue
            t_mean = res.stat(data, teacher, "test_accuracy")[0]
            a_mean, a_sd = res.stat(data, alone, "test_accuracy")
            d_mean, d_sd = res.stat(data, distilled, "test_accuracy")
            if None in (t_mean, a_mean, d_mean):
                continue
            lead, gain = 100 * (t_mean - a_mean), 100 * (d_mean - a_mean)
            spread2 = 200 * max(a_sd or 0.0, d_sd or 0.0)
            closed = gain / lead if lead > 0 else None
            counts = lead >= 1.0
            beats = gain > spread2
            if counts:
                counted += 1
                beaten += beats
                halves += closed is not None and closed >= 0.5
            if teacher == "ensemble":
                kept.append((data, closed))
            lines.append(f"| {data} | {label} | {lead:+.2f} | {gain:+.2f} | {spread2:.2f} | "
                         f"{('yes' if beats else 'no') + ('' if counts else ' (lead < 1 point)')}"
                         f" | {_pct(closed) if closed is not None else 'n/a (no lead)'} |")
    verdict = (f"\nPairs whose teacher leads by at least 1 point: {counted}. The distilled "
               f"student beats the same student trained alone by more than twice the spread on "
               f"{beaten} of them (target: all), and closes at least half of the gap on {halves} "
               "(target: at least one). Share of the ensemble's gain kept by the distilled net "
               "(target: at least half): "
               + ", ".join(f"{d} {_pct(k)}" for d, k in kept) + ".\n")
    return "\n".join(lines) + "\n" + verdict


def settings(options: ReproOptions) -> Scale:
    base = FULL if options.full else DEFAULT
    return Scale(**{**asdict(base), "seeds": options.seeds or base.seeds,
                    "datasets": options.data or base.datasets,
                    # data sets named on the command line run every experiment
                    "only": {} if options.data else base.only})


def describe(options: ReproOptions, scale: Scale) -> str:
    return describe_scale(scale, options.full)


def plans(scale: Scale, options: ReproOptions) -> dict[tuple[str, int], Plan]:
    """The plan of every data set and seed."""
    # Ray runs a trial in a private folder: students find their teachers by the sweep folder
    extra = ({"sweep_dir": str(sweep_dir(options).resolve())} if options.executor == "ray"
             else {})
    return {(d, s): plan(d, s, scale, extra) for d in scale.datasets for s in scale.seeds}


def stages(scale: Scale, options: ReproOptions) -> list[list[TrialSpec]]:
    """Stage one: every net trained alone (the longest first, so a pool of workers stays
    busy); stage two: the distilled students and the ensembles, which read stage one's models."""
    from netshrink import data as datasets

    for name in scale.datasets:
        datasets.load(name)  # fail now, with the install hint, not after an hour
    every = plans(scale, options).values()
    first = sorted((spec for p in every for spec in p.teachers.values()),
                   key=lambda s: {"resnet": 0, "mlp": 1}.get(s.model, 2))
    return [first, [spec for p in every for spec in p.students.values()]]


def tables(run: Run) -> str:
    rows_by_role: dict[tuple[str, str], list[dict]] = {}
    flat = []
    for (d, _seed), p in plans(run.settings, run.options).items():
        for role, spec in {**p.teachers, **p.students}.items():
            row = run.row(spec)
            if row is None:  # failed or not run: listed by the template
                continue
            rows_by_role.setdefault((d, role), []).append(row)
            flat.append({"role": role, **rep.flatten(row)})
    return write_outputs(run.out, run.settings, run.note, Results(rows_by_role), flat,
                         run.seconds)


def write_outputs(out: Path, scale: Scale, header: str, res: Results, flat: list[dict],
                  seconds: float) -> str:
    """distillation.csv (a row per net) and the temperature plots; returns the Markdown."""
    rep.write_csv(flat, out / "distillation.csv")
    cpu = sum(float(r.get("cpu_seconds") or 0.0) for r in
              {r["trial_id"]: r for r in flat}.values())
    sections = ["# Distillation (Hinton, Vinyals & Dean 2015), reproduced\n",
                "```\n" + header + "\n```\n",
                f"Mean ± sample standard deviation over seeds {list(scale.seeds)}"
                + ("" if scale.temperature_seeds is None else
                   f" (the temperatures other than {PAPER['distilled_T']}: the first "
                   f"{scale.temperature_seeds} seed(s), no spread for one)")
                + ". Test errors "
                f"are counted on the test set (10,000 images for MNIST and Fashion-MNIST) at each "
                f"net's early-stopping point. "
                f"Wall time of this invocation: {seconds / 60:.1f} min (trials finished by an "
                f"earlier invocation are reused, not run again); CPU time of all its trials "
                f"(one thread each): {cpu / 60:.1f} core-min, so about {cpu / 120:.0f} min on "
                f"2 idle cores with --workers 2.\n"]
    plot_rows = []
    for data in scale.data_for("1"):
        text, rows = experiment1(res, data, scale)
        plot_rows += rows
        sections += [f"## 1. Big net, small net, distilled small net: {data}\n", text]
    for data in scale.data_for("2"):
        sections += [f"## 2. ResNet teacher, small students: {data}\n", experiment2(res, data)]
    for data in scale.data_for("3"):
        sections += [f"## 3. Ensemble, single net, distilled net: {data}\n",
                     experiment3(res, data, scale)]
    for data in scale.data_for("4"):
        sections += [f"## 4. Class {OMITTED_CLASS} left out of the transfer set: {data}\n",
                     experiment4(res, data)]
    sections += ["## The targets, checked on these figures (test accuracy, points)\n",
                 targets(res, scale),
                 "## Early stopping and the end of training (test accuracy)\n",
                 end_of_training(res)]
    text = "\n".join(sections)
    for data in scale.datasets:
        rows = [r for r in plot_rows if r["data"] == data and r["test_errors_mean"] is not None]
        if rows:
            rep.plot_lines(rows, x="T", y="test_errors_mean", group=["net"],
                           out_png=out / f"distillation_T_{data}.png", yerr="test_errors_std",
                           title=f"Test errors vs temperature ({data})", xlabel="temperature T",
                           ylabel="test errors")
    return text
