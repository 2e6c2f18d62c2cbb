"""One training loop for every method: `fit(model, data, TrainConfig(...), callbacks=[...])`."""

from netshrink.train.callbacks import Callback, TrainState
from netshrink.train.config import TrainConfig
from netshrink.train.loop import (
    TrainResult,
    batches,
    evaluate,
    fit,
    make_optimizer,
    resolve_device,
    seed_everything,
)

__all__ = ["Callback", "TrainConfig", "TrainResult", "TrainState", "batches", "evaluate", "fit",
           "make_optimizer", "resolve_device", "seed_everything"]
