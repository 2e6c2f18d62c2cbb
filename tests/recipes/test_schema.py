"""Recipes are checked whole before anything runs; each error names the stage and the key."""

import itertools

import pytest

from netshrink.errors import NetshrinkError
from netshrink.recipes import parse

BASE = {"data": "digits", "model": "mlp", "stages": [{"train": {"epochs": 1}}]}


def recipe(*stages, **top):
    return parse({**BASE, **top, "stages": list(stages)})


def test_defaults_are_resolved_and_identities_chain():
    a = recipe({"train": {"epochs": 1}}, {"prune": {"sparsity": 0.5}})
    b = recipe({"train": {"epochs": 1, "lr": 1e-3, "optimizer": "adam"}},
               {"prune": {"sparsity": 0.5, "method": "magnitude", "scope": "global"}})
    assert a.to_dict() == b.to_dict()  # writing a default does not make another recipe
    first, second = a.stages
    assert second.identity(first.identity(a.identity())) == \
        b.stages[1].identity(b.stages[0].identity(b.identity()))
    other = recipe({"train": {"epochs": 2}}, {"prune": {"sparsity": 0.5}})
    assert other.stages[1].identity(other.stages[0].identity(other.identity())) != \
        second.identity(first.identity(a.identity()))
    assert [s.name for s in recipe({"train": {}}, {"train": {}}).stages] == ["train", "train-2"]


@pytest.mark.parametrize("stages,top,message", [
    ([{"trian": {}}], {}, r"stage 1: unknown stage 'trian' \(did you mean 'train'\?\)"),
    ([{"train": {"epoch": 1}}], {}, r"stage 1 \(train\): unknown training option epoch"),
    ([{"train": {"lr": -1}}], {}, r"stage 1 \(train\): lr=-1"),
    ([{"prune": {"sparsity": 2}}], {}, r"stage 1 \(prune\): sparsity=2"),
    ([{"quantize": {"method": "static"}}, {"prune": {"sparsity": 0.5}}], {},
     r"stage 2 \(prune\): the model is already converted to integers"),
    ([{"quantize": {"method": "dynamic"}}, {"finetune": {}}], {},
     r"stage 2 \(finetune\): a model converted to integers does not train"),
    ([{"quantize": {"method": "dynamic"}}, {"quantize": {"method": "static"}}], {},
     r"stage 2 \(quantize\): the model is already converted"),
    ([{"distill": {"teacher": "big"}}], {}, r"stage 1 \(distill\): teacher: 'big' names no"),
    ([{"distill": {}}], {}, r"teacher: missing"),
    ([{"quantize": {"method": "static", "train": {}}}], {}, "apply to method qat only"),
    ([{"quantize": {"method": "int3"}}], {}, "method='int3'"),
    ([{"export": {"format": "onnx"}}], {}, "exports integer models"),
    ([{"train": {}, "prune": {}}], {}, "exactly one kind"),
    ([{"train": [1]}], {}, "must be a mapping"),
    ([{"train": {}, "name": "start"}], {}, "taken"),
    ([{"train": {}}], {"seed": -1}, "seed must be"),
    ([{"train": {}}], {"measure": {"batch_sizes": [0]}}, "batch_sizes"),
    ([{"train": {}}], {"mesure": {}}, r"unknown key 'mesure' \(did you mean 'measure'\?\)"),
    ([{"train": {}}], {"runtime": "tensorrt"}, r"runtime must be one of auto, torch, onnxr"),
])
def test_bad_recipes_name_the_stage_and_the_key(stages, top, message):
    with pytest.raises(NetshrinkError, match=message):
        recipe(*stages, **top)


def test_a_recipe_file_that_is_not_a_recipe(tmp_path):
    from netshrink.recipes import load_recipe

    bad = tmp_path / "r.yaml"
    bad.write_bytes(b"\xff\xfe not text")
    with pytest.raises(NetshrinkError, match="not UTF-8"):
        load_recipe(bad)
    bad.write_text("a: &x [1]\nb: *x\nb: 2\n")
    with pytest.raises(NetshrinkError, match="appears twice"):
        load_recipe(bad)
    levels = "abcdefghijklm"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in itertools.pairwise(levels))
    bad.write_text(bomb)
    with pytest.raises(NetshrinkError, match="aliases"):
        load_recipe(bad)
    with pytest.raises(NetshrinkError, match="cannot read"):
        load_recipe(tmp_path / "missing.yaml")
