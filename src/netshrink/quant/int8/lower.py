"""Lowering: a model quantized by `netshrink.quantize_(model, Static(), data)` -> a `Program`.

The model is traced with torch.fx (its integer layers as leaves) and each node is mapped through
one table of handlers (`MODULES`, `FUNCTIONS`, `METHODS`) to a kind: an integer layer, an alias
(Identity, Dropout in eval, contiguous), a clamp (ReLU, ReLU6, hardtanh, clamp), a pool, an add,
a concatenation, a reshape (flatten, view). A node no handler knows is one error naming it.
A Conv1d and the 1-D pools are their 2-D forms over an (N, C, 1, L) view (conv1d.py); the
padding a convolution applies before its kernel (reflect, replicate, circular, asymmetric
zeros) is a Pad op on its integer input (padding.py).

Where each value is stored:
- A value an integer layer reads is stored with that layer's calibrated input scale and zero
  point, so the layer before it writes it directly in that form (no float in between). The demand
  travels back through aliases and reshapes, and through a clamp, a max-pool or a concatenation
  whose input has no other reader (each commutes with a monotonic quantization).
- A value no layer reads directly (an add's operands and output, an average pool's input) gets
  its range from calibration data, observed with the observer the model was quantized with,
  on all 8 bits: only layers' inputs need fewer (7 on x86 CPUs without VNNI, whose int8
  products saturate), and these values are only added, pooled or requantized.
- The model's outputs are float32: the last layer writes floats, or a value is dequantized.

Then the rewrites: a clamp right after the op that wrote its input (or after a reshape of it)
becomes that op's output clamp (ReLU fusion), the views between 1-D ops cancel, and, for
backends that can (`fuse_residual_adds`), an add whose operand is a layer's output is fused
into that layer.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from netshrink.core.attention import ProjectedAttention
from netshrink.data.inputs import Inputs
from netshrink.errors import NetshrinkError
from netshrink.quant.calibration import calibration_batches
from netshrink.quant.int8 import conv1d, padding
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
    Value,
    producer_in,
    readers_in,
)
from netshrink.quant.modules import (
    QuantConv1d,
    QuantConv2d,
    QuantConvNd,
    QuantEmbedding,
    QuantLinear,
    to_kernel_zero_point,
    unsigned_range,
)
from netshrink.quant.observers import make_observer
from netshrink.quant.scheme import Scheme
from netshrink.quant.weight_only import WEIGHT_ONLY_TYPES

if TYPE_CHECKING:
    from netshrink.data.splits import Splits

DEFAULT_OBSERVER = "mse"


@dataclass(frozen=True)
class Kind:
    """What a traced node does, as far as lowering cares."""

    name: str
    params: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------ handlers

def _arg(node: torch.fx.Node, index: int, name: str, default=None):
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, list | tuple) else (value, value)


def _clamp(lo, hi) -> Kind:
    return Kind("clamp", {"lo": None if lo is None else float(lo),
                          "hi": None if hi is None else float(hi)})


def _maxpool(kernel, stride, padding, dilation, ceil_mode, return_indices, dims=2) -> Kind:
    """dims 1: a 1-D pool, as the 2-D pool over the (N, C, 1, L) view (conv1d.py)."""
    if return_indices:
        raise _Unsupported("max pooling with return_indices=True")
    return Kind("maxpool", {"kernel": conv1d.pair(kernel, dims),
                            "stride": conv1d.pair(stride or kernel, dims),
                            "padding": conv1d.pair(padding, dims, fill=0),
                            "dilation": conv1d.pair(dilation, dims),
                            "ceil_mode": bool(ceil_mode), "dims": dims})


def _avgpool(kernel, stride, padding, ceil_mode, count_include_pad, divisor_override,
             dims=2) -> Kind:
    if divisor_override is not None:
        raise _Unsupported("average pooling with divisor_override")
    return Kind("avgpool", {"kernel": conv1d.pair(kernel, dims),
                            "stride": conv1d.pair(stride or kernel, dims),
                            "padding": conv1d.pair(padding, dims, fill=0),
                            "ceil_mode": bool(ceil_mode),
                            "count_include_pad": bool(count_include_pad), "dims": dims})


def _dropout(training) -> Kind:
    if training:
        raise _Unsupported("dropout in training mode (call model.eval() first)")
    return Kind("alias")


class _Unsupported(Exception):
    """A node a handler recognises but cannot lower (the message says why)."""


def _module_dense(node, m):
    if getattr(m, "pre_pad", ()):  # applied to the float input first: a Pad op on the integers
        if m.pad_mode not in padding.MODES:
            raise _Unsupported(
                f"{m.pad_mode!r} padding is applied to the input before the integer kernel, "
                f"and the integer program pads only as {', '.join(padding.MODES)} do; use "
                "one of those padding modes, or run the model as it is")
        if len(m.pre_pad) != 2 * m.dims:
            raise _Unsupported(
                f"its pre_pad {tuple(m.pre_pad)} is not (before, after) for each of its "
                f"{m.dims} dimensions; rebuild the layer with quantize_")
    return Kind("dense", {"layer": m})


# module type -> handler(node, module)
MODULES: dict[type, Callable[[torch.fx.Node, nn.Module], Kind]] = {
    QuantLinear: _module_dense,
    QuantConv1d: _module_dense,
    QuantConv2d: _module_dense,
    nn.Identity: lambda node, m: Kind("alias"),
    nn.Dropout: lambda node, m: _dropout(m.training),
    nn.Dropout1d: lambda node, m: _dropout(m.training),
    nn.Dropout2d: lambda node, m: _dropout(m.training),
    nn.ReLU: lambda node, m: _clamp(0, None),
    nn.ReLU6: lambda node, m: _clamp(0, 6),
    nn.Hardtanh: lambda node, m: _clamp(m.min_val, m.max_val),
    nn.Flatten: lambda node, m: Kind("flatten", {"start": m.start_dim, "end": m.end_dim}),
    nn.MaxPool2d: lambda node, m: _maxpool(m.kernel_size, m.stride, m.padding, m.dilation,
                                           m.ceil_mode, m.return_indices),
    nn.AvgPool2d: lambda node, m: _avgpool(m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                           m.count_include_pad, m.divisor_override),
    nn.AdaptiveAvgPool2d: lambda node, m: Kind("adaptive_avgpool", {"size": m.output_size}),
    nn.MaxPool1d: lambda node, m: _maxpool(m.kernel_size, m.stride, m.padding, m.dilation,
                                           m.ceil_mode, m.return_indices, dims=1),
    nn.AvgPool1d: lambda node, m: _avgpool(m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                           m.count_include_pad, None, dims=1),
    nn.AdaptiveAvgPool1d: lambda node, m: Kind("adaptive_avgpool",
                                               {"size": m.output_size, "dims": 1}),
}


def _f_maxpool(node):
    return _maxpool(_arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                    _arg(node, 3, "padding", 0), _arg(node, 4, "dilation", 1),
                    _arg(node, 5, "ceil_mode", False), _arg(node, 6, "return_indices", False))


def _f_avgpool(node):
    return _avgpool(_arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                    _arg(node, 3, "padding", 0), _arg(node, 4, "ceil_mode", False),
                    _arg(node, 5, "count_include_pad", True), _arg(node, 6, "divisor_override"))


def _f_maxpool1d(node):
    return _maxpool(_arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                    _arg(node, 3, "padding", 0), _arg(node, 4, "dilation", 1),
                    _arg(node, 5, "ceil_mode", False), _arg(node, 6, "return_indices", False),
                    dims=1)


def _f_avgpool1d(node):  # (F.avg_pool1d has no divisor_override)
    return _avgpool(_arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                    _arg(node, 3, "padding", 0), _arg(node, 4, "ceil_mode", False),
                    _arg(node, 5, "count_include_pad", True), None, dims=1)


def _f_add(node):
    if _arg(node, 2, "alpha", 1) != 1:
        raise _Unsupported("add with alpha != 1")
    return Kind("add")


def _f_cat(node):
    return Kind("cat", {"dim": _arg(node, 1, "dim", 0)})


def _f_flatten(node):
    return Kind("flatten", {"start": _arg(node, 1, "start_dim", 0),
                            "end": _arg(node, 2, "end_dim", -1)})


# function -> handler(node)
FUNCTIONS: dict[Callable, Callable[[torch.fx.Node], Kind]] = {
    F.relu: lambda node: _clamp(0, None),
    torch.relu: lambda node: _clamp(0, None),
    F.relu6: lambda node: _clamp(0, 6),
    F.hardtanh: lambda node: _clamp(_arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0)),
    torch.clamp: lambda node: _clamp(_arg(node, 1, "min"), _arg(node, 2, "max")),
    F.dropout: lambda node: _dropout(_arg(node, 2, "training", True)),
    F.max_pool2d: _f_maxpool,
    F.avg_pool2d: _f_avgpool,
    F.adaptive_avg_pool2d: lambda node: Kind("adaptive_avgpool",
                                             {"size": _arg(node, 1, "output_size")}),
    F.max_pool1d: _f_maxpool1d,
    F.avg_pool1d: _f_avgpool1d,
    F.adaptive_avg_pool1d: lambda node: Kind("adaptive_avgpool",
                                             {"size": _arg(node, 1, "output_size"), "dims": 1}),
    operator.add: _f_add,
    torch.add: _f_add,
    torch.cat: _f_cat,
    torch.concat: _f_cat,
    torch.flatten: _f_flatten,
    operator.getitem: lambda node: Kind("shape"),
}

# tensor method name -> handler(node)
METHODS: dict[str, Callable[[torch.fx.Node], Kind]] = {
    "relu": lambda node: _clamp(0, None),
    "relu_": lambda node: _clamp(0, None),
    "clamp": lambda node: _clamp(_arg(node, 1, "min"), _arg(node, 2, "max")),
    "clamp_": lambda node: _clamp(_arg(node, 1, "min"), _arg(node, 2, "max")),
    "add": _f_add,
    "add_": _f_add,
    "flatten": lambda node: Kind("flatten", {"start": _arg(node, 1, "start_dim", 0),
                                             "end": _arg(node, 2, "end_dim", -1)}),
    "view": lambda node: Kind("reshape"),
    "reshape": lambda node: Kind("reshape"),
    "contiguous": lambda node: Kind("alias"),
    "size": lambda node: Kind("shape"),
    "dim": lambda node: Kind("shape"),
}

ALIASES = ("alias",)
RESHAPES = ("flatten", "reshape")
INTEGER_READERS = ("dense", "add", "cat", "avgpool", "adaptive_avgpool")


# netshrink's own modules are kept whole, so that one without an integer-program form (a
# Conv3d, a decomposed attention) is refused by name rather than traced into, where its
# Python branches would read as the user's data-dependent control flow.
_LEAVES = (QuantLinear, QuantConvNd, QuantEmbedding, ProjectedAttention, *WEIGHT_ONLY_TYPES,
           nn.Linear, nn.Conv1d, nn.Conv2d)


class _Tracer(torch.fx.Tracer):
    """torch.fx's tracer with netshrink's integer modules kept whole."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, _LEAVES):
            return True
        return super().is_leaf_module(m, qualname)


def trace(model: nn.Module) -> torch.fx.GraphModule:
    """The model as a torch.fx graph (integer layers as single nodes), or one clear error."""
    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as err:  # fx raises many kinds (TraceError, TypeError, ...)
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise NetshrinkError(
            f"the model ({type(model).__name__}) cannot be traced by torch.fx, which "
            f"compile_int8 needs to see its graph: {first}. Data-dependent control flow "
            "(an `if` on a tensor's value) cannot be lowered; run the model as it is"
        ) from None
    return torch.fx.GraphModule(tracer.root, graph)


def _describe(node: torch.fx.Node, gm: torch.fx.GraphModule) -> str:
    if node.op == "call_module":
        return f"module {node.target!r} ({type(gm.get_submodule(node.target)).__name__})"
    if node.op == "call_function":
        return f"function {getattr(node.target, '__name__', node.target)} (node {node.name!r})"
    if node.op == "call_method":
        return f"tensor method .{node.target}() (node {node.name!r})"
    return f"{node.op} {node.target!r}"


def kind_of(node: torch.fx.Node, gm: torch.fx.GraphModule) -> Kind:
    """The kind of a traced node, or a NetshrinkError naming it."""
    try:
        if node.op in ("placeholder", "output"):
            return Kind(node.op)
        if node.op == "call_module":
            module = gm.get_submodule(node.target)
            if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d):
                raise _Unsupported(
                    "a float layer: it was left in float when the model was quantized "
                    "(skip=...); compile_int8 runs integer layers only, so quantize it too")
            handler = MODULES.get(type(module))
            if handler is not None:
                kind = handler(node, module)
                if kind.name == "dense" and not module.activation.static:
                    raise _Unsupported(
                        "an integer layer that quantizes its input at run time (Dynamic); the "
                        "integer program needs calibrated input scales: quantize with Static()")
                return kind
        elif node.op == "call_function" and node.target in FUNCTIONS:
            return FUNCTIONS[node.target](node)
        elif node.op == "call_method" and node.target in METHODS:
            return METHODS[node.target](node)
        elif node.op == "get_attr":
            raise _Unsupported("a tensor stored on the model and used in forward")
    except _Unsupported as why:
        raise NetshrinkError(f"compile_int8 cannot lower {_describe(node, gm)}: {why}") from None
    known = ", ".join(sorted({t.__name__ for t in MODULES} | {f"F.{f.__name__}" for f in
                                                               (F.relu, F.relu6, F.max_pool2d)}))
    raise NetshrinkError(
        f"compile_int8 cannot lower {_describe(node, gm)}: no integer form for it. Integer "
        f"programs cover integer Linear/Conv1d/Conv2d layers, ReLU/ReLU6/hardtanh/clamp, max and "
        f"average pooling, flatten/view/reshape, residual adds and torch.cat ({known}, ...); "
        "run this model as it is, or rewrite that part with these ops"
    )


# ------------------------------------------------------------------------------ lowering

def input_qparams(layer: QuantLinear | QuantConvNd) -> QParams:
    """How an integer layer's input is stored: its calibrated scale and kernel zero point."""
    qmin, qmax, _ = unsigned_range(layer.activation)
    zero_point = int(to_kernel_zero_point(layer.activation, layer.input_zero_point))
    return QParams(float(layer.input_scale), zero_point, qmin, qmax)


def _quantize_config(model: nn.Module) -> dict:
    for entry in reversed(getattr(model, "netshrink_transforms", None) or []):
        if isinstance(entry, dict) and entry.get("kind") == "quantize":
            return entry.get("config", {}) or {}
    return {}


class _Lowering:
    """State of one lowering: the traced graph, kinds, demands, and the program built."""

    def __init__(self, model: nn.Module, example_args: tuple, observer: str | None):
        self.gm = trace(model)
        self.nodes = list(self.gm.graph.nodes)
        self.kinds = {n: kind_of(n, self.gm) for n in self.nodes}
        layers = [k.params["layer"] for k in self.kinds.values() if k.name == "dense"]
        if not layers:
            raise NetshrinkError("the model has no integer layers; quantize it first with "
                                 "netshrink.quantize_(model, Static(), data)")
        # Each layer's input is stored in its own calibrated form (its bits: 4-bit QAT layers
        # between 8-bit first and last ones included), so only the rest must agree.
        specs = {replace(layer.activation, bits=8) for layer in layers}
        if len(specs) != 1:
            raise NetshrinkError("compile_int8 needs every integer layer's inputs quantized one "
                                 "way, bits aside (found input schemes "
                                 f"{sorted(map(str, specs))})")
        # Values only adds, pools and requantizations read are never multiplied, so no kernel
        # saturates on them: they are calibrated with all 8 bits, whatever the layers' inputs.
        self.wide = specs.pop()
        self.scheme = Scheme(8, self.wide.symmetric, "tensor")
        self.observer = observer or _quantize_config(model).get("observer", DEFAULT_OBSERVER)
        self._shapes(example_args)
        self.demand = self._demands()

    # -- shapes ------------------------------------------------------------------------
    def _shapes(self, example_args: tuple) -> None:
        placeholders = [n for n in self.nodes if n.op == "placeholder"]
        if len(example_args) != len(placeholders):
            raise NetshrinkError(f"the model takes {len(placeholders)} inputs "
                                 f"({', '.join(n.name for n in placeholders)}); the example has "
                                 f"{len(example_args)}")
        self.shape: dict[torch.fx.Node, tuple] = {}
        interpreter = _Recorder(self.gm, self.shape)
        with torch.no_grad():
            interpreter.run(*example_args)

    def _tensor(self, node) -> bool:
        return isinstance(node, torch.fx.Node) and node in self.shape

    # -- demands -----------------------------------------------------------------------
    def _demands(self) -> dict:
        """The QParams each value should be written in, from the integer layers reading it."""
        demand: dict[torch.fx.Node, QParams] = {}
        for node in reversed(self.nodes):
            if not self._tensor(node):
                continue
            for user in node.users:
                kind = self.kinds[user]
                wanted = None
                if kind.name == "dense" and user.args[0] is node:
                    wanted = input_qparams(kind.params["layer"])
                elif kind.name in ALIASES + RESHAPES or (
                        kind.name in ("clamp", "maxpool", "cat") and len(node.users) == 1):
                    wanted = demand.get(user)
                if wanted is not None and node not in demand:
                    demand[node] = wanted
        return demand

    def _needs_int(self, node) -> bool:
        """Does an integer reader consume this value (through aliases, reshapes, clamps, pools)?"""
        for user in node.users:
            kind = self.kinds[user].name
            if kind in INTEGER_READERS:
                return True
            if kind in ALIASES + RESHAPES + ("clamp", "maxpool") and self._needs_int(user):
                return True
        return False

    def chain_end(self, node):
        """The node whose float value a stored value describes: past single-user clamps."""
        while len(node.users) == 1:
            user = next(iter(node.users))
            if self.kinds[user].name not in ALIASES + RESHAPES + ("clamp",):
                break
            node = user
        return node

    # -- building ----------------------------------------------------------------------
    def build(self, ranges: dict | None) -> tuple[Program, set]:
        """The program; with `ranges` None, also the set of nodes whose ranges it needs."""
        self.ranges = ranges
        self.requests: set = set()
        self.values: dict[str, Value] = {}
        self.ops: list[Op] = []
        self.cache: dict = {}
        env: dict = {}
        outputs: list[str] = []
        single = True
        for node in self.nodes:
            kind = self.kinds[node]
            if kind.name == "output":
                result = node.args[0]
                single = not isinstance(result, tuple | list)
                for item in ([result] if single else result):
                    if not self._tensor(item):
                        raise NetshrinkError("compile_int8 needs a model that returns a tensor "
                                             f"or a tuple of tensors (got {item!r})")
                    outputs.append(self._as_float(env[item], item))
                continue
            env[node] = self._emit(node, kind, env)
        program = Program(self.values, self.ops, [n.name for n in self.nodes
                                                   if n.op == "placeholder"], outputs, single)
        return program, self.requests

    def _new_value(self, name: str, node, qparams: QParams | None, shape=None) -> str:
        base, i = name, 1
        while name in self.values:
            name, i = f"{base}_{i}", i + 1
        self.values[name] = Value(name, tuple(shape or self.shape[node]), qparams)
        return name

    def _emit_op(self, op: Op) -> str:
        self.ops.append(op)
        return op.output

    def _stored(self, node) -> QParams:
        """Where a new integer value at `node` is written: demanded, else calibrated."""
        return self.demand.get(node) or self._calibrated(node)

    def _calibrated(self, node) -> QParams:
        node = self.chain_end(node)
        if self.ranges is None:
            self.requests.add(node)
            qmin, qmax, fixed = unsigned_range(self.wide)
            return QParams(1.0, fixed if fixed is not None else qmin, qmin, qmax)
        return self.ranges[node]

    def _as_int(self, name: str, node, qparams: QParams | None = None) -> str:
        value = self.values[name]
        if value.integer and (qparams is None or value.qparams == qparams):
            return name
        if not value.integer and qparams is None:
            qparams = self._calibrated(node)
        key = (name, qparams)
        if key not in self.cache:
            cls = Requantize if value.integer else Quantize
            out = self._new_value(f"{name}_q", None, qparams, value.shape)
            self.cache[key] = self._emit_op(cls([name], out, _src(node), qparams.qmin,
                                                qparams.qmax))
        return self.cache[key]

    def _as_float(self, name: str, node) -> str:
        value = self.values[name]
        if not value.integer:
            return name
        out = self._new_value(f"{name}_float", None, None, value.shape)
        return self._emit_op(Dequantize([name], out, _src(node)))

    def _input(self, node, env, index: int = 0) -> str:
        arg = node.args[index] if index < len(node.args) else None
        if not self._tensor(arg):
            raise NetshrinkError(f"compile_int8 cannot lower {_describe(node, self.gm)}: its "
                                 f"input {index} is not a tensor the program computes ({arg!r})")
        return env[arg]

    def _emit(self, node, kind: Kind, env):
        if kind.name == "shape":
            return None
        if kind.name == "placeholder":
            return self._new_value(node.name, node, None)
        if kind.name in ALIASES:
            return self._input(node, env)
        handler = getattr(self, f"_emit_{kind.name}")
        return handler(node, kind.params, env)

    def _on_view(self, node, x: str, dims: int, qparams: QParams | None,
                 make: Callable[[str, str], Op]) -> str:
        """The op make(input, output) writing `node`'s value from `x`; for a 1-D layer or
        pool (dims 1), over the (N, C, 1, L) view of `x`, a Reshape before and after
        (conv1d.py)."""
        if dims != 1:
            return self._emit_op(make(x, self._new_value(node.name, node, qparams)))
        shape = self.values[x].shape
        if len(shape) != 3:
            raise NetshrinkError(f"compile_int8 cannot lower {_describe(node, self.gm)}: its "
                                 f"input has shape {tuple(shape)}; 1-D layers and pools are "
                                 "lowered for batched (N, C, L) inputs")
        view = conv1d.view_2d(shape)
        viewed = self._new_value(f"{x}_2d", None, self.values[x].qparams, view)
        self._emit_op(Reshape([x], viewed, _src(node), view[1:]))
        out_view = conv1d.view_2d(self.shape[node])
        written = self._emit_op(make(viewed, self._new_value(f"{node.name}_2d", None, qparams,
                                                             out_view)))
        out = self._new_value(node.name, node, qparams)
        return self._emit_op(Reshape([written], out, _src(node), tuple(self.shape[node][1:])))

    def _emit_dense(self, node, params, env):
        layer = params["layer"]
        wanted = input_qparams(layer)
        x = self._as_int(self._input(node, env), node.args[0], wanted)
        weight, geometry, dims = layer.weight.detach().clone(), None, 2
        if isinstance(layer, QuantConv1d):  # the Conv2d over the view: kernel (1, k)
            weight, geometry = conv1d.weight_2d(layer.weight), conv1d.geometry_2d(layer.geometry)
            dims = 1
        elif isinstance(layer, QuantConv2d):
            geometry = layer.geometry
        integer_out = self._needs_int(node)
        qparams = self._stored(node) if integer_out else None
        bias = None if layer.bias is None else layer.bias.detach().float().clone()

        def make(i: str, o: str) -> Dense:
            return Dense([self._padded(node, layer, i)], o, _src(node),
                         qparams.qmin if qparams else 0, qparams.qmax if qparams else 0,
                         weight=weight, weight_scale=layer.weight_scale.detach().float().clone(),
                         bias=bias, input_qparams=wanted, weight_bits=layer.weight_bits,
                         geometry=geometry)

        return self._on_view(node, x, dims, qparams, make)

    def _padded(self, node, layer, x: str) -> str:
        """`x` (4-D: a Conv2d's input, or a Conv1d's view) with the padding `layer` applies
        before its kernel, as a Pad op (padding.py); `x` itself when there is none."""
        pre_pad = getattr(layer, "pre_pad", ())
        if not any(pre_pad):
            return x
        pads = padding.view_pads(pre_pad, layer.dims)
        value = self.values[x]
        out = self._new_value(f"{node.name}_padded", None, value.qparams,
                              padding.padded_shape(value.shape, pads))
        return self._emit_op(Pad([x], out, _src(node), pads, padding.MODES[layer.pad_mode]))

    def _emit_clamp(self, node, params, env):
        x = self._input(node, env)
        value = self.values[x]
        if not value.integer:
            out = self._new_value(node.name, node, None)
            return self._emit_op(FloatClamp([x], out, _src(node), params["lo"], params["hi"]))
        qparams = self._stored(node)
        lo = qparams.qmin if params["lo"] is None else qparams.level(params["lo"])
        hi = qparams.qmax if params["hi"] is None else qparams.level(params["hi"])
        out = self._new_value(node.name, node, qparams)
        return self._emit_op(Requantize([x], out, _src(node), lo, hi))

    def _emit_maxpool(self, node, params, env):
        params = dict(params)
        dims = params.pop("dims", 2)
        x = self._input(node, env)
        if self._needs_int(node):
            x = self._as_int(x, node.args[0], self.demand.get(node))
        return self._on_view(node, x, dims, self.values[x].qparams,
                             lambda i, o: MaxPool([i], o, _src(node), **params))

    def _emit_avgpool(self, node, params, env):
        params = dict(params)
        dims = params.pop("dims", 2)
        x = self._as_int(self._input(node, env), node.args[0])
        qparams = self._stored(node)
        return self._on_view(node, x, dims, qparams, lambda i, o: AvgPool(
            [i], o, _src(node), qparams.qmin, qparams.qmax, **params))

    def _emit_adaptive_avgpool(self, node, params, env):
        dims = params.get("dims", 2)
        if dims == 1:  # over the (N, C, 1, L) view
            size = conv1d.pair(params["size"], 1)
            h, w = 1, self.shape[node.args[0]][-1]
            shown = f"{w} to {size[1]}"
        else:
            size = _pair(params["size"])
            h, w = self.shape[node.args[0]][2:]
            shown = f"{h}x{w} to {size}"
        if size == (1, 1):
            pool = {"kernel": None}
        elif None not in size and h % size[0] == 0 and w % size[1] == 0:
            kernel = (h // size[0], w // size[1])
            pool = {"kernel": kernel, "stride": kernel}
        else:
            raise NetshrinkError(f"compile_int8 cannot lower {_describe(node, self.gm)}: an "
                                 f"adaptive average pool from {shown} is not a fixed "
                                 "pooling window; use an output size that divides the input")
        return self._emit_avgpool(node, {**pool, "dims": dims}, env)

    def _emit_add(self, node, params, env):
        operands = [node.args[0], node.args[1] if len(node.args) > 1 else node.kwargs["other"]]
        if not all(self._tensor(a) for a in operands):
            raise NetshrinkError(f"compile_int8 cannot lower {_describe(node, self.gm)}: it "
                                 "adds a constant, which has no integer form here")
        names = [self._as_int(env[a], a) for a in operands]
        qparams = self._stored(node)
        out = self._new_value(node.name, node, qparams)
        return self._emit_op(Add(names, out, _src(node), qparams.qmin, qparams.qmax))

    def _emit_cat(self, node, params, env):
        tensors = node.args[0]
        rank = len(self.shape[node])
        dim = params["dim"] % rank
        if dim == 0:
            raise NetshrinkError(f"compile_int8 cannot lower {_describe(node, self.gm)}: it "
                                 "concatenates along the batch dimension")
        qparams = self._stored(node)
        names = [self._as_int(env[t], t, qparams) for t in tensors]
        out = self._new_value(node.name, node, qparams)
        return self._emit_op(Concat(names, out, _src(node), dim))

    def _emit_flatten(self, node, params, env):
        rank = len(self.shape[node.args[0]])
        if params["start"] % rank == 0:
            raise NetshrinkError(f"compile_int8 cannot lower {_describe(node, self.gm)}: it "
                                 "flattens the batch dimension; use flatten(1)")
        return self._emit_reshape(node, params, env)

    def _emit_reshape(self, node, params, env):
        x = self._input(node, env)
        before, after = self.shape[node.args[0]], self.shape[node]
        if after[0] != before[0]:
            raise NetshrinkError(f"compile_int8 cannot lower {_describe(node, self.gm)}: it "
                                 f"reshapes {tuple(before)} to {tuple(after)}, changing the "
                                 "batch dimension")
        out = self._new_value(node.name, node, self.values[x].qparams)
        return self._emit_op(Reshape([x], out, _src(node), tuple(after[1:])))

    # -- calibration --------------------------------------------------------------------
    def calibrate(self, nodes: set, data, device) -> dict:
        """QParams of each node's float values over the calibration data."""
        observers = {n: make_observer(self.observer, self.scheme) for n in nodes}
        placeholders = [n.name for n in self.nodes if n.op == "placeholder"]
        with torch.no_grad():
            for batch in calibration_batches(data, device):
                args = _positional(batch, placeholders)
                _Recorder(self.gm, None, observers).run(*args)
        ranges = {}
        qmin, qmax, _ = unsigned_range(self.wide)
        for node, obs in observers.items():
            scale, zero_point = obs.qparams()
            zero_point = int(to_kernel_zero_point(self.wide, zero_point.reshape(())))
            ranges[node] = QParams(float(scale.reshape(())), zero_point, qmin, qmax)
        return ranges


def _src(node) -> str:
    return "" if node is None else node.name


def _positional(batch, names: list[str]) -> tuple:
    if isinstance(batch, dict):
        missing = [n for n in names if n not in batch]
        if missing:
            raise NetshrinkError(f"a calibration batch lacks the model input(s) "
                                 f"{', '.join(missing)}")
        return tuple(batch[n] for n in names)
    return (batch,)


class _Recorder(torch.fx.Interpreter):
    """Runs the traced model, recording tensor shapes and feeding chosen nodes' values to
    observers."""

    def __init__(self, gm, shapes: dict | None, observers: dict | None = None):
        super().__init__(gm)
        self.shapes, self.observers = shapes, observers or {}

    def run_node(self, node):
        result = super().run_node(node)
        if isinstance(result, torch.Tensor):
            if self.shapes is not None:
                self.shapes[node] = tuple(result.shape)
            if node in self.observers:
                self.observers[node].update(result)
        return result


# ------------------------------------------------------------------------------ rewrites

def fuse_clamps(program: Program) -> Program:
    """A clamp (same QParams) of a value only it reads becomes the writer's output clamp,
    also past a reshape between them (the ReLU after a Conv1d, which writes through a view):
    clamping is elementwise, so it commutes with a reshape."""
    ops = list(program.ops)
    values = dict(program.values)
    kept = set(program.outputs) | set(program.inputs)

    changed = True
    while changed:
        changed = False
        for i, op in enumerate(ops):
            if not isinstance(op, Requantize):
                continue
            (x,) = op.inputs
            if values[x].qparams != values[op.output].qparams or x in kept or \
                    readers_in(ops, x) != [op]:
                continue
            writer, target, reshape = producer_in(ops, x), x, None
            if isinstance(writer, Reshape):
                reshape, target = writer, writer.inputs[0]
                writer = producer_in(ops, target)
                if target in kept or readers_in(ops, target) != [reshape]:
                    continue
            if not isinstance(writer, Clamped) or \
                    (isinstance(writer, Dense) and not values[target].integer):
                continue
            merged = replace(writer, output=op.output if reshape is None else target,
                             lo=max(writer.lo, op.lo), hi=min(writer.hi, op.hi))
            ops[ops.index(writer)] = merged
            if reshape is not None:
                ops[ops.index(reshape)] = replace(reshape, output=op.output)
            del ops[i]
            del values[x]
            changed = True
            break
    return replace(program, ops=ops, values=values)


def fuse_residual_adds(program: Program) -> Program:
    """add(layer(x), y) -> one layer that adds y before its output stage."""
    ops = list(program.ops)
    values = dict(program.values)
    for add in [op for op in ops if isinstance(op, Add)]:
        for operand, other in (add.inputs, add.inputs[::-1]):
            layer = next((w for w in ops if w.output == operand), None)
            readers = [r for r in ops if operand in r.inputs]
            fusable = (isinstance(layer, Dense) and layer.residual is None
                       and values[operand].integer and operand != other and readers == [add]
                       and operand not in program.outputs
                       and (layer.lo, layer.hi) == (values[operand].qparams.qmin,
                                                    values[operand].qparams.qmax))
            if not fusable:
                continue
            fused = replace(layer, inputs=[layer.inputs[0], other], output=add.output,
                            lo=add.lo, hi=add.hi, residual=other,
                            unfused_qparams=values[operand].qparams,
                            source=f"{layer.source}+{add.source}")
            ops.remove(layer)
            ops[ops.index(add)] = fused
            del values[operand]
            break
    return replace(program, ops=ops, values=values)


def lower(
    model: nn.Module,
    example: torch.Tensor | Sequence[torch.Tensor],
    data: Inputs | Dataset | Splits | Iterable[Any] | None = None,
    observer: str | None = None,
) -> Program:
    """The integer program of a statically quantized model (clamps fused, adds not; the
    views around consecutive 1-D ops cancelled).

    example: one input batch (or a tuple of them) that fixes the shapes; data: calibration
    inputs for the values no integer layer calibrated (add and average-pool inputs), when the
    model has any; observer: how their ranges are chosen (default: the model's own).
    """
    args = (example,) if isinstance(example, torch.Tensor) else tuple(example)
    model.eval()
    lowering = _Lowering(model, args, observer)
    program, needed = lowering.build(None)
    if needed:
        if data is None:
            names = ", ".join(sorted(n.name for n in needed))
            raise NetshrinkError(
                f"the integer program stores values no integer layer calibrated ({names}: "
                "residual adds, concatenations or average pools); pass calibration inputs, "
                "compile_int8(model, example, data=...), e.g. the data quantize_ was given")
        device = next((t.device for t in model.parameters()), torch.device("cpu"))
        ranges = lowering.calibrate(needed, data, device)
        program, _ = lowering.build(ranges)
    return conv1d.merge_reshapes(fuse_clamps(program))
