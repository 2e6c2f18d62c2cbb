"""A trial: one training-and-measuring job of a comparison, named by the hash of its content.

The output folder of a trial is named by `spec.trial_id`, the hash of its resolved
configuration (defaults filled in, see netshrink.bench.resolve), so a finished trial is never
run twice, a re-run of a sweep resumes where it stopped (as open_lth names its runs), and
writing a default out does not make a new trial.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import asdict, dataclass, field

import yaml

from netshrink.errors import NetshrinkError, reject_unknown_fields

ARGUMENT_FIELDS = ("model_args", "data_args", "params", "train")


@dataclass(frozen=True)
class TrialSpec:
    """What one trial does.

    task: the registered task that runs it ("train", "prune", "lottery", ...).
    params: the task's own parameters (method, sparsity, temperature, ...).
    train: TrainConfig fields (the seed field here overrides train["seed"]).
    The argument dicts hold JSON values only (tuples become lists), so a spec written to YAML or
    JSON reads back equal, with the same trial_id.
    """

    task: str
    model: str
    data: str = "fashion-mnist"
    model_args: dict = field(default_factory=dict)
    data_args: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("task", "model", "data"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise NetshrinkError(f"trial {name} must be a non-empty string, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or \
                not 0 <= self.seed < 2**63:
            raise NetshrinkError(f"trial seed must be an integer in [0, 2**63), got "
                                 f"{self.seed!r}"[:120])
        object.__setattr__(self, "seed", int(self.seed))
        for name in ARGUMENT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise NetshrinkError(
                    f"trial {name} must be a mapping of names to values, got {value!r}"
                )
            object.__setattr__(self, name, _json_values(value, name))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrialSpec:
        if not isinstance(values, dict):
            raise NetshrinkError(f"a trial must be a mapping, got {type(values).__name__}")
        reject_unknown_fields(cls, values, "trial key")
        missing = {"task", "model"} - set(values)
        if missing:
            raise NetshrinkError(f"trial is missing {', '.join(sorted(missing))}")
        return cls(**values)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=True)

    @classmethod
    def from_yaml(cls, text: str) -> TrialSpec:
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise NetshrinkError(f"trial spec is not valid YAML: {err}") from None
        return cls.from_dict(values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrialSpec:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise NetshrinkError(f"trial spec is not valid JSON: {err}") from None
        return cls.from_dict(values)

    def resolved(self) -> dict:
        """The spec with every default filled in: what the trial runs, and what names it."""
        from netshrink.bench.resolve import resolve

        return resolve(self)

    @property
    def trial_id(self) -> str:
        """A stable hash of the resolved content: whatever the key order, and whether a
        default is written out or left out."""
        canonical = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"),
                               default=repr)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def plain(value: object) -> object:
    """`value` with tuples as lists, dicts and lists copied (defaults read from code)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _json_values(value, where: str):
    """`value` with tuples as lists, checked to hold only JSON values (str keys, no objects)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NetshrinkError(f"trial {where}: key {key!r} must be a string")
            out[key] = _json_values(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_json_values(item, where) for item in value]
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise NetshrinkError(f"trial {where}: {value} is not a finite number")
        return float(value)
    raise NetshrinkError(
        f"trial {where}: {value!r} ({type(value).__name__}) is not a plain value; use numbers, "
        "strings, booleans, lists or mappings"
    )
