import pytest

from netshrink.bench.grid import expand, load_grid, parse_grid
from netshrink.errors import NetshrinkError

BASE = {"task": "train", "model": "mlp", "data": "digits", "train": {"epochs": 1}}


def grid(**over):
    return {**BASE, **over}


def test_lists_expand_to_a_product_in_file_order():
    trials = expand(grid(model_args={"widths": [[8], [16, 16]], "dropout": [0.0, 0.5]},
                         train={"epochs": 1, "lr": [0.1, 0.01]}, seed=[0, 1]))
    assert len(trials) == 2 * 2 * 2 * 2
    first, second, last = trials[0], trials[1], trials[-1]
    assert first.model_args == {"widths": [8], "dropout": 0.0}
    assert first.train == {"epochs": 1, "lr": 0.1} and first.seed == 0
    assert second.seed == 1 and second.train["lr"] == 0.1  # the last key varies fastest
    assert last.model_args == {"widths": [16, 16], "dropout": 0.5} and last.seed == 1
    assert len({t.trial_id for t in trials}) == 16


def test_a_list_of_one_list_is_a_literal_list_value():
    trials = expand(grid(model_args={"widths": [[300, 100]]}))
    assert len(trials) == 1 and trials[0].model_args == {"widths": [300, 100]}


def test_nested_mappings_do_not_expand():
    from netshrink.bench import tasks

    tasks.task("grid-test-task")(lambda spec, workdir: {})
    trials = expand({"task": "grid-test-task", "model": "mlp", "data": "digits",
                     "params": {"schedule": {"at": [1, 2]}}})
    assert len(trials) == 1 and trials[0].params == {"schedule": {"at": [1, 2]}}


def test_a_list_of_grids_concatenates_and_drops_duplicates():
    trials = expand([grid(seed=[0, 1]), grid(seed=[1, 2])])
    assert [t.seed for t in trials] == [0, 1, 2]


def test_yaml_reads_exponent_numbers_as_numbers(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("task: train\nmodel: mlp\ndata: digits\ntrain: {lr: 1e-3, epochs: 1}\n")
    assert load_grid(path)[0].train["lr"] == 0.001


@pytest.mark.parametrize(("document", "message"), [
    (grid(sede=[1]), r"unknown key 'sede' \(did you mean 'seed'\?\)"),
    (grid(train={"epochs": 1, "lrr": 0.1}), r"train.lrr: unknown training option \(did you"),
    (grid(seed=[]), "seed: empty list"),
    (grid(model=[]), "model: empty list"),
    (grid(model_args={"widths": []}), "model_args.widths: empty list"),
    (grid(train={"epochs": 1, "lr": []}), "train.lr: empty list"),
    (grid(seed="zero"), "seed: expected an integer"),
    (grid(seed=[0, 1.5]), "seed: expected an integer"),
    (grid(model=3), "model: expected a name"),
    (grid(data=["digits", None]), "data: expected a name"),
    (grid(model_args=[{"widths": [8]}]), "model_args: expected a mapping"),
    (grid(train={"epochs": "one"}), "train.epochs: expected float, got 'one'"),
    (grid(train={"epochs": 1, "batch_size": 6.5}), "train.batch_size: expected int"),
    (grid(train={"epochs": 1, "lr": -1.0}), "train: lr=-1.0 must be positive"),
    (grid(train={"epochs": 1, "seed": 3}), "train.seed: give the seed as the top-level"),
    (grid(task="no-such-task"), "task: unknown task 'no-such-task'"),
    (grid(model="no-such-model"), "model: unknown model 'no-such-model'"),
    (grid(data="no-such-data"), "data: unknown data set 'no-such-data'"),
    (grid(model_args={"width": 8}), "model_args: cannot build mlp .* no argument width"),
    (grid(data_args={"val_size": "x"}), "data_args: val_size must be an integer"),
    (grid(data_args={"seed": 1}), "data_args.seed"),
    (grid(params={"sparsity": 0.5}), "params: task 'train' takes no params"),
    ({"model": "mlp"}, "missing key 'task'"),
    (["not a grid"], "grid 1: expected a mapping"),
    ([], "a grid is a mapping"),
    (None, "a grid is a mapping"),
])
def test_bad_grids_are_refused_naming_the_key(document, message):
    with pytest.raises(NetshrinkError, match=message):
        expand(document)


def test_duplicate_keys_and_bad_yaml_are_refused():
    with pytest.raises(NetshrinkError, match="line 3: key 'seed' appears twice"):
        parse_grid("task: train\nseed: 0\nseed: 1\nmodel: mlp\n", "g.yaml")
    with pytest.raises(NetshrinkError, match=r"g\.yaml is not valid YAML"):
        parse_grid("task: [train\n", "g.yaml")


def test_the_recipe_in_the_repository_is_valid():
    from pathlib import Path

    recipe = Path(__file__).parents[2] / "recipes" / "sweep-digits.yaml"
    assert len(load_grid(recipe)) == 24
