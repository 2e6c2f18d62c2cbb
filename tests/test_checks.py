"""Every configuration refuses wrong types, NaN / infinity and out-of-range values, naming the
field; the shared checks behind them (netshrink.checks) return plain values."""

import math

import pytest

from netshrink import checks
from netshrink.distill import DistillConfig
from netshrink.errors import NetshrinkError
from netshrink.prune import LotteryConfig, PruneConfig, StructuredConfig
from netshrink.prune.scores import make
from netshrink.quant import QAT, Dynamic, Static
from netshrink.quant.config import config_from_dict
from netshrink.train import TrainConfig

NAN, INF = math.nan, math.inf


def test_checks_return_plain_values_and_refuse_bools_and_nan():
    assert checks.real(1, "x") == 1.0 and isinstance(checks.real(1, "x"), float)
    assert checks.integer(3, "n", 1, 5) == 3
    assert checks.seed(2**63 - 1) == 2**63 - 1
    assert checks.patterns(["a", "b.*"], "skip") == ("a", "b.*")
    for bad in (True, NAN, INF, -INF, "1", None):
        with pytest.raises(NetshrinkError, match="x="):
            checks.real(bad, "x")
    with pytest.raises(NetshrinkError, match="must be true or false"):
        checks.boolean("no", "flag")
    with pytest.raises(NetshrinkError, match="list of layer name patterns"):
        checks.patterns("fc1", "skip")  # a string is not a list of names
    assert len(checks.show("x" * 1000)) <= 60  # a message names the culprit, cut short


@pytest.mark.parametrize(("field", "value"), [
    ("lr", INF), ("lr", NAN), ("lr", -1.0), ("lr", 0), ("lr", "fast"), ("lr", True),
    ("epochs", INF), ("epochs", NAN), ("epochs", 0), ("epochs", "abc"),
    ("momentum", NAN), ("momentum", -0.1), ("momentum", 1.5),
    ("weight_decay", NAN), ("weight_decay", INF), ("weight_decay", -1e-4),
    ("batch_size", 0), ("batch_size", 2.5), ("batch_size", True), ("batch_size", "128"),
    ("iterations", 0), ("iterations", 1.5), ("eval_every", -3),
    ("seed", -1), ("seed", 2**63), ("seed", 10**30), ("seed", 1.0),
    ("optimizer", "adagrad"), ("optimizer", ["sgd"]), ("lr_schedule", "linear"),
    ("device", ""), ("device", 0), ("deterministic", "yes"), ("bucket", 1),
])
def test_train_config_refuses_by_name(field, value):
    with pytest.raises(NetshrinkError, match=f"{field}="):
        TrainConfig(**{field: value})


def test_train_config_from_dict_refuses_a_non_mapping():
    with pytest.raises(NetshrinkError, match="must be a mapping"):
        TrainConfig.from_dict([("lr", 1)])


@pytest.mark.parametrize(("fields", "words"), [
    ({"sparsity": NAN}, "sparsity=nan"), ({"sparsity": 1.0}, "sparsity=1.0"),
    ({"sparsity": "half"}, "sparsity='half'"), ({"compression": INF}, "compression=inf"),
    ({"compression": 0.5}, "compression=0.5"), ({"sparsity": 0.5, "compression": 2}, "exactly one"),
    ({"sparsity": 0.5, "scope": "sideways"}, "scope='sideways'"),
    ({"sparsity": 0.5, "layers": {"fc": NAN}}, "layers"),
    ({"sparsity": 0.5, "layers": ["fc"]}, "layers="),
    ({"sparsity": 0.5, "skip": "fc1"}, "skip="), ({"sparsity": 0.5, "skip": [1]}, "skip="),
    ({"sparsity": 0.5, "allow_collapse": "no"}, "allow_collapse="),
    ({"sparsity": 0.5, "seed": -1}, "seed="), ({"sparsity": 0.5, "method": "prune-all"},
                                               "unknown pruning method"),
    ({"sparsity": 0.5, "options": [1, 2]}, "options="),
])
def test_prune_config_refuses_by_name(fields, words):
    with pytest.raises(NetshrinkError, match=words):
        PruneConfig(**fields)


@pytest.mark.parametrize(("method", "options", "words"), [
    ("synflow", {"iterations": 10**8}, "synflow iterations=100000000"),
    ("synflow", {"iterations": 0}, "synflow iterations=0"),
    ("synflow", {"iterations": "many"}, "synflow iterations='many'"),
    ("synflow", {"iterations": 2.5}, "synflow iterations=2.5"),
    ("synflow", {"biases": "none"}, "synflow biases='none'"),
    ("taylor", {"examples": 0}, "taylor examples=0"),
    ("taylor", {"batch_size": 0}, "taylor batch_size=0"),
    ("snip", {"batch_size": -5}, "snip batch_size=-5"),
    ("grasp", {"temperature": NAN}, "grasp temperature=nan"),
    ("grasp", {"samples_per_class": 0}, "grasp samples_per_class=0"),
    ("obd", {"examples": 0}, "obd examples=0"), ("obd", {"hessian": "full"}, "obd hessian="),
    ("obd", {"samples": True}, "obd samples=True"),
    ("magnitude", {"power": 2}, "bad option for method 'magnitude'"),
])
def test_method_options_refused_by_name(method, options, words):
    with pytest.raises(NetshrinkError, match=words):
        make(method, **options)


@pytest.mark.parametrize(("config", "field", "value"), [
    (QAT, "per_channel", "no"), (Static, "per_channel", 0), (Dynamic, "embeddings", "yes"),
    (Static, "symmetric_activations", None), (QAT, "lsq", 1),
    (Static, "bits", 1), (Static, "bits", 9), (Dynamic, "bits", 8.0), (QAT, "bits", True),
    (Static, "activation_bits", 0), (QAT, "first_last_bits", 16),
    (Static, "observer", "max"), (Static, "weight_observer", 3),
    (Dynamic, "granularity", "channel"), (Static, "kernel", "cuda"), (Dynamic, "skip", "fc1"),
])
def test_quant_configs_refuse_by_name(config, field, value):
    with pytest.raises(NetshrinkError, match=f"{field}="):
        config(**{field: value})


@pytest.mark.parametrize(("values", "words"), [
    ({"method": "dynamic", "bitz": 8}, "unknown dynamic quantization option bitz"),
    ({"method": "int4"}, "method='int4'"), ({}, "method=None"),
    ({"method": "static", "skip": 5}, "skip="),
])
def test_quant_config_from_dict_is_one_clear_error(values, words):
    with pytest.raises(NetshrinkError, match=words):
        config_from_dict(values)


@pytest.mark.parametrize(("field", "value"), [
    ("temperature", NAN), ("temperature", INF), ("temperature", 0), ("alpha", NAN),
    ("alpha", "high"), ("alpha", 1.5), ("hint_weight", INF), ("hint_weight", -1.0),
    ("jitter", "abc"), ("jitter", 1.5), ("jitter", True), ("loss", "l2"), ("cache_dir", 5),
    ("hints", "fc"), ("hints", [5]),
])
def test_distill_config_refuses_by_name(field, value):
    with pytest.raises(NetshrinkError, match=f"{field}="):
        DistillConfig(**{field: value})


@pytest.mark.parametrize(("field", "value"), [
    ("sparsity", NAN), ("sparsity", 1.0), ("sparsity", "x"), ("criterion", "l3"),
    ("scope", "all"), ("targets", ["neurons"]), ("skip", "fc"), ("seed", -2),
])
def test_structured_config_refuses_by_name(field, value):
    with pytest.raises(NetshrinkError, match=f"{field}="):
        StructuredConfig(**{field: value})


@pytest.mark.parametrize(("field", "value"), [
    ("rounds", "many"), ("rounds", -1), ("rounds", 10**6), ("rate", NAN), ("rate", 1.0),
    ("output_rate", INF), ("rewind_iteration", -1), ("rewind_iteration", 0.5),
    ("layer_rates", 5), ("controls", "reinit"), ("control_rounds", ("one",)),
])
def test_lottery_config_refuses_by_name(field, value):
    with pytest.raises(NetshrinkError, match=field):
        LotteryConfig(**{field: value})
