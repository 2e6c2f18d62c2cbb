"""The command line: commands work end to end; a wrong option or value is one clear line."""

import json

import pytest

from netshrink.cli import main


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_the_zoo(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert "lenet300" in out and "resnet" in out


def test_train_and_info(capsys, tmp_path):
    code, out, _ = run(capsys, "train", "--model", "lenet300", "--data", "digits", "--epochs",
                       "2", "--out", str(tmp_path), "--no-progress")
    assert code == 0
    assert out.strip().splitlines()[-1].startswith("test accuracy: ")
    for name in ("model.safetensors", "log.csv", "config.json", "result.json"):
        assert (tmp_path / name).is_file()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["train"]["epochs"] == 2.0 and config["model"]["name"] == "lenet300"
    code, out, _ = run(capsys, "info", str(tmp_path / "model.safetensors"))
    assert code == 0 and "50,610 float32" in out


@pytest.mark.parametrize("argv, needle", [
    (["train", "--model", "nope", "--data", "digits"], "unknown model 'nope'"),
    (["train", "--data", "nope"], "unknown data set 'nope'"),
    (["train", "--epochs", "-1", "--data", "digits"], "epochs=-1.0 must be positive"),
    (["train", "--epochs", "many"], "invalid float value: 'many'"),
    (["train", "--arg", "widths"], "must look like key=value"),
    (["train", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["info", "/nonexistent.safetensors"], "no such file"),
    (["reproduce", "nope"], "unknown reproduction 'nope'"),
])
def test_errors_are_one_line(capsys, tmp_path, argv, needle):
    code, _, err = run(capsys, *argv, *(["--out", str(tmp_path)] if argv[0] == "train" else []))
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
