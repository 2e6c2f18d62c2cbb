"""The distillation reproduction: its trial plan and its tables (with the paper's numbers)."""

import json
from pathlib import Path

import pytest

from netshrink.reproduce import ReproOptions
from netshrink.reproduce import distillation as repro

EVERYWHERE = repro.Scale(only={}, temperature_seeds=None)  # the default budget, every experiment
OWN_MEMBERS = repro.Scale(only={}, temperature_seeds=None, ensemble_members=5,
                          ensemble_net=("lenet300", {}),
                          epochs={**repro.DEFAULT.epochs, "ensemble": 10})


def test_plan_wires_students_to_their_teachers():
    p = repro.plan("mnist", 1, OWN_MEMBERS, {})
    assert len(p.teachers) == 4 + OWN_MEMBERS.ensemble_members
    assert p.teachers["big"].params == {"jitter": 2}
    assert p.teachers["big"].model_args == repro.BIG
    big = p.teachers["big"].trial_id
    temps = [s.params["temperature"] for k, s in p.students.items() if k.startswith("distilled")]
    assert temps == [1.0, 2.0, 4.0, 8.0, 20.0]
    assert all(p.students[f"distilled_T{t}"].params["teachers"] == [big] for t in (1, 20))
    assert p.students["omitted"].params["omit"] == [3]
    members = p.students["from_ensemble"].params["teachers"]
    assert len(set(members)) == OWN_MEMBERS.ensemble_members
    assert p.students["ensemble"].params["members"] == members
    # the student alone and the distilled students share a budget
    assert p.students["mlp_from_resnet"].train == p.teachers["small"].train
    assert p.teachers["big"].seed == 0  # shared teachers are trained with the first seed
    assert all(s.seed == 1 for k, s in [*p.teachers.items(), *p.students.items()]
               if k not in ("big", "resnet"))


def test_default_ensemble_is_the_seeds_small_nets():
    plans = [repro.plan("fashion-mnist", s, repro.DEFAULT, {}) for s in (0, 1, 2)]
    smalls = [p.teachers["small"].trial_id for p in plans]
    assert len(set(smalls)) == 3
    for p in plans:
        assert p.students["ensemble"].params["members"] == smalls
        assert p.students["from_ensemble"].params["teachers"] == smalls
        assert p.students["from_ensemble"].model_args == repro.SMALL
        assert p.students["from_ensemble"].train == p.teachers["small"].train
        assert not any(role.startswith("member") for role in p.teachers)  # no second name
    # one ensemble trial shared by the seeds, one distilled student per seed
    assert len({p.students["ensemble"].trial_id for p in plans}) == 1
    assert len({p.students["from_ensemble"].trial_id for p in plans}) == 3
    assert repro.pairs(repro.DEFAULT)[-1][:3] == ("ensemble", "small", "from_ensemble")
    assert "seeds' small 2x800 nets" in repro.describe_scale(repro.DEFAULT, full=False)


def test_default_runs_each_experiment_where_it_shows_something():
    mnist = [repro.plan("mnist", s, repro.DEFAULT, {}) for s in (0, 1, 2)]
    fashion = [repro.plan("fashion-mnist", s, repro.DEFAULT, {}) for s in (0, 1, 2)]
    # 1 and 4 on MNIST; T=20 on every seed, the other temperatures on the first only
    assert [sorted(k for k in p.students if k.startswith("distilled")) for p in mnist] == [
        ["distilled_T1", "distilled_T2", "distilled_T20", "distilled_T4", "distilled_T8"],
        ["distilled_T20"], ["distilled_T20"]]
    assert all("omitted" in p.students and "resnet" not in p.teachers for p in mnist)
    # 2 and 3 on Fashion-MNIST
    assert all({"mlp_from_resnet", "lenet5_from_resnet", "from_ensemble"} <= set(p.students)
               and "big" not in p.teachers and "omitted" not in p.students for p in fashion)
    assert all("from_ensemble" not in p.students for p in mnist)
    assert repro.DEFAULT.epochs["student"] == 20
    header = repro.describe_scale(repro.DEFAULT, full=False)
    assert "1. [mnist]" in header and "2. [fashion-mnist]" in header
    assert "3. [fashion-mnist]" in header and "first 1 seed(s) only" in header
    assert "[mnist, fashion-mnist]" in repro.describe_scale(repro.FULL, full=True).split("2.")[1]


def test_teachers_shared_by_seeds_or_one_per_seed():
    shared = [repro.plan("mnist", s, EVERYWHERE, {}) for s in (0, 1, 2)]
    assert len({p.teachers["big"].trial_id for p in shared}) == 1
    assert len({p.teachers["small"].trial_id for p in shared}) == 3
    own = [repro.plan("mnist", s, repro.FULL, {}) for s in (0, 1, 2)]
    assert len({p.teachers["resnet"].trial_id for p in own}) == 3


def _row(metrics, seed=0):
    return {"trial_id": f"id{seed}", "status": "ok", "seed": seed, "task": "kd_train",
            "model": "mlp", "data": "mnist", "metrics": metrics, "params": {}}


def test_tables_put_the_paper_beside_ours(tmp_path: Path):
    scale = repro.Scale(seeds=(0, 1), datasets=("mnist",), temperatures=(20,), only={},
                        ensemble_members=5, ensemble_net=("lenet300", {}))
    rows = {("mnist", "big"): [_row({"test_errors": 67}), _row({"test_errors": 69}, 1)],
            ("mnist", "small"): [_row({"test_errors": 146}), _row({"test_errors": 146}, 1)],
            ("mnist", "distilled_T20"): [_row({"test_errors": 74}), _row({"test_errors": 76}, 1)],
            ("mnist", "member0"): [_row({"test_accuracy": 0.9})],
            ("mnist", "ensemble"): [_row({"test_accuracy": 0.92})],
            ("mnist", "from_ensemble"): [_row({"test_accuracy": 0.916})]}
    text = repro.write_outputs(tmp_path, scale, "header", repro.Results(rows),
                               [{"role": "big", "trial_id": "id0", "data": "mnist", "seed": 0}],
                               12.0)
    assert "| big 2x1200, dropout + jitter | 68.0 ± 1.4 | 67 |" in text
    gap = (146 - 75) / (146 - 68)
    assert f"| small distilled, T=20 | 75.0 ± 1.4 | 74 | {100 * gap:.0f}% (paper 91%) |" in text
    assert "| share of the ensemble's gain kept | 80% | 86%" in text
    assert "58.9%" in text and "61.1%" in text
    assert (tmp_path / "distillation_T_mnist.png").stat().st_size > 1000
    assert (tmp_path / "distillation.csv").read_text().startswith("role,")


def test_no_gap_is_said_not_hidden(tmp_path: Path):
    scale = repro.Scale(seeds=(0,), datasets=("fashion-mnist",), temperatures=(4,), only={})
    rows = {("fashion-mnist", "big"): [_row({"test_errors": 1200})],
            ("fashion-mnist", "small"): [_row({"test_errors": 1100})],
            ("fashion-mnist", "distilled_T4"): [_row({"test_errors": 1050})]}
    text, _ = repro.experiment1(repro.Results(rows), "fashion-mnist", scale)
    assert "n/a (no gap)" in text and "does not beat the small one" in text


def test_targets_count_only_pairs_whose_teacher_leads_by_a_point():
    scale = repro.Scale(seeds=(0, 1), datasets=("mnist",), temperatures=(4,), only={},
                        temperature_seeds=None, ensemble_members=5)

    def acc(*values):
        return [_row({"test_accuracy": v}, seed) for seed, v in enumerate(values)]

    rows = {("mnist", "big"): acc(0.985), ("mnist", "small"): acc(0.980, 0.981),
            ("mnist", "distilled_T4"): acc(0.984, 0.984),  # lead 0.45: not counted
            ("mnist", "resnet"): acc(0.990), ("mnist", "lenet5"): acc(0.970, 0.970),
            ("mnist", "lenet5_from_resnet"): acc(0.976, 0.977),  # lead 2.0, gain 0.65
            ("mnist", "mlp_from_resnet"): acc(0.981, 0.982),  # lead 0.95: not counted
            ("mnist", "member0"): acc(0.97, 0.97), ("mnist", "ensemble"): acc(0.9825, 0.9825),
            ("mnist", "from_ensemble"): acc(0.975, 0.975)}  # lead 1.25, kept 40%, no spread
    text = repro.targets(repro.Results(rows), scale)
    assert "| mnist | resnet -> LeNet-5, T=4 | +2.00 | +0.65 | 0.14 | yes | 32% |" in text
    assert "| yes (lead < 1 point) |" in text
    assert "leads by at least 1 point: 2." in text
    assert "spread on 2 of them (target: all), and closes at least half of the gap on 0" in text
    assert "(target: at least half): mnist 40%." in text


@pytest.mark.slow
def test_runs_end_to_end_on_the_digits(tmp_path: Path):
    from netshrink.reproduce import run

    run("distillation", ReproOptions(out=tmp_path, seeds=(0,), data=("digits",)))
    text = (tmp_path / "results.md").read_text()
    assert "## 4. Class 3 left out" in text and "Failed trials" not in text
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["settings"]["datasets"] == ["digits"] and config["trials"]


def test_targets_leave_out_pairs_of_experiments_not_run_on_the_data():
    rows = {("mnist", "resnet"): [_row({"test_accuracy": 0.99})],
            ("mnist", "small"): [_row({"test_accuracy": 0.97})],
            ("mnist", "mlp_from_resnet"): [_row({"test_accuracy": 0.98})]}
    assert "resnet -> 2x800" not in repro.targets(repro.Results(rows), repro.DEFAULT)
    assert "resnet -> 2x800" in repro.targets(repro.Results(rows), EVERYWHERE)


def test_end_of_training_is_shown_beside_early_stopping():
    rows = {("mnist", "small"): [_row({"test_accuracy": 0.97, "final_test_accuracy": 0.98,
                                       "early_stop_iteration": 100}),
                                 _row({"test_accuracy": 0.97, "final_test_accuracy": 0.99,
                                       "early_stop_iteration": 300}, 1)],
            ("mnist", "ensemble"): [_row({"test_accuracy": 0.99})]}  # no training: left out
    text = repro.end_of_training(repro.Results(rows))
    assert "| mnist | small | 97.00% ± 0.00% | 98.50% ± 0.71% | 200 ± 141 |" in text
    assert "ensemble" not in text
