"""The Deep Compression reproduction: its plan, its tables, the paper's figures quoted."""

from pathlib import Path

import pytest

from netshrink.bench.tasks import check
from netshrink.reproduce import ReproOptions
from netshrink.reproduce import deep_compression as repro


def _metrics(drop: float, coded: int) -> dict:
    m = {"dense_bytes": 1_067_200, "dense_accuracy": 0.98}
    for tag in ("paper", "moderate", "sparser", "paper_distilled", "sparser_distilled",
                "extreme"):
        m[f"{tag}_density"] = 0.08
        m[f"{tag}_clusters"] = "60 50 40"
        for stage, size in (("pruned", 100_000), ("shared", 30_000), ("huffman", coded + 100),
                            ("coded", coded)):
            m[f"{tag}_{stage}_bytes"] = size
            m[f"{tag}_{stage}_accuracy"] = 0.98 - drop
        for key in ("int8", "int8_gzip", "int8_xz", "int8_zstd"):
            m[f"{tag}_{key}_bytes"] = 40_000
    return m


def test_plan_runs_both_nets_on_both_data_sets_and_every_trial_checks():
    options = ReproOptions(out=Path("unused"))
    s = repro.settings(options)
    trials = repro.stages(s, options)[0]
    assert {(t.model, t.data) for t in trials} == {
        (n, d) for n in ("lenet300", "lenet5-caffe") for d in ("mnist", "fashion-mnist")}
    distilled = [t for t in trials if "distill" in t.params["settings"][0]]
    assert len(trials) == 18 and len(distilled) == 6
    assert {t.model for t in distilled} == {"lenet300"}
    # every paper-protocol trial continues to an extreme setting: sparser still, 4-bit fc layers
    for t in trials:
        if t not in distilled:
            *_, before, last = t.params["settings"]
            assert last["name"] == "extreme" and last["rounds"] >= 1
            assert all(last["density"][k] < before["density"][k] for k in before["density"])
            assert last["bits"]["5"] == 4
    for t in trials:
        check(t)
    # the distilled trials retrain the same dense net through the same densities and bits
    paper = next(t for t in trials if t.model == "lenet300" and t not in distilled)
    twin = next(t for t in distilled if (t.data, t.seed) == (paper.data, paper.seed))
    assert twin.train == paper.train
    for ours, theirs in zip(twin.params["settings"], paper.params["settings"][:2], strict=True):
        assert {k: v for k, v in ours.items() if k not in ("name", "distill")} == \
            {k: v for k, v in theirs.items() if k != "name"}
    full = repro.plan(True)["budget"]
    assert all(full[n]["dense"] > s["budget"][n]["dense"] for n in full)


def test_tables_check_the_targets_and_quote_the_paper():
    rows = [{"model": "lenet300", "data": "mnist", "metrics": _metrics(0.003, 15_000)},
            {"model": "lenet300", "data": "mnist", "metrics": _metrics(0.001, 15_000)},
            {"model": "lenet5-caffe", "data": "mnist", "metrics": _metrics(0.01, 15_000)}]
    table = repro.summarize(rows)
    text = repro.markdown(table, {}, "note")
    assert "1070 KB -> 27 KB, 40x, top-1 error 1.64% -> 1.58%" in text
    assert "1720 KB -> 44 KB, 39x, top-1 error 0.80% -> 0.74%" in text
    assert "| LeNet-300-100 | mnist | paper | 71.1x | +0.20 | yes | no |" in text
    assert "| LeNet-5 (Caffe) | mnist | paper | 71.1x | +1.00 | no | no |" in text


def test_the_aim_beyond_needs_100x_within_the_drop():
    rows = [{"model": "lenet300", "data": "mnist", "metrics": _metrics(0.002, 10_000)},
            {"model": "lenet5-caffe", "data": "mnist", "metrics": _metrics(0.01, 10_000)}]
    text = repro.markdown(repro.summarize(rows), {}, "note")
    assert "| LeNet-300-100 | mnist | paper | 106.7x | +0.20 | yes | yes |" in text
    assert "| LeNet-5 (Caffe) | mnist | paper | 106.7x | +1.00 | no | no |" in text


def test_distilled_rows_are_measured_against_the_dense_nets_of_their_own_trials():
    paper = {"model": "lenet300", "data": "fashion-mnist", "seed": 0,
             "metrics": {k: v for k, v in _metrics(0.02, 15_000).items()
                         if "distilled" not in k}}
    distilled = {"model": "lenet300", "data": "fashion-mnist", "seed": 0,
                 "metrics": {k: v for k, v in _metrics(0.004, 15_000).items()
                             if not k.startswith(("paper_", "moderate_", "sparser_"))
                             or k.startswith(("paper_distilled", "sparser_distilled"))}}
    table = repro.summarize([paper, distilled])
    dense = [r for r in table if r["stage"] == "dense"]
    assert len(dense) == 1 and dense[0]["seeds"] == 1
    coded = {r["setting"]: r for r in table if r["stage"] == "coded"}
    assert coded["sparser"]["drop"] == pytest.approx(2.0)
    assert coded["sparser_distilled"]["drop"] == pytest.approx(0.4)
    text = repro.markdown(table, {}, "note")
    assert "| LeNet-300-100 | fashion-mnist | sparser_distilled | 71.1x | +0.40 | yes |" in text
