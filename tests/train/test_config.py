"""netshrink.train.config: TrainConfig names its bad fields and round-trips to a dict."""

import pytest

from netshrink.errors import NetshrinkError
from netshrink.train import TrainConfig


@pytest.mark.parametrize("bad", [dict(lr=0), dict(batch_size=0), dict(optimizer="lion"),
                                 dict(iterations=1.5), dict(weight_decay=-1),
                                 dict(lr_schedule="step")])
def test_config_errors_name_the_field(bad):
    field = next(iter(bad))
    with pytest.raises(NetshrinkError, match=field):
        TrainConfig(**bad)


def test_config_round_trip():
    config = TrainConfig(lr=0.1, epochs=2)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(NetshrinkError, match="unknown training option lrr"):
        TrainConfig.from_dict({"lrr": 1})


def test_config_is_frozen_and_from_dict_fills_the_defaults():
    config = TrainConfig.from_dict({"epochs": 3})
    assert config == TrainConfig(epochs=3) and config.optimizer == "adam"
    with pytest.raises(AttributeError):
        config.lr = 1.0
