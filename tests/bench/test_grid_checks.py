"""Bad grids are refused before any trial runs, each with one NetshrinkError naming the key:
values that used to pass `--dry-run` and fail at run time, YAML bombs, grids too large to
expand; random grids from a grammar are either valid or one such error."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netshrink.bench.grid import MAX_TRIALS, expand, load_grid, parse_grid
from netshrink.bench.spec import TrialSpec
from netshrink.errors import NetshrinkError

BASE = {"model": "mlp", "model_args": {"widths": [[8]]}, "data": "digits",
        "train": {"epochs": 1}}
PRUNE = {"method": "magnitude", "sparsity": 0.5}


def grid(task="train", params=None, **over):
    return {**BASE, "task": task, **({"params": params} if params is not None else {}), **over}


CASES = [
    # values the trial itself would refuse, refused by the grid check
    (grid("prune", {**PRUNE, "layer_sparsity": {"nolayer": 0.5}}),
     "layer_sparsity: 'nolayer' matches no layer"),
    (grid("prune", {**PRUNE, "layer_sparsity": {"1": "half"}}), "layers"),
    (grid("prune", {**PRUNE, "layer_sparsity": [0.5]}), "layer_sparsity"),
    (grid("prune", {**PRUNE, "scope": "sideways"}), "scope='sideways'"),
    (grid("prune", {**PRUNE, "options": [1, 2]}), "options"),
    (grid("prune", {**PRUNE, "options": {"power": 2}}), "bad option for method 'magnitude'"),
    (grid("prune", {"method": "synflow", "sparsity": 0.5, "options": {"iterations": 10**8}}),
     "synflow iterations=100000000"),
    (grid("prune", {"method": "taylor", "sparsity": 0.5, "options": {"examples": 0}}),
     "taylor examples=0"),
    (grid("prune", {"method": "magnitude", "sparsity": math.nan}), "params.sparsity: nan is not"),
    (grid("prune", {"method": "magnitude", "sparsity": 1.5}), "sparsity=1.5"),
    (grid("prune", {"method": "magnitude", "compression": 0.5}), "compression=0.5"),
    (grid("prune", {"method": "prune-all", "sparsity": 0.5}), "unknown pruning method"),
    (grid("prune", {**PRUNE, "when": "later"}), "when='later'"),
    (grid("prune", {**PRUNE, "finetune": {"lr": math.inf}}), "params.finetune.lr: inf"),
    (grid("prune", {**PRUNE, "finetune": {"momentum": math.nan}}),
     "params.finetune.momentum: nan"),
    (grid("prune", {"sparsity": 0.5}), "needs params.method"),
    (grid("quantization", {"ptq": {"bits": 1}}), "params.ptq: bits=1"),
    (grid("quantization", {"qat": {"per_channel": "no"}}), "params.qat: per_channel='no'"),
    (grid("quantization", {"ptq": {"skip": ["nolayer"]}}), "params.ptq.skip: 'nolayer'"),
    (grid("quantization", {"qat_epochs": math.inf}), "params.qat_epochs: inf"),
    (grid("quantization", {"latency_repeats": 0}), "latency_repeats"),
    (grid("kd_train", {"jitter": "abc"}), "jitter='abc'"),
    (grid("kd_train", {"jitter": -1}), "jitter=-1"),
    (grid("kd_distill", {"teachers": ["t"], "temperature": math.nan}), "temperature"),
    (grid("structured", {"base": "b", "sparsity": 0.5, "engine": "magic"}), "engine='magic'"),
    (grid("structured", {"base": "b"}), "needs params.base"),
    (grid("deep_compression", {"settings": [[{"name": "a", "density": {"*": 2.0},
                                               "bits": {"*": 4}}]]}),
     r"settings\[0\].density"),
    # training options and seeds
    (grid(train={"epochs": math.inf}), "train.epochs: inf"),
    (grid(train={"epochs": 1, "weight_decay": math.nan}), "train.weight_decay: nan"),
    (grid(train={"epochs": 1, "momentum": math.nan}), "train.momentum: nan"),
    (grid(train={"epochs": 1, "batch_size": 0}), "batch_size=0"),
    (grid(train={"epochs": 1, "lr": math.inf}), "train.lr: inf"),
    (grid(seed=10**30), "seed: expected an integer in"),
    (grid(seed=[0, -1]), "seed: expected an integer in"),
    (grid(seed=2**63), "seed: expected an integer in"),
    # model and data arguments
    (grid(model_args={"widths": "abc"}), "widths"),
    (grid(model_args={"widths": [[10**9]]}), "needs|memory"),
    (grid(model_args={"dropout": math.nan}), "dropout"),
    (grid(data_args={"val_size": -5}), "val_size"),
    (grid(data_args={"root": "/no/such/folder"}), "is not a folder"),
]


@pytest.mark.parametrize(("document", "words"), CASES)
def test_bad_grid_values_are_refused_before_any_trial(document, words):
    with pytest.raises(NetshrinkError, match=words):
        expand(document, "g.yaml")


def test_a_grid_too_large_is_refused_before_it_is_expanded():
    huge = grid(seed=list(range(1000)), train={"epochs": 1, "lr": [0.1] * 1000})  # 10^6
    with pytest.raises(NetshrinkError, match="1,000,000 trials, more than the limit of 10,000"):
        expand(huge, "g.yaml")
    twelve = grid(seed=list(range(12)))
    with pytest.raises(NetshrinkError, match="--max-trials"):
        expand(twelve, "g.yaml", max_trials=10)
    assert len(expand(twelve, "g.yaml", max_trials=12)) == 12
    assert MAX_TRIALS == 10_000
    with pytest.raises(NetshrinkError, match="max_trials=0"):
        expand(twelve, "g.yaml", max_trials=0)


@pytest.mark.parametrize(("content", "words"), [
    (b"task: train\nmodel: mlp\xff\xfe\n", "not UTF-8"),
    (b"task: train\nseed: " + b"[" * 200 + b"]" * 200 + b"\n", "nested deeper than 64"),
    (b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
        b"%c: &%c [%s]\n" % (c, c, b", ".join([b"*" + bytes([c - 1])] * 9))
        for c in range(ord("b"), ord("n"))), "aliases"),
    (b"task: train\n" + b"# padding\n" * 120_000, "larger than 1,048,576 bytes"),
    (b"task: [train\n", "not valid YAML"),
    (b"task: train\ntask: prune\n", "appears twice"),
    (b"!!python/object/apply:os.system ['echo hacked']\n", "not valid YAML"),
    (b"- 1\n- 2\n", "expected a mapping"),
    (b"", "a grid is a mapping"),
])
def test_bad_grid_files_are_refused(tmp_path, content, words):
    path = tmp_path / "g.yaml"
    path.write_bytes(content)
    with pytest.raises(NetshrinkError, match=words):
        load_grid(path)


def test_a_missing_grid_file_and_a_folder_are_refused(tmp_path):
    with pytest.raises(NetshrinkError, match="cannot read"):
        load_grid(tmp_path / "none.yaml")
    with pytest.raises(NetshrinkError, match="cannot read"):
        load_grid(tmp_path)


# ---- random grids from a grammar ----------------------------------------------------------

HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4),
                                                              st.integers(), max_size=2))
SMALL_TRAIN = st.fixed_dictionaries({"epochs": st.just(1)}, optional={
    "lr": st.one_of(st.floats(1e-4, 1.0), HOSTILE),
    "batch_size": st.one_of(st.integers(1, 64), HOSTILE),
    "momentum": st.one_of(st.floats(0, 0.99), HOSTILE),
    "optimizer": st.one_of(st.sampled_from(["sgd", "adam"]), HOSTILE),
})
PRUNE_PARAMS = st.fixed_dictionaries({"method": st.one_of(
    st.sampled_from(["magnitude", "random", "synflow"]), HOSTILE)}, optional={
    "sparsity": st.one_of(st.floats(0, 0.99), HOSTILE),
    "scope": st.one_of(st.sampled_from(["global", "layerwise"]), HOSTILE),
    "layer_sparsity": st.one_of(st.dictionaries(st.sampled_from(["1", "3", "nolayer", "*"]),
                                                st.floats(0, 0.99), max_size=2), HOSTILE),
    "options": st.one_of(st.just({}), HOSTILE),
})
GRIDS = st.fixed_dictionaries({
    "task": st.sampled_from(["train", "prune"]),
    "model": st.one_of(st.just("mlp"), HOSTILE),
    "data": st.one_of(st.just("digits"), HOSTILE),
    "model_args": st.one_of(st.just({"widths": [[8]]}), st.fixed_dictionaries(
        {"widths": st.one_of(st.just([[8]]), HOSTILE)})),
}, optional={"train": SMALL_TRAIN, "seed": st.one_of(st.integers(0, 3), HOSTILE),
             "params": PRUNE_PARAMS})


@settings(max_examples=50, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(GRIDS)
def test_random_grids_are_valid_or_one_clear_error(document):
    try:
        trials = expand(document, "g.yaml")
    except NetshrinkError as err:
        message = str(err)
        assert message.startswith("g.yaml") and len(message) < 1000, message
        return
    assert trials and all(isinstance(t, TrialSpec) for t in trials)


def test_the_same_checks_read_the_text_of_a_grid():
    with pytest.raises(NetshrinkError, match="jitter='abc'"):
        parse_grid("task: kd_train\nmodel: mlp\ndata: digits\nparams: {jitter: abc}\n",
                   "g.yaml")
