"""`netshrink prune`: prune a saved model (or a fresh one from the zoo), optionally (re)train
it, save it with its per-layer report."""

from __future__ import annotations

import argparse

from netshrink import checks
from netshrink.cli.options import (
    add_train_options,
    data_and_model,
    finite_float,
    key_values,
    out_dir,
    train_config,
    write_json,
)
from netshrink.errors import NetshrinkError


def add_prune(sub: argparse._SubParsersAction) -> None:
    from netshrink.prune import METHODS

    p = sub.add_parser(
        "prune", help="prune a model file or a fresh zoo model, then optionally train it",
        description="Prune FILE (a netshrink model file) or, without FILE, a freshly "
                    "initialized --model; then train --epochs (default 0: no training).")
    p.add_argument("file", nargs="?", default=None, help="a model saved by netshrink")
    add_train_options(p, epochs=0.0)
    p.add_argument("--method", default="magnitude", choices=sorted(METHODS))
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--sparsity", type=finite_float, help="fraction of weights removed, [0, 1)")
    target.add_argument("--compression", type=finite_float, help="1 / density, >= 1")
    p.add_argument("--scope", default="global", choices=["global", "layerwise"])
    p.add_argument("--layer-sparsity", action="append", metavar="LAYER=S",
                   help="a layer pruned at its own sparsity, e.g. --layer-sparsity 5=0.1")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a method option, e.g. --option iterations=100 (repeatable)")
    p.add_argument("--allow-collapse", action="store_true",
                   help="prune even if a layer is emptied (it is reported)")
    p.add_argument("--out", default="runs/prune", help="folder for model, report and results")
    p.set_defaults(run=run_prune)


def _load(args: argparse.Namespace):
    import netshrink
    from netshrink import data
    from netshrink.train import seed_everything

    if args.file is None:
        return data_and_model(args)
    model = netshrink.load(args.file)
    splits = data.load(args.data, root=args.data_root, val_size=args.val_size, seed=args.seed)
    shape = ((getattr(model, "netshrink_spec", None) or {}).get("args") or {}).get(
        "input_shape")
    if shape and tuple(shape) != tuple(splits.input_shape):
        raise NetshrinkError(f"{args.file} takes inputs of shape {tuple(shape)} but --data "
                             f"{args.data} has {tuple(splits.input_shape)}; pick its data set")
    seed_everything(args.seed)
    return splits, model


def run_prune(args: argparse.Namespace) -> int:
    import netshrink
    from netshrink import prune
    from netshrink.prune.api import as_config
    from netshrink.train import evaluate, fit

    layer_sparsity = {k: checks.real(v, f"--layer-sparsity {k}", 0, 1, high_open=True)
                      for k, v in key_values(args.layer_sparsity, "--layer-sparsity").items()}
    options = key_values(args.option, "--option")
    short = {"sparsity": args.sparsity, "compression": args.compression, "scope": args.scope,
             "layer_sparsity": layer_sparsity, "allow_collapse": args.allow_collapse,
             "seed": args.seed}
    pruning, _ = as_config(args.method, {**short, **options})  # checked before any load
    training = args.epochs > 0 or args.iterations is not None
    # --iterations overrides --epochs (whose default here, 0, means "do not train")
    config = train_config(argparse.Namespace(**{**vars(args), "epochs": args.epochs or 1.0})
                          ) if training else None
    folder = out_dir(args.out, files=("model.safetensors", "config.json", "result.json"))
    splits, model = _load(args)
    before = evaluate(model, splits.test)[1]
    mask = prune.prune_(model, pruning, splits)
    rows = prune.report(model)
    print(prune.format_report(rows))
    if mask.collapsed:
        print(f"warning: layer collapse: {', '.join(mask.collapsed)} has no weight left")
    after = evaluate(model, splits.test)[1]
    print(f"test accuracy: {100 * before:.2f}% before pruning, {100 * after:.2f}% after")
    result: dict = {"test_accuracy_before": before, "test_accuracy_pruned": after,
                    "density": prune.density(model), "collapsed": list(mask.collapsed),
                    "layers": [r.to_dict() for r in rows]}
    write_json(folder / "config.json", {
        "command": "prune", "file": args.file, "model": getattr(model, "netshrink_spec", None),
        "data": args.data, "method": args.method, "sparsity": args.sparsity,
        "compression": args.compression, "scope": args.scope,
        "layer_sparsity": layer_sparsity, "options": options,
        "seed": args.seed, "train": config.to_dict() if config else None})
    if config is not None:
        trained = fit(model, splits, config, log_csv=folder / "log.csv",
                      progress=None if not args.no_progress else False)
        result |= {"test_accuracy": trained.test_accuracy,
                   "early_stop_iteration": trained.early_stop_iteration,
                   "early_stop_test_accuracy": trained.early_stop_test_accuracy}
        print(f"test accuracy after training: {100 * trained.test_accuracy:.2f}% (density "
              f"{prune.density(model):.4f})")
    netshrink.save(model, folder / "model.safetensors",
                   metadata={"data": args.data, "pruned": args.method,
                             "density": prune.density(model)})
    write_json(folder / "result.json", result)
    print(f"saved {folder / 'model.safetensors'} and {folder / 'result.json'}")
    return 0
