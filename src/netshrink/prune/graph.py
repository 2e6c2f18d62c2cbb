"""Which channels must be removed together: the dependency graph of a model, from torch.fx.

A channel made by one layer (a convolution's filter, a Linear's output neuron, an embedding
column) is read by every layer its value reaches: the BatchNorm after it, the next layer's
input, the other branch of a residual addition (whose channels are then the same channels),
a concatenation (where it sits at an offset), a flatten into a Linear (where it becomes
height x width consecutive inputs). Removing it means rewriting all of them.

`channel_groups(model, example)` traces the model with torch.fx, propagates the example's
shapes, and follows every tensor's channel axis through the graph: each layer output opens a
*slot* (its channels); an elementwise operation between two tensors merges their slots (a
union-find); BatchNorm, activations, pooling and reshapes that keep the channel axis pass the
slot along; the layers that read a slot are its consumers. Anything the tracer does not
understand (a functional call on a weight, a reshape that splits channels as attention heads
do, a module it does not know) *fixes* the slots it touches: they are kept whole, with the
reason recorded, never rewritten on a guess. The model's inputs and outputs are fixed too
(their sizes are the model's interface).

A grouped convolution (1 < groups, not depthwise) reads its input slot and makes its output
slot in `groups` equal runs of consecutive channels, and stays a grouped convolution only if
every run loses as many: each slot records the number of runs its grouped readers and makers
cut it into (the least common multiple when several do, so every one's groups stay even), and
a slot whose runs would hold a single channel is fixed, since no removal can be even there.

A model that torch.fx cannot trace (data-dependent control flow) is one clear error naming
the operation; attention heads and feed-forward neurons inside known transformer blocks do
not need the graph (netshrink.prune.blocks).
"""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from netshrink.core.attention import ProjectedAttention
from netshrink.core.swap import base_type
from netshrink.errors import NetshrinkError

_CONV = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}  # type -> spatial axes
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# modules that keep every channel where it is (elementwise, pooling over space)
_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.SELU,
    nn.CELU, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Mish, nn.Softplus, nn.Softsign,
    nn.Tanhshrink, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
    nn.AlphaDropout, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
    nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Upsample,
    nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d,
    nn.ConstantPad3d, nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReplicationPad1d,
    nn.ReplicationPad2d,
)
_PASS_FUNCTIONS = {
    torch.relu, torch.sigmoid, torch.tanh, torch.abs, torch.neg, torch.exp, torch.clamp,
    torch.square, torch.sqrt, F.relu, F.relu6, F.gelu, F.silu, F.leaky_relu, F.elu, F.selu,
    F.hardswish, F.hardsigmoid, F.hardtanh, F.mish, F.softplus, F.sigmoid, F.tanh, F.dropout,
    F.dropout1d, F.dropout2d, F.dropout3d, F.max_pool1d, F.max_pool2d, F.max_pool3d,
    F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
    F.adaptive_avg_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d,
    F.interpolate, F.pad, operator.neg, torch.clone, torch.detach,
}
_PASS_METHODS = {"relu", "sigmoid", "tanh", "abs", "neg", "exp", "clamp", "contiguous", "float",
                 "double", "half", "to", "detach", "clone", "type_as", "square", "sqrt",
                 "relu_", "sigmoid_", "tanh_", "clamp_", "pow"}
_BINARY = {operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd,
           operator.isub, operator.imul, torch.add, torch.sub, torch.mul, torch.div,
           torch.maximum, torch.minimum}
_BINARY_METHODS = {"add", "sub", "mul", "div", "add_", "mul_", "sub_", "div_"}
_REDUCE_FUNCTIONS = {torch.mean, torch.sum, torch.amax, torch.amin}
_REDUCE_METHODS = {"mean", "sum", "amax", "amin"}
_RESHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
_RESHAPE_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze"}
_CAT = {torch.cat, torch.concat, torch.concatenate}
_SHAPE_METHODS = {"size", "dim"}


@dataclass(frozen=True)
class Segment:
    """A slot's channels along a tensor axis, each repeated `inner` times consecutively (a
    flatten of C x H x W gives inner = H*W)."""

    slot: int
    inner: int = 1


@dataclass(frozen=True)
class Label:
    """Where a tensor's prunable channels are: its axis and the slots laid along it."""

    axis: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Member:
    """A layer that a group's channels pass through.

    role: "out" (the layer makes them: Linear/Conv rows, Embedding columns), "in" (it reads
    them: Linear/Conv input columns; for a grouped convolution its input channels, each read
    by its own group's filters), "norm" (BatchNorm/LayerNorm entries), "depthwise"
    (a depthwise convolution's filters, one per channel). base and inner place the group's
    channel c at entries base + c*inner ... base + c*inner + inner - 1 of the layer's axis.
    """

    path: str
    role: str
    base: int = 0
    inner: int = 1

    def positions(self, units: int) -> torch.Tensor:
        """[units, inner] indices along the layer's pruned axis."""
        return (self.base + torch.arange(units)[:, None] * self.inner
                + torch.arange(self.inner)[None, :])


@dataclass
class Group:
    """Channels removed together: `size` units, the layers they pass through.

    blocks: the units lie in that many equal runs of consecutive units (the groups of the
    grouped convolutions they pass through), and every run must keep as many of its units.
    """

    name: str
    kind: str  # "channels", "heads" or "ffn"
    size: int
    members: list[Member]
    fixed: str | None = None  # why it must stay whole
    blocks: int = 1

    @property
    def producers(self) -> list[Member]:
        return [m for m in self.members if m.role == "out"]

    def paths(self) -> list[str]:
        return list(dict.fromkeys(m.path for m in self.members))


@dataclass
class _Slots:
    """Union-find over slots, with their sizes, members and the reasons some are fixed."""

    parent: list[int] = field(default_factory=list)
    size: list[int] = field(default_factory=list)
    members: dict[int, list[Member]] = field(default_factory=dict)
    fixed: dict[int, str] = field(default_factory=dict)
    blocks: dict[int, int] = field(default_factory=dict)  # runs grouped convolutions cut
    grouped: dict[int, list[str]] = field(default_factory=dict)  # those convolutions

    def new(self, size: int) -> int:
        self.parent.append(len(self.parent))
        self.size.append(int(size))
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int, where: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] != self.size[rb]:  # a shape mismatch the model itself would reject
            self.fix(ra, f"{where}: {self.size[ra]} and {self.size[rb]} channels meet")
            self.fix(rb, f"{where}: {self.size[ra]} and {self.size[rb]} channels meet")
            return
        self.parent[rb] = ra
        self.members.setdefault(ra, []).extend(self.members.pop(rb, []))
        if rb in self.fixed:
            self.fixed.setdefault(ra, self.fixed.pop(rb))
        for path in self.grouped.pop(rb, []):
            self.cut(ra, self.blocks.get(rb, 1), path)
        self.blocks.pop(rb, None)

    def fix(self, slot: int, reason: str) -> None:
        self.fixed.setdefault(self.find(slot), reason)

    def add(self, slot: int, member: Member) -> None:
        self.members.setdefault(self.find(slot), []).append(member)

    def cut(self, slot: int, blocks: int, path: str) -> None:
        """`path`, a grouped convolution, reads or makes the slot in `blocks` groups."""
        root = self.find(slot)
        self.blocks[root] = math.lcm(self.blocks.get(root, 1), blocks)
        names = self.grouped.setdefault(root, [])
        if path not in names:
            names.append(path)

    def uneven(self, root: int) -> str | None:
        """Why no removal can keep the slot's runs even (a run of one channel), or None."""
        blocks, size = self.blocks.get(root, 1), self.size[root]
        if blocks == 1 or (size % blocks == 0 and size // blocks >= 2):
            return None
        names = self.grouped[root]
        which = (f"grouped convolution {names[0]}" if len(names) == 1 else
                 f"grouped convolutions {', '.join(names)}")
        whole = "" if len(names) == 1 else " (the least common multiple of theirs)"
        return (f"{which}: {size} channels in {blocks} groups{whole} cannot lose the same "
                "number from each")


class _Tracer(fx.Tracer):
    """torch.fx's tracer, with netshrink's attention module kept whole (a leaf)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, ProjectedAttention) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module, constants: dict | None = None) -> fx.GraphModule:
    """The model's fx graph (the forward's `constants` arguments traced as those values), or
    one clear error naming what stopped the tracer."""
    tracer = _Tracer()
    try:
        graph = tracer.trace(model, concrete_args=constants or None)
    except Exception as err:  # fx raises TraceError, TypeError, AttributeError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NetshrinkError(
            f"structured pruning needs the model's graph, and torch.fx cannot trace "
            f"{type(model).__name__}: {type(err).__name__}: {first}. Make that operation "
            "traceable (no Python control flow on tensor values), or prune only attention heads "
            "and feed-forward neurons: StructuredConfig(targets=('heads', 'ffn'))") from None
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


def _shape(node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _op_name(node: fx.Node) -> str:
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    return f".{node.target}()" if node.op == "call_method" else str(node.target)


class _Propagation:
    """Walks the graph once, giving every node's output its channel label."""

    def __init__(self, gm: fx.GraphModule, modules: dict[str, nn.Module]):
        self.gm, self.modules = gm, modules
        self.slots = _Slots()
        self.labels: dict[fx.Node, Label | None] = {}
        self.module_out: dict[str, int] = {}  # a layer called twice makes the same channels
        self.module_in: dict[str, Label] = {}
        self.kept: dict[str, str] = {}  # layer -> why its channels stay whole

    # --- helpers -------------------------------------------------------------------------
    def label(self, arg) -> Label | None:
        return self.labels.get(arg) if isinstance(arg, fx.Node) else None

    def fix_label(self, label: Label | None, reason: str) -> None:
        if label is not None:
            for seg in label.segments:
                self.slots.fix(seg.slot, reason)

    def fix_args(self, node: fx.Node, reason: str) -> None:
        for arg in node.all_input_nodes:
            self.fix_label(self.labels.get(arg), reason)

    def total(self, label: Label) -> int:
        return sum(self.slots.size[s.slot] * s.inner for s in label.segments)

    def out_slot(self, path: str, size: int) -> int:
        if path not in self.module_out:
            self.module_out[path] = self.slots.new(size)
            self.slots.add(self.module_out[path], Member(path, "out"))
        return self.module_out[path]

    def consume(self, path: str, label: Label | None, node: fx.Node, role: str = "in") -> None:
        """`path` reads `label`'s channels along its input axis (as role)."""
        if label is None:
            return
        if path in self.module_in:  # a shared layer: each call reads the same channels
            self.unify([self.module_in[path], label], node)
            return
        self.module_in[path] = label
        base = 0
        for seg in label.segments:
            self.slots.add(seg.slot, Member(path, role, base, seg.inner))
            base += self.slots.size[seg.slot] * seg.inner

    def unify(self, labels: list[Label], node: fx.Node) -> Label | None:
        """Merge the labels of tensors combined entry by entry; fix them when their channel
        layouts differ (the same axis must carry the same slots in the same order)."""
        first = labels[0]
        for other in labels[1:]:
            same = (len(other.segments) == len(first.segments) and all(
                a.inner == b.inner for a, b in zip(first.segments, other.segments, strict=True)))
            if not same:
                for lab in labels:
                    self.fix_label(lab, f"{_op_name(node)} combines different channel layouts")
                return first
            for a, b in zip(first.segments, other.segments, strict=True):
                self.slots.union(a.slot, b.slot, _op_name(node))
        return first

    # --- the walk ------------------------------------------------------------------------
    def run(self) -> None:
        for node in self.gm.graph.nodes:
            self.labels[node] = self.visit(node)

    def visit(self, node: fx.Node) -> Label | None:
        if node.op in ("placeholder", "get_attr"):
            return None
        if node.op == "output":
            self.fix_args(node, "the model's output")
            return None
        if node.op == "call_module":
            return self.call_module(node)
        return self.call(node)

    def call_module(self, node: fx.Node) -> Label | None:
        path = str(node.target)
        module = self.modules[path]
        kind = base_type(module)
        x = self.label(node.args[0]) if node.args else None
        shape_in = _shape(node.args[0]) if node.args else None
        shape_out = _shape(node)
        if kind in _CONV:
            axis = len(shape_in) - 1 - _CONV[kind] if shape_in else 1
            if x is not None and x.axis != axis:
                self.fix_label(x, f"{path} reads another axis")
                x = None
            if module.groups == 1:
                self.consume(path, x, node)
                return Label(axis, (Segment(self.out_slot(path, module.out_channels)),))
            if module.groups == module.in_channels == module.out_channels and x is not None:
                self.consume(path, x, node, role="depthwise")
                return x
            return self.grouped(path, module, x, node, axis)
        if kind is nn.Linear:
            axis = len(shape_in) - 1 if shape_in else 1
            if x is not None and x.axis != axis:
                self.fix_label(x, f"{path} reads another axis")
                x = None
            self.consume(path, x, node)
            return Label(len(shape_out) - 1 if shape_out else axis,
                         (Segment(self.out_slot(path, module.out_features)),))
        if kind is nn.Embedding:
            slot = self.out_slot(path, module.embedding_dim)
            return Label(len(shape_out) - 1, (Segment(slot),))
        if kind in _BATCHNORM:
            if x is not None and x.axis == 1:
                self.consume(path, x, node, role="norm")
                return x
            self.fix_label(x, f"{path} normalizes another axis")
            return None
        if kind is nn.LayerNorm:
            if x is not None and len(module.normalized_shape) == 1 and \
                    x.axis == len(shape_in) - 1:
                self.consume(path, x, node, role="norm")
                return x
            self.fix_label(x, f"{path} normalizes several axes")
            return None
        if kind in _PASS_MODULES:
            return self.moved(x, shape_in, shape_out)
        if kind is nn.Flatten:
            return self.reshaped(x, shape_in, shape_out, node)
        reason = f"{kind.__name__} {path}"
        self.fix_args(node, reason)
        self.kept[path] = f"{kind.__name__} is rewritten by its own rule (heads, ffn) or not " \
                          "at all"
        return None

    def grouped(self, path: str, module: nn.Module, x: Label | None, node: fx.Node,
                axis: int) -> Label:
        """A grouped convolution: it reads one layer's channels and makes its own, both in
        `groups` runs that must stay even; a concatenation read in groups would couple the
        removals of several slots, and is kept whole."""
        if x is not None and len(x.segments) == 1 and x.segments[0].inner == 1:
            self.consume(path, x, node)
            self.slots.cut(x.segments[0].slot, module.groups, path)
        elif x is not None:
            what = "a concatenation" if len(x.segments) > 1 else "reshaped channels"
            self.fix_label(x, f"grouped convolution {path} reads {what}")
        slot = self.out_slot(path, module.out_channels)
        self.slots.cut(slot, module.groups, path)
        return Label(axis, (Segment(slot),))

    def moved(self, x: Label | None, shape_in, shape_out) -> Label | None:
        """A label through an op that keeps the rank (pooling, activations)."""
        if x is None or shape_in is None or shape_out is None:
            return x
        return x if len(shape_in) == len(shape_out) else None

    def call(self, node: fx.Node) -> Label | None:
        args = node.args
        x = self.label(args[0]) if args else None
        shape_in = _shape(args[0]) if args else None
        shape_out = _shape(node)

        def is_(functions, methods=()) -> bool:
            if node.op == "call_method":
                return node.target in methods
            return node.target in functions

        if is_(_PASS_FUNCTIONS, _PASS_METHODS):
            if node.target == "pow" and len(args) > 1 and isinstance(args[1], fx.Node):
                self.fix_args(node, "pow by a tensor")
                return None
            return self.moved(x, shape_in, shape_out)
        if is_(_BINARY, _BINARY_METHODS):
            return self.binary(node)
        if is_(_REDUCE_FUNCTIONS, _REDUCE_METHODS):
            return self.reduced(node, x, shape_in, shape_out)
        if is_(_RESHAPE_FUNCTIONS, _RESHAPE_METHODS):
            return self.reshaped(x, shape_in, shape_out, node)
        if is_({torch.permute, torch.transpose}, {"permute", "transpose"}):
            return self.permuted(node, x, shape_in)
        if is_(_CAT):
            return self.concatenated(node)
        if is_((), _SHAPE_METHODS) or (is_({getattr}) and args[1] in ("shape", "dtype",
                                                                      "device")):
            return None
        if is_({operator.getitem}):
            return self.indexed(node, x, shape_in, shape_out)
        if is_({F.softmax, F.log_softmax, torch.softmax}, {"softmax", "log_softmax"}):
            dim = node.kwargs.get("dim", args[1] if len(args) > 1 else None)
            if x is None or (shape_in is not None and dim is not None and
                             dim % len(shape_in) != x.axis):
                return x
        self.fix_args(node, f"{_op_name(node)} (an operation the graph does not follow)")
        return None

    def binary(self, node: fx.Node) -> Label | None:
        shape_out = _shape(node)
        labeled, others = [], []
        for arg in node.args:
            if isinstance(arg, fx.Node):
                lab, shape = self.labels.get(arg), _shape(arg)
                if shape is None:
                    continue  # a Python number computed in the graph
                shift = (len(shape_out) - len(shape)) if shape_out else 0
                if lab is not None:
                    labeled.append(Label(lab.axis + shift, lab.segments))
                else:
                    others.append((shape, shift))
        if not labeled:
            return None
        axes = {lab.axis for lab in labeled}
        if len(axes) > 1:
            for lab in labeled:
                self.fix_label(lab, f"{_op_name(node)} combines channels of different axes")
            return None
        axis = axes.pop()
        for shape, shift in others:
            local = axis - shift
            if 0 <= local < len(shape) and shape[local] != 1:  # unknown per-channel values
                for lab in labeled:
                    self.fix_label(lab, f"{_op_name(node)} with a tensor the graph cannot "
                                        "follow")
        return self.unify(labeled, node)

    def reduced(self, node, x, shape_in, shape_out) -> Label | None:
        if x is None or shape_in is None or shape_out is None:
            return None
        dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        if dims is None:
            self.fix_label(x, f"{_op_name(node)} over every axis")
            return None
        dims = {d % len(shape_in) for d in ((dims,) if isinstance(dims, int) else dims)}
        if x.axis in dims:
            self.fix_label(x, f"{_op_name(node)} over the channels")
            return None
        if len(shape_out) == len(shape_in):  # keepdim
            return x
        return Label(x.axis - sum(1 for d in dims if d < x.axis), x.segments)

    def reshaped(self, x, shape_in, shape_out, node) -> Label | None:
        """A view: the channel axis may move (squeeze), or absorb the axes after it
        (flatten); a reshape that splits channels (attention heads) fixes them."""
        if x is None or shape_in is None or shape_out is None:
            return x if shape_in == shape_out else None
        before = math.prod(shape_in[:x.axis])
        running = 1
        for b, size in enumerate(shape_out):
            if running == before:
                channels = shape_in[x.axis]
                merged, k = channels, x.axis + 1
                while merged < size and k < len(shape_in):
                    merged *= shape_in[k]
                    k += 1
                if merged == size:
                    factor = size // channels
                    return Label(b, tuple(Segment(g.slot, g.inner * factor)
                                          for g in x.segments))
            running *= size
            if running > before:
                break
        self.fix_label(x, f"{_op_name(node)} reshapes the channels")
        return None

    def permuted(self, node, x, shape_in) -> Label | None:
        if x is None or shape_in is None:
            return None
        rank = len(shape_in)
        args = list(node.args[1:])
        name = node.target if node.op == "call_method" else node.target.__name__
        if name == "permute":
            order = args[0] if len(args) == 1 and isinstance(args[0], list | tuple) else args
            order = [d % rank for d in order]
            return Label(order.index(x.axis), x.segments)
        if name == "transpose":
            a, b = (d % rank for d in args[:2])
            axis = b if x.axis == a else a if x.axis == b else x.axis
            return Label(axis, x.segments)
        self.fix_label(x, f"{_op_name(node)}")
        return None

    def concatenated(self, node) -> Label | None:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        shape_out = _shape(node)
        if shape_out is None or not isinstance(tensors, list | tuple):
            self.fix_args(node, "cat of unknown tensors")
            return None
        dim %= len(shape_out)
        labels = [self.label(t) for t in tensors]
        if any(lab is not None and lab.axis != dim for lab in labels):
            present = [lab for lab in labels if lab is not None]
            if all(lab is not None for lab in labels):
                return self.unify(present, node)
            for lab in present:
                self.fix_label(lab, f"{_op_name(node)} along another axis")
            return None
        if all(lab is None for lab in labels):
            return None
        segments: list[Segment] = []
        for t, lab in zip(tensors, labels, strict=True):
            if lab is None:  # opaque channels (an input): a slot no layer makes, kept
                slot = self.slots.new(_shape(t)[dim])
                self.slots.fix(slot, "concatenated input")
                segments.append(Segment(slot))
            else:
                segments.extend(lab.segments)
        return Label(dim, tuple(segments))

    def indexed(self, node, x, shape_in, shape_out) -> Label | None:
        """x[...] with slices and integers; the channel axis must be taken whole."""
        if x is None or shape_in is None or shape_out is None:
            return None
        index = node.args[1]
        items = index if isinstance(index, tuple) else (index,)
        if any(i is Ellipsis for i in items):
            at = items.index(Ellipsis)
            items = items[:at] + (slice(None),) * (len(shape_in) - len(items) + 1) + \
                items[at + 1:]
        axis_in, axis_out = 0, 0
        for item in items:
            if item is None:
                axis_out += 1
                continue
            if axis_in == x.axis:
                if isinstance(item, slice) and item == slice(None):
                    return Label(axis_out, x.segments)
                break
            if isinstance(item, int):
                axis_in += 1
            elif isinstance(item, slice):
                axis_in, axis_out = axis_in + 1, axis_out + 1
            else:
                break
        else:
            return Label(axis_out + x.axis - axis_in, x.segments)
        self.fix_label(x, f"{_op_name(node)} selects some channels")
        return None


def forward_args(
    model: nn.Module,
    example: torch.Tensor | Sequence[torch.Tensor] | dict[str, torch.Tensor],
) -> tuple[tuple, dict]:
    """(the forward's positional arguments, the keywords fx must trace as constants): the
    example itself, or a dict of keyword tensors put in the forward's order, where a keyword
    left out takes its default (traced as that constant, so `if mask is None:` holds)."""
    if isinstance(example, torch.Tensor):
        return (example,), {}
    if isinstance(example, tuple | list):
        return tuple(example), {}
    if not isinstance(example, dict):
        raise NetshrinkError("the example must be a tensor, a tuple of tensors (the forward's "
                             "positional arguments) or a dict of keyword tensors, got "
                             f"{type(example).__name__}")
    parameters = [p for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)]
    names = [p.name for p in parameters]
    unknown = sorted(set(example) - set(names))
    if unknown:
        raise NetshrinkError(f"the example's keywords {', '.join(unknown)} are not arguments "
                             f"of the forward (it takes {', '.join(names)})")
    args, constants = [], {}
    for parameter in parameters:
        if parameter.name in example:
            args.append(example[parameter.name])
        elif parameter.default is not parameter.empty:
            args.append(parameter.default)
            constants[parameter.name] = parameter.default
        else:
            raise NetshrinkError(f"the example has no {parameter.name!r}, an argument of the "
                                 "forward without a default; add it to the dict")
    return tuple(args), constants


def channel_groups(
    model: nn.Module,
    example: torch.Tensor | Sequence[torch.Tensor] | dict[str, torch.Tensor],
    skip_shared: bool = True,
) -> list[Group]:
    """Every group of coupled channels of `model` (prunable or fixed, with the reason).

    example: inputs for one forward (a tensor, a tuple of the forward's arguments or a dict of
    keyword tensors), only their shapes matter; the model runs once on them in eval mode.
    """
    args, constants = forward_args(model, example)
    gm = trace(model, constants)
    was_training = model.training
    gm.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(*args)
    except Exception as err:
        raise NetshrinkError(f"the example does not run through {type(model).__name__}: "
                             f"{type(err).__name__}: {err}") from None
    finally:
        model.train(was_training)
    modules = dict(model.named_modules())
    walk = _Propagation(gm, modules)
    walk.run()
    read_directly = {str(n.target).rpartition(".")[0] for n in gm.graph.nodes
                     if n.op == "get_attr"}
    shared = _modules_with_shared_parameters(model) if skip_shared else set()
    order = {path: i for i, path in enumerate(modules)}
    groups = []
    for root, members in walk.slots.members.items():
        if walk.slots.find(root) != root:
            continue
        producers = sorted((m.path for m in members if m.role == "out"), key=order.__getitem__)
        if not producers:
            continue
        fixed = walk.slots.fixed.get(root) or walk.slots.uneven(root)
        touched = {m.path for m in members}
        if fixed is None and touched & read_directly:
            fixed = f"{sorted(touched & read_directly)[0]}'s weights are read directly"
        if fixed is None and touched & shared:
            fixed = f"{sorted(touched & shared)[0]} shares its weights with another layer"
        groups.append(Group(producers[0], "channels", walk.slots.size[root], members, fixed,
                            walk.slots.blocks.get(root, 1)))
    return groups


def _modules_with_shared_parameters(model: nn.Module) -> set[str]:
    owners: dict[int, list[str]] = {}
    for path, module in model.named_modules():
        for _, p in module.named_parameters(recurse=False):
            owners.setdefault(id(p), []).append(path)
    return {path for paths in owners.values() if len(paths) > 1 for path in paths}
