"""A trial: one training-and-measuring job of a comparison, named by the hash of its content.

The output folder of a trial is named by `spec.trial_id`, so a finished trial is never run twice
and a re-run of a sweep resumes where it stopped (as open_lth names its runs).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

import yaml

from netshrink.errors import NetshrinkError


@dataclass(frozen=True)
class TrialSpec:
    """What one trial does.

    task: the registered task that runs it ("train", "prune", "lottery", ...).
    params: the task's own parameters (method, sparsity, temperature, ...).
    train: TrainConfig fields (the seed field here overrides train["seed"]).
    """

    task: str
    model: str
    data: str = "fashion-mnist"
    model_args: dict = field(default_factory=dict)
    data_args: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrialSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise NetshrinkError(
                f"unknown trial key {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        missing = {"task", "model"} - set(values)
        if missing:
            raise NetshrinkError(f"trial is missing {', '.join(sorted(missing))}")
        return cls(**values)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=True)

    @classmethod
    def from_yaml(cls, text: str) -> TrialSpec:
        return cls.from_dict(yaml.safe_load(text))

    @property
    def trial_id(self) -> str:
        """A stable hash of the content: equal specs, equal ids, whatever the key order."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
