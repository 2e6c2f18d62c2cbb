"""`quantize_(model, config, data)` and `convert(model)`: float model -> integer model, in place.

- Dynamic: weights to int8 now; inputs are quantized at run time. No data needed.
- Static: BatchNorm folded, an observer watches each layer's input on the calibration data,
  then every layer becomes an integer layer with fixed input scales.
- QAT: BatchNorm folded, layers become fake-quantizing modules; train with
  `netshrink.train.fit`, then `convert(model)` gives the integer model.

What happens to each layer type is the handler table's (netshrink.quant.handlers); both verbs
return a QuantReport naming every layer's fate and why a layer stayed float. Masks travel
through every swap (netshrink.core.swap). Each step is recorded on the model
(netshrink.core.transforms), so `netshrink.load` replays it onto a fresh instance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset

from netshrink.core import transforms
from netshrink.core.attention import keep_encoders_on_slow_path
from netshrink.core.masks import computed
from netshrink.core.patterns import any_match, check_patterns
from netshrink.core.swap import base_type, module_masks, replace_module
from netshrink.data.inputs import Inputs, call
from netshrink.errors import NetshrinkError
from netshrink.quant import kernels, row_codes
from netshrink.quant.bounds import check_layer
from netshrink.quant.calibration import calibration_batches, check_fits, run_batches
from netshrink.quant.config import QAT, Dynamic, Static, config_from_dict
from netshrink.quant.direct_reads import check_direct_reads
from netshrink.quant.fold import fold_batchnorm, traceable
from netshrink.quant.handlers import (
    HANDLERS,
    INTEGER_TYPES,
    QAT_HANDLERS,
    Handler,
    WeightPlan,
    float_reason,
    handler_for,
)
from netshrink.quant.modules import ActivationSpec
from netshrink.quant.observers import make_observer
from netshrink.quant.report import LayerFate, QuantReport
from netshrink.quant.scheme import Scheme
from netshrink.quant.weight_only import HessianObserver, WeightOnly, WeightOnlyLinear

if TYPE_CHECKING:
    from netshrink.data.splits import Splits

TRANSFORM_KIND = "quantize"


@dataclass
class _Target:
    name: str
    module: nn.Module
    handler: Handler


def _device(model: nn.Module) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _weight_scheme(config) -> Scheme:
    return Scheme(config.bits, symmetric=True,
                  granularity="channel" if config.per_channel else "tensor")


def activation_bits(config: Dynamic | Static | QAT, device: torch.device) -> int:
    """The input bits a config resolves to on `device`."""
    if config.activation_bits is not None:
        return config.activation_bits
    kernel = kernels.select(device, config.kernel)
    return kernels.max_activation_bits(kernel, device, config.bits)


def _plan(model: nn.Module, config, table: dict[type, Handler]
          ) -> tuple[list[_Target], list[LayerFate]]:
    """The layers the config's handlers take, and report rows for the others."""
    targets: list[_Target] = []
    rows: list[LayerFate] = []

    def visit(module: nn.Module, name: str) -> None:
        if name and any_match(name, config.skip):
            rows.append(LayerFate(name, base_type(module).__name__, "skipped",
                                  "a skip pattern names it"))
            return
        handler = handler_for(module, table) if name else None
        if handler is not None and not (handler.name == "embedding" and
                                        not getattr(config, "embeddings", True)):
            targets.append(_Target(name, module, handler))
            return
        if isinstance(module, WeightOnlyLinear) and not isinstance(config, WeightOnly):
            why = (f"{module.bits}-bit in groups of {module.group_size}: no exact integer "
                   "form (that needs one scale per row, WeightOnly(group_size=None), and "
                   "bits + 1 <= the config's bits)" if isinstance(config, Dynamic) else
                   "only Dynamic runs weight-only rows on integer kernels")
            rows.append(LayerFate(name, type(module).__name__, "weight_only",
                                  f"{why}; it stays weight-only"))
            return
        if isinstance(module, INTEGER_TYPES):
            rows.append(LayerFate(name, type(module).__name__, "integer", "already integer"))
            return
        reason = float_reason(module) if name else None
        if handler is not None:
            reason = "embeddings=False keeps embedding tables float"
        if reason:
            rows.append(LayerFate(name, base_type(module).__name__, "float", reason))
        for child_name, child in module.named_children():
            if child_name != "parametrizations":
                visit(child, f"{name}.{child_name}" if name else child_name)

    check_patterns(config.skip, [n for n, _ in model.named_modules() if n], "skip")
    visit(model, "")
    return targets, rows


def _check_has_layers(model: nn.Module, config, targets: list[_Target]) -> None:
    if targets:
        return
    if any(isinstance(m, WeightOnlyLinear) for m in model.modules()) and \
            isinstance(config, Dynamic):
        raise NetshrinkError(f"the model ({type(model).__name__}) is already quantized: its "
                             "weight-only layers have no exact integer form (that needs one "
                             "scale per row, WeightOnly(group_size=None), and bits + 1 <= "
                             "the config's bits); quantize the float model")
    if any(isinstance(m, INTEGER_TYPES) for m in model.modules()):
        raise NetshrinkError(f"the model ({type(model).__name__}) is already quantized: its "
                             "layers are integer; quantize the float model")
    skipped = f" (skip={config.skip})" if config.skip else ""
    raise NetshrinkError(
        f"the model ({type(model).__name__}) has no layer to quantize{skipped}: netshrink "
        "quantizes Linear, Conv1d/2d/3d, Embedding and MultiheadAttention layers"
    )


def _check_bounds(targets: list[_Target], config, input_bits: int, device) -> None:
    """Refuse (by name) any layer whose int32 sums could overflow, before changing anything."""
    kernel = kernels.select(device, config.kernel)
    for t in targets:
        for fan_in in t.handler.fan_ins(t.module):
            check_layer(t.name, fan_in, input_bits, config.bits, kernel.pairs_in_int16(device),
                        kernel.name)


def _expand(model: nn.Module, targets: list[_Target], rows: list[LayerFate]) -> dict:
    """Replace the expanding layers (attention) by their float decomposition; {name: spec}."""
    done = {}
    for t in targets:
        if t.handler.expands:
            new, carried = t.handler.expand(t.module)
            replace_module(model, t.name, new, carry=carried)
            done[t.name] = new.spec()
            rows.append(LayerFate(t.name, base_type(t.module).__name__, "decomposed",
                                  "into ProjectedAttention; attention products stay float"))
    if done:
        keep_encoders_on_slow_path(model)
    return done


def _fold(model: nn.Module, rows: list[LayerFate]) -> list[list[str]]:
    bns = [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if bns and not traceable(model):
        return []  # the BatchNorms are reported float (torch.fx cannot trace the model)
    pairs = fold_batchnorm(model)
    for layer, bn in pairs:
        rows.append(LayerFate(bn, "BatchNorm", "folded", f"into {layer}"))
    return [list(p) for p in pairs]


def _mask_note(module: nn.Module) -> str:
    keep = module_masks(module).get("weight")
    return "" if keep is None else f"; mask carried (density {float(keep.float().mean()):.4f})"


def _describe(layer: nn.Module) -> str:
    repr_ = getattr(layer, "extra_repr", lambda: "")()
    return repr_ if len(repr_) < 90 else repr_[:87] + "..."


def _entry(stage: str, config, folded, decomposed) -> dict:
    return {"kind": TRANSFORM_KIND, "stage": stage, "config": config.to_dict(),
            "folded": folded, "decomposed": decomposed, "layers": {}}


def quantize_(
    model: nn.Module,
    config: Dynamic | Static | QAT | WeightOnly,
    data: Inputs | Dataset | Splits | Iterable[Any] | None = None,
) -> QuantReport:
    """Quantize `model` in place as `config` says; return the report of every layer's fate.

    data: calibration inputs for Static (required), WeightOnly with GPTQ rounding (required:
    the Hessians of the layers' inputs) and, optionally, QAT's initial ranges: a
    tensor of inputs, a Dataset, a netshrink.data.Splits (its first 2,048 training examples),
    or an iterable of batches (tensors, (inputs, labels) tuples, or dicts of keyword arguments).
    A refusal (a layer whose sums could overflow, data that does not fit) changes nothing.
    """
    if not isinstance(config, Dynamic | Static | QAT | WeightOnly):
        raise NetshrinkError(
            f"config must be netshrink.quant.Dynamic, Static, QAT or WeightOnly, not "
            f"{type(config).__name__}"
        )
    if not isinstance(model, nn.Module):
        raise NetshrinkError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    if isinstance(config, Static) and data is None:
        raise NetshrinkError("Static quantization needs calibration data: quantize_(model, "
                             "Static(), data=example_inputs)")
    if any(type(m) in QAT_HANDLERS for m in model.modules()):
        raise NetshrinkError("the model is prepared for quantization-aware training; call "
                             "netshrink.quant.convert(model) for its integer form")
    shared = computed(model)
    if shared and not isinstance(config, Dynamic):
        raise NetshrinkError(f"{', '.join(shared[:3])} {'is' if len(shared) == 1 else 'are'} "
                             "shared weights (netshrink.pack.share_), which BatchNorm folding "
                             "and quantization-aware training would drop; quantize before "
                             "sharing, or use Dynamic()")
    device = _device(model)
    if not isinstance(config, WeightOnly):
        kernels.select(device, config.kernel)  # fails early on a kernel the device cannot run
    # weight-only rows become integer layers of their own codes (netshrink.quant.row_codes)
    lifted = row_codes.lift(model, config.bits) if isinstance(config, Dynamic) else {}
    try:
        targets, rows = _plan(model, config, HANDLERS)
        _check_has_layers(model, config, targets)
        replaced = {t.name: t.module for t in targets if not isinstance(config, WeightOnly)
                    or t.handler.takes_weight_only or t.handler.expands}
        check_direct_reads(model, replaced, type(config).__name__)
        if not isinstance(config, WeightOnly):
            bits = activation_bits(config, device)
            _check_bounds(targets, config, bits, device)
    except BaseException:
        row_codes.put_back(model, lifted)
        raise
    if isinstance(config, WeightOnly):
        return _weight_only(model, config, targets, rows, data, device)
    if isinstance(config, Dynamic):
        return _dynamic(model, config, targets, rows, bits, lifted)
    was_training = model.training
    model.eval()
    if data is not None:
        check_fits(model, data, device)  # before folding: bad data changes nothing either
    if isinstance(config, Static):
        return _static(model, config, data, device, rows, bits)
    report = _prepare_qat(model, config, data, device, rows, bits)
    model.train(was_training)
    return report


def _replan(model: nn.Module, config, rows: list[LayerFate]) -> list[_Target]:
    """The leaf targets after expansion (their float rows are already in `rows`)."""
    targets, more = _plan(model, config, HANDLERS)
    known = {r.name for r in rows}
    rows.extend(r for r in more if r.name not in known)
    return targets


def _swap(model: nn.Module, target: _Target, new: nn.Module, rows: list[LayerFate], fate: str,
          original: nn.Module | None = None) -> None:
    note = _mask_note(target.module)
    replace_module(model, target.name, new)
    source = base_type(original if original is not None else target.module).__name__
    rows.append(LayerFate(target.name, source, fate, _describe(new) + note))


def _dynamic(model: nn.Module, config: Dynamic, targets, rows, bits, lifted: dict
             ) -> QuantReport:
    decomposed = _expand(model, targets, rows)
    entry = _entry("integer", config, [], decomposed)
    for t in _replan(model, config, rows):
        linear = t.handler.name == "linear"
        spec = ActivationSpec(bits, config.symmetric_activations,
                              config.granularity if linear else "tensor", static=False)
        new = t.handler.integer(t.module, t.name, WeightPlan(_weight_scheme(config)), spec,
                                config.kernel)
        _swap(model, t, new, rows, "integer")
        entry["layers"][t.name] = new.spec()
    row_codes.lower(model, lifted, rows, entry)
    model.eval()
    transforms.record(model, entry)
    return _report(rows)


def _weight_only(model: nn.Module, config: WeightOnly, targets, rows, data, device
                 ) -> QuantReport:
    """Weight-only layers, one at a time in module order; with GPTQ each Linear's Hessian is
    collected on the calibration data as the model is then (earlier layers already rounded,
    as the paper quantizes layer after layer)."""
    gptq = config.rounding == "gptq" and any(t.handler.name == "linear" for t in targets)
    if gptq and data is None:
        raise NetshrinkError("WeightOnly(rounding='gptq') needs calibration data for the "
                             "Hessians: quantize_(model, config, data=example_inputs), or use "
                             "rounding='rtn'")
    was_training = model.training
    model.eval()
    if data is not None and gptq:
        check_fits(model, data, device)
    decomposed = _expand(model, targets, rows)
    entry = _entry("integer", config, [], decomposed)
    for t in _replan(model, config, rows):
        if not t.handler.takes_weight_only:
            rows.append(LayerFate(t.name, base_type(t.module).__name__, "float",
                                  "no weight-only form (Linear and Embedding have one)"))
            continue
        linear = t.handler.name == "linear"
        hessian = _hessian(model, t.module, data, device, config) if gptq and linear else None
        new = t.handler.weight_only(t.module, config, hessian)
        replace_module(model, t.name, new, carry={})  # pruned weights stay exact zeros
        note = "" if linear or config.rounding == "rtn" else " (embeddings round to nearest)"
        rows.append(LayerFate(t.name, base_type(t.module).__name__, "weight_only",
                              _describe(new) + note))
        entry["layers"][t.name] = new.spec()
    model.train(was_training)
    transforms.record(model, entry)
    return _report(rows)


@torch.no_grad()
def _hessian(model: nn.Module, layer: nn.Module, data, device, config: WeightOnly
             ) -> torch.Tensor:
    observer = HessianObserver(layer.in_features)
    hook = layer.register_forward_pre_hook(observer)
    try:
        for i, batch in enumerate(calibration_batches(data, device)):
            if i >= config.calibration_batches:
                break
            call(model, batch)
    finally:
        hook.remove()
    return observer.hessian


def _report(rows: list[LayerFate]) -> QuantReport:
    """One row per layer, its last fate (a BatchNorm first listed float may be folded)."""
    last = {r.name: r for r in rows}
    order = list(dict.fromkeys(r.name for r in rows))
    return QuantReport([last[name] for name in order])


def _observe_input(observer):
    def hook(module, args):
        observer.update(args[0])
    return hook


def _static(model: nn.Module, config: Static, data, device, rows, bits) -> QuantReport:
    folded = _fold(model, rows)
    targets, _ = _plan(model, config, HANDLERS)
    decomposed = _expand(model, targets, rows)
    targets = _replan(model, config, rows)
    scheme = Scheme(bits, config.symmetric_activations, "tensor")
    observed = [t for t in targets if t.handler.takes_input_range]
    observers = {t.name: make_observer(config.observer, scheme) for t in observed}
    hooks = [t.module.register_forward_pre_hook(_observe_input(observers[t.name]))
             for t in observed]
    try:
        run_batches(model, data, device)
    finally:
        for hook in hooks:
            hook.remove()
    unseen = {t.name for t in observed if not observers[t.name].seen}
    for t in targets:  # an auxiliary head, a branch the data never takes: no input range
        if t.name in unseen:
            rows.append(LayerFate(t.name, base_type(t.module).__name__, "float",
                                  "never called on the calibration data, so it has no "
                                  "input range; it stays float"))
    targets = [t for t in targets if t.name not in unseen]
    entry = _entry("integer", config, folded, decomposed)
    spec = ActivationSpec(bits, config.symmetric_activations, "tensor", static=True)
    plan = WeightPlan(_weight_scheme(config), config.weight_observer)
    for t in targets:
        new = t.handler.integer(t.module, t.name, plan, spec, config.kernel)
        if t.name in observers:
            scale, zero_point = observers[t.name].qparams()
            new.input_scale.copy_(scale.reshape(()))
            new.input_zero_point.copy_(zero_point.reshape(()))
        _swap(model, t, new, rows, "integer")
        entry["layers"][t.name] = new.spec()
    transforms.record(model, entry)
    return _report(rows)


def _prepare_qat(model: nn.Module, config: QAT, data, device, rows, bits) -> QuantReport:
    folded = _fold(model, rows)
    targets, _ = _plan(model, config, HANDLERS)
    decomposed = _expand(model, targets, rows)
    targets = _replan(model, config, rows)
    ranged = [t.name for t in targets if t.handler.takes_input_range]
    edges = {ranged[0], ranged[-1]} if config.first_last_bits and ranged else set()
    entry = _entry("qat", config, folded, decomposed)
    for t in targets:
        weight, input_bits = _weight_scheme(config), bits
        if t.name in edges:
            edge = replace(config, bits=config.first_last_bits, activation_bits=None)
            weight = _weight_scheme(edge)
            input_bits = min(activation_bits(edge, device), config.first_last_bits)
        activation = Scheme(input_bits, config.symmetric_activations, "tensor")
        new = t.handler.qat(t.module, weight, activation, config.lsq)
        _swap(model, t, new, rows, "qat")
        entry["layers"][t.name] = new.spec()
    if data is not None:
        run_batches(model, data, device)  # the first batches set ranges / LSQ steps
    transforms.record(model, entry)
    return _report(rows)


@torch.no_grad()
def convert(model: nn.Module) -> QuantReport:
    """Turn every QAT layer of `model` into an integer layer with its learned scales."""
    config = _qat_config(model)
    targets, rows = _plan(model, replace(config, skip=()), QAT_HANDLERS)
    if not targets:
        raise NetshrinkError("the model has no QAT layers to convert; call "
                             "netshrink.quantize_(model, netshrink.quant.QAT(...)) and train first")
    unseen = [t.name for t in targets if getattr(t.module, "input_fq", None) is not None
              and not bool(t.module.input_fq.initialized)]
    if unseen:  # checked before any layer changes
        raise NetshrinkError(
            f"{', '.join(repr(n) for n in unseen[:4])}{' ...' if len(unseen) > 4 else ''} "
            f"{'has' if len(unseen) == 1 else 'have'} not seen any input yet; train (or run one "
            "batch through) the model before convert. A layer the forward never calls (an "
            f"auxiliary head) gets no input range: quantize with QAT(skip={tuple(unseen)!r})")
    entry = _entry("integer", config, [], {})
    for t in targets:
        module = t.module
        wfq = module.weight_fq
        scale = wfq.qparams()[0] if wfq.lsq else None
        plan = WeightPlan(wfq.scheme, scale=scale)
        spec = ActivationSpec()
        ifq = getattr(module, "input_fq", None)
        if ifq is not None:
            spec = ActivationSpec(ifq.scheme.bits, ifq.scheme.symmetric, "tensor", static=True)
        new = t.handler.integer(module, t.name, plan, spec, config.kernel)
        if ifq is not None:
            input_scale, zero_point = ifq.qparams()
            new.input_scale.copy_(input_scale.reshape(()))
            new.input_zero_point.copy_(zero_point.reshape(()))
        _swap(model, t, new, rows, "integer")
        entry["layers"][t.name] = new.spec()
    model.eval()
    transforms.record(model, entry)
    return _report(rows)


def _qat_config(model: nn.Module) -> QAT:
    for entry in reversed(transforms.recorded(model)):
        if entry.get("kind") == TRANSFORM_KIND and entry.get("stage") == "qat":
            return config_from_dict(entry["config"])
    return QAT()
