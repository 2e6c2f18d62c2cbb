"""The demo's pipeline on the tiny digits set: every step runs and the table is consistent."""

import json

from netshrink import load
from netshrink.demo import run


def test_demo_runs_every_step_and_measures_it(tmp_path):
    rows = run(tmp_path, epochs=2, seed=0, dataset="digits")
    by_name = {r["model"]: r for r in rows}
    assert list(by_name) == ["dense", "pruned 90%", "pruned 90% + int8", "student alone",
                             "student distilled"]
    dense, pruned, int8 = by_name["dense"], by_name["pruned 90%"], by_name["pruned 90% + int8"]
    assert pruned["nonzero_parameters"] < 0.15 * dense["nonzero_parameters"]
    assert pruned["file_bytes"] * 5 < dense["file_bytes"]          # stored sparse
    assert int8["file_bytes"] < pruned["file_bytes"]               # and int8 on top
    for row in rows:
        assert row["test_accuracy"] > 0.3                           # chance is 0.1
        assert row["reloaded_accuracy"] == row["test_accuracy"]     # the saved file is the model
        assert row["latency_ms"] > 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["data"] == "digits" and config["train"]["epochs"] == 2
    assert json.loads((tmp_path / "demo.json").read_text()) == rows
    assert (tmp_path / "demo.md").read_text().count("\n") == 7
    load(tmp_path / "pruned_90_+_int8.safetensors")                # a loadable int8 file
