"""The training configuration: a small frozen dataclass that round-trips to a dict."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from netshrink.errors import NetshrinkError, reject_unknown_fields

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. `iterations`, when set, overrides `epochs`.

    eval_every: iterations between evaluations on the validation set (None: once per epoch).
    deterministic: call torch.use_deterministic_algorithms(True) for bit-reproducible runs.
    device: "cpu", "cuda", "cuda:1" or "auto" (cuda when available).
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: float = 1.0
    iterations: int | None = None
    lr_schedule: str = "constant"
    eval_every: int | None = None
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise NetshrinkError(
                f"optimizer={self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}"
            )
        if self.lr_schedule not in SCHEDULES:
            raise NetshrinkError(
                f"lr_schedule={self.lr_schedule!r} is not one of {', '.join(SCHEDULES)}"
            )
        for name in ("lr", "epochs"):
            if not getattr(self, name) > 0:
                raise NetshrinkError(f"{name}={getattr(self, name)} must be positive")
        for name in ("momentum", "weight_decay"):
            if getattr(self, name) < 0:
                raise NetshrinkError(f"{name}={getattr(self, name)} must be >= 0")
        for name in ("batch_size", "iterations", "eval_every"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise NetshrinkError(f"{name}={value!r} must be a positive integer")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        reject_unknown_fields(cls, values, "training option")
        return cls(**values)
