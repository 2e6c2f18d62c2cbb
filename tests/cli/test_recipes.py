"""netshrink.cli.recipes: `netshrink run RECIPE --out DIR` checks, runs and prints a recipe."""

import json

import pytest

from netshrink.cli import main

RECIPE = """\
name: tiny
data: digits
model: {name: mlp, args: {widths: [8]}}
stages:
  - train: {iterations: 2, batch_size: 32}
"""


def test_check_prints_the_resolved_recipe_and_runs_nothing(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    assert main(["run", str(recipe), "--out", str(tmp_path / "out"), "--check"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["name"] == "tiny" and resolved["model"]["args"] == {"widths": [8]}
    assert resolved["stages"][0]["train"]["iterations"] == 2
    assert resolved["stages"][0]["train"]["optimizer"] == "adam"  # defaults filled in
    assert not (tmp_path / "out").exists()


def test_run_passes_the_recipe_and_options_and_prints_the_table(tmp_path, capsys,
                                                                monkeypatch):
    """The runner itself is tested in tests/recipes; here what the command hands it and prints."""
    import netshrink.recipes

    calls = []

    def fake_run(recipe, out, measure=True):
        calls.append((recipe, out, measure))
        folder = tmp_path / "out"
        folder.mkdir()
        (folder / "results.md").write_text("# tiny\n| stage |\n")
        return netshrink.recipes.RunResult(folder, [])

    monkeypatch.setattr(netshrink.recipes, "run", fake_run)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "--no-measure"]) == 0
    (loaded, given_out, measure), = calls
    assert isinstance(loaded, netshrink.recipes.Recipe) and loaded.name == "tiny"
    assert given_out == str(out) and measure is False
    assert capsys.readouterr().out == (f"# tiny\n| stage |\n"
                                       f"wrote {out / 'results.md'}, results.csv, results.json\n")
    (out / "results.md").unlink()
    out.rmdir()
    assert main(["run", str(recipe), "--out", str(out)]) == 0
    assert calls[-1][2] is True


def test_a_bad_recipe_is_one_line_naming_it(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace("iterations: 2", "iterationz: 2"))
    assert main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netshrink run: error:") and "iterationz" in err
    assert err.count("\n") == 1


def test_out_is_required(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(tmp_path / "r.yaml")])
    assert exit_.value.code == 2
    assert "--out" in capsys.readouterr().err
