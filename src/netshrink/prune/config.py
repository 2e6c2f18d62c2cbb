"""What `netshrink.prune_` should do: `PruneConfig`, a frozen dataclass that round-trips to a dict.

    netshrink.prune_(model, PruneConfig(method="snip", sparsity=0.9, skip=("fc3",)), data)
    netshrink.prune_(model, "magnitude", sparsity=0.9)        # the short form

Layers are chosen by name patterns (netshrink.core.patterns): `skip` leaves layers unpruned,
`layers` gives layers their own sparsity ({"features.*": 0.8, "fc3": 0.5}; where several
patterns match a layer, the last one wins); each such layer is then ranked on its own.
Method options (`options`) go to the score's constructor, e.g. {"iterations": 100} for
SynFlow or {"hessian": "hutchinson"} for OBD.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field

from netshrink.errors import NetshrinkError, reject_unknown_fields

SCOPES = ("global", "layerwise")


def target_sparsity(sparsity: float | None, compression: float | None) -> float:
    """The sparsity asked for, from exactly one of `sparsity` or `compression` (= 1/density)."""
    if (sparsity is None) == (compression is None):
        raise NetshrinkError("give exactly one of sparsity (fraction removed, in [0, 1)) or "
                             "compression (1 / density, >= 1)")
    if compression is not None:
        if not _real(compression) or not compression >= 1 or math.isinf(compression):
            raise NetshrinkError(f"compression={compression!r} must be a finite number >= 1 "
                                 "(1 keeps every weight, 10 keeps a tenth)")
        return 1.0 - 1.0 / float(compression)
    if not _real(sparsity) or not 0 <= sparsity < 1:
        raise NetshrinkError(f"sparsity={sparsity!r} must be in [0, 1): the fraction of weights "
                             "removed (0.9 keeps a tenth)")
    return float(sparsity)


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class PruneConfig:
    """How to prune.

    method: random, magnitude, obd, taylor, snip, grasp or synflow (netshrink.prune.METHODS).
    sparsity / compression: the target over the prunable weights, exactly one of the two
        (absolute: weights already pruned count; masks only shrink).
    scope: "global" ranks all weights together, "layerwise" each layer on its own.
    layers: {layer pattern: sparsity} for layers pruned at their own rate.
    skip: layer patterns never pruned.
    options: the method's own options (e.g. iterations for synflow).
    allow_collapse: record a layer emptied by pruning (`mask.collapsed`) instead of refusing.
    seed: seeds the method's random draws (random scores, data samples, probes).
    """

    method: str = "magnitude"
    sparsity: float | None = None
    compression: float | None = None
    scope: str = "global"
    layers: dict = field(default_factory=dict)
    skip: tuple = ()
    options: dict = field(default_factory=dict)
    allow_collapse: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        from netshrink.prune.scores import make

        if not isinstance(self.method, str):
            raise NetshrinkError(f"method={self.method!r} must be a method name; pass a Score "
                                 "object to prune_ directly instead of in a PruneConfig")
        if not isinstance(self.options, dict) or not all(isinstance(k, str)
                                                         for k in self.options):
            raise NetshrinkError(f"options={self.options!r} must be a mapping of option names")
        make(self.method, **self.options)  # an unknown method or option fails here
        target_sparsity(self.sparsity, self.compression)
        if self.scope not in SCOPES:
            raise NetshrinkError(f"scope={self.scope!r} must be one of {', '.join(SCOPES)}")
        if not isinstance(self.layers, dict):
            raise NetshrinkError(f"layers={self.layers!r} must map layer patterns to sparsities")
        for pattern, value in self.layers.items():
            if not isinstance(pattern, str) or not pattern:
                raise NetshrinkError(f"layers: {pattern!r} is not a layer name pattern")
            try:
                target_sparsity(value, None)
            except NetshrinkError as err:
                raise NetshrinkError(f"layers[{pattern!r}]: {err}") from None
        if isinstance(self.skip, str) or not all(isinstance(s, str) and s for s in self.skip):
            raise NetshrinkError(f"skip={self.skip!r} must be a list of layer name patterns")
        object.__setattr__(self, "skip", tuple(self.skip))
        if not isinstance(self.allow_collapse, bool):
            raise NetshrinkError(f"allow_collapse={self.allow_collapse!r} must be true or false")
        if not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool) or \
                not 0 <= self.seed < 2**63:
            raise NetshrinkError(f"seed={self.seed!r} must be an integer in [0, 2**63)")

    @property
    def target(self) -> float:
        """The sparsity asked for (from sparsity or compression)."""
        return target_sparsity(self.sparsity, self.compression)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["skip"] = list(self.skip)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> PruneConfig:
        if not isinstance(values, dict):
            raise NetshrinkError(f"a prune config must be a mapping, not {type(values).__name__}")
        reject_unknown_fields(cls, values, "prune option")
        values = dict(values)
        if "skip" in values and isinstance(values["skip"], list):
            values["skip"] = tuple(values["skip"])
        return cls(**values)
