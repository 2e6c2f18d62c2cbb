"""`quantize_(model, config, data)` and `convert(model)`: float model -> integer model, in place.

- Dynamic: weights to int8 now; inputs are quantized at run time. No data needed.
- Static: BatchNorm folded, an observer watches each layer's input on the calibration data,
  then every Linear / Conv2d becomes an integer layer with fixed input scales.
- QAT: BatchNorm folded, layers become fake-quantizing QATLinear / QATConv2d; train with
  `netshrink.train.fit`, then `convert(model)` gives the integer model.

Each step is recorded on the model (`netshrink.serialize.record_transform`), so
`netshrink.save` / `netshrink.load` rebuild the quantized model from the file alone.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from netshrink.errors import NetshrinkError
from netshrink.quant import kernels
from netshrink.quant.bounds import check_layer
from netshrink.quant.calibration import check_fits as _check_fits
from netshrink.quant.calibration import run_batches
from netshrink.quant.config import QAT, Dynamic, Static, config_from_dict
from netshrink.quant.fold import fold_batchnorm, get_module, replay_fold, set_module
from netshrink.quant.modules import (
    ActivationSpec,
    QuantConv2d,
    QuantEmbedding,
    QuantLinear,
    from_spec,
)
from netshrink.quant.observers import make_observer
from netshrink.quant.qat import QATConv2d, QATLinear, qat_from_spec
from netshrink.quant.scheme import Scheme, quantize
from netshrink.serialize import record_transform, register_transform

TRANSFORM_KIND = "quantize"


def _device(model: nn.Module) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _skipped(name: str, skip: tuple) -> bool:
    return any(name == s or name.startswith(s + ".") for s in skip)


def _targets(model: nn.Module, config, types) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules()
            if type(m) in types and name and not _skipped(name, config.skip)]


def _weight_scheme(config) -> Scheme:
    return Scheme(config.bits, symmetric=True,
                  granularity="channel" if config.per_channel else "tensor")


def activation_bits(config, device: torch.device) -> int:
    """The input bits a config resolves to on `device`."""
    if config.activation_bits is not None:
        return config.activation_bits
    kernel = kernels.select(device, config.kernel)
    return kernels.max_activation_bits(kernel, device, config.bits)


def _quantize_weight(weight: torch.Tensor, scheme: Scheme, observer: str = "minmax",
                     scale: torch.Tensor | None = None):
    """(int8 weight, per-output scale) of a float weight."""
    w = weight.detach().float()
    if scale is None:
        obs = make_observer(observer, scheme)
        obs.update(w)
        scale, _ = obs.qparams()
    scale = scale.reshape(-1).to(w.device)
    per_out = scale.expand(w.shape[0]) if scale.numel() == 1 else scale
    view = per_out.view(-1, *([1] * (w.dim() - 1)))
    return quantize(w, view, torch.zeros_like(view), scheme), per_out.clone()


def _integer_layer(name: str, module: nn.Module, config, spec: ActivationSpec,
                   weight_observer: str = "minmax", weight_scale=None,
                   scheme: Scheme | None = None) -> nn.Module:
    scheme = scheme or _weight_scheme(config)
    if isinstance(module, nn.Linear):
        layer = QuantLinear(module.in_features, module.out_features, module.bias is not None,
                            scheme.bits, spec, config.kernel, name)
    else:
        layer = QuantConv2d(module.in_channels, module.out_channels, module.kernel_size,
                            module.stride, module.padding, module.dilation, module.groups,
                            module.bias is not None, scheme.bits, spec, config.kernel, name)
    layer.check(module.weight.device)
    weight_int, scale = _quantize_weight(module.weight, scheme, weight_observer, weight_scale)
    layer = layer.to(module.weight.device)
    layer.set_weight(weight_int, scale)
    if module.bias is not None:
        layer.bias.copy_(module.bias.detach().float())
    return layer


def _fan_in(module: nn.Module) -> int:
    return module.weight[0].numel()


def _check_bounds(layers: list, config, input_bits: int, device: torch.device) -> None:
    """Refuse (by name) any layer whose int32 sums could overflow, before changing anything."""
    kernel = kernels.select(device, config.kernel)
    for name, module in layers:
        check_layer(name, _fan_in(module), input_bits, config.bits,
                    kernel.pairs_in_int16(device), kernel.name)


def _check_has_layers(model: nn.Module, config, found: list) -> None:
    if not found:
        skipped = f" (skip={config.skip})" if config.skip else ""
        raise NetshrinkError(
            f"the model ({type(model).__name__}) has no nn.Linear, nn.Conv2d or nn.Embedding "
            f"layer to quantize{skipped}; netshrink quantizes those layers"
        )


def quantize_(model: nn.Module, config: Dynamic | Static | QAT, data=None) -> nn.Module:
    """Quantize `model` in place as `config` says and return it.

    data: calibration inputs for Static (required) and, optionally, QAT's initial ranges: a
    tensor of inputs, a Dataset, a netshrink.data.Splits (its first 2,048 training examples),
    or an iterable of batches (tensors, (inputs, labels) tuples, or dicts of keyword arguments).
    """
    if not isinstance(config, Dynamic | Static | QAT):
        raise NetshrinkError(
            f"config must be netshrink.quant.Dynamic, Static or QAT, not {type(config).__name__}"
        )
    if not isinstance(model, nn.Module):
        raise NetshrinkError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    if isinstance(config, Static) and data is None:
        raise NetshrinkError("Static quantization needs calibration data: quantize_(model, "
                             "Static(), data=example_inputs)")
    device = _device(model)
    kernels.select(device, config.kernel)  # fails early on a kernel the device cannot run
    if isinstance(config, Dynamic):
        return _dynamic(model, config, device)
    if isinstance(config, Static):
        return _static(model, config, data, device)
    return _prepare_qat(model, config, data, device)


def _dynamic(model: nn.Module, config: Dynamic, device) -> nn.Module:
    layers = _targets(model, config, (nn.Linear, nn.Conv2d))
    embeddings = _targets(model, config, (nn.Embedding,)) if config.embeddings else []
    _check_has_layers(model, config, layers + embeddings)
    bits = activation_bits(config, device)
    _check_bounds(layers, config, bits, device)
    entry = {"kind": TRANSFORM_KIND, "stage": "integer", "config": config.to_dict(),
             "folded": [], "layers": {}}
    for name, module in layers:
        granularity = config.granularity if isinstance(module, nn.Linear) else "tensor"
        spec = ActivationSpec(bits, config.symmetric_activations, granularity, static=False)
        layer = _integer_layer(name, module, config, spec)
        set_module(model, name, layer)
        entry["layers"][name] = layer.spec()
    for name, module in embeddings:
        layer = QuantEmbedding.from_float(module, config.bits)
        set_module(model, name, layer)
        entry["layers"][name] = layer.spec()
    model.eval()
    record_transform(model, entry)
    return model


def _static(model: nn.Module, config: Static, data, device) -> nn.Module:
    model.eval()
    layers = _targets(model, config, (nn.Linear, nn.Conv2d))
    _check_has_layers(model, config, layers)
    bits = activation_bits(config, device)
    spec = ActivationSpec(bits, config.symmetric_activations, "tensor", static=True)
    scheme = Scheme(bits, config.symmetric_activations, "tensor")
    _check_bounds(layers, config, bits, device)  # before folding: a refusal changes nothing
    _check_fits(model, data, device)  # likewise a data set that does not fit
    folded = fold_batchnorm(model)
    layers = _targets(model, config, (nn.Linear, nn.Conv2d))  # folding gave new parameters
    observers = {name: make_observer(config.observer, scheme) for name, _ in layers}
    hooks = [module.register_forward_pre_hook(_observe_input(observers[name]))
             for name, module in layers]
    try:
        run_batches(model, data, device)
    finally:
        for hook in hooks:
            hook.remove()
    entry = {"kind": TRANSFORM_KIND, "stage": "integer", "config": config.to_dict(),
             "folded": [list(p) for p in folded], "layers": {}}
    for name, module in layers:
        scale, zero_point = observers[name].qparams()
        layer = _integer_layer(name, module, config, spec, config.weight_observer)
        layer.input_scale.copy_(scale.reshape(()))
        layer.input_zero_point.copy_(zero_point.reshape(()))
        set_module(model, name, layer)
        entry["layers"][name] = layer.spec()
    record_transform(model, entry)
    return model


def _observe_input(observer):
    def hook(module, args):
        observer.update(args[0])
    return hook


def _prepare_qat(model: nn.Module, config: QAT, data, device) -> nn.Module:
    was_training = model.training
    model.eval()
    _check_has_layers(model, config, _targets(model, config, (nn.Linear, nn.Conv2d)))
    if data is not None:
        _check_fits(model, data, device)
    folded = fold_batchnorm(model)
    bits = activation_bits(config, device)
    targets = _targets(model, config, (nn.Linear, nn.Conv2d))
    edges = {targets[0][0], targets[-1][0]} if config.first_last_bits else set()
    entry = {"kind": TRANSFORM_KIND, "stage": "qat", "config": config.to_dict(),
             "folded": [list(p) for p in folded], "layers": {}}
    for name, module in targets:
        weight_scheme, input_bits = _weight_scheme(config), bits
        if name in edges:
            edge = replace(config, bits=config.first_last_bits, activation_bits=None)
            weight_scheme, input_bits = _weight_scheme(edge), activation_bits(edge, device)
            input_bits = min(input_bits, config.first_last_bits)
        kw = {"weight_scheme": weight_scheme,
              "input_scheme": Scheme(input_bits, config.symmetric_activations, "tensor"),
              "lsq": config.lsq}
        cls = QATLinear if isinstance(module, nn.Linear) else QATConv2d
        layer = cls.from_float(module, **kw)
        set_module(model, name, layer)
        entry["layers"][name] = layer.spec()
    if data is not None:
        run_batches(model, data, device)  # first batch sets ranges / LSQ steps
    model.train(was_training)
    record_transform(model, entry)
    return model


@torch.no_grad()
def convert(model: nn.Module) -> nn.Module:
    """Turn every QAT layer of `model` into an integer layer with its learned scales."""
    qat_layers = [(n, m) for n, m in model.named_modules() if isinstance(m, QATLinear | QATConv2d)]
    if not qat_layers:
        raise NetshrinkError("the model has no QAT layers to convert; call "
                             "netshrink.quantize_(model, netshrink.quant.QAT(...)) and train first")
    config = _qat_config(model)
    entry = {"kind": TRANSFORM_KIND, "stage": "integer", "config": config.to_dict(),
             "folded": [], "layers": {}}
    for name, module in qat_layers:
        if not bool(module.input_fq.initialized):
            raise NetshrinkError(f"layer {name!r} has not seen any input yet; train (or run "
                                 "one batch through) the model before convert")
        wfq, ifq = module.weight_fq, module.input_fq
        in_scheme = ifq.scheme
        spec = ActivationSpec(in_scheme.bits, in_scheme.symmetric, "tensor", static=True)
        weight_scale = wfq.qparams()[0] if wfq.lsq else None
        layer = _integer_layer(name, module, config, spec, weight_scale=weight_scale,
                               scheme=wfq.scheme)
        scale, zero_point = ifq.qparams()
        layer.input_scale.copy_(scale.reshape(()))
        layer.input_zero_point.copy_(zero_point.reshape(()))
        set_module(model, name, layer)
        entry["layers"][name] = layer.spec()
    model.eval()
    record_transform(model, entry)
    return model


def _qat_config(model: nn.Module) -> QAT:
    for entry in reversed(getattr(model, "netshrink_transforms", [])):
        if entry.get("kind") == TRANSFORM_KIND and entry.get("stage") == "qat":
            return config_from_dict(entry["config"])
    return QAT()


def rebuild(model: nn.Module, entry: dict) -> nn.Module:
    """Replay a recorded quantization on a freshly built model (weights come from the file)."""
    replay_fold(model, entry.get("folded", []))
    for name, spec in entry.get("layers", {}).items():
        try:
            get_module(model, name)
        except AttributeError:
            raise NetshrinkError(f"the file quantizes layer {name!r}, which the model lacks; "
                                 "the file does not match its model description") from None
        qat = spec["type"].startswith("qat_")
        layer = qat_from_spec(spec) if qat else from_spec(spec, name)
        set_module(model, name, layer)
    if entry.get("stage") == "integer":
        model.eval()
    return model


register_transform(TRANSFORM_KIND, rebuild)
