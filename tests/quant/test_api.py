import pytest
import torch
from torch import nn

import netshrink
from netshrink import data, models
from netshrink.errors import NetshrinkError
from netshrink.quant import QAT, Dynamic, QATConv2d, QuantConv2d, QuantLinear, Static, convert
from netshrink.train import TrainConfig, evaluate, fit


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", seed=0)


@pytest.fixture(scope="module")
def trained_lenet(digits):
    torch.manual_seed(0)
    model = models.create("lenet5", digits.input_shape, digits.num_classes)
    fit(model, digits, TrainConfig(epochs=8, lr=3e-3, batch_size=64, device="cpu"),
        progress=False)
    return model.eval()


def _copy(model):
    clone = models.create(model.netshrink_spec["name"], **model.netshrink_spec["args"])
    clone.load_state_dict(model.state_dict())
    return clone.eval()


def _accuracy(model, splits):
    return evaluate(model, splits.test)[1]


def test_static_int8_keeps_accuracy_and_reloads_identically(trained_lenet, digits, tmp_path):
    model = _copy(trained_lenet)
    float_acc = _accuracy(model, digits)
    assert float_acc > 0.85
    netshrink.quantize_(model, Static(), data=digits)
    assert all(isinstance(model[i], QuantConv2d) for i in (0, 3))
    assert isinstance(model[7], QuantLinear) and model[7].activation.static
    assert _accuracy(model, digits) >= float_acc - 0.02
    path = netshrink.save(model, tmp_path / "int8.safetensors")
    reloaded = netshrink.load(path)
    x = digits.test.tensors[0][:50]
    assert torch.equal(reloaded(x), model(x))
    assert reloaded[0].weight.dtype == torch.int8


def test_int8_file_is_about_4x_smaller(tmp_path):
    model = models.create("lenet300")
    float_path = netshrink.save(model, tmp_path / "float.safetensors")
    netshrink.quantize_(model, Dynamic())
    int8_path = netshrink.save(model, tmp_path / "int8.safetensors")
    ratio = float_path.stat().st_size / int8_path.stat().st_size
    assert 3.8 < ratio < 4.0


def test_dynamic_reloads_identically_with_embeddings(tmp_path):
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.fc = nn.Linear(16, 4)

        def forward(self, idx):
            return self.fc(self.embed(idx))

    torch.manual_seed(0)
    model = Tagger()
    idx = torch.randint(0, 50, (3, 9))
    reference = model(idx).detach()
    netshrink.quantize_(model, Dynamic())
    assert model.embed.weight.dtype == torch.int8
    assert float((model(idx) - reference).norm() / reference.norm()) < 0.03
    path = netshrink.save(model, tmp_path / "tagger.safetensors")
    fresh = netshrink.load(path, model=Tagger())  # the file's quantization is replayed
    assert fresh.embed.weight.dtype == torch.int8
    assert torch.equal(fresh(idx), model(idx))


def test_static_resnet_folds_bn_and_reloads(tmp_path):
    torch.manual_seed(0)
    model = models.create("resnet", (1, 8, 8), 10, depth=8, width=4).eval()
    x = torch.rand(64, 1, 8, 8)
    reference = model(x).detach()
    netshrink.quantize_(model, Static(observer="minmax"), data=x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    out = model(x)
    assert float((out - reference).norm() / reference.norm()) < 0.05
    assert not out.requires_grad
    reloaded = netshrink.load(netshrink.save(model, tmp_path / "r.safetensors"))
    assert torch.equal(reloaded(x), out)


@pytest.mark.parametrize("lsq", [False, True])
def test_qat_trains_in_fit_and_converts_to_integers(trained_lenet, digits, tmp_path, lsq):
    model = _copy(trained_lenet)
    edges = 8 if lsq else None  # LSQ's protocol keeps the first and last layer at 8 bits
    netshrink.quantize_(model, QAT(bits=4, activation_bits=4, lsq=lsq, first_last_bits=edges),
                        data=digits)
    assert isinstance(model[0], QATConv2d)
    path = netshrink.save(model, tmp_path / "qat.safetensors")  # mid-training checkpoint
    assert isinstance(netshrink.load(path)[0], QATConv2d)
    fit(model, digits, TrainConfig(epochs=3, lr=1e-3, batch_size=64, device="cpu"),
        progress=False)
    fake_acc = _accuracy(model, digits)
    x = digits.test.tensors[0]
    fake_out = model.eval()(x)
    convert(model)
    assert isinstance(model[3], QuantConv2d) and model[3].weight_bits == 4
    assert int(model[3].weight.abs().max()) <= 7 and model[3].activation.bits == 4
    assert model[0].weight_bits == model[11].weight_bits == (8 if lsq else 4)
    int_out = model(x)
    # the integer model computes what fake quantization simulated (up to float rounding)
    assert (int_out.argmax(1) == fake_out.argmax(1)).float().mean() > 0.97
    assert _accuracy(model, digits) > 0.8 and abs(_accuracy(model, digits) - fake_acc) < 0.03
    reloaded = netshrink.load(netshrink.save(model, tmp_path / "int4.safetensors"))
    assert torch.equal(reloaded(x), int_out)


def test_bad_inputs_are_one_clear_error_each(trained_lenet):
    model = _copy(trained_lenet)
    with pytest.raises(NetshrinkError, match="empty"):
        netshrink.quantize_(model, Static(), data=torch.empty(0, 1, 8, 8))
    with pytest.raises(NetshrinkError, match="empty"):
        netshrink.quantize_(_copy(trained_lenet), Static(), data=[])
    with pytest.raises(NetshrinkError, match="does not fit"):
        netshrink.quantize_(_copy(trained_lenet), Static(), data=torch.rand(8, 3, 28, 28))
    with pytest.raises(NetshrinkError, match="calibration data"):
        netshrink.quantize_(_copy(trained_lenet), Static())
    with pytest.raises(NetshrinkError, match="bits=12"):
        Static(bits=12)
    with pytest.raises(NetshrinkError, match="activation_bits=1"):
        QAT(activation_bits=1)
    with pytest.raises(NetshrinkError, match="no layer to quantize"):
        netshrink.quantize_(nn.Sequential(nn.ReLU(), nn.Tanh()), Dynamic())
    with pytest.raises(NetshrinkError, match="no QAT layers"):
        convert(_copy(trained_lenet))
    with pytest.raises(NetshrinkError, match="config must be"):
        netshrink.quantize_(_copy(trained_lenet), {"bits": 8})
    with pytest.raises(NetshrinkError, match="observer="):
        Static(observer="entropy")


@pytest.mark.parametrize("name", ["lenet5", "resnet"])
def test_a_failed_calibration_leaves_the_model_unchanged(name):
    model = models.create(name, (1, 8, 8), 10, **({"depth": 8, "width": 4}
                                                  if name == "resnet" else {})).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NetshrinkError):
        netshrink.quantize_(model, Static(), data=torch.rand(8, 3, 28, 28))
    assert not hasattr(model, "netshrink_transforms")
    assert not any(type(m).__name__.startswith("Quant") for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class AuxiliaryHead(nn.Module):
    """A head only a training loss of the user's would call: the forward never reaches it."""

    def __init__(self):
        super().__init__()
        self.fc, self.aux, self.head = nn.Linear(8, 8), nn.Linear(8, 3), nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.fc(x)))


def test_static_keeps_a_layer_the_calibration_never_reaches_float(tmp_path):
    torch.manual_seed(0)
    model, x = AuxiliaryHead().eval(), torch.randn(32, 8)
    reference = model(x).detach()
    report = netshrink.quantize_(model, Static(), data=x)
    assert isinstance(model.aux, nn.Linear) and isinstance(model.head, QuantLinear)
    (row,) = [r for r in report.rows if r.name == "aux"]
    assert row.fate == "float" and "never called" in row.detail
    assert float((model(x) - reference).abs().max()) < 0.05 * float(reference.abs().max())
    fresh = netshrink.load(netshrink.save(model, tmp_path / "aux.safetensors"),
                           model=AuxiliaryHead())
    assert isinstance(fresh.aux, nn.Linear) and torch.equal(fresh(x), model(x))


def test_convert_names_every_layer_without_an_input_range_and_changes_nothing():
    model = AuxiliaryHead()
    x = torch.randn(32, 8)
    netshrink.quantize_(model, QAT(), data=x)
    before = [type(m) for m in model.modules()]
    with pytest.raises(NetshrinkError, match=r"'aux' has not seen any input.*skip=\('aux',\)"):
        convert(model)
    assert [type(m) for m in model.modules()] == before
    model = AuxiliaryHead()
    netshrink.quantize_(model, QAT(skip=("aux",)), data=x)
    convert(model)
    assert isinstance(model.head, QuantLinear) and isinstance(model.aux, nn.Linear)
