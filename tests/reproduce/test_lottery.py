"""The lottery reproduction, end to end on a tiny setting, and its summary arithmetic."""

from pathlib import Path

import pytest

from netshrink.reproduce import ReproOptions, lottery, run


def test_default_settings_are_the_papers_protocol_scaled():
    s = lottery.settings(ReproOptions(out=Path("x")))
    assert s["train"] | {} == {"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60,
                               "epochs": 5.0, "eval_every": 250}
    assert s["lottery"]["rate"] == 0.2 and s["lottery"]["output_rate"] == 0.1
    assert s["lottery"]["rounds"] == 18 and s["lottery"]["control_rounds"] == [3, 7, 12, 15, 18]
    assert s["data"] == ["mnist", "fashion-mnist"] and s["seeds"] == [0, 1, 2]
    full = lottery.settings(ReproOptions(out=Path("x"), full=True))
    assert full["train"]["iterations"] == 50_000 and full["train"]["eval_every"] == 100


def test_checks_compare_the_right_rounds():
    def row(arm, r, acc):
        return {"data": "d", "arm": arm, "round": r, "early_stop_test_accuracy_mean": acc}

    table = [row("ticket", 0, 0.900), row("ticket", 15, 0.897), row("ticket", 18, 0.890),
             row("reinit", 18, 0.870)]
    lines = lottery.checks(table, "d")
    assert "-0.30 points (met" in lines[0]
    assert "+2.00 points (met" in lines[1]
    table[1]["early_stop_test_accuracy_mean"] = 0.890
    assert "NOT met" in lottery.checks(table, "d")[0]


def test_tiny_run_writes_every_file(tmp_path, monkeypatch):
    def tiny(options):
        return {"model": "mlp", "model_args": {"widths": [8], "init": "glorot"},
                "data": ["digits"], "data_args": {"val_size": 100}, "seeds": [0],
                "train": {"batch_size": 64, "iterations": 4, "eval_every": 2},
                "lottery": {"rounds": 2, "rate": 0.2, "output_rate": 0.1,
                            "rewind_iteration": 0, "control_rounds": [2],
                            "controls": ["reinit", "shuffle"]}}

    monkeypatch.setattr(lottery, "settings", tiny)
    monkeypatch.setattr(lottery, "ROUNDS", (0, 2))
    run("lottery", ReproOptions(out=tmp_path, executor="serial"))
    for name in ("results.md", "networks.csv", "summary.csv", "config.json",
                 "accuracy_digits.png", "early_stop_digits.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    text = (tmp_path / "results.md").read_text()
    assert "| 100.0 |" in text and "random re-init" in text
    nets = (tmp_path / "networks.csv").read_text().splitlines()
    assert len(nets) == 1 + 5  # rounds 0, 1, 2 and two controls


def test_networks_unpacks_flat_metrics():
    rows = [{"data": "d", "seed": 1, "status": "ok",
             "metrics": {"r00.ticket.test_accuracy": 0.9, "r02.reinit.test_accuracy": 0.8}}]
    nets = lottery.networks(rows)
    assert nets == [{"data": "d", "seed": 1, "round": 0, "arm": "ticket", "test_accuracy": 0.9},
                    {"data": "d", "seed": 1, "round": 2, "arm": "reinit",
                     "test_accuracy": pytest.approx(0.8)}]
