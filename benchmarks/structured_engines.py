"""Which dependency analysis to build structured pruning on: netshrink's torch.fx tracer
against Torch-Pruning's dependency graph, on every zoo model, the user-written test models,
models written to trip a tracer, and MiniLM.

    PYTHONPATH=src python benchmarks/structured_engines.py [--out FILE.json]

Each engine prunes half of every group it finds (l1; the output layer left whole) from the
same initial weights. Per model and engine: whether it ran, the parameters left, whether the
pruned model still runs on a second, different input (for the branchy model: the other
branch), and for each of its first pruned layer's kept channels whether the pruned layer
computes exactly the original's value (found by matching outputs; "exact" or "WRONG").
No timing here (see bench_structured.py).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import netshrink
from netshrink.fileio import atomic_write
from netshrink.prune import StructuredConfig
from netshrink.prune import torch_pruning as ntp
from netshrink.prune.structured import call
from tests import user_models


class Scaled(nn.Module):
    """A learned per-channel scale read as a bare parameter."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.scale = nn.Parameter(torch.rand(1, 8, 1, 1) + 0.5)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.head(self.conv(x) * self.scale).mean(dim=(2, 3))


class Shuffle(nn.Module):
    """ShuffleNet's channel shuffle: a reshape that interleaves two groups of channels."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        n, c, h, w = y.shape
        y = y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.head(y).mean(dim=(2, 3))


class Branchy(nn.Module):
    """Data-dependent control flow: which layer runs depends on the input."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 8, 3, padding=1)
        self.b = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = self.a(x) if x.mean() > 0 else self.b(x)
        return self.head(torch.relu(y)).mean(dim=(2, 3))


def cases():
    out = {}
    for name in netshrink.models.names():
        if name != "minilm":
            out[name] = (lambda n=name: netshrink.models.create(n, (1, 28, 28), 10),
                         lambda n: torch.rand(n, 1, 28, 28))
    for name in user_models.BUILDERS:
        def make(n=name):
            return user_models.build(n)[0]

        def inputs(k, n=name):
            x = user_models.build(n)[1]
            return tuple(t[:k] for t in x) if isinstance(x, tuple) else x[:k]

        out[name] = (make, inputs)

    def image(n):
        return torch.rand(n, 1, 8, 8)

    out["scaled"] = (Scaled, image)
    out["channel_shuffle"] = (Shuffle, image)
    out["branchy"] = (Branchy, image)
    return out


def first_pruned(original: nn.Module, pruned: nn.Module) -> str | None:
    shapes = dict(pruned.named_modules())
    for path, module in original.named_modules():
        new = shapes.get(path)
        if isinstance(module, nn.Conv2d | nn.Conv1d | nn.Linear) and new is not None and \
                new.weight.shape[0] < module.weight.shape[0]:
            return path
    return None


def exactness(original, pruned, x) -> str:
    """Whether the first pruned layer, fed the original's input to that layer, computes a
    subset of the original layer's output channels."""
    path = first_pruned(original, pruned)
    if path is None:
        return "nothing pruned"
    seen = {}
    layer = original.get_submodule(path)
    handle = layer.register_forward_hook(lambda m, i, o: seen.__setitem__("in", i[0].detach()))
    with torch.no_grad():
        call(original, x)
    handle.remove()
    if "in" not in seen:
        return f"{path}: not called by its parent's forward"
    new = pruned.get_submodule(path)
    with torch.no_grad():
        try:
            a, b = layer(seen["in"]), new(seen["in"])
        except RuntimeError:
            return f"{path}: its input was pruned too"
    axis = -1 if isinstance(layer, nn.Linear) else 1
    a, b = (t.movedim(axis, 0).flatten(1) for t in (a, b))
    matched = all(any(torch.allclose(row, ref, atol=1e-5) for ref in a) for row in b)
    return "exact" if matched else "WRONG"


def whole_model(original, pruned, x, layer: str) -> str:
    """For a model with one pruned layer: the original with that layer's removed channels
    zeroed must compute exactly what the pruned model computes."""
    old, new = original.get_submodule(layer), pruned.get_submodule(layer)
    kept = [int(torch.argmin((old.weight - w).abs().flatten(1).sum(1))) for w in new.weight]
    zeroed = copy.deepcopy(original)
    gone = [i for i in range(old.out_channels) if i not in kept]
    with torch.no_grad():
        zeroed.get_submodule(layer).weight[gone] = 0
        zeroed.get_submodule(layer).bias[gone] = 0
        same = torch.allclose(call(zeroed, x), call(pruned, x), atol=1e-5)
    return "same function" if same else "WRONG: differs from the original with those zeroed"


def run_engine(engine: str, make, inputs) -> dict:
    torch.manual_seed(0)
    model = make().eval()
    original = copy.deepcopy(model)
    x = inputs(2)
    before = sum(p.numel() for p in model.parameters())
    try:
        if engine == "netshrink":
            result = netshrink.prune_(model, StructuredConfig(sparsity=0.5), example=x)
            note = "; ".join(f"{k}: {v}" for k, v in result.kept_whole.items()
                             if v != "the model's output")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ntp.prune(model, x, 0.5, "l1")
            note = ""
    except Exception as err:
        return {"ran": False, "error": f"{type(err).__name__}: {str(err)[:160]}"}
    row = {"ran": True, "parameters": f"{before} -> {sum(p.numel() for p in model.parameters())}",
           "kept whole": note[:160]}
    second = inputs(3)
    if isinstance(second, torch.Tensor) and second.is_floating_point():
        second = -second  # a different input: the branchy model takes its other branch
    try:
        with torch.no_grad():
            call(model.eval(), second)
        row["second input"] = "runs"
    except Exception as err:
        row["second input"] = f"FAILS: {type(err).__name__}: {str(err)[:100]}"
    row["first pruned layer"] = exactness(original, model, x)
    resized = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)
               and m.weight.shape != original.get_submodule(n).weight.shape]
    if resized == ["conv"] and isinstance(model.get_submodule("conv"), nn.Conv2d) and \
            model.conv.out_channels < original.conv.out_channels:
        row["whole model"] = whole_model(original, model, x, "conv")
    return row


def minilm_rows() -> dict:
    if not netshrink.models.minilm.available():
        return {}
    from netshrink.models import minilm

    model = minilm.pretrained()
    batch = minilm.tokenize(["a first sentence", "and another one, a little longer"])
    out = {}
    for targets in (("channels", "heads", "ffn"), ("heads", "ffn")):
        try:
            pruned = copy.deepcopy(model)
            result = netshrink.prune_(pruned, StructuredConfig(sparsity=0.25, targets=targets),
                                      example=batch)
            out[f"netshrink targets={'+'.join(targets)}"] = {
                "ran": True, "parameters": f"{result.parameters_before} -> "
                                           f"{result.parameters_after}"}
        except Exception as err:
            out[f"netshrink targets={'+'.join(targets)}"] = {"ran": False, "error": str(err)[:200]}
    try:
        tp = ntp._module()
        pruned = copy.deepcopy(model)
        args = (batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        pruner = tp.pruner.MetaPruner(pruned, args, importance=ntp.importance("l1"),
                                      pruning_ratio=0.25, ignored_layers=[])
        pruner.step()
        with torch.no_grad():
            pruned(**batch)
        out["Torch-Pruning, no head configuration"] = {
            "ran": True, "parameters": f"{sum(p.numel() for p in model.parameters())} -> "
                                       f"{sum(p.numel() for p in pruned.parameters())}"}
    except Exception as err:
        out["Torch-Pruning, no head configuration"] = {
            "ran": False, "error": f"{type(err).__name__}: {str(err)[:200]}"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/structured_engines.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = {}
    for name, (make, inputs) in cases().items():
        results[name] = {e: run_engine(e, make, inputs) for e in ("netshrink", "torch-pruning")}
    results["minilm"] = minilm_rows()
    atomic_write(Path(args.out), json.dumps(results, indent=2) + "\n")
    print("| model | engine | ran | parameters | second input | first pruned layer | whole model "
          "| note |")
    print("|---|---|---|---|---|---|---|---|")
    for name, engines in results.items():
        for engine, r in engines.items():
            print(f"| {name} | {engine} | {'yes' if r['ran'] else 'no'} | "
                  f"{r.get('parameters', '')} | {r.get('second input', '')} | "
                  f"{r.get('first pruned layer', '')} | {r.get('whole model', '')} | "
                  f"{r.get('error', r.get('kept whole', ''))} |")


if __name__ == "__main__":
    main()
