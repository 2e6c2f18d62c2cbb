"""The demo on the tiny digits set: every recipe runs, each row is the model in its file."""

import json
from pathlib import Path

import pytest

import netshrink
from netshrink import data
from netshrink.demo import run
from netshrink.train import evaluate


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run(out, epochs=2, seed=0, dataset="digits")


def test_every_row_is_a_recipe_measured_in_the_same_run(demo):
    out, rows = demo
    by_name = {r["model"]: r for r in rows}
    assert list(by_name) == ["dense float32", "pruned 92%", "structured 50%", "int8",
                             "shared 4-bit .nsz", "student alone", "student distilled",
                             "combined", "combined, int8"]
    dense = by_name["dense float32"]
    assert by_name["pruned 92%"]["file_bytes"] * 5 < dense["file_bytes"]
    assert by_name["int8"]["file_bytes"] * 3 < dense["file_bytes"]
    assert by_name["shared 4-bit .nsz"]["file_bytes"] < by_name["pruned 92%"]["file_bytes"]
    assert by_name["combined"]["file_bytes"] * 25 < dense["file_bytes"]
    assert by_name["combined"]["file"].endswith(".nsz")
    assert by_name["combined, int8"]["file"].endswith(".nsz")
    assert "deployed_accuracy" in by_name["combined, int8"]  # run as an integer program
    for row in rows:
        assert row["latency_ms_b1"] > 0 and row["latency_ms_b256"] > 0
        assert row["x_smaller"] == pytest.approx(dense["file_bytes"] / row["file_bytes"])
    assert json.loads((out / "demo.json").read_text()) == rows
    assert (out / "demo.md").read_text().count("\n| ") == len(rows) + 1
    config = json.loads((out / "config.json").read_text())
    assert set(config) == set(by_name)
    assert config["combined"]["stages"][0]["train"]["epochs"] == 2


def test_each_rows_accuracy_is_that_of_its_file(demo):
    _, rows = demo
    test = data.load("digits", seed=0).test
    for row in rows[:3] + rows[-2:]:
        model = netshrink.load(row["file"])
        assert evaluate(model, test)[1] == pytest.approx(row["test_accuracy"], abs=1e-9)


def test_the_structured_rows_are_smaller_networks(demo):
    _, rows = demo
    by_name = {r["model"]: r for r in rows}
    dense = netshrink.load(by_name["dense float32"]["file"])
    structured = netshrink.load(by_name["structured 50%"]["file"])
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(structured) < 0.6 * count(dense)


def test_the_shipped_demo_recipes_are_the_demos(tmp_path):
    from netshrink.demo import write_recipes

    shipped = Path(__file__).parents[1] / "recipes" / "demo"
    written = write_recipes(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in shipped.glob("*.yaml"))
    for path in written:
        assert path.read_text() == (shipped / path.name).read_text(), path.name


def test_the_combined_rows_differ_only_in_their_last_stage_but_one():
    from netshrink.demo import COMBINED_RATES, combined_recipe, recipes

    plan = recipes()
    shared, integer = plan["combined"]["stages"], plan["combined, int8"]["stages"]
    assert shared[:-2] == integer[:-2] and shared[-1] == integer[-1] == {"export":
                                                                         {"format": "nsz"}}
    assert "share" in shared[-2] and integer[-2] == {"quantize": {"method": "static"}}
    assert shared[3]["prune"]["layers"] == COMBINED_RATES
    with pytest.raises(ValueError, match="tail='int4'"):
        combined_recipe(COMBINED_RATES, "int4")
