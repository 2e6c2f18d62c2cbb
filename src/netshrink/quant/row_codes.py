"""Weight-only Linears with one scale per row, run on the integer kernels with their own codes.

    quantize_(model, WeightOnly(bits=4, group_size=None), data)   # GPTQ rows
    quantize_(model, Dynamic())                                     # -> integer layers

Such a layer's weight is (code - zero) * the row's scale: integers in [-(2^b - 1), 2^b - 1]
times one scale per row, which is exactly what an integer Linear holds (weight_only.
integer_linear). quantize_ with Dynamic lifts each to its dequantized float Linear, so that
it is planned, bounds-checked and given its input quantization and kernel like any Linear,
then lowers it to the integer layer of its own codes: GPTQ's rounding survives unchanged.
Layers in smaller groups, or whose integers do not fit the config's weight bits, stay
weight-only (reported so).
"""

from __future__ import annotations

import torch
from torch import nn

from netshrink.core.swap import get_module, set_module
from netshrink.quant.modules import QuantLinear
from netshrink.quant.report import LayerFate
from netshrink.quant.weight_only import WeightOnlyLinear, integer_linear


def fits(layer: WeightOnlyLinear, weight_bits: int) -> bool:
    """Whether `layer` has an exact integer form of at most `weight_bits`-bit weights."""
    return layer.group_size == layer.in_features and layer.bits + 1 <= weight_bits


def lift(model: nn.Module, weight_bits: int) -> dict[str, WeightOnlyLinear]:
    """{path: layer} of the weight-only Linears that fit, each now its dequantized Linear
    (a layer at several paths is one float Linear at all of them)."""
    lifted: dict[str, WeightOnlyLinear] = {}
    floats: dict[int, nn.Linear] = {}
    for path, module in list(model.named_modules(remove_duplicate=False)):
        if not path or not isinstance(module, WeightOnlyLinear) or not fits(module, weight_bits):
            continue
        if id(module) not in floats:
            layer = nn.Linear(module.in_features, module.out_features, module.bias is not None)
            with torch.no_grad():
                layer.weight.copy_(module.dequantized())
                if module.bias is not None:
                    layer.bias.copy_(module.bias)
            floats[id(module)] = layer.to(module.packed.device)
        set_module(model, path, floats[id(module)])
        lifted[path] = module
    return lifted


def put_back(model: nn.Module, lifted: dict[str, WeightOnlyLinear]) -> None:
    """Undo `lift` (a refusal changes nothing)."""
    for path, layer in lifted.items():
        set_module(model, path, layer)


def lower(model: nn.Module, lifted: dict[str, WeightOnlyLinear], rows: list[LayerFate],
          entry: dict) -> None:
    """Give each lifted layer that quantize_ made integer its own codes; one that it left
    (a skip pattern) is weight-only again. Records each layer's real spec in `entry`."""
    made: dict[int, nn.Module] = {}  # a layer at several paths stays one layer
    for path, layer in lifted.items():
        template = get_module(model, path)
        if not isinstance(template, QuantLinear):
            set_module(model, path, layer)
            rows.append(LayerFate(path, type(layer).__name__, "skipped",
                                  "a skip pattern names it; it stays weight-only"))
            continue
        if id(layer) in made:  # another path of a layer already made (recorded once)
            set_module(model, path, made[id(layer)])
            continue
        integer = made[id(layer)] = integer_linear(layer, template)
        set_module(model, path, integer)
        entry["layers"][path] = integer.spec()
        rows.append(LayerFate(path, type(layer).__name__, "integer",
                              f"its own {layer.bits}-bit codes as {layer.bits + 1}-bit "
                              "integers, one scale per row (exact)"))
