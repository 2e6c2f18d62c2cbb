import csv

import pytest

from netshrink.bench.results import ResultsTable
from netshrink.bench.summary import write_report
from netshrink.cli import main
from netshrink.errors import NetshrinkError


def _row(method, sparsity, seed, acc, status="ok"):
    return {"trial_id": f"{method}-{sparsity}-{seed}", "task": "prune", "model": "lenet300",
            "data": "digits", "model_args": {}, "data_args": {}, "train": {"epochs": 3},
            "params": {"method": method, "sparsity": sparsity}, "seed": seed,
            "status": status, "error": None if status == "ok" else "RuntimeError: collapsed",
            "metrics": {"test_accuracy": acc, "train_seconds": 1.0} if status == "ok" else {},
            "seconds": 1.0}


@pytest.fixture
def sweep_dir(tmp_path):
    with ResultsTable(tmp_path) as table:
        for method, base in (("magnitude", 0.9), ("random", 0.8)):
            for sparsity in (0.5, 0.75, 0.9):
                for seed in (0, 1):
                    table.put(_row(method, sparsity, seed, base - sparsity / 10 + seed / 100))
        table.put(_row("random", 0.99, 0, None, status="failed"))
    return tmp_path


def test_report_command_writes_plot_markdown_and_summary(sweep_dir, capsys):
    assert main(["report", str(sweep_dir)]) == 0
    assert "wrote" in capsys.readouterr().out
    png = sweep_dir / "plots" / "test_accuracy-vs-compression.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (sweep_dir / "plots" / "train_seconds-vs-compression.png").exists()
    report = (sweep_dir / "report.md").read_text()
    assert "13 trials: 12 finished, 1 failed" in report
    assert "One line per method." in report
    assert "](plots/test_accuracy-vs-compression.png)" in report
    # magnitude at sparsity 0.5: seeds give 0.85 and 0.86 -> mean 0.855, std 0.0071
    assert "| magnitude | 2 | 0.5 | 0.855 ± 0.0071 | 2 |" in report
    assert "## Failed trials (1)" in report and "RuntimeError: collapsed" in report
    with open(sweep_dir / "summary.csv", newline="") as handle:
        summary = list(csv.DictReader(handle))
    assert len(summary) == 6
    assert [float(r["compression"]) for r in summary[:3]] == pytest.approx([2, 4, 10])


def test_report_options_choose_axis_metric_and_lines(sweep_dir, tmp_path):
    out = tmp_path / "elsewhere"
    paths = write_report(sweep_dir, x="sparsity", ys=["test_accuracy"],
                         group=["method"], out=out)
    assert (out / "plots" / "test_accuracy-vs-sparsity.png") in paths
    assert (out / "report.md").exists()


def test_report_refuses_unknown_columns_and_ambiguous_lines(sweep_dir):
    with pytest.raises(NetshrinkError, match="--x nope"):
        write_report(sweep_dir, x="nope")
    with pytest.raises(NetshrinkError, match="--y nope"):
        write_report(sweep_dir, ys=["nope"])
    with pytest.raises(NetshrinkError, match="--group nope: no such column"):
        write_report(sweep_dir, group=["nope"])
    with pytest.raises(NetshrinkError, match="several points at"):
        write_report(sweep_dir, group=["model"])


def test_report_without_an_x_column_writes_tables_only(tmp_path):
    with ResultsTable(tmp_path) as table:
        for seed in (0, 1):
            table.put({"trial_id": f"t{seed}", "task": "train", "model": "mlp", "seed": seed,
                       "params": {}, "metrics": {"test_accuracy": 0.5 + seed / 10}})
    paths = write_report(tmp_path)
    assert not any(p.suffix == ".png" for p in paths)
    report = (tmp_path / "report.md").read_text()
    assert "No plots" in report and "| 0.55 ± 0.071 | 2 |" in report


def test_report_of_an_empty_folder_says_what_to_do(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "run `netshrink sweep" in capsys.readouterr().err
