"""netshrink.quant.config: Dynamic, Static and QAT check their fields, turn patterns into
tuples, and round-trip through config_from_dict."""

import pytest

from netshrink.errors import NetshrinkError
from netshrink.quant import QAT, Dynamic, Static
from netshrink.quant.config import CONFIGS, config_from_dict
from netshrink.quant.weight_only import WeightOnly


@pytest.mark.parametrize("config", [
    Dynamic(), Dynamic(bits=4, granularity="tensor", skip=("fc",), kernel="reference"),
    Static(), Static(observer="percentile", weight_observer="mse", activation_bits=6),
    QAT(), QAT(bits=3, lsq=True, first_last_bits=8, symmetric_activations=True),
    WeightOnly(bits=3, group_size=None),
])
def test_configs_round_trip_through_a_dict(config):
    values = config.to_dict()
    assert values["method"] == {Dynamic: "dynamic", Static: "static", QAT: "qat",
                                WeightOnly: "weight_only"}[type(config)]
    assert config_from_dict(values) == config


def test_skip_becomes_a_tuple_and_to_dict_keeps_every_field():
    assert Dynamic(skip=["a", "b.*"]).skip == ("a", "b.*")
    assert config_from_dict({"method": "static", "skip": ["fc"]}) == Static(skip=("fc",))
    assert set(QAT().to_dict()) == {"method", "bits", "activation_bits", "per_channel", "lsq",
                                    "first_last_bits", "symmetric_activations", "skip", "kernel"}
    assert set(CONFIGS) == {"dynamic", "static", "qat", "weight_only"}


@pytest.mark.parametrize("bits", [2, 8])
def test_the_bit_range_ends_are_accepted(bits):
    assert Static(bits=bits, activation_bits=bits).bits == bits
    assert QAT(first_last_bits=bits).first_last_bits == bits


@pytest.mark.parametrize(("config", "field", "value"), [
    (Dynamic, "bits", 1), (Static, "activation_bits", 9), (QAT, "first_last_bits", 1),
    (QAT, "bits", 4.0), (Dynamic, "activation_bits", False),
])
def test_bits_outside_2_to_8_are_refused_with_the_range(config, field, value):
    with pytest.raises(NetshrinkError, match=rf"^{field}={value!r} is not supported; use an "
                                             r"integer from 2 to 8$"):
        config(**{field: value})


def test_activation_bits_none_is_the_devices_choice_but_bits_none_is_not():
    assert Dynamic(activation_bits=None).activation_bits is None
    with pytest.raises(NetshrinkError, match="bits=None is not supported"):
        Dynamic(bits=None)


def test_an_option_of_another_method_is_refused_naming_the_method():
    with pytest.raises(NetshrinkError, match="unknown dynamic quantization option observer"):
        config_from_dict({"method": "dynamic", "observer": "mse"})
    with pytest.raises(NetshrinkError, match="unknown qat quantization option granularity"):
        config_from_dict({"method": "qat", "granularity": "row"})


def test_config_from_dict_refuses_a_non_mapping_and_leaves_its_input_alone():
    with pytest.raises(NetshrinkError, match="a quantization config must be a mapping, not str"):
        config_from_dict("static")
    values = {"method": "static", "bits": 4}
    config_from_dict(values)
    assert values == {"method": "static", "bits": 4}
