"""Feature hints (Romero et al., FitNets): match a named inner module of the teacher.

Features are captured by forward hooks on the named modules, so no model is rewritten to expose
them; the hooks are removed when the capture closes. When the student's feature has another
shape than the teacher's, a learned projection maps it there: a 1x1 convolution for feature maps
(both then average-pooled to their common spatial size), else a linear map of the flattened
features.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from netshrink.errors import NetshrinkError


def resolve_modules(model: nn.Module, names: Sequence[str], role: str) -> dict[str, nn.Module]:
    """{name: module} for each name, or one clear error naming the missing module."""
    modules = dict(model.named_modules())
    found = {}
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, [n for n in modules if n], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            listing = ", ".join(n for n in list(modules)[1:13] if n)
            raise NetshrinkError(
                f"hint names {role} module {name!r}, which the {role} does not have{hint} "
                f"(its modules: {listing}{', ...' if len(modules) > 13 else ''}; see "
                f"dict(model.named_modules()))"
            )
        found[name] = modules[name]
    return found


class FeatureCapture:
    """Forward hooks that keep the latest output of each named module, until `close()`.

    features[name] holds the output of module `name` from the last forward pass (with its
    graph, so a loss on it trains the model). Usable as a context manager.
    """

    def __init__(self, model: nn.Module, names: Sequence[str], role: str = "model"):
        self.features: dict[str, torch.Tensor] = {}
        self._handles = []
        for name, module in resolve_modules(model, names, role).items():
            self._handles.append(module.register_forward_hook(self._keeper(name)))

    def _keeper(self, name: str):
        def keep(module, inputs, output):
            if isinstance(output, tuple | list) and output:
                output = output[0]
            if not isinstance(output, torch.Tensor):
                raise NetshrinkError(
                    f"hint module {name!r} returns {type(output).__name__}, not a tensor"
                )
            self.features[name] = output

        return keep

    def take(self, name: str) -> torch.Tensor:
        if name not in self.features:
            raise NetshrinkError(
                f"hint module {name!r} was not called in the forward pass; name a module "
                "that the model's forward uses"
            )
        return self.features.pop(name)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.features.clear()

    def __enter__(self) -> FeatureCapture:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_projection(student_shape: Sequence[int], teacher_shape: Sequence[int]) -> nn.Module:
    """A map from one example's student feature shape to the teacher's (identity if equal)."""
    student_shape, teacher_shape = tuple(student_shape), tuple(teacher_shape)
    if student_shape == teacher_shape:
        return nn.Identity()
    if len(student_shape) == 3 and len(teacher_shape) == 3:
        return nn.Conv2d(student_shape[0], teacher_shape[0], kernel_size=1)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(student_shape),
                                                 math.prod(teacher_shape)))


def hint_loss(projection: nn.Module, student_feature: torch.Tensor,
              teacher_feature: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the projected student feature and the teacher's."""
    s, t = projection(student_feature), teacher_feature.detach()
    if s.dim() == 4 and t.dim() == 4 and s.shape[-2:] != t.shape[-2:]:
        size = (min(s.shape[-2], t.shape[-2]), min(s.shape[-1], t.shape[-1]))
        s, t = F.adaptive_avg_pool2d(s, size), F.adaptive_avg_pool2d(t, size)
    return F.mse_loss(s.flatten(1).float(), t.flatten(1).float())
