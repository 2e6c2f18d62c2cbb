import csv
import math

import pytest

from netshrink.bench.report import (
    aggregate,
    flatten,
    markdown_table,
    plot_lines,
    with_compression,
    write_csv,
)
from netshrink.errors import NetshrinkError


def _row(method, sparsity, seed, acc, status="ok"):
    return {"trial_id": f"{method}-{sparsity}-{seed}", "task": "prune", "model": "mlp",
            "data": "digits", "model_args": {"widths": [30, 20]}, "data_args": {},
            "params": {"method": method, "sparsity": sparsity}, "train": {"epochs": 1},
            "seed": seed, "metrics": {"test_accuracy": acc, "seed": 99}, "seconds": 1.5,
            "status": status, "error": None}


def test_flatten_names_every_part_and_keeps_collisions():
    flat = flatten(_row("magnitude", 0.5, 1, 0.9))
    assert flat["trial_id"] == "magnitude-0.5-1"
    assert flat["method"] == "magnitude" and flat["sparsity"] == 0.5
    assert flat["model_args.widths"] == "[30,20]"
    assert flat["train.epochs"] == 1
    assert flat["seed"] == 1 and flat["metrics.seed"] == 99
    assert flat["test_accuracy"] == 0.9 and flat["status"] == "ok"


def test_flatten_of_a_row_without_status_is_ok():
    row = _row("random", 0.0, 0, 0.5)
    del row["status"], row["error"]
    assert flatten(row)["status"] == "ok"


def test_with_compression_derives_from_sparsity_and_density():
    rows = with_compression([{"sparsity": 0.75}, {"density": 0.1}, {"compression": 3.0},
                             {"other": 1}])
    assert rows[0]["compression"] == pytest.approx(4.0)
    assert rows[1]["compression"] == pytest.approx(10.0)
    assert rows[2]["compression"] == 3.0
    assert "compression" not in rows[3]


def test_aggregate_means_stds_and_counts():
    rows = [flatten(_row("magnitude", 0.5, s, a)) for s, a in [(0, 0.8), (1, 0.9), (2, 1.0)]]
    rows += [flatten(_row("random", 0.5, 0, 0.6)), flatten(_row("random", 0.5, 1, None))]
    table = aggregate(rows, ["method", "sparsity"], ["test_accuracy"])
    assert [t["method"] for t in table] == ["magnitude", "random"]
    mag, rnd = table
    assert mag["n"] == 3 and mag["test_accuracy_n"] == 3
    assert mag["test_accuracy_mean"] == pytest.approx(0.9)
    assert mag["test_accuracy_std"] == pytest.approx(0.1)
    assert rnd["n"] == 2 and rnd["test_accuracy_n"] == 1
    assert rnd["test_accuracy_mean"] == pytest.approx(0.6) and rnd["test_accuracy_std"] is None


def test_aggregate_sorts_numbers_numerically():
    rows = [{"s": 10, "m": 1.0}, {"s": 2, "m": 2.0}, {"s": None, "m": 3.0}]
    assert [t["s"] for t in aggregate(rows, ["s"], ["m"])] == [None, 2, 10]


def test_aggregate_refuses_a_string_for_a_list():
    with pytest.raises(NetshrinkError, match="lists"):
        aggregate([], "method", ["m"])


def test_markdown_table_formats_and_escapes():
    text = markdown_table([{"a": "x|y", "b": 0.123456, "c": None}, {"a": "z", "b": math.nan}],
                          {"a": "Method", "b": "Acc", "c": "C"}, float_format={"b": ".2%"})
    lines = text.splitlines()
    assert lines[0] == "| Method | Acc | C |"
    assert lines[1] == "|---|---|---|"
    assert lines[2] == "| x\\|y | 12.35% |  |"
    assert lines[3] == "| z | nan |  |"


def test_plot_lines_writes_a_png(tmp_path):
    import matplotlib.image

    rows = [{"method": m, "compression": c, "acc": 1 / c + i, "err": 0.01}
            for i, m in enumerate(["a", "b"]) for c in (1, 2, 4, 8)]
    out = plot_lines(rows, "compression", "acc", ["method"], tmp_path / "p.png", yerr="err",
                     title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert not list(tmp_path.glob(".*.tmp"))


def test_plot_lines_refuses_when_nothing_is_numeric(tmp_path):
    with pytest.raises(NetshrinkError, match="nothing to plot"):
        plot_lines([{"x": "a", "y": 1}], "x", "y", None, tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


def test_write_csv_round_trips_union_of_columns(tmp_path):
    path = write_csv([{"a": 1, "b": [1, 2]}, {"a": 2, "c": "x"}], tmp_path / "r.csv")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{"a": "1", "b": "[1,2]", "c": ""}, {"a": "2", "b": "", "c": "x"}]
