"""Replaying a recorded quantization onto a fresh float model (weights come from the file).

The entry says which BatchNorms were folded, which attention layers were decomposed and which
layers became QAT or integer modules (with their specs). Each named layer of the model must be
there and of the kind and shape the file says; otherwise the file does not belong to this
model, and that is one clear error, never a model that loads the wrong weights.
"""

from __future__ import annotations

from torch import nn

from netshrink.core.attention import ProjectedAttention, keep_encoders_on_slow_path
from netshrink.core.swap import base_type, get_module, swap_everywhere
from netshrink.errors import NetshrinkError
from netshrink.quant.fold import replay_fold
from netshrink.quant.modules import from_spec
from netshrink.quant.qat import qat_from_spec
from netshrink.quant.weight_only import WeightOnlyLinear

# spec type -> the float (or QAT) layer types it may replace
_SOURCES = {
    # a weight-only Linear with one scale per row becomes integer exactly (minilm_deploy:
    # weight_only.integer_linear), so an integer Linear may stand where one was
    "linear": (nn.Linear, WeightOnlyLinear), "conv1d": (nn.Conv1d,), "conv2d": (nn.Conv2d,),
    "conv3d": (nn.Conv3d,), "embedding": (nn.Embedding,),
    "qat_linear": (nn.Linear,), "qat_conv1d": (nn.Conv1d,), "qat_conv2d": (nn.Conv2d,),
    "qat_conv3d": (nn.Conv3d,), "qat_embedding": (nn.Embedding,),
    "weight_only_linear": (nn.Linear,), "weight_only_embedding": (nn.Embedding,),
}
_SHAPE_KEYS = ("in_features", "out_features", "in_channels", "out_channels", "groups",
               "num_embeddings", "embedding_dim")


_REQUIRED = {
    "linear": ("in_features", "out_features"), "qat_linear": ("in_features", "out_features"),
    "embedding": ("num_embeddings", "embedding_dim"),
    "qat_embedding": ("num_embeddings", "embedding_dim"),
    "weight_only_linear": ("in_features", "out_features", "bits", "group_size"),
    "weight_only_embedding": ("num_embeddings", "embedding_dim", "bits", "group_size"),
}
_CONV_KEYS = ("in_channels", "out_channels", "kernel_size")
_LIST_KEYS = ("kernel_size", "stride", "padding", "dilation", "pre_pad")
_LARGEST = 2**31  # no layer dimension netshrink writes is this large


def _count(value, what: str, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < _LARGEST:
        raise NetshrinkError(f"{what}={str(value)[:40]} must be an integer >= {low}")


def _pairs(pairs, what: str) -> None:
    if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(n, str) for n in p)
            for p in pairs):
        raise NetshrinkError(f"{what} must be a list of [layer, batchnorm] name pairs")


def _layer_spec(name, spec) -> None:
    if not isinstance(name, str) or not isinstance(spec, dict):
        raise NetshrinkError(f"layer {str(name)[:40]}: a layer name and its spec (a mapping)")
    kind = spec.get("type")
    if kind not in _SOURCES:
        raise NetshrinkError(f"layer {name!r}: unknown quantized layer type {str(kind)[:40]}")
    for key in _REQUIRED.get(kind, _CONV_KEYS):
        if key not in spec:
            raise NetshrinkError(f"layer {name!r}: {key} is missing")
    for key in _SHAPE_KEYS:
        if key in spec:
            _count(spec[key], f"layer {name!r}: {key}")
    for key in _LIST_KEYS:
        values = spec.get(key, [])
        if key == "padding" and isinstance(values, str):  # "same", "valid"
            continue
        values = [values] if isinstance(values, int) else values
        if not isinstance(values, list) or len(values) > 6:
            raise NetshrinkError(f"layer {name!r}: {key} must be a short list of integers")
        for v in values:
            _count(v, f"layer {name!r}: {key}", 0)
    for key in ("weight_bits", "bits"):
        if key in spec and (isinstance(spec[key], bool) or spec[key] not in range(2, 9)):
            raise NetshrinkError(f"layer {name!r}: {key}={str(spec[key])[:40]} must be an "
                                 "integer from 2 to 8")
    if "group_size" in spec:
        _count(spec["group_size"], f"layer {name!r}: group_size")
    if "bias" in spec and not isinstance(spec["bias"], bool):
        raise NetshrinkError(f"layer {name!r}: bias={str(spec['bias'])[:40]} must be true or "
                             "false")
    for key in ("activation", "weight", "input"):
        if key in spec and not isinstance(spec[key], dict):
            raise NetshrinkError(f"layer {name!r}: {key} must be a mapping")


def check_entry(entry: dict) -> None:
    """The shape of a quantize entry read from a file (before anything is built from it)."""
    if entry.get("stage", "integer") not in ("qat", "integer"):
        raise NetshrinkError(f"stage {str(entry.get('stage'))[:40]} must be qat or integer")
    if not isinstance(entry.get("config", {}), dict):
        raise NetshrinkError("config must be a mapping")
    _pairs(entry.get("folded", []), "folded")
    decomposed, layers = entry.get("decomposed", {}), entry.get("layers", {})
    if not isinstance(decomposed, dict) or not isinstance(layers, dict):
        raise NetshrinkError("decomposed and layers must be mappings of layer names")
    for name, spec in decomposed.items():
        if not isinstance(spec, dict):
            raise NetshrinkError(f"decomposed {str(name)[:40]}: its spec must be a mapping")
        for key in ("embed_dim", "num_heads"):
            _count(spec.get(key), f"decomposed {name!r}: {key}")
    for name, spec in layers.items():
        _layer_spec(name, spec)


def check_fold_entry(entry: dict) -> None:
    """The shape of a fold entry read from a file."""
    _pairs(entry.get("pairs", []), "pairs")


def _layer(model: nn.Module, name) -> nn.Module:
    if not isinstance(name, str):
        raise NetshrinkError(f"corrupt quantize entry: layer name {name!r}")
    try:
        return get_module(model, name)
    except AttributeError:
        raise NetshrinkError(f"the file quantizes layer {name!r}, which the model lacks; the "
                             "file does not match this model") from None


def _check_fits(module: nn.Module, spec: dict, name: str) -> None:
    kind = spec.get("type")
    if kind not in _SOURCES:
        raise NetshrinkError(f"unknown quantized layer type {kind!r}; upgrade netshrink")
    if not isinstance(module, _SOURCES[kind]):
        raise NetshrinkError(f"the file quantizes {name!r} as {kind}, but the model's "
                             f"{name!r} is a {base_type(module).__name__}")
    for key in _SHAPE_KEYS:
        if key in spec and getattr(module, key, spec[key]) != spec[key]:
            raise NetshrinkError(f"the file's {name!r} has {key}={spec[key]}, the model's "
                                 f"{getattr(module, key)}; the file does not match this model")
    if "kernel_size" in spec and list(getattr(module, "kernel_size", spec["kernel_size"])) \
            != list(spec["kernel_size"]):
        raise NetshrinkError(f"the file's {name!r} has kernel_size {spec['kernel_size']}, the "
                             f"model's {list(module.kernel_size)}")


def replay_folding(model: nn.Module, entry: dict) -> nn.Module:
    """Replay a standalone BatchNorm folding (netshrink.quant.fold_)."""
    pairs = entry.get("pairs", [])
    if not isinstance(pairs, list):
        raise NetshrinkError("corrupt fold entry (pairs)")
    _replay_pairs(model, pairs)
    return model


def _replay_pairs(model: nn.Module, folded: list) -> None:
    for pair in folded:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise NetshrinkError("corrupt quantize entry: a folded pair")
        layer, bn = _layer(model, pair[0]), _layer(model, pair[1])
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm | nn.Identity) or \
                not hasattr(layer, "weight"):
            raise NetshrinkError(f"the file folds {pair[1]!r} into {pair[0]!r}, which the "
                                 "model does not have as a layer and a BatchNorm")
    replay_fold(model, folded)


def replay(model: nn.Module, entry: dict) -> nn.Module:
    """Give `model` the structure the quantize entry describes (empty integer/QAT layers)."""
    folded, decomposed, layers = (entry.get("folded", []), entry.get("decomposed", {}),
                                  entry.get("layers", {}))
    if not isinstance(folded, list) or not isinstance(decomposed, dict) or \
            not isinstance(layers, dict):
        raise NetshrinkError("corrupt quantize entry (folded, decomposed or layers)")
    _replay_pairs(model, folded)
    for name, spec in decomposed.items():
        module = _layer(model, name)
        if isinstance(module, ProjectedAttention):
            continue
        if not isinstance(module, nn.MultiheadAttention) or not isinstance(spec, dict) or \
                module.embed_dim != spec.get("embed_dim") or \
                module.num_heads != spec.get("num_heads"):
            raise NetshrinkError(f"the file decomposes attention {name!r}, which the model "
                                 "lacks or shapes differently")
        swap_everywhere(model, name, ProjectedAttention.from_spec(spec).train(module.training))
    if decomposed:
        keep_encoders_on_slow_path(model)
    for name, spec in layers.items():
        if not isinstance(spec, dict):
            raise NetshrinkError(f"corrupt quantize entry for layer {name!r}")
        module = _layer(model, name)
        _check_fits(module, spec, name)
        kind = spec["type"]
        new = qat_from_spec(spec) if kind.startswith("qat_") else from_spec(spec, name)
        device = next(iter(module.parameters()), None)
        swap_everywhere(model, name, new if device is None else new.to(device.device))
    if entry.get("stage") == "integer":
        model.eval()
    return model
