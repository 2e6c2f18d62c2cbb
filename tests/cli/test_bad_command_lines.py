"""Bad command lines: each is exit status 2 and one line on stderr that names the option (or
the file) and the fix, before anything runs; random command lines from a grammar too."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netshrink
from netshrink import models
from netshrink.cli import main


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny mlp for the digits (1x8x8, 10 classes), saved."""
    torch.manual_seed(0)
    model = models.create("mlp", (1, 8, 8), 10, widths=[8])
    return str(netshrink.save(model, tmp_path_factory.mktemp("cli") / "m.safetensors"))


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """{name: path} of output places that cannot be used."""
    root = tmp_path_factory.mktemp("places")
    (root / "a-file").write_text("x")
    (root / "taken" / "model.safetensors").mkdir(parents=True)
    (root / "garbage.safetensors").write_bytes(b"\x00" * 64)
    (root / "bad.yaml").write_text("task: train\nmodel: mlp\ndata: digits\nseed: 10000000000000"
                                   "000000000000000\n")
    return {"file": str(root / "a-file"), "under-file": str(root / "a-file" / "out"),
            "taken": str(root / "taken"), "garbage": str(root / "garbage.safetensors"),
            "missing": str(root / "missing.safetensors"), "grid": str(root / "bad.yaml"),
            "root": str(root)}


def refused(argv, capsys) -> str:
    """The one line a refused command prints (asserting exit status 2)."""
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse's own refusals
        status = stop.code
    err = capsys.readouterr().err
    assert status == 2, (argv, status, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("netshrink"), err
    return err


TRAIN = ["train", "--model", "mlp", "--data", "digits", "--no-progress"]
PRUNE = ["prune", "{model}", "--data", "digits"]
QUANT = ["quantize", "{model}", "--data", "digits", "--out", "{root}/q.safetensors"]
DISTILL = ["distill", "--teacher", "{model}", "--data", "digits"]

# (arguments, words the line must hold); {name} is a path from `places` or the model file
CASES = [
    ([*TRAIN, "--epochs", "inf"], "--epochs: 'inf' must be a finite number"),
    ([*TRAIN, "--epochs", "nan"], "--epochs: 'nan' must be a finite number"),
    ([*TRAIN, "--epochs", "1e400"], "--epochs: '1e400' must be a finite number"),
    ([*TRAIN, "--epochs", "0"], "epochs=0"),
    ([*TRAIN, "--epochs", "abc"], "--epochs: invalid float value: 'abc'"),
    ([*TRAIN, "--lr", "inf"], "--lr: 'inf' must be a finite number"),
    ([*TRAIN, "--lr", "-1"], "lr=-1"),
    ([*TRAIN, "--weight-decay", "nan"], "--weight-decay: 'nan' must be a finite number"),
    ([*TRAIN, "--seed", str(2**64)], "--seed: '18446744073709551616' must be an integer in"),
    ([*TRAIN, "--seed", "-1"], "--seed: '-1' must be an integer in"),
    ([*TRAIN, "--seed", "1.5"], "--seed: invalid int value"),
    ([*TRAIN, "--batch-size", "0"], "batch_size=0"),
    ([*TRAIN, "--batch-size", "many"], "--batch-size: invalid int value"),
    ([*TRAIN, "--iterations", "0"], "iterations=0"),
    ([*TRAIN, "--val-size", "-1"], "val_size"),
    ([*TRAIN, "--optimizer", "adagrad"], "--optimizer: invalid choice"),
    ([*TRAIN, "--device", "tpu"], "device"),
    ([*TRAIN, "--arg", "widths=abc"], "widths"),
    ([*TRAIN, "--arg", "widths"], "--arg 'widths' must look like key=value"),
    ([*TRAIN, "--arg", "colour=red"], "no argument colour"),
    ([*TRAIN, "--arg", "widths=[1000000000]"], "needs|memory"),
    ([*TRAIN, "--model", "no-such"], "unknown model 'no-such'"),
    (["train", "--data", "no-such", "--no-progress"], "no-such"),
    ([*TRAIN, "--data-root", "{missing}"], "is not a folder"),
    ([*TRAIN, "--out", "{file}"], "exists and is not a folder"),
    ([*TRAIN, "--out", "{under-file}"], "cannot create the folder"),
    ([*TRAIN, "--out", "{taken}"], "is a folder, where the command writes a file"),
    ([*PRUNE, "--sparsity", "1.5"], "sparsity=1.5"),
    ([*PRUNE, "--sparsity", "inf"], "--sparsity: 'inf' must be a finite number"),
    ([*PRUNE, "--compression", "0.5"], "compression=0.5"),
    ([*PRUNE, "--sparsity", "0.5", "--layer-sparsity", "1=abc"],
     "--layer-sparsity"),
    ([*PRUNE, "--sparsity", "0.5", "--layer-sparsity", "nolayer=0.5"],
     "'nolayer' matches no layer"),
    ([*PRUNE, "--sparsity", "0.5", "--method", "snip", "--option",
      "batch_size=0"], "batch_size=0"),
    ([*PRUNE, "--sparsity", "0.5", "--option", "power=2"],
     "bad option for method 'magnitude': power; it takes no options"),
    ([*PRUNE, "--sparsity", "0.5", "--method", "synflow", "--option",
      "iterations=100000000"], "synflow iterations=100000000"),
    (["prune", "{missing}", "--sparsity", "0.5"], "no such file"),
    (["prune", "{garbage}", "--sparsity", "0.5"], "not a valid safetensors file"),
    ([*PRUNE, "--sparsity", "0.5", "--out", "{file}"], "not a folder"),
    ([*QUANT, "--config", "static", "--bits", "1"], "bits=1"),
    ([*QUANT, "--config", "static", "--bits", "9"], "bits=9"),
    ([*QUANT, "--config", "static", "--activation-bits", "0"],
     "activation_bits=0"),
    ([*QUANT, "--config", "qat", "--epochs", "inf"], "--epochs"),
    ([*QUANT, "--config", "int4"], "--config: invalid choice"),
    (["quantize", "{missing}", "--config", "dynamic", "--out", "{root}/q.safetensors"],
     "no such file"),
    (["distill", "--teacher", "{missing}"], "no such file"),
    ([*DISTILL, "--temperature", "nan"], "--temperature"),
    ([*DISTILL, "--alpha", "2"], "alpha=2"),
    ([*DISTILL, "--jitter", "-1"], "jitter=-1"),
    (["distill", "--teacher", ","], "--teacher needs at least one model file"),
    (["sweep", "{grid}", "--dry-run"], "seed: expected an integer in"),
    (["sweep", "{grid}", "--max-trials", "0"], "--max-trials: '0' must be an integer >= 1"),
    (["sweep", "{missing}", "--dry-run"], "cannot read"),
    (["run", "{missing}", "--out", "{root}/r"], "cannot read"),
    (["info", "{root}"], "netshrink info: error"),
    (["reproduce", "no-such-paper"], "no-such-paper"),
    (["no-such-command"], "invalid choice"),
]


@pytest.mark.parametrize(("argv", "words"), CASES)
def test_a_bad_command_line_is_one_line_naming_the_option(argv, words, model_file, places,
                                                          capsys):
    argv = [a.format(model=model_file, **places) for a in argv]
    line = refused(argv, capsys)
    assert words.split("|")[0] in line or any(w in line for w in words.split("|")), line


# ---- random command lines from a grammar --------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.sampled_from(["inf", "-inf", "nan", "1e400", "-1", "0", "", "abc", "1.5", str(2**64),
                     "0x10", "=", "1=2=3", "\x00", "é", "--lr"]),
    st.text(max_size=6))
BAD_FIRST = st.sampled_from([("--epochs", "inf"), ("--epochs", "0"), ("--lr", "nan"),
                             ("--lr", "-1"), ("--seed", "-5"), ("--batch-size", "0"),
                             ("--weight-decay", "inf"), ("--epochs", "abc")])
OPTIONS = st.sampled_from(["--epochs", "--lr", "--seed", "--batch-size", "--weight-decay",
                           "--val-size", "--iterations", "--optimizer", "--lr-schedule",
                           "--init", "--model", "--arg", "--data", "--device"])


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(BAD_FIRST, st.lists(st.tuples(OPTIONS, HOSTILE_TEXT), max_size=4))
def test_random_train_command_lines_are_one_clear_line(capsys, bad, others):
    """Each holds one value the command refuses (so nothing trains), among random others."""
    argv = ["train", "--data", "digits", "--no-progress"]
    for option, value in [*others, bad]:
        argv += [option, value] if not value.startswith("-") else [f"{option}={value}"]
    line = refused(argv, capsys)
    assert "error:" in line, line


def test_a_read_only_out_folder_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    """(Simulated: the tests may run as root, who can write anywhere.)"""
    from netshrink.cli import options

    monkeypatch.setattr(options.os, "access", lambda path, mode: False)
    line = refused([*TRAIN, "--out", str(tmp_path / "ro")], capsys)
    assert "the folder is not writable; give a folder you can write" in line, line
