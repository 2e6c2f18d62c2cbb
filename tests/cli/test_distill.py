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


def test_distill_retrains_a_pruned_student_file_and_keeps_its_zeros(tmp_path, teacher_file,
                                                                     capsys):
    import netshrink
    from netshrink.prune.mask import density

    small = tmp_path / "small"
    assert main(["train", "--model", "mlp", "--arg", "widths=[16]", "--epochs", "2", "--out",
                 str(small), *COMMON]) == 0
    pruned = tmp_path / "pruned"
    assert main(["prune", str(small / "model.safetensors"), "--method", "magnitude",
                 "--sparsity", "0.75", "--data", "digits", "--out", str(pruned)]) == 0
    out = tmp_path / "student"
    assert main(["distill", "--teacher", str(teacher_file), "--student",
                 str(pruned / "model.safetensors"), "--epochs", "2", "--out", str(out),
                 *COMMON]) == 0
    assert "25.0% of the prunable weights kept" in capsys.readouterr().out
    model = netshrink.load(out / "model.safetensors")
    assert density(model) == pytest.approx(0.25, abs=0.01)
    config = json.loads((out / "config.json").read_text())
    assert config["student_file"] == str(pruned / "model.safetensors")


def test_student_file_and_model_options_exclude_each_other(tmp_path, teacher_file, capsys):
    out = tmp_path / "never"
    assert main(["distill", "--teacher", str(teacher_file), "--student", str(teacher_file),
                 "--model", "mlp", "--out", str(out), *COMMON]) == 2
    assert "drop --model" in capsys.readouterr().err
    assert not out.exists()
