"""The SynFlow reproduction: its grid, collapse marks and checks, and a tiny run."""

from pathlib import Path

from netshrink.reproduce import ReproOptions, run, synflow


def test_grid_covers_every_method_and_compression_plus_one_dense_per_seed():
    s = synflow.settings(ReproOptions(out=Path("x")))
    trials = synflow.trials(s)
    assert len(trials) == 2 * 3 * (1 + 5 * 6)
    compressions = sorted({t.params["compression"] for t in trials})
    assert compressions[0] == 1.0 and abs(compressions[-1] - 1000) < 1e-9
    assert len(compressions) == 7
    sf = [t for t in trials if t.params["method"] == "synflow"]
    assert all(t.params["options"] == {"iterations": 100} for t in sf)


def test_checks_flag_synflow_below_random_and_collapse():
    def row(method, c, acc, std, collapsed):
        return {"data": "d", "model": "m", "method": method, "compression": c,
                "test_accuracy_mean": acc, "test_accuracy_std": std,
                "collapsed_mean": collapsed}

    s = {"data": ["d"], "models": [["m", {}]]}
    table = [row("synflow", 10, 0.80, 0.01, 0), row("random", 10, 0.81, 0.01, 0),
             row("synflow", 1000, 0.50, 0.01, 0), row("random", 1000, 0.10, 0.0, 1)]
    lines = synflow.checks(table, s)
    assert "no compression (met)" in lines[0]
    assert "none (met)" in lines[1]
    assert "m random" in lines[2]
    table[0]["test_accuracy_mean"] = 0.70
    assert "NOT met" in synflow.checks(table, s)[0]


def test_tiny_run(tmp_path, monkeypatch):
    def tiny(options):
        return {"models": [["mlp", {"widths": [8]}]], "data": ["digits"],
                "data_args": {"val_size": 100}, "seeds": [0],
                "methods": ["random", "synflow"], "exponents": [1.0],
                "train": {"batch_size": 64, "iterations": 3}, "synflow_iterations": 5}

    monkeypatch.setattr(synflow, "settings", tiny)
    run("synflow", ReproOptions(out=tmp_path, executor="serial"))
    text = (tmp_path / "results.md").read_text()
    assert "| compression | random | synflow |" in text
    assert (tmp_path / "accuracy_digits.png").stat().st_size > 0
    rows = (tmp_path / "networks.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 + 2  # dense counted for both methods, then one each at 10
