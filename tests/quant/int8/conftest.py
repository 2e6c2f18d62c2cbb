"""Models for the integer-program tests: zoo models and models written here, each quantized
with Static on a few random images; and the check that a backend matches the reference."""

import copy
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import netshrink
from netshrink import models
from netshrink.quant import Static
from netshrink.quant.int8 import lower, reference, torch_backend
from netshrink.quant.int8.program import Concat, Dense, MaxPool, Pad, Requantize, Reshape


class ResidualDepthwise(nn.Module):
    """A user's residual CNN: BatchNorm, a depthwise conv, an identity and a strided block."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.pointwise = nn.Conv2d(8, 8, 1)
        self.down = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.shortcut = nn.Conv2d(8, 12, 1, stride=2)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = self.stem(x)
        y = F.relu(self.bn1(self.depthwise(x)))
        x = F.relu(self.pointwise(y) + x)
        x = torch.relu(self.down(x) + self.shortcut(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Branches(nn.Module):
    """Two conv branches joined by torch.cat, ReLU6 and hardtanh, average pooling, a view."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(1, 3, 5, padding=2, stride=1)
        self.mix = nn.Conv2d(7, 6, 3, stride=2, padding=(1, 0))
        self.fc = nn.Linear(6 * 2 * 1, 4)

    def forward(self, x):
        joined = torch.cat([F.relu6(self.a(x)), F.hardtanh(self.b(x), -1.0, 2.0)], dim=1)
        y = F.avg_pool2d(torch.clamp(self.mix(joined), min=0.0), 2)
        return self.fc(y.view(y.size(0), -1))


class Tokens(nn.Module):
    """Linear layers on [batch, tokens, features]: the integer products see 3-D inputs."""

    def __init__(self):
        super().__init__()
        self.up, self.down = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.down(F.relu(self.up(x)))


class TwoInputs(nn.Module):
    """forward(a, b): two inputs, each through its own layer, then joined."""

    def __init__(self):
        super().__init__()
        self.left, self.right = nn.Linear(6, 8), nn.Linear(4, 8)
        self.out = nn.Linear(16, 3)

    def forward(self, a, b):
        return self.out(torch.cat([self.left(a).relu(), F.relu(self.right(b))], 1))


class Pools(nn.Module):
    """Max pooling three ways: overlapping and padded (a ResNet stem's 3/2/1), windows that
    tile the input, and windows past an odd edge (ceil_mode)."""

    def __init__(self):
        super().__init__()
        self.stem, self.mid = nn.Conv2d(2, 6, 3, padding=1), nn.Conv2d(6, 5, 3, padding=1)
        self.fc = nn.Linear(5 * 2 * 2, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2, padding=1)  # 13 x 13 -> 7 x 7
        x = F.max_pool2d(F.relu(self.mid(x)), 2, ceil_mode=True)  # 7 x 7 -> 4 x 4
        return self.fc(F.max_pool2d(x, 2).flatten(1))  # tiles: 4 x 4 -> 2 x 2


def quantized(model, data, config=None):
    """A quantized copy of `model` (quantize_ works in place; tests keep the float one)."""
    model = copy.deepcopy(model).eval()
    netshrink.quantize_(model, Static() if config is None else config, data=data)
    return model


def _quantized(model, data, **config):
    model = copy.deepcopy(model).eval()
    netshrink.quantize_(model, Static(observer="minmax", **config), data=data)
    return model


CASES = {
    "lenet300": lambda: (models.create("lenet300", (1, 8, 8), 10), torch.rand(64, 1, 8, 8)),
    "lenet5": lambda: (models.create("lenet5", (1, 16, 16), 10), torch.rand(64, 1, 16, 16)),
    "resnet8": lambda: (models.create("resnet", (1, 12, 12), 10, depth=8, width=4),
                        torch.rand(64, 1, 12, 12)),
    "residual_depthwise": lambda: (ResidualDepthwise(), torch.rand(64, 3, 10, 10)),
    "branches": lambda: (Branches(), torch.rand(64, 1, 8, 6)),
    "tokens": lambda: (Tokens(), torch.randn(64, 5, 6)),
    "pools": lambda: (Pools(), torch.randn(64, 2, 13, 13)),
}


def lowered_case(make) -> tuple:
    """(float model, quantized copy, calibration data, the lowered program) of a case:
    `make()` returns (model, data); BatchNorm statistics trained, quantized by minmax."""
    torch.manual_seed(0)
    model, data = make()
    _train_batchnorm(model, data)
    quantized = _quantized(model, data)
    return model, quantized, data, lower.lower(quantized, data[:2], data)


@functools.cache
def build_case(name: str):
    """(quantized model, calibration data, the lowered program) of one case, built once per
    session (tests only read them)."""
    return lowered_case(CASES[name])[1:]


def _train_batchnorm(model: nn.Module, data: torch.Tensor) -> None:
    """Running statistics that are not the identity, so folding has something to fold."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(data * 2 - 0.5)
    model.eval()


@pytest.fixture(params=list(CASES), scope="module")
def case(request):
    return request.param, *build_case(request.param)


@pytest.fixture
def seeded():
    """Each test's inputs the same whatever ran before it (pytestmark usefixtures)."""
    torch.manual_seed(1)


EXACT = (MaxPool, Concat, Pad, Reshape)


def assert_matches_reference(program, got: dict, inputs: tuple) -> None:
    """Each op of a backend, fed the backend's own inputs, against the reference arithmetic:
    integers equal, or one unit apart where a float32 output stage rounds the other way (and
    then rarely); moves (pools, concatenations, reshapes, clamps) exact; floats to float32."""
    assert set(program.values) <= set(got)
    for name, x in zip(program.inputs, inputs, strict=True):
        assert torch.equal(got[name], x.float())
    for op in program.ops:
        expected = reference.run_op(op, [got[i] for i in op.inputs], program)
        actual = got[op.output]
        assert actual.shape == expected.shape, op
        if not program.values[op.output].integer:
            scale = float(expected.abs().max()) or 1.0
            torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * scale)
            continue
        assert actual.dtype == torch.uint8, op
        diff = (actual.int() - expected.int()).abs()
        pure_clamp = isinstance(op, Requantize) and program.qparams(op.inputs[0]) == \
            program.qparams(op.output)
        if isinstance(op, EXACT) or pure_clamp:
            assert int(diff.max()) == 0, op
        elif isinstance(op, Dense):
            assert int(diff.max()) <= 1, (op, int(diff.max()))
            off = diff != 0
            near = _near_half(op, [got[i] for i in op.inputs], program)
            assert bool(near[off].all()), (op, int(off.sum()), int((off & ~near).sum()))
        else:
            assert int(diff.max()) <= 1, (op, int(diff.max()))
            assert float((diff != 0).float().mean()) < 0.02, op


def _near_half(op: Dense, args: list, program) -> torch.Tensor:
    """Where a fused kernel may round a Dense layer's output the other way: the exact level
    real / s_out lies within float32's error (a few units in the last place) of a half,
    widened by half a step of the int32 bias onnxruntime rounds to (s_in * w_scale)."""
    residual = args[1] if op.residual else None
    value = reference.dense_real(op, args[0], residual, program)
    q = program.values[op.output].qparams
    level = value / q.scale
    channel = (-1, 1, 1) if op.conv else (-1,)
    bias_step = 0.5 * op.input_qparams.scale * op.weight_scale.double().view(channel) / q.scale
    tolerance = bias_step + 1e-5 * (level.abs() + 1)
    return ((level - level.floor()) - 0.5).abs() <= tolerance


def assert_onnxruntime_ops_match(program, shape: tuple, kernels: str) -> None:
    """Every op of `program` run by onnxruntime with `kernels`, on a fresh batch of 6 inputs
    of `shape`, against the reference arithmetic."""
    pytest.importorskip("onnxruntime")
    from netshrink.quant.int8 import onnx_backend

    x = torch.randn(6, *shape)
    assert_matches_reference(program, onnx_backend.run_values(program, x, kernels=kernels),
                             (x,))


def assert_torch_ops_match(program, shape: tuple, kernels: str) -> None:
    """The same on the torch runtime (residual adds fused, as compile_int8 runs it), and the
    compiled TorchProgram equal to the op-by-op run."""
    fused = lower.fuse_residual_adds(program)
    on_fbgemm = torch_backend.layers_on_fbgemm(fused, kernels)
    x = torch.randn(6, *shape)
    values = torch_backend.run_values(fused, x, on_fbgemm=on_fbgemm)
    assert_matches_reference(fused, values, (x,))
    compiled = torch_backend.TorchProgram(fused, on_fbgemm)
    torch.testing.assert_close(compiled(x), values[fused.outputs[0]], rtol=0, atol=0)
