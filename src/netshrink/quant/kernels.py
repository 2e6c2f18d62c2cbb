"""Integer matrix-product kernels, one per kind of machine, behind one small interface.

Every kernel computes, for unsigned activation integers q (uint8), their zero point z, and
signed weight integers w (int8):

    acc[m, n] = sum_k (q[m, k] - z) * w[n, k]            (exact, in int32)
    out[m, n] = float32(acc[m, n]) * out_scale[n] + bias[n]   (two float32 roundings)

and the same for 1-, 2- and 3-D convolutions (zero padding stands for the real value 0, i.e.
q = z).
So all kernels agree bit for bit with each other and with `reference`.

- "onednn": oneDNN's u8 x s8 kernels through `torch.ops.onednn` (x86 CPUs). Without VNNI
  (AVX2, AVX-512F) they add pairs of products in int16 with saturation (`vpmaddubsw`), so the
  operands must satisfy activation_bits + weight_bits <= 15 (see bounds.py); with VNNI or AMX
  the products go straight into int32.
- "int_mm": `torch._int_mm` (s8 x s8 -> s32): CUDA's integer GEMM, and CPUs where it is fast.
  Activations are shifted to int8 (q - 128) and the shift is corrected with the weights' row
  sums. Convolutions go through im2col (`unfold`), 1-D ones as 2-D ones of height 1.
- "reference": the same arithmetic in float64 (exact below 2**53): any device, slow; for tests.

Which kernel runs is chosen per device (`select`), or by name, or by NETSHRINK_INT8_KERNEL.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from netshrink.errors import NetshrinkError

KERNELS = ("onednn", "int_mm", "reference")


@functools.cache
def _first_cpu() -> dict[str, str]:
    """The fields of the first processor in Linux's /proc/cpuinfo (empty elsewhere)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    return frozenset(_first_cpu().get("flags", "").split())


def cpu_model() -> str:
    """The CPU's name, family and model, e.g. "AMD EPYC (family 23, model 1)": machines with
    the same flags differ (Zen 1 runs 256-bit AVX2 as two halves), so benchmarks print it
    beside the flags."""
    fields = _first_cpu()
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        return f"{name} (family {fields['cpu family']}, model {fields['model']})"
    return name


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def has_vnni() -> bool:
    """True when the CPU multiplies u8 x s8 straight into int32 (AVX-512 VNNI, AVX-VNNI, AMX)."""
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


@functools.cache
def onednn_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(
            torch.ops.onednn, "qlinear_pointwise"
        )
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class ConvGeometry:
    """Stride, zero padding and dilation per spatial dimension (1, 2 or 3 of them), groups."""

    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    @property
    def dims(self) -> int:
        return len(self.stride)


_CONV_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class Kernel:
    """Interface of an integer kernel (see the module docstring for the arithmetic)."""

    name = ""

    def pairs_in_int16(self, device: torch.device) -> bool:
        """True when pairs of products are summed in saturating int16 before int32."""
        return False

    def pack_linear(self, weight: torch.Tensor) -> object:
        return weight

    def linear(
        self,
        q: torch.Tensor,
        zero_point: int,
        packed: Any,
        out_scale: torch.Tensor,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        raise NotImplementedError

    def pack_conv(self, weight: torch.Tensor, geometry: ConvGeometry) -> object:
        return weight

    def conv(
        self,
        q: torch.Tensor,
        zero_point: int,
        packed: Any,
        out_scale: torch.Tensor,
        bias: torch.Tensor | None,
        geometry: ConvGeometry,
    ) -> torch.Tensor:
        raise NotImplementedError

    def conv2d(
        self,
        q: torch.Tensor,
        zero_point: int,
        packed: Any,
        out_scale: torch.Tensor,
        bias: torch.Tensor | None,
        geometry: ConvGeometry,
    ) -> torch.Tensor:
        return self.conv(q, zero_point, packed, out_scale, bias, geometry)


class Reference(Kernel):
    """Exact integer arithmetic in float64."""

    name = "reference"

    def linear(
        self,
        q: torch.Tensor,
        zero_point: int,
        packed: torch.Tensor,
        out_scale: torch.Tensor,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        acc = (q.double() - zero_point) @ packed.double().t()
        return _finish(acc.float(), out_scale, bias)

    def conv(
        self,
        q: torch.Tensor,
        zero_point: int,
        packed: torch.Tensor,
        out_scale: torch.Tensor,
        bias: torch.Tensor | None,
        geometry: ConvGeometry,
    ) -> torch.Tensor:
        conv = _CONV_FUNCTIONS[geometry.dims]
        acc = conv(q.double() - zero_point, packed.double(), None, geometry.stride,
                   geometry.padding, geometry.dilation, geometry.groups)
        channel = (-1, *([1] * geometry.dims))
        return _finish(acc.float(), out_scale.view(channel),
                       None if bias is None else bias.view(channel))


def _finish(acc: torch.Tensor, out_scale: torch.Tensor, bias: torch.Tensor | None):
    out = acc * out_scale
    return out if bias is None else out + bias


class OneDNN(Kernel):
    """oneDNN's int8 GEMM and convolution (u8 activations, s8 weights, int32 accumulation)."""

    name = "onednn"

    def pairs_in_int16(self, device: torch.device) -> bool:
        return device.type == "cpu" and is_x86() and not has_vnni()

    def pack_linear(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.ops.onednn.qlinear_prepack(weight.contiguous(), None)

    def linear(
        self,
        q: torch.Tensor,
        zero_point: int,
        packed: torch.Tensor,
        out_scale: torch.Tensor,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        n = out_scale.shape[0]
        return torch.ops.onednn.qlinear_pointwise(
            q, 1.0, int(zero_point), packed, out_scale, _zeros(n), bias, 1.0, 0,
            torch.float32, "none", [None], "")

    def pack_conv(self, weight: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
        ones = torch.ones(weight.shape[0])
        return torch.ops.onednn.qconv_prepack(
            weight.contiguous(), ones, 1.0, 0, list(geometry.stride), list(geometry.padding),
            list(geometry.dilation), geometry.groups, None)

    def conv(
        self,
        q: torch.Tensor,
        zero_point: int,
        packed: torch.Tensor,
        out_scale: torch.Tensor,
        bias: torch.Tensor | None,
        geometry: ConvGeometry,
    ) -> torch.Tensor:
        n = out_scale.shape[0]
        out = torch.ops.onednn.qconv_pointwise(
            q, 1.0, int(zero_point), packed, out_scale, _zeros(n), bias, list(geometry.stride),
            list(geometry.padding), list(geometry.dilation), geometry.groups, 1.0, 0,
            torch.float32, "none", [], "")
        return out.contiguous()


@functools.cache
def _zeros(n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.long)


class IntMM(Kernel):
    """torch._int_mm (int8 x int8 -> int32), with the padding CUDA's kernel needs."""

    name = "int_mm"

    def pack_linear(self, weight: torch.Tensor) -> dict[str, Any]:
        n, k = weight.shape
        # cuBLAS's int8 GEMM wants K and N multiples of 8 (zero rows and columns add nothing)
        padded = torch.zeros(_round_up(n, 8), max(_round_up(k, 8), 16), dtype=torch.int8,
                             device=weight.device)
        padded[:n, :k] = weight
        return {"w_t": padded.t(), "row_sum": weight.sum(1, dtype=torch.int32), "n": n, "k": k}

    def linear(
        self,
        q: torch.Tensor,
        zero_point: int,
        packed: dict[str, Any],
        out_scale: torch.Tensor,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        shape = q.shape
        a = _shift_to_int8(q.reshape(-1, shape[-1]))
        acc = self._gemm(a, packed) + (128 - int(zero_point)) * packed["row_sum"]
        out = _finish(acc.float(), out_scale, bias)
        return out.reshape(*shape[:-1], packed["n"])

    def _gemm(self, a: torch.Tensor, packed: dict) -> torch.Tensor:
        m, k = a.shape
        w_t = packed["w_t"]
        rows = max(_round_up(m, 8), 24) if a.is_cuda else m
        if rows != m or w_t.shape[0] != k:
            padded = torch.zeros(rows, w_t.shape[0], dtype=torch.int8, device=a.device)
            padded[:m, :k] = a
            a = padded
        return torch._int_mm(a, w_t)[:m, : packed["n"]]

    def pack_conv(self, weight: torch.Tensor, geometry: ConvGeometry) -> dict[str, Any]:
        if geometry.groups != 1 or geometry.dims == 3:
            raise NetshrinkError("kernel 'int_mm' runs 1-D and 2-D convolutions with groups=1 "
                                 "only; use kernel='reference' for this one")
        packed = self.pack_linear(weight.reshape(weight.shape[0], -1))
        packed["kernel_size"] = tuple(weight.shape[2:])
        return packed

    def conv(
        self,
        q: torch.Tensor,
        zero_point: int,
        packed: dict[str, Any],
        out_scale: torch.Tensor,
        bias: torch.Tensor | None,
        geometry: ConvGeometry,
    ) -> torch.Tensor:
        if geometry.dims == 1:  # as 2-D of height 1
            flat = ConvGeometry((1, *geometry.stride), (0, *geometry.padding),
                                (1, *geometry.dilation), geometry.groups)
            packed2 = {**packed, "kernel_size": (1, *packed["kernel_size"])}
            return self.conv(q.unsqueeze(2), zero_point, packed2, out_scale, bias,
                             flat).squeeze(2)
        n, _, h, w = q.shape
        kh, kw = packed["kernel_size"]
        # Unfold q - z (exact small integers; the zero padding is the real value 0), then
        # shift to int8 as q - 128; the shift is undone with the weights' row sums.
        cols = F.unfold(q.float() - zero_point, (kh, kw), geometry.dilation, geometry.padding,
                        geometry.stride)
        cols = (cols + (int(zero_point) - 128)).to(torch.int8)
        length = cols.shape[2]
        a = cols.transpose(1, 2).reshape(n * length, -1)
        acc = self._gemm(a, packed) + (128 - int(zero_point)) * packed["row_sum"]
        out = _finish(acc.float(), out_scale, bias)
        oh = (h + 2 * geometry.padding[0] - geometry.dilation[0] * (kh - 1) - 1) \
            // geometry.stride[0] + 1
        ow = (w + 2 * geometry.padding[1] - geometry.dilation[1] * (kw - 1) - 1) \
            // geometry.stride[1] + 1
        return out.reshape(n, oh, ow, -1).permute(0, 3, 1, 2).contiguous()


def _shift_to_int8(q: torch.Tensor) -> torch.Tensor:
    return (q.to(torch.int16) - 128).to(torch.int8)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


_INSTANCES: dict[str, Kernel] = {"onednn": OneDNN(), "int_mm": IntMM(), "reference": Reference()}


def default_name(device: torch.device | str) -> str:
    """The kernel a device gets unless told otherwise."""
    device = torch.device(device)
    if device.type == "cuda":
        return "int_mm"
    if device.type == "cpu" and onednn_available():
        return "onednn"
    return "reference"


def select(device: torch.device | str = "cpu", name: str | None = None) -> Kernel:
    """The kernel called `name`, else NETSHRINK_INT8_KERNEL, else the device's default."""
    device = torch.device(device)
    name = name or os.environ.get("NETSHRINK_INT8_KERNEL") or default_name(device)
    if name not in _INSTANCES:
        raise NetshrinkError(f"kernel={name!r} is not one of {', '.join(KERNELS)}")
    if name == "onednn" and (device.type != "cpu" or not onednn_available()):
        raise NetshrinkError(
            f"kernel 'onednn' needs a CPU build of torch with oneDNN (device {device}); "
            "use kernel='int_mm' or 'reference'"
        )
    return _INSTANCES[name]


def max_activation_bits(kernel: Kernel, device: torch.device | str, weight_bits: int) -> int:
    """The widest activations `kernel` multiplies exactly by `weight_bits`-bit weights."""
    if kernel.pairs_in_int16(torch.device(device)):
        return min(8, 15 - weight_bits)
    return 8
