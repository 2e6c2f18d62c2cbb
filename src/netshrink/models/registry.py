"""A registry of model builders: `create(name, **kw)`, `names()`, and `@register` to add one."""

from __future__ import annotations

import inspect
import math
import numbers
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from netshrink.checks import show
from netshrink.errors import NetshrinkError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_DEFAULTS: dict[str, dict] = {}
INITS = ("default", "glorot", "kaiming")
MAX_INPUT_ELEMENTS = 2**28  # one example of a quarter billion values (1 GB of float32)
MAX_CLASSES = 2**24


def register(name: str) -> Callable:
    """Decorator: make `fn(input_shape, num_classes, **kw) -> nn.Module` available as `name`."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS:
            raise NetshrinkError(f"model {name!r} is registered twice")
        _BUILDERS[name] = fn
        return fn

    return wrap


def names() -> list[str]:
    return sorted(_BUILDERS)


def defaults(name: str) -> dict:
    """The arguments `create(name)` fills in when not given: init and the builder's defaults.

    A trial's identity is its resolved configuration, so `widths=[1200, 1200]` written out
    names the same mlp as no widths at all. An unknown name has none ({}).
    """
    if name not in _BUILDERS:
        return {}
    if name not in _DEFAULTS:  # a builder never changes once registered: read it once
        _DEFAULTS[name] = {"init": "default"} | {
            p.name: p.default for p in inspect.signature(_BUILDERS[name]).parameters.values()
            if p.name not in ("input_shape", "num_classes") and p.default is not p.empty}
    return dict(_DEFAULTS[name])


def create(
    name: str,
    input_shape: tuple[int, ...] = (1, 28, 28),
    num_classes: int = 10,
    init: str = "default",
    **kwargs: Any,
) -> nn.Module:
    """Build model `name` for inputs of `input_shape` (C, H, W) and `num_classes` outputs.

    `init`: "default" (PyTorch's), "glorot" (Xavier normal, as the Lottery Ticket paper) or
    "kaiming" (He normal). The arguments are remembered on the model (`model.netshrink_spec`), so
    `netshrink.save` / `netshrink.load` can rebuild it.
    """
    if name not in _BUILDERS:
        raise NetshrinkError(
            f"unknown model {name!r}; choose from {', '.join(names())}. A model of your own: "
            "register its builder with @netshrink.models.register(name) in your Python "
            "program (netshrink.run(recipe, out) then finds it), or pass model_factory= to "
            "netshrink.run")
    if not isinstance(init, str) or init not in INITS:
        raise NetshrinkError(f"init={show(init)} is not one of {', '.join(INITS)}")
    builder = _BUILDERS[name]
    accepted = set(inspect.signature(builder).parameters) - {"input_shape", "num_classes"}
    unknown = set(kwargs) - accepted
    if unknown:
        raise NetshrinkError(
            f"model {name!r} has no argument {', '.join(sorted(unknown))}; it accepts "
            f"{', '.join(sorted(accepted)) or 'none'}"
        )
    shape = _input_shape(input_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or \
            not 2 <= num_classes <= MAX_CLASSES:
        raise NetshrinkError(f"num_classes={show(num_classes)} must be an integer from 2 to "
                             f"{MAX_CLASSES:,d}")
    try:
        model = _build(name, lambda: builder(input_shape=shape, num_classes=int(num_classes),
                                             **kwargs))
    except NetshrinkError:
        raise
    except (TypeError, ValueError, OverflowError, RuntimeError, IndexError) as err:
        message = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise NetshrinkError(f"model {name!r} cannot be built with {show(kwargs)}: {message}; "
                             f"check its arguments ({', '.join(sorted(accepted)) or 'none'})"
                             ) from None
    if init != "default":
        reinitialize(model, init)
    model.netshrink_spec = {
        "name": name,
        "args": {"input_shape": list(shape), "num_classes": int(num_classes), "init": init,
                 **kwargs},
    }
    return model


def _build(name: str, build: Callable[[], nn.Module]) -> nn.Module:
    """`build()`, once its weights are known to fit in this machine's memory: the model is
    first built on the meta device (shapes, no memory), so a typo such as widths=[10**9]
    is refused instead of exhausting the memory."""
    if torch.get_default_device().type != "meta":
        try:
            with torch.device("meta"):
                probe = build()
        except NetshrinkError:
            raise
        except Exception:  # a builder that cannot run on meta (it reads weights): as it is
            return build()
        needed = sum(t.numel() * t.element_size() for t in probe.state_dict().values()
                     if isinstance(t, torch.Tensor))
        available = _physical_memory()
        if available and needed > available:
            raise NetshrinkError(f"model {name!r} with these arguments needs "
                                 f"{needed / 2**30:,.1f} GiB for its weights alone, more than "
                                 f"this machine's {available / 2**30:,.1f} GiB of memory")
    return build()


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _input_shape(input_shape) -> tuple[int, ...]:
    """One example's shape, (C, H, W) or any other list of positive sizes, not too large."""
    if isinstance(input_shape, dict) or (isinstance(input_shape, tuple | list) and any(
            isinstance(s, tuple | list) for s in input_shape)):
        raise NetshrinkError(
            f"input_shape={show(input_shape)} must be one shape such as (1, 28, 28): the zoo's "
            "models take one image tensor, not the tuple or dict of shapes of a data set with "
            "several inputs; build your own nn.Module for those"
        )
    if not isinstance(input_shape, tuple | list | torch.Size) or not 1 <= len(input_shape) <= 4 \
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
                       for s in input_shape):
        raise NetshrinkError(f"input_shape={show(input_shape)} must be 1 to 4 positive sizes, "
                             "such as (1, 28, 28)")
    shape = tuple(int(s) for s in input_shape)
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise NetshrinkError(f"input_shape={shape} has {math.prod(shape):,d} values per example, "
                             f"more than {MAX_INPUT_ELEMENTS:,d}")
    return shape


def reinitialize(model: nn.Module, init: str) -> None:
    """Re-draw the weights of every Linear and Conv layer; biases become zero."""
    fill = {"glorot": nn.init.xavier_normal_,
            "kaiming": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")}[init]
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            fill(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def output_shape(layers: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of one example after `layers`, found by a dry run."""
    with torch.no_grad():
        was_training = layers.training
        layers.eval()
        out = layers(torch.zeros(1, *input_shape))
        layers.train(was_training)
    return tuple(out.shape[1:])
