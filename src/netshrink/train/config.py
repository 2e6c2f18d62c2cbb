"""The training configuration: a small frozen dataclass that round-trips to a dict."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from netshrink import checks
from netshrink.errors import NetshrinkError, reject_unknown_fields

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine")



@dataclass(frozen=True)
class TrainConfig:
    """How to train. `iterations`, when set, overrides `epochs`.

    eval_every: iterations between evaluations on the validation set (None: once per epoch).
    deterministic: call torch.use_deterministic_algorithms(True) for bit-reproducible runs.
    device: "cpu", "cuda", "cuda:1" or "auto" (cuda when available).
    bucket: batches of examples of similar length (token inputs: a dict with an
        attention_mask, in memory), so that a model or callback that cuts each batch to its
        longest example computes far less padding; each epoch's shuffled order is cut into
        pools of netshrink.train.loop.BUCKET_POOL batches, each pool sorted by length, and
        the batches shuffled.
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
    bucket: bool = False

    def __post_init__(self) -> None:
        checks.choice(self.optimizer, "optimizer", OPTIMIZERS)
        checks.choice(self.lr_schedule, "lr_schedule", SCHEDULES)
        checks.real(self.lr, "lr", 0, low_open=True)
        checks.real(self.epochs, "epochs", 0, low_open=True)
        checks.real(self.momentum, "momentum", 0, 1)
        checks.real(self.weight_decay, "weight_decay", 0)
        checks.positive_integer(self.batch_size, "batch_size")
        for name in ("iterations", "eval_every"):
            checks.optional_integer(getattr(self, name), name, 1)
        checks.seed(self.seed)
        checks.text(self.device, "device")
        checks.boolean(self.deterministic, "deterministic")
        checks.boolean(self.bucket, "bucket")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        if not isinstance(values, dict):
            raise NetshrinkError(f"training options must be a mapping, not {type(values).__name__}")
        reject_unknown_fields(cls, values, "training option")
        return cls(**values)
