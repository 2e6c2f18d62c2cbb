"""Bad recipes are refused before any stage runs, each with one NetshrinkError naming the
stage and the key; hostile recipe files (bombs, binary, huge) are refused as files; random
recipes from a grammar are either valid or one such error."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netshrink.errors import NetshrinkError
from netshrink.recipes import Recipe, load_recipe, parse

BASE = {"data": "digits", "model": {"name": "mlp", "args": {"widths": [8]}}}


def recipe(*stages, **top):
    return parse({**BASE, **top, "stages": list(stages)}, "r.yaml")


CASES = [
    ([{"train": {"lr": math.inf}}], {}, r"stage 1 \(train\): lr=inf"),
    ([{"train": {"epochs": math.nan}}], {}, r"stage 1 \(train\): epochs=nan"),
    ([{"train": {"momentum": math.nan}}], {}, "momentum=nan"),
    ([{"train": {"weight_decay": -1}}], {}, "weight_decay=-1"),
    ([{"train": {"batch_size": 0}}], {}, "batch_size=0"),
    ([{"train": {"seed": 10**30}}], {}, "seed="),
    ([{"train": {"optimizer": "adagrad"}}], {}, "optimizer='adagrad'"),
    ([{"prune": {"sparsity": math.nan}}], {}, r"stage 1 \(prune\): sparsity=nan"),
    ([{"prune": {"sparsity": 0.5, "scope": "sideways"}}], {}, "scope='sideways'"),
    ([{"prune": {"sparsity": 0.5, "options": [1, 2]}}], {}, "options="),
    ([{"prune": {"sparsity": 0.5, "method": "synflow", "options": {"iterations": 10**8}}}], {},
     "synflow iterations=100000000"),
    ([{"prune": {"sparsity": 0.5, "skip": "fc1"}}], {}, "skip="),
    ([{"prune": {"sparsity": 0.5, "allow_collapse": "no"}}], {}, "allow_collapse="),
    ([{"structured": {"sparsity": 1.0}}], {}, r"stage 1 \(structured\): sparsity=1.0"),
    ([{"structured": {"sparsity": 0.5, "criterion": "l3"}}], {}, "criterion='l3'"),
    ([{"share": {"bits": 1}}], {}, r"stage 1 \(share\): bits=1"),
    ([{"share": {"bits": 4, "train": "yes"}}], {}, "train must be a mapping"),
    ([{"quantize": {"method": "static", "bits": 1}}], {}, "bits=1"),
    ([{"quantize": {"method": "qat", "per_channel": "no"}}], {}, "per_channel='no'"),
    ([{"quantize": {"method": "dynamic", "skip": 5}}], {}, "skip="),
    ([{"export": {"format": "pickle"}}], {}, "format='pickle'"),
    ([{"export": {"format": "nsz", "level": 9}}], {}, "unknown export key 'level'"),
    ([{"train": {}}, {"distill": {"teacher": "train", "temperature": math.nan}}], {},
     r"stage 2 \(distill\).*temperature"),
    ([{"train": {}}, {"distill": {"teacher": "train", "alpha": 2}}], {}, "alpha=2"),
    ([{"train": {}}, {"distill": {"teacher": 5}}], {}, "teacher"),
    ([{"share": {"bits": 4}}, {"quantize": {"method": "static"}}], {},
     "refuse shared weights"),
    ([{"train": {}}], {"seed": 10**30}, "seed must be an integer"),
    ([{"train": {}}], {"seed": 1.5}, "seed must be an integer"),
    ([{"train": {}}], {"name": ["x"]}, "name must be text"),
    ([{"train": {}}], {"data": "cifar-1000"}, "data: name='cifar-1000' is not one of"),
    ([{"train": {}}], {"data": {"name": "digits", "val_size": -1}}, "data: val_size=-1"),
    ([{"train": {}}], {"data": {"name": "digits", "val_size": 1.5}}, "data: val_size=1.5"),
    ([{"train": {}}], {"data": {"name": "digits", "root": 5}}, "data: root=5"),
    ([{"train": {}}], {"data": {"name": "digits", "size": 5}}, "data: unknown key 'size'"),
    ([{"train": {}}], {"data": 5}, "data must be a name"),
    ([{"train": {}}], {"model": {"name": "mlp", "init": "zeros"}}, "init='zeros'"),
    ([{"train": {}}], {"model": {"name": "mlp", "args": [8]}}, "args must be a mapping"),
    ([{"train": {}}], {"model": {"file": 5}}, r"\{file: PATH\}"),
    ([{"train": {}}], {"model": {"file": "m.safetensors", "name": "mlp"}}, r"\{file: PATH\}"),
    ([{"train": {}}], {"measure": {"threads": 0}}, "measure: threads must be"),
    ([{"train": {}}], {"measure": {"repeats": math.inf}}, "measure: repeats must be"),
    ([{"train": {}}], {"measure": {"batch_sizes": [1, 10**9]}}, "batch_sizes"),
    ([{"train": {}}], {"measure": [1]}, "measure must be a mapping"),
    ([], {}, "stages must be a non-empty list"),
    ([5], {}, "stage 1: a stage is a mapping"),
    ([{"train": {}, "name": ""}], {}, "name must be text"),
    ([{"train": {}, "name": "a"}, {"train": {}, "name": "a"}], {}, "taken"),
]


@pytest.mark.parametrize(("stages", "top", "words"), CASES)
def test_bad_recipe_values_name_the_stage_and_the_key(stages, top, words):
    with pytest.raises(NetshrinkError, match=words):
        recipe(*stages, **top)


@pytest.mark.parametrize(("content", "words"), [
    (b"data: digits\nmodel: mlp\xff\n", "not UTF-8"),
    (b"data: digits\nstages: " + b"[" * 100 + b"]" * 100 + b"\n", "nested deeper than 64"),
    (b"data: digits\n" + b"# padding\n" * 120_000, "larger than 1,048,576 bytes"),
    (b"stages: [train\n", "not valid YAML"),
    (b"!!python/object/apply:os.system ['echo hacked']\n", "not valid YAML"),
    (b"data: digits\ndata: mnist\n", "appears twice"),
    (b"- train\n", "a recipe is a mapping"),
    (b"data: digits\nmodel: mlp\n", "missing key 'stages'"),
    (b"data: digits\nmodel: mlp\nstages: [{train: {lr: .inf}}]\n", "lr=inf"),
    (b"data: digits\nmodel: mlp\nstages: [{train: {lr: .nan}}]\n", "lr=nan"),
    (b"data: digits\nmodel: mlp\nstages: [{train: {epochs: 1e400}}]\n", "epochs=inf"),
])
def test_bad_recipe_files_are_refused(tmp_path, content, words):
    path = tmp_path / "r.yaml"
    path.write_bytes(content)
    with pytest.raises(NetshrinkError, match=words):
        load_recipe(path)


def test_a_recipe_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(NetshrinkError, match="cannot read"):
        load_recipe(tmp_path)


# ---- random recipes from a grammar --------------------------------------------------------

HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3))
NUMBER = st.one_of(st.floats(1e-4, 0.9), HOSTILE)
STAGES = st.one_of(
    st.builds(lambda c: {"train": c}, st.fixed_dictionaries({}, optional={
        "lr": NUMBER, "epochs": NUMBER, "momentum": NUMBER, "batch_size": HOSTILE})),
    st.builds(lambda c: {"prune": c}, st.fixed_dictionaries({"sparsity": NUMBER}, optional={
        "method": st.one_of(st.sampled_from(["magnitude", "snip"]), HOSTILE),
        "scope": HOSTILE, "options": HOSTILE})),
    st.builds(lambda c: {"quantize": c}, st.fixed_dictionaries({"method": st.one_of(
        st.sampled_from(["dynamic", "static", "qat"]), HOSTILE)}, optional={
        "bits": HOSTILE, "per_channel": HOSTILE})),
    st.builds(lambda c: {"share": c}, st.fixed_dictionaries({}, optional={"bits": HOSTILE})),
    st.builds(lambda c: {"export": c}, st.fixed_dictionaries({}, optional={
        "format": st.one_of(st.sampled_from(["nsz", "onnx"]), HOSTILE)})),
    HOSTILE,
)
RECIPES = st.fixed_dictionaries({
    "data": st.one_of(st.just("digits"), HOSTILE),
    "model": st.one_of(st.just("mlp"), HOSTILE),
    "stages": st.lists(STAGES, min_size=0, max_size=4),
}, optional={"seed": HOSTILE, "measure": st.one_of(st.just({}), HOSTILE)})


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(RECIPES)
def test_random_recipes_are_valid_or_one_clear_error(document):
    try:
        checked = parse(document, "r.yaml")
    except NetshrinkError as err:
        assert str(err).startswith("r.yaml") and len(str(err)) < 1000, str(err)
        return
    assert isinstance(checked, Recipe) and checked.stages


@pytest.mark.parametrize(("stages", "words"), [
    ([{"train": {"epochs": 1}}, {"prune": {"sparsity": 0.5, "layers": {"nolayer": 0.9}}}],
     r"stage 2 \(prune\): layers: 'nolayer' matches no layer"),
    ([{"prune": {"sparsity": 0.5, "skip": ["fc1"]}}], r"stage 1 \(prune\): skip: 'fc1'"),
    ([{"share": {"bits": 4, "skip": ["9.weight"]}}], r"stage 1 \(share\): skip: '9.weight'"),
    ([{"structured": {"sparsity": 0.5, "skip": ["head"]}}], r"stage 1 \(structured\): skip"),
    ([{"quantize": {"method": "dynamic", "skip": ["nolayer"]}}],
     r"stage 1 \(quantize\): skip: 'nolayer'"),
])
def test_layer_names_are_matched_against_the_model_before_any_stage_runs(tmp_path, stages,
                                                                          words):
    import netshrink

    with pytest.raises(NetshrinkError, match=words):
        netshrink.run({**BASE, "stages": stages}, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written
