"""netshrink.prune.config: PruneConfig and target_sparsity name their bad fields, and the
config round-trips to a dict."""

import pytest

from netshrink.errors import NetshrinkError
from netshrink.prune import PruneConfig
from netshrink.prune.config import target_sparsity


def test_config_round_trips_and_names_its_bad_fields():
    config = PruneConfig(method="synflow", compression=10, options={"iterations": 5},
                         skip=("fc",), layers={"conv*": 0.5}, seed=3)
    assert PruneConfig.from_dict(config.to_dict()) == config
    for bad, match in [({"sparsity": 1.5}, "sparsity"), ({"sparsity": float("nan")}, "sparsity"),
                       ({"sparsity": 0.5, "scope": "x"}, "scope"),
                       ({"sparsity": 0.5, "layers": {"a": 2}}, r"layers\['a'\]"),
                       ({"sparsity": 0.5, "seed": -1}, "seed"),
                       ({"sparsity": 0.5, "options": {"nope": 1}}, "bad option"),
                       ({"sparsity": 0.5, "wat": 1}, "unknown prune option wat")]:
        with pytest.raises(NetshrinkError, match=match):
            PruneConfig.from_dict(bad)


def test_target_sparsity_from_exactly_one_of_sparsity_or_compression():
    assert target_sparsity(0.9, None) == 0.9
    assert target_sparsity(0, None) == 0.0
    assert target_sparsity(None, 10) == pytest.approx(0.9)
    assert target_sparsity(None, 1) == 0.0
    for both in [(None, None), (0.5, 2)]:
        with pytest.raises(NetshrinkError, match="give exactly one of sparsity"):
            target_sparsity(*both)


@pytest.mark.parametrize(("sparsity", "compression", "words"), [
    (1.0, None, r"sparsity=1\.0 must be in \[0, 1\)"), (-0.1, None, "sparsity=-0.1"),
    (True, None, "sparsity=True"), ("0.5", None, "sparsity='0.5'"),
    (None, 0.5, r"compression=0\.5 must be a finite number >= 1"),
    (None, float("inf"), "compression=inf"), (None, float("nan"), "compression=nan"),
    (None, False, "compression=False"),
])
def test_target_sparsity_refuses_by_name(sparsity, compression, words):
    with pytest.raises(NetshrinkError, match=words):
        target_sparsity(sparsity, compression)


def test_target_property_and_skip_as_a_tuple():
    config = PruneConfig(compression=4, skip=["fc"])
    assert config.target == pytest.approx(0.75) and config.skip == ("fc",)
    assert config.to_dict()["skip"] == ["fc"]
    assert PruneConfig.from_dict({"sparsity": 0.5, "skip": ["a", "b"]}).skip == ("a", "b")


@pytest.mark.parametrize(("fields", "words"), [
    ({"method": object()}, "must be a method name"),
    ({"method": "nope"}, "nope"),
    ({"options": {1: 2}}, "must be a mapping of option names"),
    ({"layers": [("a", 0.5)]}, "must map layer patterns to sparsities"),
    ({"layers": {"": 0.5}}, "layers: '' is not a layer name pattern"),
    ({"skip": "fc"}, "skip='fc' must be a list of layer name patterns"),
    ({"skip": ("fc", "")}, "skip="),
    ({"allow_collapse": 1}, "allow_collapse=1 must be true or false"),
    ({"seed": 2**63}, r"seed=\d+ must be an integer in \[0, 2\*\*63\)"),
    ({"seed": True}, "seed=True"),
])
def test_fields_refused_by_name(fields, words):
    with pytest.raises(NetshrinkError, match=words):
        PruneConfig(**{"sparsity": 0.5, **fields})


def test_from_dict_refuses_a_non_mapping():
    with pytest.raises(NetshrinkError, match="a prune config must be a mapping, not list"):
        PruneConfig.from_dict([("sparsity", 0.5)])
