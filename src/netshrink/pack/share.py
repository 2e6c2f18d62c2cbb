"""Weight sharing (Deep Compression, Han, Mao and Dally 2016): the surviving weights of each
layer take one of at most 2^bits shared values, found by k-means.

A shared weight is a parametrization in the weight's access path, as a mask is
(netshrink.core.masks): `module.weight` reads `table[index]`, where `index` is a buffer (0 for
a pruned weight, 1..k for a kept one) and `table` is a constant zero followed by the codebook,
a Parameter of k floats. Why a parametrization rather than a training callback that projects
the weights back onto their clusters after each step:

- every read sees the shared value (the module's forward, nn.MultiheadAttention's direct
  reads, a deep copy, the user's own training loop), with nothing to keep in sync;
- the codebook's gradient is, by autograd (indexing's backward adds), the sum of the gradients
  of its members, which is the paper's centroid update (its equation 3), under any optimizer;
  a callback averaging weights after an Adam or momentum step would not be that update;
- pruned weights read exactly zero, always: they index the constant, which no gradient moves;
- the trainable state of a layer is k floats, so fine-tuning is netshrink.train.fit as usual.

The state_dict holds the codebook (`parametrizations.weight.original`) and the index
(`parametrizations.weight.0.index`, uint8 up to 7 bits, int16 for 8); files record the layers
shared (a "share" transform), so `netshrink.load(path, model=fresh)` rebuilds them.
Share last: pruning a shared layer, quantization-aware training and BatchNorm folding of it are
refused by name (they would need plain weights).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from netshrink.core import masks, transforms
from netshrink.core.patterns import any_match, check_patterns, last_match
from netshrink.errors import NetshrinkError, reject_unknown_fields

INITS = ("linear", "density", "random")
TRANSFORM_KIND = "share"
_CONV = nn.modules.conv._ConvNd
_ATTENTION_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")
_INDEX_DTYPES = {"uint8": torch.uint8, "int16": torch.int16}


@dataclass(frozen=True)
class ShareConfig:
    """How to share weights.

    bits: bits per index (2 to 8): at most 2^bits shared values per layer.
    layers: {layer pattern: bits} for layers at their own width (the paper: 8 bits for
        convolutions, 5 for fully connected layers); the last matching pattern wins.
    skip: layer patterns left unshared.
    init: k-means initialization, "linear" (evenly spaced between the smallest and largest
        weight, which the paper found best), "density" (quantiles) or "random" (weights drawn).
    iterations: the most k-means iterations (it stops once no weight changes cluster).
    seed: seeds the "random" initialization.
    """

    bits: int = 5
    layers: dict = field(default_factory=dict)
    skip: tuple = ()
    init: str = "linear"
    iterations: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        _check_bits(self.bits, "bits")
        if not isinstance(self.layers, dict):
            raise NetshrinkError(f"layers={self.layers!r} must map layer patterns to bits")
        for pattern, bits in self.layers.items():
            if not isinstance(pattern, str) or not pattern:
                raise NetshrinkError(f"layers: {pattern!r} is not a layer name pattern")
            _check_bits(bits, f"layers[{pattern!r}]")
        if isinstance(self.skip, str) or not all(isinstance(s, str) and s for s in self.skip):
            raise NetshrinkError(f"skip={self.skip!r} must be a list of layer name patterns")
        object.__setattr__(self, "skip", tuple(self.skip))
        if self.init not in INITS:
            raise NetshrinkError(f"init={self.init!r} must be one of {', '.join(INITS)}")
        if not _integer(self.iterations) or self.iterations < 1:
            raise NetshrinkError(f"iterations={self.iterations!r} must be a positive integer")
        if not _integer(self.seed) or not 0 <= self.seed < 2**63:
            raise NetshrinkError(f"seed={self.seed!r} must be an integer in [0, 2**63)")

    def bits_of(self, name: str) -> int:
        """The index width of weight `name`."""
        found = last_match(name, self.layers)
        return self.bits if found is None else int(found)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["skip"] = list(self.skip)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> ShareConfig:
        if not isinstance(values, dict):
            raise NetshrinkError(f"a share config must be a mapping, not {type(values).__name__}")
        reject_unknown_fields(cls, values, "share option")
        values = dict(values)
        if isinstance(values.get("skip"), list):
            values["skip"] = tuple(values["skip"])
        return cls(**values)


def _integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_bits(bits, what: str) -> None:
    if not _integer(bits) or not 2 <= bits <= 8:
        raise NetshrinkError(f"{what}={bits!r} must be an integer from 2 to 8 (bits per index)")


class SharedWeight(nn.Module):
    """The parametrization `weight = [0, codebook...][index]` (index 0: a pruned weight)."""

    def __init__(self, index: torch.Tensor, clusters: int):
        super().__init__()
        self.clusters = int(clusters)
        self.register_buffer("index", index)

    def forward(self, codebook: torch.Tensor) -> torch.Tensor:
        table = torch.cat([codebook.new_zeros(1), codebook])
        return table[self.index.long()]

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        """Only the codebook itself may be assigned (registration passes it through)."""
        if value.dim() == 1 and value.numel() == self.clusters:
            return value
        raise NetshrinkError("this weight is shared (netshrink.pack.share_): it is set by its "
                             "codebook, `parametrizations.<name>.original`, not assigned whole")

    def extra_repr(self) -> str:
        kept = int(torch.count_nonzero(self.index))
        return f"clusters={self.clusters}, kept={kept}/{self.index.numel()}"


def shared_of(module: nn.Module, attr: str) -> SharedWeight | None:
    """The SharedWeight parametrization of `module.attr`, or None."""
    if not parametrize.is_parametrized(module, attr):
        return None
    return next((p for p in module.parametrizations[attr] if isinstance(p, SharedWeight)), None)


def shared(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, SharedWeight]]:
    """(weight name, module, attribute, parametrization) of every shared weight, ties once."""
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        for attr in module.parametrizations:
            found = shared_of(module, attr)
            if found is not None and id(found) not in seen:
                seen.add(id(found))
                yield (f"{module_name}.{attr}" if module_name else attr), module, attr, found


def _share_attrs(module: nn.Module) -> tuple[str, ...]:
    """The float weights of `module` that sharing takes."""
    if isinstance(module, nn.Linear | _CONV | nn.Embedding):
        return ("weight",)
    if isinstance(module, nn.MultiheadAttention):
        return tuple(a for a in _ATTENTION_WEIGHTS if getattr(module, a, None) is not None)
    return ()


def shareable(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """{weight name: (module, attribute)} of the float weights sharing can take (ties once)."""
    out: dict[str, tuple[nn.Module, str]] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for attr in _share_attrs(module):
            if shared_of(module, attr) is not None:
                continue
            tensor = masks.stored(module, attr)
            if id(tensor) in seen or not tensor.is_floating_point():
                continue
            seen.add(id(tensor))
            out[f"{module_name}.{attr}" if module_name else attr] = (module, attr)
    return out


# --- k-means in one dimension -----------------------------------------------------------------


def _initial(values: torch.Tensor, clusters: int, init: str, seed: int) -> torch.Tensor:
    """Sorted starting centroids of `values` (sorted, float64)."""
    if init == "linear":
        return torch.linspace(float(values[0]), float(values[-1]), clusters, dtype=values.dtype)
    if init == "density":
        at = ((torch.arange(clusters, dtype=torch.float64) + 0.5) / clusters * values.numel())
        return values[at.long().clamp(max=values.numel() - 1)]
    generator = torch.Generator().manual_seed(seed)
    return torch.sort(values[torch.randperm(values.numel(), generator=generator)[:clusters]])[0]


def kmeans_1d(values: torch.Tensor, clusters: int, init: str = "linear", iterations: int = 100,
              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(centroids, ascending, none empty; label of each value) of Lloyd's k-means.

    In one dimension the clusters of sorted values are runs between the midpoints of
    neighbouring centroids, so each iteration is a binary search of k cuts and k differences
    of a prefix sum. Fewer distinct values than clusters: each value is its own centroid.
    """
    x = values.detach().reshape(-1).double()
    if x.numel() == 0:
        return x.new_zeros(0), torch.zeros(0, dtype=torch.long)
    if not bool(torch.isfinite(x).all()):
        raise NetshrinkError("cannot share weights that are not finite (nan or inf)")
    ordered, order = torch.sort(x)
    distinct = torch.unique_consecutive(ordered)
    if distinct.numel() <= clusters:
        return distinct, torch.searchsorted(distinct, x)
    prefix = torch.cat([x.new_zeros(1), ordered.cumsum(0)])
    centroids = _initial(ordered, clusters, init, seed)
    cuts = None
    for _ in range(iterations):
        new_cuts = torch.searchsorted(ordered, (centroids[1:] + centroids[:-1]) / 2)
        if cuts is not None and torch.equal(new_cuts, cuts):
            break
        cuts = new_cuts
        starts = torch.cat([cuts.new_zeros(1), cuts])
        ends = torch.cat([cuts, cuts.new_full((1,), ordered.numel())])
        counts = ends - starts
        means = (prefix[ends] - prefix[starts]) / counts.clamp(min=1)
        centroids = torch.sort(torch.where(counts > 0, means, centroids))[0]
    cuts = torch.searchsorted(ordered, (centroids[1:] + centroids[:-1]) / 2)
    counts = torch.diff(torch.cat([cuts.new_zeros(1), cuts, cuts.new_full((1,),
                                                                           ordered.numel())]))
    used = counts > 0
    sorted_labels = torch.repeat_interleave(torch.arange(int(used.sum())), counts[used])
    labels = torch.empty_like(sorted_labels)
    labels[order] = sorted_labels
    return centroids[used], labels


# --- the verb -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SharedLayer:
    """One shared weight: its index width, the values it kept, and how many it has."""

    name: str
    bits: int
    clusters: int
    kept: int
    size: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ShareReport:
    """What share_ did: one row per shared weight."""

    layers: tuple[SharedLayer, ...]
    config: ShareConfig

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "layers": [r.to_dict() for r in self.layers]}

    def __str__(self) -> str:
        width = max([5, *(len(r.name) for r in self.layers)])
        lines = [f"{'layer':{width}s} bits clusters {'kept':>10s} {'weights':>10s}"]
        lines += [f"{r.name:{width}s} {r.bits:4d} {r.clusters:8d} {r.kept:>10,d} {r.size:>10,d}"
                  for r in self.layers]
        return "\n".join(lines)


def as_config(config: ShareConfig | dict | None, short: dict) -> ShareConfig:
    """A ShareConfig from a config, a dict of its fields, or keywords (bits=4, skip=...)."""
    if config is None:
        return ShareConfig.from_dict(short)
    if short:
        raise NetshrinkError("give a ShareConfig or keywords, not both")
    if isinstance(config, dict):
        return ShareConfig.from_dict(config)
    if not isinstance(config, ShareConfig):
        raise NetshrinkError(f"config must be a netshrink.pack.ShareConfig, not "
                             f"{type(config).__name__}")
    return config


def share_(model: nn.Module, config: ShareConfig | dict | None = None, data: object = None,
           **short: Any) -> ShareReport:
    """Share each layer's surviving weights (k-means) in place; return what was shared.

    The kept weights are those of the layer's mask (netshrink.prune_), else its non-zeros;
    the others read exactly zero from now on, and the mask is replaced by the index. Train
    afterwards (netshrink.train.fit) to fine-tune the centroids. data: unused (k-means needs
    none); accepted so every method's verb takes the same arguments.
    """
    del data
    if not isinstance(model, nn.Module):
        raise NetshrinkError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    config = as_config(config, short)
    candidates = shareable(model)
    check_patterns(config.skip, candidates, "skip")
    check_patterns(config.layers, candidates, "layers")
    chosen = {n: ma for n, ma in candidates.items() if not any_match(n, config.skip)}
    if not chosen:
        already = " (its weights are shared already)" if any(shared(model)) else ""
        raise NetshrinkError(f"the model has no float Linear, convolution, Embedding or "
                             f"attention weight to share{already}")
    rows, entry = [], {}
    for name, (module, attr) in chosen.items():
        bits = config.bits_of(name)
        clusters, kept, index_dtype = _share_weight(model, module, attr, bits, config)
        rows.append(SharedLayer(name, bits, clusters, kept, getattr(module, attr).numel()))
        entry[name] = {"shape": list(getattr(module, attr).shape), "bits": bits,
                       "clusters": clusters, "index_dtype": index_dtype}
    transforms.record(model, {"kind": TRANSFORM_KIND, "layers": entry})
    return ShareReport(tuple(rows), config)


def _share_weight(model: nn.Module, module: nn.Module, attr: str, bits: int,
                  config: ShareConfig) -> tuple[int, int, str]:
    weight = getattr(module, attr).detach()
    keep = masks.mask_of(module, attr)
    keep = (weight != 0) if keep is None else keep.to(weight.device)
    centroids, labels = kmeans_1d(weight[keep], 2**bits, config.init, config.iterations,
                                  config.seed)
    index_dtype = "uint8" if len(centroids) < 256 else "int16"
    index = torch.zeros(weight.shape, dtype=_INDEX_DTYPES[index_dtype], device=weight.device)
    index[keep] = (labels + 1).to(index.dtype).to(weight.device)
    codebook = nn.Parameter(centroids.to(weight.device, weight.dtype))
    _install(model, module, attr, SharedWeight(index, len(centroids)), codebook)
    return len(centroids), int(keep.sum()), index_dtype


def _install(model: nn.Module, module: nn.Module, attr: str, parametrization: SharedWeight,
             codebook: nn.Parameter) -> None:
    """Put the codebook and its parametrization on `module.attr` and every module tied to it
    (a mask there is dropped: the index holds it)."""
    owners = masks.owners(model, module, attr)
    for owner, name in owners:
        masks.remove(owner, name)
    for owner, name in owners:
        owner._parameters[name] = codebook
        parametrize.register_parametrization(owner, name, parametrization, unsafe=True)


def check_entry(entry: dict) -> None:
    """The shape of a share entry read from a file (before anything is built from it)."""
    layers = entry.get("layers")
    if not isinstance(layers, dict):
        raise NetshrinkError("'layers' must map weight names to specs")
    for name, spec in layers.items():
        if not isinstance(spec, dict) or spec.get("index_dtype") not in _INDEX_DTYPES or \
                not _integer(spec.get("clusters")) or not 0 <= spec["clusters"] <= 256 or \
                not isinstance(spec.get("shape"), list):
            raise NetshrinkError(f"layer {str(name)[:80]!r}: index_dtype, clusters (0 to 256) "
                                 "and shape")


def replay_share(model: nn.Module, entry: dict) -> nn.Module:
    """Give a fresh model the shared layers a file records (values come from its weights)."""
    layers = entry.get("layers")
    if not isinstance(layers, dict):
        raise NetshrinkError("corrupt share entry: 'layers' must map weight names to specs")
    found = shareable(model)
    for name, spec in layers.items():
        if name not in found:
            raise NetshrinkError(f"the file shares {name!r}, which the model lacks as a float "
                                 "Linear, convolution, Embedding or attention weight")
        if not isinstance(spec, dict) or spec.get("index_dtype") not in _INDEX_DTYPES or \
                not _integer(spec.get("clusters")) or not 0 <= spec["clusters"] <= 256:
            raise NetshrinkError(f"corrupt share entry for {name!r}")
        module, attr = found[name]
        weight = masks.stored(module, attr)
        if list(weight.shape) != spec.get("shape"):
            raise NetshrinkError(f"the file's {name!r} has shape {spec.get('shape')}, the "
                                 f"model's {list(weight.shape)}; the file does not match")
        index = torch.zeros(weight.shape, dtype=_INDEX_DTYPES[spec["index_dtype"]],
                            device=weight.device)
        codebook = nn.Parameter(weight.new_zeros(spec["clusters"]))
        _install(model, module, attr, SharedWeight(index, spec["clusters"]), codebook)
    return model
