"""The foundation's commands: models, train, info, download, demo, reproduce."""

from __future__ import annotations

import argparse
import json

from netshrink.cli.options import (
    add_train_options,
    data_and_model,
    finite_float,
    out_dir,
    pct,
    positive_int,
    seed_int,
    train_config,
    write_json,
)
from netshrink.errors import NetshrinkError


def add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the model zoo")
    p.set_defaults(run=run_models)


def run_models(args: argparse.Namespace) -> int:
    from netshrink import measure, models

    for name in models.names():
        model = models.create(name)
        print(f"{name:10s} {measure.count_parameters(model):>10,d} parameters "
              f"(on 1x28x28, 10 classes)")
    return 0


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model and save it with its log")
    add_train_options(p)
    p.add_argument("--out", default="runs/train", help="folder for model, log and results")
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    import netshrink
    from netshrink import measure
    from netshrink.train import fit

    config = train_config(args)
    folder = out_dir(args.out, files=("model.safetensors", "config.json", "log.csv"))
    splits, model = data_and_model(args)
    print(f"training {args.model} ({measure.count_parameters(model):,d} parameters) on "
          f"{splits!r}")
    write_json(folder / "config.json", {"command": "train", "model": model.netshrink_spec,
                                        "data": args.data, "val_size": len(splits.val),
                                        "train": config.to_dict()})
    result = fit(model, splits, config, log_csv=folder / "log.csv",
                 progress=None if not args.no_progress else False)
    netshrink.save(model, folder / "model.safetensors",
                   metadata={"data": args.data, "test_accuracy": result.test_accuracy})
    write_json(folder / "result.json", result.to_dict())
    print(f"early stopping at iteration {result.early_stop_iteration} "
          f"(test accuracy there {pct(result.early_stop_test_accuracy)})")
    print(f"saved {folder / 'model.safetensors'}, {folder / 'log.csv'}")
    print(f"test accuracy: {pct(result.test_accuracy)}")
    return 0


def add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a saved model file")
    p.add_argument("file")
    p.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    import netshrink
    from netshrink import measure
    from netshrink.serialize import read_metadata, read_tensors

    header = read_metadata(args.file)  # every check before anything is printed
    tensors = read_tensors(args.file)
    spec = header.get("model") or {}
    model = netshrink.load(args.file) if spec else None
    print(f"file:        {args.file} ({measure.file_size(args.file):,d} bytes)")
    print(f"model:       {spec.get('name', '(weights only)')} {json.dumps(spec.get('args', {}))}")
    for entry in header.get("transforms", []):
        print(f"transform:   {json.dumps(entry)}")
    dtypes: dict[str, int] = {}
    for t in tensors.values():
        name = str(t.dtype).removeprefix("torch.")
        dtypes[name] = dtypes.get(name, 0) + t.numel()
    print("tensors:     " + ", ".join(f"{n:,d} {k}" for k, n in sorted(dtypes.items())))
    if model is not None:
        print(f"parameters:  {measure.count_parameters(model):,d} "
              f"({measure.count_nonzero(model):,d} non-zero)")
    print(f"versions:    {json.dumps(header.get('versions', {}))}")
    if header.get("user"):
        print(f"metadata:    {json.dumps(header['user'])}")
    return 0


def add_download(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="download a data set into the cache (needs internet)")
    p.add_argument("name", choices=["mnist", "fashion-mnist"])
    p.set_defaults(run=run_download)


def run_download(args: argparse.Namespace) -> int:
    from netshrink.data import download

    print(f"downloaded and verified: {download(args.name)}")
    return 0


def add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the end-to-end demo on Fashion-MNIST")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs", type=finite_float, default=10.0,
                   help="epochs per training (retraining after pruning: half)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--data", default="fashion-mnist",
                   help="data set (fashion-mnist, mnist, digits for a quick look)")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from netshrink.demo import run

    if args.epochs <= 0:
        raise NetshrinkError(f"--epochs {args.epochs} must be positive")
    run(out_dir(args.out), epochs=args.epochs, seed=args.seed, dataset=args.data)
    return 0


def add_reproduce(sub: argparse._SubParsersAction) -> None:
    from netshrink import reproduce

    listing = "; ".join(f"{k}: {v}" for k, v in reproduce.names().items()) or "none yet"
    p = sub.add_parser("reproduce", help="reproduce a published result",
                       description=f"Reproductions: {listing}")
    p.add_argument("name")
    p.add_argument("--full", action="store_true", help="the paper's full protocol (slow)")
    p.add_argument("--out", default=None, help="output folder (default runs/reproduce/NAME)")
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument("--workers", type=positive_int, default=1)
    p.add_argument("--seeds", type=seed_int, nargs="+", default=None)
    p.add_argument("--data", nargs="+", default=None, help="restrict to these data sets")
    p.set_defaults(run=run_reproduce)


def run_reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from netshrink import reproduce

    if args.workers < 1:
        raise NetshrinkError(f"--workers {args.workers} must be at least 1")
    out = out_dir(args.out or f"runs/reproduce/{args.name}")
    options = reproduce.ReproOptions(out=Path(out), full=args.full, executor=args.executor,
                                     workers=args.workers,
                                     seeds=tuple(args.seeds) if args.seeds else None,
                                     data=tuple(args.data) if args.data else None)
    reproduce.run(args.name, options)
    return 0
