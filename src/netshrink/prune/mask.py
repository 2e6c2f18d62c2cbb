"""Masks: which weights a model keeps, and the machinery that keeps the pruned ones at zero.

A mask is installed on a weight without reparametrizing it, so the state_dict keeps the plain
model's keys and a saved pruned model is an ordinary model whose pruned weights are zeros:

- the weight is multiplied by the mask once, in place (the forward pass then sees exact zeros
  and costs nothing extra);
- a gradient hook multiplies the weight's `.grad` by the mask, in place, as soon as backward
  has accumulated it (pruned weights get a zero gradient, so plain SGD, weight decay and
  hand-written updates from `.grad` cannot move them; `torch.autograd.grad` still returns the
  unmasked derivative, which does not touch `.grad`);
- a global optimizer step post-hook re-applies the mask after every `torch.optim` step (so
  momentum or Adam moments accumulated before pruning cannot move them either);
- a load_state_dict post-hook re-applies it after loading weights (rewinding a lottery ticket to
  its initial weights loads dense weights into a masked model).

The mask itself is a non-persistent buffer `<weight>_mask` beside the weight (it moves with
`.to(device)` and stays out of the state_dict).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from netshrink.errors import NetshrinkError

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
LayerFilter = Callable[[str, nn.Module], bool]
_ATTR = "_netshrink_mask_ref"  # on a masked Parameter: (weakref to module, buffer name)
_HANDLE = "_netshrink_mask_hook"  # on a masked Parameter: its gradient hook's handle
_MASKED = "_netshrink_masked"  # on a module: the names of its masked weights
_optimizer_hook_installed = False


def default_filter(name: str, module: nn.Module) -> bool:
    """Linear and convolution layers are prunable by default."""
    return isinstance(module, PRUNABLE_TYPES)


def prunable(model: nn.Module, filter: LayerFilter | None = None) -> dict[str, nn.Parameter]:
    """{parameter name: weight} of the layers `filter(module_name, module)` selects.

    Only `weight` parameters are pruned (biases and normalization parameters are not, as in the
    papers we reproduce).
    """
    choose = filter or default_filter
    out: dict[str, nn.Parameter] = {}
    for module_name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter) and choose(module_name, module):
            out[f"{module_name}.weight" if module_name else "weight"] = weight
    return out


def _split(param_name: str) -> tuple[str, str]:
    module_name, _, attr = param_name.rpartition(".")
    return module_name, attr


class Mask(Mapping):
    """Which weights are kept: {parameter name: bool tensor of the weight's shape}.

    `collapsed` names the layers left with no weight at all (see `prune_`'s allow_collapse).
    """

    def __init__(self, keep: Mapping[str, torch.Tensor], collapsed: tuple[str, ...] = ()):
        self._keep = {name: torch.as_tensor(t).bool() for name, t in keep.items()}
        self.collapsed = tuple(collapsed)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._keep[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keep)

    def __len__(self) -> int:
        return len(self._keep)

    def __repr__(self) -> str:
        return f"Mask({len(self)} layers, density={self.density():.4f})"

    def kept(self) -> int:
        return sum(int(t.sum()) for t in self._keep.values())

    def size(self) -> int:
        return sum(t.numel() for t in self._keep.values())

    def density(self) -> float:
        """Fraction of the masked weights kept."""
        return self.kept() / max(1, self.size())

    def layer_density(self) -> dict[str, float]:
        return {name: float(t.float().mean()) for name, t in self._keep.items()}

    def shuffled(self, generator: torch.Generator | None = None) -> Mask:
        """The same number of kept weights in each layer, at random places (a control)."""
        out = {}
        for name, t in self._keep.items():
            flat = t.flatten().cpu()
            out[name] = flat[torch.randperm(flat.numel(), generator=generator)].view_as(t)
        return Mask(out)

    def is_subset_of(self, other: Mapping[str, torch.Tensor]) -> bool:
        """True when every weight kept here is kept in `other` too."""
        return all(not bool((t & ~other[name].to(t.device).bool()).any())
                   for name, t in self._keep.items() if name in other)


# --- installing masks ---------------------------------------------------------------------


def _masked_attrs(module: nn.Module) -> tuple[str, ...]:
    return module.__dict__.get(_MASKED, ())


def _mask_gradient(module_ref: weakref.ref, buffer: str, param: torch.Tensor) -> None:
    """After backward accumulated into param.grad: zero the pruned entries, in place."""
    module = module_ref()
    mask = None if module is None else module._buffers.get(buffer)
    if mask is not None and param.grad is not None and mask.shape == param.grad.shape:
        with torch.no_grad():
            param.grad.mul_(mask)


def _link(module: nn.Module, attr: str) -> None:
    """Attach the gradient hook and the optimizer's back-reference to the weight `attr`.

    Called at install time and again before each forward pass when the weight lost them (a
    deep copy of the model copies the mask buffer but not a parameter's hooks).
    """
    param = module._parameters[attr]
    if not isinstance(param, nn.Parameter) or not param.requires_grad:
        return  # swapped out by torch.func.functional_call, or frozen: nothing to hook
    ref = param.__dict__.get(_ATTR)
    if ref is not None and ref[0]() is module:
        return
    old = param.__dict__.get(_HANDLE)
    if old is not None:
        old.remove()
    ref = (weakref.ref(module), f"{attr}_mask")
    param.__dict__[_HANDLE] = param.register_post_accumulate_grad_hook(
        functools.partial(_mask_gradient, *ref))
    param.__dict__[_ATTR] = ref


def _before_forward(module: nn.Module, args) -> None:
    for attr in _masked_attrs(module):
        _link(module, attr)


def _reapply(module: nn.Module, attr: str) -> None:
    mask = module._buffers.get(f"{attr}_mask")
    if mask is not None:
        with torch.no_grad():
            module._parameters[attr].mul_(mask)


def _after_optimizer_step(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    """Re-zero pruned weights after any torch optimizer's step (momentum, Adam moments)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            ref = param.__dict__.get(_ATTR)
            if ref is not None:
                module = ref[0]()
                if module is not None:
                    _reapply(module, ref[1][: -len("_mask")])


def _after_load(module: nn.Module, incompatible_keys) -> None:
    for attr in _masked_attrs(module):
        _link(module, attr)
        _reapply(module, attr)


def _ensure_optimizer_hook() -> None:
    global _optimizer_hook_installed
    if not _optimizer_hook_installed:
        register_optimizer_step_post_hook(_after_optimizer_step)
        _optimizer_hook_installed = True


def _install(module: nn.Module, attr: str, keep: torch.Tensor) -> None:
    param = module._parameters[attr]
    if keep.shape != param.shape:
        raise NetshrinkError(
            f"mask of shape {tuple(keep.shape)} does not fit weight of shape {tuple(param.shape)}"
        )
    buffer = f"{attr}_mask"
    values = keep.to(device=param.device, dtype=param.dtype)
    attrs = _masked_attrs(module)
    if attr in attrs:
        module._buffers[buffer].copy_(values)
    else:
        module.register_buffer(buffer, values, persistent=False)
        if not attrs:
            module.register_forward_pre_hook(_before_forward)
            module.register_load_state_dict_post_hook(_after_load)
        module.__dict__[_MASKED] = (*attrs, attr)
    _link(module, attr)
    _ensure_optimizer_hook()
    _reapply(module, attr)


def apply_mask(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> None:
    """Install `mask` on `model` (replacing any mask there) and zero the pruned weights."""
    modules = dict(model.named_modules())
    for name in mask:
        module_name, attr = _split(name)
        module = modules.get(module_name)
        if module is None or attr not in module._parameters:
            raise NetshrinkError(f"the mask names {name!r}, which is not a weight of the model")
    for name, keep in mask.items():
        module_name, attr = _split(name)
        _install(modules[module_name], attr, torch.as_tensor(keep))


def masked_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """{name: weight} of every weight that carries a mask."""
    out = {}
    for module_name, module in model.named_modules():
        for attr in _masked_attrs(module):
            out[f"{module_name}.{attr}" if module_name else attr] = module._parameters[attr]
    return out


def current_mask(model: nn.Module) -> Mask:
    """The mask installed on `model` (empty when none is)."""
    out = {}
    for module_name, module in model.named_modules():
        for attr in _masked_attrs(module):
            name = f"{module_name}.{attr}" if module_name else attr
            out[name] = module._buffers[f"{attr}_mask"].detach().bool().cpu()
    return Mask(out)


def squash_(model: nn.Module) -> nn.Module:
    """Make the pruning permanent: remove masks and hooks, leaving the zeros in the weights."""
    for module in model.modules():
        attrs = module.__dict__.pop(_MASKED, ())
        for attr in attrs:
            _reapply(module, attr)
            param = module._parameters[attr]
            handle = param.__dict__.pop(_HANDLE, None)
            if handle is not None:
                handle.remove()
            param.__dict__.pop(_ATTR, None)
            del module._buffers[f"{attr}_mask"]
        if attrs:
            for hooks, fn in ((module._forward_pre_hooks, _before_forward),
                              (module._load_state_dict_post_hooks, _after_load)):
                for key in [k for k, h in hooks.items() if h is fn]:
                    del hooks[key]
    _forget_transform(model)
    return model


def mask_zeros_(model: nn.Module, filter: LayerFilter | None = None) -> Mask:
    """Install a mask that keeps exactly the non-zero prunable weights (e.g. after loading a
    pruned model into your own module), so further training keeps the zeros."""
    mask = Mask({name: w.detach() != 0 for name, w in prunable(model, filter).items()})
    apply_mask(model, mask)
    remember_transform(model)
    return mask


# --- files ------------------------------------------------------------------------------------

TRANSFORM_KIND = "prune-mask"


def remember_transform(model: nn.Module) -> None:
    """Record in the model's metadata which weights are masked, so `netshrink.load` re-installs
    the masks (derived from the zeros the file holds)."""
    names = sorted(masked_parameters(model))
    _forget_transform(model)
    if names:
        model.netshrink_transforms = [*getattr(model, "netshrink_transforms", []),
                                      {"kind": TRANSFORM_KIND, "parameters": names}]


def _forget_transform(model: nn.Module) -> None:
    entries = getattr(model, "netshrink_transforms", None)
    if entries:
        model.netshrink_transforms = [e for e in entries if e.get("kind") != TRANSFORM_KIND]


def replay_transform(model: nn.Module, entry: dict) -> nn.Module:
    """At load time: once the weights are loaded, mask the listed weights where they are zero."""
    names = list(entry.get("parameters", []))
    state: dict = {}

    def install(module: nn.Module, incompatible_keys) -> None:
        state["handle"].remove()
        params = dict(module.named_parameters())
        missing = [n for n in names if n not in params]
        if missing:
            raise NetshrinkError(f"the file masks {', '.join(missing)}, absent from the model")
        apply_mask(module, {n: params[n].detach() != 0 for n in names})
        remember_transform(module)

    state["handle"] = model.register_load_state_dict_post_hook(install)
    return model


# --- reports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerDensity:
    """One prunable weight: its size, how many entries are non-zero, whether it is masked."""

    name: str
    shape: tuple[int, ...]
    size: int
    nonzero: int
    masked: bool

    @property
    def density(self) -> float:
        return self.nonzero / max(1, self.size)

    def to_dict(self) -> dict:
        return {**asdict(self), "density": self.density}


def report(model: nn.Module, filter: LayerFilter | None = None) -> list[LayerDensity]:
    """Per-layer density of the prunable weights (and of any other masked weight)."""
    weights = {**prunable(model, filter), **masked_parameters(model)}
    masked = masked_parameters(model)
    return [LayerDensity(name, tuple(w.shape), w.numel(), int(torch.count_nonzero(w)),
                         name in masked) for name, w in weights.items()]


def density(model: nn.Module, filter: LayerFilter | None = None) -> float:
    """Fraction of non-zero entries among the prunable weights (and masked ones)."""
    rows = report(model, filter)
    if not rows:
        raise NetshrinkError("the model has no prunable weights (Linear or Conv layers)")
    return sum(r.nonzero for r in rows) / sum(r.size for r in rows)


def format_report(rows: list[LayerDensity]) -> str:
    """A plain-text table of `report(model)`."""
    width = max([5, *(len(r.name) for r in rows)])
    lines = [f"{'layer':{width}s} {'shape':>18s} {'weights':>10s} {'non-zero':>10s} density"]
    for r in rows:
        lines.append(f"{r.name:{width}s} {r.shape!s:>18s} {r.size:>10,d} {r.nonzero:>10,d} "
                     f"{r.density:7.2%}{'' if r.masked else ' (no mask)'}")
    size, nonzero = sum(r.size for r in rows), sum(r.nonzero for r in rows)
    lines.append(f"{'total':{width}s} {'':>18s} {size:>10,d} {nonzero:>10,d} "
                 f"{nonzero / max(1, size):7.2%}")
    return "\n".join(lines)
