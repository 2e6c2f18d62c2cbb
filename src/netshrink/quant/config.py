"""What `netshrink.quantize_` should do: `Dynamic`, `Static` or `QAT` (frozen dataclasses).

Shared fields:
  bits: weight bits (2-8), symmetric, one scale per output channel (per_channel) or per tensor.
  activation_bits: input bits; None takes the widest the device's kernel multiplies exactly by
    `bits`-bit weights (8, but 7 with 8-bit weights on x86 CPUs without VNNI, whose int8
    instructions add pairs of products in saturating int16; see netshrink.quant.bounds).
  symmetric_activations: signed inputs without a zero point (else unsigned with a zero point).
  skip: layer name patterns left in float (e.g. ("fc", "encoder.*.linear2"); see
    netshrink.core.patterns); a layer whose int32 sum could overflow is refused by name and
    can be skipped this way.
  kernel: "onednn", "int_mm" or "reference" (None: the device's default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from netshrink import checks
from netshrink.errors import NetshrinkError, reject_unknown_fields
from netshrink.quant.kernels import KERNELS
from netshrink.quant.observers import OBSERVERS
from netshrink.quant.scheme import MAX_BITS, MIN_BITS
from netshrink.quant.weight_only import WeightOnly


def _check_bits(name: str, value) -> None:
    if value is None and name == "activation_bits":
        return
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_BITS <= value <= MAX_BITS:
        raise NetshrinkError(
            f"{name}={value!r} is not supported; use an integer from {MIN_BITS} to {MAX_BITS}"
        )


_BOOLEANS = ("per_channel", "symmetric_activations", "embeddings", "lsq")


class _Config:
    bits: int
    activation_bits: int | None
    skip: tuple

    def _validate(self) -> None:
        _check_bits("bits", self.bits)
        _check_bits("activation_bits", self.activation_bits)
        object.__setattr__(self, "skip", checks.patterns(self.skip, "skip"))
        checks.optional_choice(self.kernel, "kernel", KERNELS)
        for name in _BOOLEANS:
            if hasattr(self, name):
                checks.boolean(getattr(self, name), name)

    def to_dict(self) -> dict:
        return {"method": type(self).__name__.lower(), **asdict(self)}


@dataclass(frozen=True)
class Dynamic(_Config):
    """int8 weights; each input quantized at run time from its own range (no data needed).

    granularity: "row" gives each row of a Linear's input (a token, an example) its own
    scale, "tensor" one scale per call; convolutions always use one per call.
    embeddings: store embedding tables as int8 too.
    """

    bits: int = 8
    activation_bits: int | None = None
    per_channel: bool = True
    granularity: str = "row"
    symmetric_activations: bool = False
    embeddings: bool = True
    skip: tuple = ()
    kernel: str | None = None

    def __post_init__(self) -> None:
        self._validate()
        checks.choice(self.granularity, "granularity", ("row", "tensor"))


@dataclass(frozen=True)
class Static(_Config):
    """int8 weights and inputs with scales calibrated on example data; BatchNorm folded.

    observer: how input ranges are chosen from the calibration data (minmax, moving_average,
    percentile, mse); weight_observer: the same for weights (minmax or mse).
    embeddings: store embedding tables as int8 too (their lookups need no input range).
    """

    bits: int = 8
    activation_bits: int | None = None
    per_channel: bool = True
    observer: str = "mse"
    weight_observer: str = "minmax"
    symmetric_activations: bool = False
    embeddings: bool = True
    skip: tuple = ()
    kernel: str | None = None

    def __post_init__(self) -> None:
        self._validate()
        for name in ("observer", "weight_observer"):
            checks.choice(getattr(self, name), name, OBSERVERS)


@dataclass(frozen=True)
class QAT(_Config):
    """Fake quantization for training (straight-through estimator), BatchNorm folded first.

    lsq: learn the step sizes (LSQ) instead of tracking input ranges with a moving average
    (each batch's range weighs 0.01).
    first_last_bits: bits for the first and the last quantized layer (weights and inputs), as
    the LSQ paper keeps them at 8; None: every layer gets `bits` / `activation_bits`.
    Train with netshrink.train.fit, then netshrink.quant.convert(model) for the integer model.
    """

    bits: int = 8
    activation_bits: int | None = None
    per_channel: bool = True
    lsq: bool = False
    first_last_bits: int | None = None
    symmetric_activations: bool = False
    skip: tuple = ()
    kernel: str | None = None

    def __post_init__(self) -> None:
        self._validate()
        if self.first_last_bits is not None:
            _check_bits("first_last_bits", self.first_last_bits)


CONFIGS = {"dynamic": Dynamic, "static": Static, "qat": QAT, "weight_only": WeightOnly}


def config_from_dict(values: dict) -> Dynamic | Static | QAT | WeightOnly:
    if not isinstance(values, dict):
        raise NetshrinkError(f"a quantization config must be a mapping, not "
                             f"{type(values).__name__}")
    values = dict(values)
    method = values.pop("method", None)
    checks.choice(method, "method", CONFIGS)
    reject_unknown_fields(CONFIGS[method], values, f"{method} quantization option")
    if isinstance(values.get("skip"), list):
        values["skip"] = tuple(values["skip"])
    return CONFIGS[method](**values)
