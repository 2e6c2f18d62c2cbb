"""What the commands share: option values, the training options, the data and model they name,
output folders and files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_write


def parse_value(text: str):
    """A command-line value: JSON when it parses (numbers, lists, true), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def key_values(items: list[str] | None, option: str) -> dict:
    """{key: value} of repeated KEY=VALUE options (dashes in keys become underscores)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NetshrinkError(f"{option} {item!r} must look like key=value")
        out[key.replace("-", "_")] = parse_value(value)
    return out


def out_dir(path: str) -> Path:
    """The --out folder, created; refused when it is a file."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise NetshrinkError(f"--out {path} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_json(path, payload: dict) -> None:
    atomic_write(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def add_train_options(p: argparse.ArgumentParser, epochs: float = 5.0) -> None:
    """The options every command that trains shares."""
    from netshrink.train import TrainConfig

    d = TrainConfig()
    p.add_argument("--model", default="lenet300", help="a name from `netshrink models`")
    p.add_argument("--arg", action="append", metavar="KEY=VALUE",
                   help="a model argument, e.g. --arg widths=[800,800] (repeatable)")
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist, mnist or digits")
    p.add_argument("--data-root", default=None, help="folder holding the data set's files")
    p.add_argument("--val-size", type=int, default=None, help="examples held out for validation")
    p.add_argument("--epochs", type=float, default=epochs)
    p.add_argument("--iterations", type=int, default=None, help="overrides --epochs")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--optimizer", default=d.optimizer, choices=["sgd", "adam", "adamw"])
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--lr-schedule", default=d.lr_schedule, choices=["constant", "cosine"])
    p.add_argument("--init", default="default", choices=["default", "glorot", "kaiming"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--deterministic", action="store_true")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def train_config(args: argparse.Namespace):
    from netshrink.train import TrainConfig

    return TrainConfig(optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                       batch_size=args.batch_size, epochs=args.epochs,
                       iterations=args.iterations, lr_schedule=args.lr_schedule, seed=args.seed,
                       device=args.device, deterministic=args.deterministic)


def load_splits(args: argparse.Namespace):
    """Load the data set the options name, then seed everything for what follows."""
    from netshrink import data
    from netshrink.train import seed_everything

    splits = data.load(args.data, root=args.data_root, val_size=args.val_size, seed=args.seed)
    seed_everything(args.seed)
    return splits


def data_and_model(args: argparse.Namespace):
    """Load the data set and build the model the options name (seeded)."""
    from netshrink import models

    splits = load_splits(args)
    model = models.create(args.model, input_shape=splits.input_shape,
                          num_classes=splits.num_classes, init=args.init,
                          **key_values(args.arg, "--arg"))
    return splits, model


def load_teachers(option: str) -> tuple[list[str], list]:
    """The files of a --teacher FILE[,FILE...] option and their models (several: an ensemble)."""
    import netshrink

    files = [f for f in option.split(",") if f]
    if not files:
        raise NetshrinkError("--teacher needs at least one model file")
    return files, [netshrink.load(f) for f in files]
