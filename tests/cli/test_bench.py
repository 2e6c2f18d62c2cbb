"""`netshrink sweep` and `netshrink report`: grids checked before anything runs, dry runs."""

import textwrap

from netshrink.cli import main


def test_the_cli_refuses_a_bad_grid_before_running_anything(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""\
        task: train
        model: mlp
        data: digits
        seed: [0, 1]
        params: {sparsity: [0.5, 0.9]}
    """))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    assert "params: task 'train' takes no params" in capsys.readouterr().err
    assert not out.exists()


def test_the_cli_dry_run_lists_trials(tmp_path, capsys):
    path = tmp_path / "g.yaml"
    path.write_text("task: train\nmodel: mlp\ndata: digits\nseed: [0, 1, 2]\n")
    assert main(["sweep", str(path), "--dry-run"]) == 0
    assert "3 trials; the grid is valid" in capsys.readouterr().out


def test_report_of_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "not-a-folder"
    path.write_text("x")
    assert main(["report", str(path)]) == 2
    assert "is not a folder; give the --out of a sweep" in capsys.readouterr().err
