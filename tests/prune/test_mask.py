"""Masks keep pruned weights at exactly zero: forward, gradient, any optimizer, files, copies."""

import copy

import pytest
import torch
from torch import nn

import netshrink
from netshrink import models
from netshrink.prune import (
    apply_mask,
    current_mask,
    density,
    format_report,
    mask_zeros_,
    prune_,
    report,
    squash_,
)
from netshrink.train import TrainConfig, fit


def small_mlp(digits, seed=0):
    torch.manual_seed(seed)
    return models.create("mlp", input_shape=digits.input_shape, widths=(32,))


def weights(model):
    """{name: weight as the forward pass reads it}, masked or not."""
    return {**netshrink.prune.prunable(model), **netshrink.prune.masked_parameters(model)}


def pruned_entries(model, mask):
    params = weights(model)
    return {name: params[name].detach()[~keep] for name, keep in mask.items()}


def assert_pruned_zero(model, mask):
    for name, values in pruned_entries(model, mask).items():
        assert values.numel() > 0
        assert torch.count_nonzero(values) == 0, name


def test_state_dict_keys_stay_those_of_the_plain_model(digits):
    model = small_mlp(digits)
    keys = set(model.state_dict())
    mask = prune_(model, "magnitude", sparsity=0.5)
    state = model.state_dict()
    assert set(state) == keys
    assert torch.count_nonzero(state["1.weight"][~mask["1.weight"]]) == 0  # the masked value
    plain = small_mlp(digits, seed=1)
    plain.load_state_dict(state)  # a plain model takes a pruned model's state dict
    assert torch.equal(plain[1].weight, state["1.weight"])


def test_pruned_weights_stay_zero_in_our_training_loop(digits):
    model = small_mlp(digits)
    mask = prune_(model, "magnitude", sparsity=0.7)
    config = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-3,
                         batch_size=64, iterations=10, device="cpu")
    before = {n: w.detach().clone() for n, w in weights(model).items()}
    fit(model, digits, config, progress=False)
    assert_pruned_zero(model, mask)
    assert not torch.equal(weights(model)["1.weight"], before["1.weight"])  # kept ones trained


@pytest.mark.parametrize("optimizer", ["adam_wd", "adamw", "sgd_momentum"])
def test_pruned_weights_stay_zero_in_a_plain_loop(digits, optimizer):
    """Moments built up before pruning must not move pruned weights afterwards."""
    model = small_mlp(digits)
    make = {
        "adam_wd": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-2),
        "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-1),
        "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
    }[optimizer]
    opt = make(model.parameters())
    x, y = digits.train.tensors

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[:128]), y[:128]).backward()
        opt.step()

    for _ in range(3):
        step()  # dense steps: momentum and Adam moments are non-zero everywhere
    mask = prune_(model, "magnitude", sparsity=0.8)
    for _ in range(5):
        step()
        assert_pruned_zero(model, mask)
        for name, keep in mask.items():
            module = model.get_submodule(name.rpartition(".")[0])
            grad = module.parametrizations.weight.original.grad
            assert torch.count_nonzero(grad[~keep]) == 0


def test_gradient_of_pruned_weights_is_zero_for_a_hand_written_update(digits):
    model = small_mlp(digits)
    mask = prune_(model, "random", sparsity=0.5)
    x, y = digits.train.tensors
    nn.functional.cross_entropy(model(x[:64]), y[:64]).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.5 * (p.grad + 0.1 * p)
    assert_pruned_zero(model, mask)


def test_a_deep_copy_keeps_its_masks(digits):
    model = small_mlp(digits)
    mask = prune_(model, "magnitude", sparsity=0.6)
    twin = copy.deepcopy(model)
    opt = torch.optim.Adam(twin.parameters(), lr=1e-2)
    x, y = digits.train.tensors
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(twin(x[:64]), y[:64]).backward()
        opt.step()
    assert_pruned_zero(twin, mask)
    assert set(current_mask(twin)) == set(mask)


def test_loading_dense_weights_into_a_masked_model_keeps_the_zeros(digits):
    model = small_mlp(digits)
    dense = copy.deepcopy(model.state_dict())
    mask = prune_(model, "magnitude", sparsity=0.5)
    model.load_state_dict(dense)
    assert_pruned_zero(model, mask)
    kept = weights(model)["1.weight"].detach()[mask["1.weight"]]
    assert torch.equal(kept, dense["1.weight"][mask["1.weight"]])


def test_save_and_load_keep_zeros_clean_keys_and_masks(digits, tmp_path):
    model = small_mlp(digits)
    mask = prune_(model, "magnitude", sparsity=0.75)
    path = netshrink.save(model, tmp_path / "pruned.safetensors")
    from netshrink.serialize import read_tensors

    tensors = read_tensors(path)
    assert set(tensors) == set(small_mlp(digits).state_dict())
    assert int((tensors["1.weight"] == 0).sum()) == int((~mask["1.weight"]).sum())
    loaded = netshrink.load(path)
    assert density(loaded) == pytest.approx(density(model))
    restored = current_mask(loaded)
    assert all(torch.equal(restored[n], mask[n]) for n in mask)
    fit(loaded, digits, TrainConfig(lr=1e-2, epochs=1, device="cpu"), progress=False)
    assert_pruned_zero(loaded, mask)


def test_squash_makes_it_a_plain_model_with_zeros(digits, tmp_path):
    model = small_mlp(digits)
    prune_(model, "magnitude", sparsity=0.5)
    squash_(model)
    assert len(current_mask(model)) == 0
    assert list(dict(model.named_buffers())) == []
    assert density(model) == pytest.approx(0.5, abs=1e-3)
    assert not any(e["kind"] == "prune-mask" for e in getattr(model, "netshrink_transforms", []))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = digits.train.tensors
    nn.functional.cross_entropy(model(x[:64]), y[:64]).backward()
    opt.step()
    assert density(model) > 0.75  # no mask any more: the zeros train again (but for dead pixels)


def test_loading_into_a_fresh_instance_brings_the_masks_back(digits, tmp_path):
    model = small_mlp(digits)
    mask = prune_(model, "magnitude", sparsity=0.5)
    path = netshrink.save(model, tmp_path / "m.safetensors")
    mine = netshrink.load(path, model=small_mlp(digits, seed=3))
    assert all(torch.equal(current_mask(mine)[n], mask[n]) for n in mask)
    fit(mine, digits, TrainConfig(lr=1e-2, iterations=10, device="cpu"), progress=False)
    assert_pruned_zero(mine, mask)


def test_mask_zeros_masks_a_model_pruned_elsewhere(digits):
    model = small_mlp(digits)
    mask = prune_(model, "magnitude", sparsity=0.5)
    plain = small_mlp(digits, seed=3)
    plain.load_state_dict(model.state_dict())
    assert len(current_mask(plain)) == 0
    mask_zeros_(plain)
    assert all(torch.equal(current_mask(plain)[n], mask[n]) for n in mask)


def test_apply_mask_refuses_unknown_weights_and_wrong_shapes(digits):
    model = small_mlp(digits)
    with pytest.raises(netshrink.NetshrinkError, match="not a weight"):
        apply_mask(model, {"nope.weight": torch.ones(3)})
    with pytest.raises(netshrink.NetshrinkError, match="does not fit"):
        apply_mask(model, {"1.weight": torch.ones(3, 3, dtype=torch.bool)})


def test_report_lists_each_layer_and_the_total(digits):
    model = small_mlp(digits)
    prune_(model, "magnitude", sparsity=0.5, layer_sparsity={"3": 0.1})
    rows = report(model)
    assert [r.name for r in rows] == ["1.weight", "3.weight"]
    assert rows[1].density == pytest.approx(0.9, abs=0.01)
    text = format_report(rows)
    assert "total" in text and "1.weight" in text


def _step(model, loss):
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        loss(model).backward()
        opt.step()


def test_multihead_attention_reads_masked_weights_after_a_deep_copy():
    """MultiheadAttention reads out_proj.weight without calling out_proj's forward."""
    torch.manual_seed(0)
    model = nn.MultiheadAttention(8, 2, batch_first=True)
    mask = prune_(model, "magnitude", sparsity=0.7)
    assert set(mask) == {"in_proj_weight", "out_proj.weight"}
    twin = copy.deepcopy(model)
    x = torch.randn(3, 5, 8)
    _step(twin, lambda m: m(x, x, x)[0].pow(2).mean())
    assert_pruned_zero(twin, mask)
    with torch.no_grad():  # the kept weights trained, and the output uses the masked ones
        w = twin.out_proj.weight
        assert torch.count_nonzero(w[~mask["out_proj.weight"]]) == 0


def test_tied_weights_are_one_prunable_weight_with_one_mask_on_both_modules():
    torch.manual_seed(0)
    embed, out = nn.Embedding(10, 6), nn.Linear(6, 10, bias=False)
    out.weight = embed.weight
    model = nn.ModuleDict({"embed": embed, "out": out})
    mask = prune_(model, "magnitude", sparsity=0.5)
    assert list(mask) == ["out.weight"]  # the embedding holds the same tensor
    tokens = torch.randint(0, 10, (4, 3))
    _step(model, lambda m: m["out"](m["embed"](tokens)).pow(2).mean())
    keep = mask["out.weight"]
    assert torch.count_nonzero(model["embed"].weight.detach()[~keep]) == 0
    assert torch.equal(model["embed"].weight, model["out"].weight)
    squash_(model)
    assert model["embed"].weight is model["out"].weight  # still tied after squash


def test_transposed_convolutions_and_conv1d_are_prunable():
    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ConvTranspose1d(4, 2, 3))
    mask = prune_(model, "magnitude", sparsity=0.5)
    assert set(mask) == {"0.weight", "1.weight"}
    assert density(model) == pytest.approx(0.5, abs=0.02)
