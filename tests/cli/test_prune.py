"""`netshrink prune`: a fresh model or a saved file, pruned, trained, saved; clear errors."""

import json

import pytest

import netshrink
from netshrink.cli import main
from netshrink.prune import current_mask, density


def test_prune_a_fresh_model_then_a_saved_file(tmp_path, capsys):
    first = tmp_path / "a"
    code = main(["prune", "--model", "mlp", "--arg", "widths=[16]", "--data", "digits",
                 "--method", "synflow", "--compression", "4", "--option", "iterations=5",
                 "--iterations", "3", "--no-progress", "--out", str(first)])
    assert code == 0
    out = capsys.readouterr().out
    assert "total" in out and "25.00%" in out
    result = json.loads((first / "result.json").read_text())
    assert result["density"] == pytest.approx(0.25, abs=1e-3)
    assert "test_accuracy" in result
    model = netshrink.load(first / "model.safetensors")
    assert density(model) == pytest.approx(0.25, abs=1e-3)
    assert len(current_mask(model)) == 2

    second = tmp_path / "b"
    assert main(["prune", str(first / "model.safetensors"), "--data", "digits", "--method",
                 "magnitude", "--sparsity", "0.9", "--scope", "layerwise",
                 "--layer-sparsity", "3=0.8", "--out", str(second)]) == 0
    config = json.loads((second / "config.json").read_text())
    assert config["layer_sparsity"] == {"3": 0.8}
    again = netshrink.load(second / "model.safetensors")
    assert float(current_mask(again)["3.weight"].float().mean()) == pytest.approx(0.2, abs=0.01)


def test_errors_are_one_clear_line(tmp_path, capsys):
    code = main(["prune", "--model", "mlp", "--data", "digits", "--sparsity", "1.5",
                 "--out", str(tmp_path / "x")])
    assert code == 2
    assert "sparsity=1.5 must be in [0, 1)" in capsys.readouterr().err
    code = main(["prune", "--model", "mlp", "--arg", "widths=[4]", "--data", "digits",
                 "--method", "random", "--compression", "1000", "--out", str(tmp_path / "y")])
    assert code == 2
    assert "layer collapse" in capsys.readouterr().err
    assert not (tmp_path / "y" / "model.safetensors").exists()


def test_a_file_for_another_data_set_is_refused(tmp_path, capsys):
    assert main(["prune", "--model", "mlp", "--arg", "widths=[8]", "--data", "digits",
                 "--sparsity", "0.5", "--out", str(tmp_path / "a")]) == 0
    code = main(["prune", str(tmp_path / "a" / "model.safetensors"), "--data", "fashion-mnist",
                 "--sparsity", "0.6", "--out", str(tmp_path / "b")])
    assert code == 2
    assert "takes inputs of shape (1, 8, 8)" in capsys.readouterr().err
