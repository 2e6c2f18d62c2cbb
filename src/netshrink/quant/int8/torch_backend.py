"""An integer program as one generated Python function of oneDNN's quantized PyTorch ops.

Everything that can be done once is done at conversion: weights packed, scales turned into Python
numbers and the layers' post-ops chosen, so a call runs one line per op and nothing else (see
`TorchProgram.code`). The ops:

- Linear / Conv2d: `torch.ops.onednn.qlinear_pointwise` / `qconv2d_pointwise` with uint8 output
  at the next value's scale and zero point; the output clamp is the post-op ("relu", or
  "hardtanh" with the real bounds of [lo, hi], which is how 7-bit outputs stay 7-bit). A fused
  residual add is the ops' "sum" post-op (with "relu"; a narrower clamp is one clamp_ after).
  The last layer writes float32: float32(acc) * float32(s_in * w_scale) + bias.
- 4-D values stay channels-last from layer to layer (oneDNN's own layout), so a flatten before a
  Linear reads them as they lie and the Linear's weight columns are permuted once instead.
- Max pooling of uint8 runs on the integers: the maximum of strided views where the windows tile
  the input, PyTorch's quint8 max pooling otherwise;
  adds that are not fused, requantizations and average pools run in float32 and round once.
- The input is quantized by `torch.quantize_per_tensor` (one vectorized pass) and its
  integers then clamped to [lo, hi]; a quint8 value is read by oneDNN through a uint8 view of
  the same memory (`int_repr` copies, and took as long as a small layer).
- kernels="fbgemm" runs every Linear without a residual on fbgemm (what torch.ao's x86
  Linear runs): quint8 in, quint8 out at the next value's scale and zero point
  (`quantized::linear[_relu]`, a narrower clamp after), and the float output layer as
  float32 kernels on the dequantized weights. On an AVX2 CPU without VNNI LeNet-300-100's
  program at batch 256 ran in half the time of the all-oneDNN one
  (benchmarks/bench_int8_small.py); compile_int8's auto times both choices. Choosing per
  layer by timing each layer alone gave a slower program (the conversions between the two
  are not free), so it is not offered.
  Convolutions stay on oneDNN, faster than fbgemm's on every conv shape timed here.

oneDNN's and fbgemm's output stages compute in float32, so an integer they write is the
reference's or one unit off it (reference.py).
"""

from __future__ import annotations

import contextlib
import warnings

import torch
import torch.nn.functional as F

from netshrink.errors import NetshrinkError
from netshrink.quant import kernels
from netshrink.quant.int8.program import (
    Add,
    AvgPool,
    Clamped,
    Concat,
    Dense,
    Dequantize,
    FloatClamp,
    MaxPool,
    Op,
    Pad,
    Program,
    QParams,
    Quantize,
    Requantize,
    Reshape,
)

_LINEAR = "torch.ops.onednn.qlinear_pointwise"
_CONV = "torch.ops.onednn.qconv2d_pointwise"
# "onednn": every layer on oneDNN; "fbgemm": every Linear without a residual on fbgemm (the
# float output layer on float32 kernels), convolutions on oneDNN.
KERNELS = ("onednn", "fbgemm")


def available() -> bool:
    """oneDNN's quantized ops are in this build of torch (x86 CPU builds)."""
    return kernels.onednn_available() and kernels.is_x86()


def fbgemm_available() -> bool:
    """fbgemm's quantized Linear is in this build of torch (x86 CPU builds)."""
    return (kernels.is_x86() and "fbgemm" in torch.backends.quantized.supported_engines
            and hasattr(torch.ops.quantized, "linear_relu"))


@contextlib.contextmanager
def _fbgemm_engine():
    """fbgemm as the quantized engine while packing (it chooses the packed format), and
    PyTorch's deprecation notice of quantized tensors kept quiet."""
    previous = torch.backends.quantized.engine
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        torch.backends.quantized.engine = "fbgemm"
        try:
            yield
        finally:
            torch.backends.quantized.engine = previous


def fbgemm_eligible(op: Op) -> bool:
    """A Linear that adds no residual: what the fbgemm choice can take (an integer output on
    fbgemm's kernel, the float output layer on float32 kernels over the dequantized weights)."""
    return isinstance(op, Dense) and not op.conv and op.residual is None


class _Codegen:
    """Lines of the generated function, the constants they name, and each value's layout."""

    def __init__(self, program: Program, on_fbgemm: frozenset[str] = frozenset()):
        self.program = program
        self.on_fbgemm = on_fbgemm  # outputs of the Linear layers that run on fbgemm
        self.quantized: set[str] = set()  # values held as quint8 tensors, not plain uint8
        self.lines: list[str] = []
        self.constants: dict[str, object] = {"torch": torch, "F": F, "_u8": _uint8_view}
        self.names: dict[str, str] = {}
        self.channels_last: set[str] = set()
        self.hwc_flat: set[str] = set()  # flattened from channels-last: columns in h, w, c order
        self.every_value = False

    def var(self, value: str) -> str:
        if value not in self.names:
            self.names[value] = f"v{len(self.names)}"
        return self.names[value]

    def const(self, value, hint: str) -> str:
        name = f"_{hint}{len(self.constants)}"
        self.constants[name] = value
        return name

    def emit(self, line: str) -> None:
        self.lines.append("    " + line)


def _uint8_view(q: torch.Tensor) -> torch.Tensor:
    """A quint8 tensor's integers as a plain uint8 tensor on the same memory (int_repr copies,
    and was as slow here as a small layer)."""
    return torch.empty(0, dtype=torch.uint8).set_(q.untyped_storage(), q.storage_offset(),
                                                  q.size(), q.stride())


def _as_plain(g: _Codegen, value: str) -> None:
    """From here on, `value` is a plain uint8 tensor (a view when it was a quint8 one)."""
    if value in g.quantized:
        g.quantized.discard(value)
        g.emit(f"{g.var(value)} = _u8({g.var(value)})")


def _post_op(qparams: QParams, lo: int, hi: int) -> tuple[str, list]:
    """The oneDNN post-op that clamps the real output so it lands in [lo, hi]."""
    if (lo, hi) == (0, 255):
        return "none", []
    if (lo, hi) == (qparams.zero_point, 255):
        return "relu", []
    low = (lo - qparams.zero_point) * qparams.scale
    high = (hi - qparams.zero_point) * qparams.scale
    return "hardtanh", [low, high]


def _affine(g: _Codegen, x: str, scale: float, offset: float, op: Clamped) -> str:
    """round(x * scale + offset) clamped to [lo, hi], as uint8 (x: a float or uint8 tensor)."""
    return (f"torch.add({offset!r}, {x}, alpha={scale!r}).round_().clamp_({op.lo}, {op.hi})"
            ".to(torch.uint8)")


def _permuted_weight(weight: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A Linear's weight with columns reordered from (c, h, w) to (h, w, c)."""
    c, h, w = shape
    return weight.reshape(weight.shape[0], c, h, w).permute(0, 2, 3, 1).reshape(
        weight.shape[0], -1).contiguous()


def _dense(g: _Codegen, op: Dense, index: int) -> None:
    program = g.program
    x = op.inputs[0]
    weight = op.weight
    if not op.conv and x in g.hwc_flat:
        source = program.producer(x).inputs[0]
        weight = _permuted_weight(weight, program.values[source].shape[1:])
    if op.output in g.on_fbgemm:
        _dense_fbgemm(g, op, weight, g.var(x), g.var(op.output))
        return
    s_in, z_in = op.input_qparams.scale, op.input_qparams.zero_point
    n = weight.shape[0]
    zeros = g.const(torch.zeros(n, dtype=torch.long), "wz")
    bias = "None" if op.bias is None else g.const(op.bias.float().contiguous(), "b")
    if op.conv:
        geo = op.geometry
        packed = g.const(torch.ops.onednn.qconv_prepack(
            weight.contiguous(), op.weight_scale.float(), s_in, z_in, list(geo.stride),
            list(geo.padding), list(geo.dilation), geo.groups, None), "w")
        shape_args = (f"{list(geo.stride)}, {list(geo.padding)}, {list(geo.dilation)}, "
                      f"{geo.groups}")
    else:
        packed = g.const(torch.ops.onednn.qlinear_prepack(weight.contiguous(), None), "w")
    out_value = program.values[op.output]
    xv, out = g.var(x), g.var(op.output)
    if not out_value.integer:  # the output layer: floats, scales as the integer modules do
        out_scale = g.const((torch.tensor(s_in, dtype=torch.float32)
                             * op.weight_scale.float()).contiguous(), "s")
        if op.conv:
            g.emit(f"{out} = {_CONV}({xv}, 1.0, {z_in}, {packed}, {out_scale}, {zeros}, {bias}, "
                   f"{shape_args}, 1.0, 0, torch.float32, 'none', [], '')")
        else:
            g.emit(f"{out} = {_LINEAR}({xv}, 1.0, {z_in}, {packed}, {out_scale}, {zeros}, "
                   f"{bias}, 1.0, 0, torch.float32, 'none', [None], '')")
        return
    w_scale = g.const(op.weight_scale.float().contiguous(), "s")
    q = out_value.qparams
    if op.residual:
        _dense_residual(g, op, index, xv, out, packed, w_scale, zeros, bias,
                        shape_args if op.conv else None)
    else:
        post, args = _post_op(q, op.lo, op.hi)
        if op.conv:
            g.emit(f"{out} = {_CONV}({xv}, {s_in!r}, {z_in}, {packed}, {w_scale}, {zeros}, "
                   f"{bias}, {shape_args}, {q.scale!r}, {q.zero_point}, None, '{post}', "
                   f"{args!r}, '')")
        else:
            g.emit(f"{out} = {_LINEAR}({xv}, {s_in!r}, {z_in}, {packed}, {w_scale}, {zeros}, "
                   f"{bias}, {q.scale!r}, {q.zero_point}, None, '{post}', {args or [None]!r}, "
                   "'')")
    if op.conv:
        g.channels_last.add(op.output)


def _dense_fbgemm(g: _Codegen, op: Dense, weight: torch.Tensor, xv: str, out: str) -> None:
    """A Linear on fbgemm: quint8 in, quint8 out at the next value's qparams; the float
    output layer as float32(w * w_scale) applied to the dequantized input (the same real
    products, summed in float32: oneDNN's output stage on a 10-column layer took longer
    than the whole float product)."""
    s_in, z_in = op.input_qparams.scale, op.input_qparams.zero_point
    source = op.inputs[0]
    if source in g.quantized and g.program.qparams(source) != op.input_qparams:
        _as_plain(g, source)  # held at other qparams than the layer reads: rewrap below
    held = source in g.quantized
    value = g.program.values[op.output]
    if not value.integer:
        real = g.const((weight.float() * op.weight_scale.float()[:, None]).contiguous(), "fw")
        bias = "None" if op.bias is None else g.const(op.bias.float().contiguous(), "b")
        x = f"{xv}.dequantize()" if held else \
            f"torch.add({-z_in * s_in!r}, {xv}, alpha={s_in!r})"
        g.emit(f"{out} = F.linear({x}, {real}, {bias})")
        return
    q = value.qparams
    n = weight.shape[0]
    with _fbgemm_engine():
        qweight = torch._make_per_channel_quantized_tensor(
            weight.contiguous(), op.weight_scale.double().contiguous(),
            torch.zeros(n, dtype=torch.long), 0)
        bias = None if op.bias is None else op.bias.float().contiguous()
        packed = g.const(torch.ops.quantized.linear_prepack(qweight, bias), "fw")
    relu = op.lo >= q.zero_point
    kernel = "linear_relu" if relu else "linear"
    x = xv if held else \
        f"torch._make_per_tensor_quantized_tensor({xv}.contiguous(), {s_in!r}, {z_in})"
    g.emit(f"{out} = torch.ops.quantized.{kernel}({x}, {packed}, {q.scale!r}, {q.zero_point})")
    if (op.lo, op.hi) != ((q.zero_point if relu else 0), 255):
        g.emit(f"{out} = torch.clamp({out}, {_real(q, op.lo)!r}, {_real(q, op.hi)!r})")
    g.quantized.add(op.output)


def _real(q: QParams, level: int) -> float:
    return (level - q.zero_point) * q.scale


def _dense_residual(g: _Codegen, op: Dense, index: int, xv, out, packed, w_scale, zeros, bias,
                    shape_args) -> None:
    """The "sum" post-op: oneDNN adds into the residual's memory, so a residual read later is
    copied first."""
    program = g.program
    q = program.values[op.output].qparams
    r = program.qparams(op.residual)
    accum = g.var(op.residual)
    later = any(op.residual in later_op.inputs for later_op in program.ops[index + 1:])
    if later or op.residual in program.inputs or g.every_value:
        accum = f"{accum}.clone()"
    unary = "relu" if op.lo >= q.zero_point else "none"
    s_in, z_in = op.input_qparams.scale, op.input_qparams.zero_point
    if op.conv:
        g.emit(f"{out} = {_CONV}.binary({xv}, {s_in!r}, {z_in}, {packed}, {w_scale}, {zeros}, "
               f"{accum}, {bias}, {shape_args}, {q.scale!r}, {q.zero_point}, None, "
               f"{r.scale!r}, {r.zero_point}, 'sum', 1.0, '{unary}', [], '')")
    else:
        g.emit(f"{out} = {_LINEAR}.binary({xv}, {s_in!r}, {z_in}, {packed}, {w_scale}, "
               f"{zeros}, {accum}, {bias}, {q.scale!r}, {q.zero_point}, None, {r.scale!r}, "
               f"{r.zero_point}, 'sum', 1.0, '{unary}', [], '')")
    low = q.zero_point if unary == "relu" else 0
    if (op.lo, op.hi) != (low, 255):
        g.emit(f"{out} = {out}.clamp_({op.lo}, {op.hi})")


def _maxpool(g: _Codegen, op: MaxPool) -> None:
    """Integers pool as they are (exact: quantization is monotonic). Windows that tile the
    input (kernel = stride, no padding) are the elementwise maximum of kernel-strided views;
    any other window runs PyTorch's quint8 max pooling on the same memory. Both are exact;
    at batch 256 the views beat the quint8 kernel 2x and one amax over unflattened windows,
    the earlier form, 8x (benchmarks/bench_int8_maxpool.py)."""
    _as_plain(g, op.inputs[0])
    x, out = g.var(op.inputs[0]), g.var(op.output)
    value = g.program.values[op.inputs[0]]
    h, w = value.shape[2:]
    kh, kw = op.kernel
    windows = (op.kernel == op.stride and op.padding == (0, 0) and op.dilation == (1, 1)
               and h % kh == 0 and w % kw == 0)
    args = f"{list(op.kernel)}, {list(op.stride)}, {list(op.padding)}, " \
           f"{list(op.dilation)}, {op.ceil_mode}"
    if value.integer and windows:
        views = [f"{x}[:, :, {i}::{kh}, {j}::{kw}]" for i in range(kh) for j in range(kw)]
        expression = views[0]
        for view in views[1:]:
            expression = f"torch.maximum({expression}, {view})"
        g.emit(f"{out} = {expression}")
    elif value.integer:
        g.emit(f"{out} = _u8(F.max_pool2d(torch._make_per_tensor_quantized_tensor({x}, 1.0, 0), "
               f"{args}))")
    else:
        g.emit(f"{out} = F.max_pool2d({x}, {args})")
    if op.inputs[0] in g.channels_last:
        g.channels_last.add(op.output)


def _avgpool(g: _Codegen, op: AvgPool) -> None:
    x, out = g.var(op.inputs[0]), g.var(op.output)
    source, target = g.program.qparams(op.inputs[0]), g.program.qparams(op.output)
    k = source.scale / target.scale
    if op.kernel is None:
        mean = f"{x}.float().mean((2, 3), keepdim=True)"
        g.emit(f"{out} = {_affine(g, mean, k, target.zero_point - source.zero_point * k, op)}")
    else:
        pooled = (f"F.avg_pool2d({x}.float() - {source.zero_point}, {list(op.kernel)}, "
                  f"{list(op.stride)}, {list(op.padding)}, {op.ceil_mode}, "
                  f"{op.count_include_pad})")
        g.emit(f"{out} = {_affine(g, pooled, k, float(target.zero_point), op)}")
    if op.inputs[0] in g.channels_last:
        g.channels_last.add(op.output)


def _pad(g: _Codegen, op: Pad) -> None:
    """F.pad on the plain uint8 integers (every mode, the zero point as the constant). On
    quint8 tensors F.pad's constant is a real value, replicate and circular do not run, and a
    round trip through int_repr copies twice."""
    x, out = g.var(op.inputs[0]), g.var(op.output)
    pads = list(op.pads)
    if op.mode == "constant":
        zero_point = g.program.qparams(op.inputs[0]).zero_point
        g.emit(f"{out} = F.pad({x}, {pads}, 'constant', {zero_point})")
    else:
        g.emit(f"{out} = F.pad({x}, {pads}, '{op.mode}')")
    if op.inputs[0] in g.channels_last:
        if op.mode == "circular":  # (the only mode whose result is laid out NCHW)
            g.emit(f"{out} = {out}.contiguous(memory_format=torch.channels_last)")
        g.channels_last.add(op.output)


def _reshape(g: _Codegen, op: Reshape) -> None:
    program = g.program
    x, out = g.var(op.inputs[0]), g.var(op.output)
    source = program.values[op.inputs[0]]
    readers = program.consumers(op.output)
    flat_linear = (len(op.shape) == 1 and len(source.shape) == 4 and readers
                   and all(isinstance(r, Dense) and not r.conv and r.inputs[0] == op.output
                           for r in readers))
    plain_order = len(source.shape) != 4 or source.shape[1] == 1 or \
        source.shape[2] * source.shape[3] == 1
    if op.inputs[0] in g.channels_last and flat_linear and not plain_order:
        g.emit(f"{out} = {x}.permute(0, 2, 3, 1).flatten(1)")
        g.hwc_flat.add(op.output)
    elif op.inputs[0] in g.channels_last and not plain_order:
        g.emit(f"{out} = {x}.contiguous().reshape({x}.shape[0], *{op.shape!r})")
    else:
        g.emit(f"{out} = {x}.reshape({x}.shape[0], *{op.shape!r})")


def _emit(g: _Codegen, op: Op, index: int) -> None:
    program = g.program
    if not (isinstance(op, Dense) and op.output in g.on_fbgemm):
        for name in op.inputs:
            _as_plain(g, name)
    out = g.var(op.output)
    if isinstance(op, Quantize):
        # quantize_per_tensor rounds x * (1 / scale) half to even in one vectorized pass;
        # the clamp to [lo, hi] is applied to the real values first
        q = program.qparams(op.output)
        g.emit(f"{out} = torch.quantize_per_tensor({g.var(op.inputs[0])}, {q.scale!r}, "
               f"{q.zero_point}, torch.quint8)")
        if (op.lo, op.hi) != (0, 255):  # integers clamped (the bounds are exact levels)
            g.emit(f"{out} = torch.clamp({out}, {_real(q, op.lo)!r}, {_real(q, op.hi)!r})")
        g.quantized.add(op.output)
    elif isinstance(op, Dequantize):
        q = program.qparams(op.inputs[0])
        g.emit(f"{out} = torch.add({-q.zero_point * q.scale!r}, {g.var(op.inputs[0])}, "
               f"alpha={q.scale!r})")
    elif isinstance(op, Requantize):
        source, target = program.qparams(op.inputs[0]), program.qparams(op.output)
        x = g.var(op.inputs[0])
        if (source.scale, source.zero_point) == (target.scale, target.zero_point):
            g.emit(f"{out} = {x}.clamp({op.lo}, {op.hi})")
        else:
            k = source.scale / target.scale
            g.emit(f"{out} = {_affine(g, x, k, target.zero_point - source.zero_point * k, op)}")
    elif isinstance(op, Dense):
        _dense(g, op, index)
    elif isinstance(op, Add):
        a, b = op.inputs
        qa, qb, q = program.qparams(a), program.qparams(b), program.qparams(op.output)
        ka, kb = qa.scale / q.scale, qb.scale / q.scale
        offset = q.zero_point - qa.zero_point * ka - qb.zero_point * kb
        total = f"torch.add({offset!r}, {g.var(a)}, alpha={ka!r}).add_({g.var(b)}, alpha={kb!r})"
        g.emit(f"{out} = {total}.round_().clamp_({op.lo}, {op.hi}).to(torch.uint8)")
    elif isinstance(op, AvgPool):
        _avgpool(g, op)
    elif isinstance(op, MaxPool):
        _maxpool(g, op)
    elif isinstance(op, Concat):
        g.emit(f"{out} = torch.cat([{', '.join(g.var(i) for i in op.inputs)}], {op.dim})")
        if all(i in g.channels_last for i in op.inputs):
            g.channels_last.add(op.output)
    elif isinstance(op, Reshape):
        _reshape(g, op)
    elif isinstance(op, Pad):
        _pad(g, op)
    elif isinstance(op, FloatClamp):
        g.emit(f"{out} = {g.var(op.inputs[0])}.clamp({op.lo!r}, {op.hi!r})")
    else:
        raise NetshrinkError(f"the torch backend has no form for op {op.kind}")
    if isinstance(op, Add | Requantize | Dequantize | FloatClamp) and all(
            i in g.channels_last for i in op.inputs):
        g.channels_last.add(op.output)


def generate(program: Program, every_value: bool = False,
             on_fbgemm: frozenset[str] = frozenset()) -> tuple[str, dict]:
    """(source of `forward`, the constants it refers to); with every_value, forward returns
    a dict of every value (residuals copied before oneDNN adds into them). on_fbgemm: the
    outputs of the Linear layers to run on fbgemm (fbgemm_eligible)."""
    g = _generate(program, every_value, on_fbgemm)
    return g.source, g.constants


def _generate(program: Program, every_value: bool,
              on_fbgemm: frozenset[str] = frozenset()) -> _Codegen:
    bad = [name for name in on_fbgemm if not fbgemm_eligible(program.producer(name))]
    if bad:
        raise NetshrinkError(f"the fbgemm choice runs Linear layers without a residual; "
                             f"{', '.join(bad)} is not one")
    g = _Codegen(program, frozenset(on_fbgemm))
    g.every_value = every_value
    args = [g.var(name) for name in program.inputs]
    for index, op in enumerate(program.ops):
        _emit(g, op, index)
    for name in list(g.quantized) if every_value else program.outputs:
        _as_plain(g, name)
    if every_value:
        ret = "{" + ", ".join(f"{name!r}: {var}" for name, var in g.names.items()) + "}"
    else:
        results = [g.var(name) for name in program.outputs]
        ret = results[0] if program.single_output else f"({', '.join(results)},)"
    g.source = "\n".join([f"def forward({', '.join(args)}):", *g.lines, f"    return {ret}"]) \
        + "\n"
    return g


class TorchProgram:
    """An integer program as one generated function of PyTorch's oneDNN ops (x86 CPUs), the
    Linear layers named in on_fbgemm on fbgemm's."""

    runtime = "torch"

    def __init__(self, program: Program, on_fbgemm: frozenset[str] = frozenset()):
        if not available():
            raise NetshrinkError("the torch runtime needs oneDNN's quantized ops (an x86 CPU "
                                 "build of torch); use runtime='onnxruntime'")
        if on_fbgemm and not fbgemm_available():
            raise NetshrinkError("this build of torch has no fbgemm quantized Linear; use "
                                 "kernels='onednn'")
        with _fbgemm_engine():  # PyTorch's notice fires once per process: here, quietly
            torch.quantize_per_tensor(torch.zeros(1), 1.0, 0, torch.quint8)
        self.program = program
        self.on_fbgemm = frozenset(on_fbgemm)
        self.code, constants = generate(program, on_fbgemm=self.on_fbgemm)
        namespace = dict(constants)
        exec(compile(self.code, "<netshrink int8 program>", "exec"), namespace)
        self._forward = namespace["forward"]

    def __call__(self, *inputs: torch.Tensor):
        return self._forward(*inputs)


def layers_on_fbgemm(program: Program, kernels: str) -> frozenset[str]:
    """The outputs of the Linear layers that run on fbgemm under `kernels` (KERNELS): none,
    or every eligible one (nothing where this build has no fbgemm)."""
    if kernels not in KERNELS:
        raise NetshrinkError(f"kernels={kernels!r} is not one of {', '.join(KERNELS)}")
    if kernels == "onednn" or not fbgemm_available():
        return frozenset()
    return frozenset(op.output for op in program.ops if fbgemm_eligible(op))


def run_values(program: Program, *inputs: torch.Tensor,
               on_fbgemm: frozenset[str] = frozenset()) -> dict:
    """Every value of the program as the torch backend computes it, in the program's own
    layout (a flatten the backend reads in h, w, c order is given back in c, h, w order)."""
    g = _generate(program, every_value=True, on_fbgemm=on_fbgemm)
    namespace = dict(g.constants)
    exec(compile(g.source, "<netshrink int8 program, every value>", "exec"), namespace)
    env = {k: v.contiguous() for k, v in namespace["forward"](*inputs).items()}
    for name in g.hwc_flat:
        source = program.producer(name).inputs[0]
        env[name] = env[source].reshape(env[source].shape[0], -1)
    return env
