"""Worst-case accumulator bounds: integer products summed in int32 must never overflow.

A layer with fan-in K sums K products of an activation integer and a weight integer. Stored
activations are unsigned, at most 2**a - 1 (a = activation bits; a symmetric activation is
stored with an offset of 2**(a-1)), and |q - zero_point| is no larger. Weights are symmetric
and narrow, at most 2**(w-1) - 1 in magnitude. So every partial sum, before or after the
zero-point correction, is bounded by

    K * (2**a - 1) * (2**(w-1) - 1)

and the layer is safe when that is at most 2**31 - 1 (8-bit: K up to 66,311).

Some kernels also add adjacent pairs of products in int16 first (x86 AVX2 `vpmaddubsw`, which
saturates): they need 2 * (2**a - 1) * (2**(w-1) - 1) <= 32767, i.e. a + w <= 15.
"""

from __future__ import annotations

from netshrink.errors import NetshrinkError

INT32_MAX = 2**31 - 1
INT16_MAX = 2**15 - 1


def activation_magnitude(bits: int) -> int:
    """Largest stored activation integer (and largest |q - zero_point|)."""
    return 2**bits - 1


def weight_magnitude(bits: int) -> int:
    """Largest |weight integer| of a narrow symmetric scheme."""
    return 2 ** (bits - 1) - 1


def accumulator_bound(fan_in: int, activation_bits: int, weight_bits: int) -> int:
    """The largest |sum of fan_in products| the layer's integers can produce."""
    return fan_in * activation_magnitude(activation_bits) * weight_magnitude(weight_bits)


def pair_sum_bound(activation_bits: int, weight_bits: int) -> int:
    """The largest |a1*w1 + a2*w2|: what an int16 pair accumulator must hold."""
    return 2 * activation_magnitude(activation_bits) * weight_magnitude(weight_bits)


def check_layer(
    name: str,
    fan_in: int,
    activation_bits: int,
    weight_bits: int,
    pairs_in_int16: bool = False,
    kernel: str = "",
) -> int:
    """Refuse a layer whose integer sums could overflow; return its bound when it is safe."""
    bound = accumulator_bound(fan_in, activation_bits, weight_bits)
    if bound > INT32_MAX:
        raise NetshrinkError(
            f"layer {name!r}: {fan_in:,d} products of {activation_bits}-bit activations and "
            f"{weight_bits}-bit weights can sum to {bound:,d}, past int32's {INT32_MAX:,d}; "
            f"use fewer activation or weight bits for it, or leave it in float (skip=[{name!r}])"
        )
    if pairs_in_int16 and pair_sum_bound(activation_bits, weight_bits) > INT16_MAX:
        raise NetshrinkError(
            f"layer {name!r}: kernel {kernel!r} adds pairs of 8-bit products in int16, which "
            f"{activation_bits}-bit activations times {weight_bits}-bit weights can saturate "
            f"(up to {pair_sum_bound(activation_bits, weight_bits):,d} > {INT16_MAX:,d}); use "
            "activation_bits + bits <= 15 (e.g. activation_bits=7), or kernel='reference'"
        )
    return bound
