"""`netshrink distill` on the command line: it trains and saves; bad input writes nothing."""

import json

import pytest

from netshrink.cli import main

COMMON = ["--data", "digits", "--device", "cpu", "--no-progress", "--batch-size", "64"]


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    assert main(["train", "--model", "mlp", "--arg", "widths=[64]", "--epochs", "4", "--out",
                 str(out), *COMMON]) == 0
    return out / "model.safetensors"


def test_distill_from_an_ensemble_of_files_with_a_cache(tmp_path, teacher_file, capsys):
    out = tmp_path / "student"
    code = main(["distill", "--teacher", f"{teacher_file},{teacher_file}", "--model", "mlp",
                 "--arg", "widths=[16]", "--temperature", "4", "--alpha", "0.8", "--epochs", "2",
                 "--cache", str(tmp_path / "cache"), "--out", str(out), *COMMON])
    assert code == 0
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "log.csv", "config.json",
                                               "result.json"}
    config = json.loads((out / "config.json").read_text())
    assert config["distill"]["temperature"] == 4.0 and len(config["teachers"]) == 2
    assert "cache miss" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    (["--temperature", "0"], "temperature"),
    (["--hint", "1:nowhere"], "student module 'nowhere'"),
    (["--hint", "nothing"], "TEACHER_MODULE:STUDENT_MODULE"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, teacher_file, capsys, extra, message):
    out = tmp_path / "never"
    args = ["distill", "--teacher", str(teacher_file), "--model", "mlp", "--out", str(out),
            *COMMON, *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err
    assert not out.exists()


def test_a_missing_teacher_file(tmp_path, capsys):
    assert main(["distill", "--teacher", str(tmp_path / "no.safetensors"), "--model", "mlp",
                 "--out", str(tmp_path / "o"), *COMMON]) == 2
    assert "no such file" in capsys.readouterr().err
