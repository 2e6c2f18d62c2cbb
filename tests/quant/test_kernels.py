"""Every kernel computes the same integer arithmetic as the float64 reference, bit for bit."""

import pytest
import torch
import torch.nn.functional as F

from netshrink.errors import NetshrinkError
from netshrink.quant import kernels
from netshrink.quant.kernels import ConvGeometry

CPU_KERNELS = ["reference", "int_mm"] + (["onednn"] if kernels.onednn_available() else [])
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _operands(m, k, n, act_max=127, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, act_max + 1, (m, k), generator=g, dtype=torch.uint8)
    w = torch.randint(-127, 128, (n, k), generator=g, dtype=torch.int8)
    scale = torch.rand(n, generator=g) * 1e-3 + 1e-4
    bias = torch.randn(n, generator=g)
    return q.to(device), w.to(device), scale.to(device), bias.to(device)


def _exact_linear(q, zero_point, w, scale, bias):
    acc = (q.double() - zero_point) @ w.double().t()  # exact: far below 2**53
    return acc.float() * scale + bias


@pytest.mark.parametrize("name", CPU_KERNELS)
@pytest.mark.parametrize("shape", [(1, 5, 3), (37, 64, 24), (300, 200, 70)])
@pytest.mark.parametrize("zero_point", [0, 37, 64])
def test_linear_kernels_match_exact_integer_arithmetic(name, shape, zero_point):
    kernel = kernels.select("cpu", name)
    q, w, scale, bias = _operands(*shape)
    out = kernel.linear(q, zero_point, kernel.pack_linear(w), scale, bias)
    assert torch.equal(out, _exact_linear(q, zero_point, w, scale, bias))


@pytest.mark.parametrize("name", CPU_KERNELS)
@pytest.mark.parametrize("geometry", [ConvGeometry((1, 1), (1, 1), (1, 1), 1),
                                      ConvGeometry((2, 2), (0, 0), (1, 1), 1),
                                      ConvGeometry((1, 2), (2, 1), (2, 1), 1)])
def test_conv_kernels_match_exact_integer_arithmetic(name, geometry):
    kernel = kernels.select("cpu", name)
    g = torch.Generator().manual_seed(1)
    q = torch.randint(0, 128, (2, 3, 11, 9), generator=g, dtype=torch.uint8)
    w = torch.randint(-127, 128, (5, 3, 3, 3), generator=g, dtype=torch.int8)
    scale, bias, zero_point = torch.rand(5, generator=g) * 1e-2, torch.randn(5, generator=g), 41
    out = kernel.conv2d(q, zero_point, kernel.pack_conv(w, geometry), scale, bias, geometry)
    # zero padding stands for the real value 0, i.e. the integer zero_point
    acc = F.conv2d(q.double() - zero_point, w.double(), None, geometry.stride,
                   geometry.padding, geometry.dilation)
    expected = acc.float() * scale.view(-1, 1, 1) + bias.view(-1, 1, 1)
    assert out.shape == expected.shape and torch.equal(out, expected)


@pytest.mark.skipif(not (kernels.onednn_available()
                         and kernels.OneDNN().pairs_in_int16(torch.device("cpu"))),
                    reason="only CPUs without VNNI add int8 products in saturating int16")
def test_onednn_saturates_8bit_operands_on_this_cpu_which_is_why_activations_get_7_bits():
    kernel = kernels.select("cpu", "onednn")
    q, w, scale, bias = _operands(64, 256, 32, act_max=255)
    q[0] = 255
    w[0] = 127
    packed = kernel.pack_linear(w)
    exact = _exact_linear(q, 0, w, scale, bias)
    assert not torch.equal(kernel.linear(q, 0, packed, scale, bias), exact)  # saturated
    q7 = q // 2  # 7-bit activations: pair sums stay below 2**15
    assert torch.equal(kernel.linear(q7, 0, packed, scale, bias), _exact_linear(q7, 0, w, scale,
                                                                                 bias))
    assert kernels.max_activation_bits(kernel, "cpu", 8) == 7
    assert kernels.max_activation_bits(kernel, "cpu", 7) == 8


def test_default_kernels_and_errors():
    assert kernels.default_name("cuda") == "int_mm"
    assert kernels.select("cpu", "reference").name == "reference"
    with pytest.raises(NetshrinkError, match="kernel="):
        kernels.select("cpu", "tensorrt")
    with pytest.raises(NetshrinkError, match="onednn"):
        kernels.select("cuda", "onednn")


def test_kernel_can_be_chosen_by_environment(monkeypatch):
    monkeypatch.setenv("NETSHRINK_INT8_KERNEL", "reference")
    assert kernels.select("cpu").name == "reference"


@cuda
@pytest.mark.parametrize("shape", [(1, 5, 3), (37, 64, 24), (300, 200, 70)])
def test_int_mm_on_cuda_matches_exact_integer_arithmetic(shape):
    kernel = kernels.select("cuda")
    q, w, scale, bias = _operands(*shape, device="cuda")
    out = kernel.linear(q, 37, kernel.pack_linear(w), scale, bias)
    assert torch.equal(out.cpu(), _exact_linear(q.cpu(), 37, w.cpu(), scale.cpu(), bias.cpu()))


@cuda
def test_int_mm_conv_on_cuda_matches_exact_integer_arithmetic():
    kernel = kernels.select("cuda")
    geometry = ConvGeometry((1, 1), (1, 1), (1, 1), 1)
    q = torch.randint(0, 256, (2, 3, 9, 9), dtype=torch.uint8)
    w = torch.randint(-127, 128, (8, 3, 3, 3), dtype=torch.int8)
    scale, bias = torch.rand(8) * 1e-2, torch.randn(8)
    out = kernel.conv2d(q.cuda(), 200, kernel.pack_conv(w.cuda(), geometry), scale.cuda(),
                        bias.cuda(), geometry)
    acc = F.conv2d(q.double() - 200, w.double(), padding=1)
    assert torch.equal(out.cpu(), acc.float() * scale.view(-1, 1, 1) + bias.view(-1, 1, 1))


def test_the_cpu_model_names_its_family_where_linux_says_it(monkeypatch, tmp_path):
    text = ("processor\t: 0\nmodel name\t: AMD EPYC\ncpu family\t: 23\nmodel\t\t: 1\n"
            "flags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t\t: other\n")
    (tmp_path / "cpuinfo").write_text(text)
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(
        tmp_path / "cpuinfo" if path == "/proc/cpuinfo" else path, *a, **k))
    kernels._first_cpu.cache_clear()
    try:
        assert kernels.cpu_model() == "AMD EPYC (family 23, model 1)"
        assert kernels.cpu_flags() == frozenset({"fpu", "avx2", "fma"})  # the first CPU's
    finally:
        kernels._first_cpu.cache_clear()
