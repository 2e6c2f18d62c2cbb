import pytest
import torch

import netshrink
from netshrink import models
from netshrink.cli import main
from netshrink.quant import QuantConv2d
from netshrink.serialize import read_metadata


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    torch.manual_seed(0)
    model = models.create("lenet5", (1, 8, 8), 10)
    return netshrink.save(model, tmp_path_factory.mktemp("m") / "lenet5.safetensors")


@pytest.mark.parametrize("config", ["dynamic", "static", "qat"])
def test_quantize_command_writes_a_loadable_integer_model(saved_model, tmp_path, capsys,
                                                          config):
    out = tmp_path / f"{config}.safetensors"
    extra = ["--epochs", "0.2", "--lsq", "--bits", "4", "--activation-bits", "4"] \
        if config == "qat" else []
    code = main(["quantize", str(saved_model), "--config", config, "--data", "digits",
                 "--out", str(out), *extra])
    assert code == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and "smaller" in text
    model = netshrink.load(out)
    assert isinstance(model[0], QuantConv2d)
    assert model[0].activation.static == (config != "dynamic")


def test_quantize_command_exports_onnx(saved_model, tmp_path):
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "m.onnx"
    assert main(["quantize", str(saved_model), "--config", "static", "--data", "digits",
                 "--out", str(tmp_path / "m.safetensors"), "--onnx", str(onnx_path)]) == 0
    assert onnx_path.stat().st_size > 0


def test_quantize_command_exports_integer_onnx_of_a_dynamic_model(saved_model, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "m.onnx"
    assert main(["quantize", str(saved_model), "--config", "dynamic", "--data", "digits",
                 "--bits", "7", "--activation-bits", "8", "--granularity", "tensor",
                 "--out", str(tmp_path / "m.safetensors"), "--onnx", str(onnx_path),
                 "--onnx-mode", "integer"]) == 0
    ops = {node.op_type for node in onnx.load(str(onnx_path)).graph.node}
    assert {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"} <= ops


def test_quantize_command_refuses_an_onnx_form_before_writing(saved_model, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    code = main(["quantize", str(saved_model), "--config", "dynamic", "--data", "digits",
                 "--out", str(tmp_path / "m.safetensors"), "--onnx", str(tmp_path / "m.onnx")])
    assert code == 2 and "QDQ form" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["--config", "static", "--bits", "12"], "bits=12"),
    (["--config", "static", "--data", "mnist-nope"], "mnist-nope"),
])
def test_quantize_command_errors_are_one_line(saved_model, tmp_path, capsys, argv, message):
    code = main(["quantize", str(saved_model), "--out", str(tmp_path / "o.safetensors"), *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o.safetensors").exists()


def test_quantize_command_refuses_a_model_that_does_not_fit_the_data(tmp_path, capsys):
    path = netshrink.save(models.create("lenet5", (1, 28, 28), 10), tmp_path / "big.safetensors")
    code = main(["quantize", str(path), "--config", "dynamic", "--data", "digits",
                 "--out", str(tmp_path / "o.safetensors")])
    assert code == 2 and "does not fit" in capsys.readouterr().err


def test_qat_fine_tunes_by_distillation_from_a_teacher_file(saved_model, tmp_path, capsys):
    out = tmp_path / "qat.safetensors"
    assert main(["quantize", str(saved_model), "--config", "qat", "--data", "digits",
                 "--epochs", "0.2", "--teacher", str(saved_model), "--temperature", "2",
                 "--out", str(out)]) == 0
    assert "fine-tuned by distillation" in capsys.readouterr().out
    model = netshrink.load(out)
    assert isinstance(model[0], QuantConv2d)
    metadata = read_metadata(out)["user"]
    assert metadata["distill_teachers"] == str(saved_model) and metadata["temperature"] == 2.0


@pytest.mark.parametrize(("extra", "message"), [
    (["--config", "static"], "--teacher only applies to --config qat"),
    (["--config", "qat", "--temperature", "-1"], "temperature"),
])
def test_a_teacher_outside_qat_or_a_bad_temperature_writes_nothing(saved_model, tmp_path,
                                                                   capsys, extra, message):
    out = tmp_path / "m.safetensors"
    assert main(["quantize", str(saved_model), "--data", "digits", "--teacher",
                 str(saved_model), "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_qat_of_a_pruned_file_keeps_its_mask_and_prints_every_layer(saved_model, tmp_path,
                                                                      capsys):
    pruned = tmp_path / "pruned"
    assert main(["prune", str(saved_model), "--data", "digits", "--sparsity", "0.8",
                 "--out", str(pruned)]) == 0
    before = netshrink.prune.current_mask(netshrink.load(pruned / "model.safetensors"))
    capsys.readouterr()
    out = tmp_path / "qat.safetensors"
    assert main(["quantize", str(pruned / "model.safetensors"), "--config", "qat", "--data",
                 "digits", "--epochs", "0.5", "--lr", "1e-2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "qat" in text and "mask carried" in text  # the report, one row per layer
    model = netshrink.load(out)
    after = netshrink.prune.current_mask(model)
    assert set(after) == set(before)
    assert all(torch.equal(after[n], before[n]) for n in before)
    weights = dict(model.named_parameters())
    for name, keep in before.items():
        assert torch.count_nonzero(weights[name][~keep]) == 0
    assert netshrink.prune.density(model) == pytest.approx(before.density())
