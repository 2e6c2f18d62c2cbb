"""What the commands share: option values, the training options, the data and model they name,
output folders and files."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netshrink import checks
from netshrink.errors import NetshrinkError, OutputError
from netshrink.fileio import atomic_write

if TYPE_CHECKING:
    from torch import nn

    from netshrink.data.splits import Splits
    from netshrink.train import TrainConfig


def _number(text: str, kind: type):
    try:
        return kind(text)
    except (ValueError, OverflowError):  # argparse's own words for a type it cannot read
        raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None


def finite_float(text: str) -> float:
    """argparse type: a finite number (inf and nan are refused here, ranges by the config)."""
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return value


def integer(text: str) -> int:
    """argparse type: a whole number (ranges are checked by the config that takes it)."""
    return _number(text, int)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= 1")
    return value


def seed_int(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2**63)."""
    value = _number(text, int)
    if not 0 <= value < checks.SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer in [0, 2**63)")
    return value


def parse_value(text: str) -> Any:
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


def out_dir(path: str, option: str = "--out", files: tuple[str, ...] = ()) -> Path:
    """The --out folder, created; refused when it is a file, lies under a file or cannot be
    written (read-only), or when one of the `files` the command will write there is a
    folder, before anything runs."""
    folder = Path(path)
    for name in files:
        if (folder / name).is_dir():
            raise OutputError(f"{option} {path}: {folder / name} is a folder, where the command "
                              "writes a file; remove it or give another --out")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{option} {path} exists and is not a folder; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{option} {path}: cannot create the folder ({err.strerror}); "
                          "give a folder you can write") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: the folder is not writable; give a folder you "
                          "can write")
    return folder


def out_file(path: str, option: str = "--out") -> Path:
    """An output file path, refused before anything runs when it is a folder or its folder
    cannot be created or written."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name")
    out_dir(str(target.parent), option)
    return target


def write_json(path: str | os.PathLike, payload: dict) -> None:
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
    p.add_argument("--val-size", type=integer, default=None,
                   help="examples held out for validation")
    p.add_argument("--epochs", type=finite_float, default=epochs)
    p.add_argument("--iterations", type=integer, default=None, help="overrides --epochs")
    p.add_argument("--batch-size", type=integer, default=d.batch_size)
    p.add_argument("--optimizer", default=d.optimizer, choices=["sgd", "adam", "adamw"])
    p.add_argument("--lr", type=finite_float, default=d.lr)
    p.add_argument("--weight-decay", type=finite_float, default=d.weight_decay)
    p.add_argument("--lr-schedule", default=d.lr_schedule, choices=["constant", "cosine"])
    p.add_argument("--init", default="default", choices=["default", "glorot", "kaiming"])
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--deterministic", action="store_true")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def train_config(args: argparse.Namespace) -> TrainConfig:
    from netshrink.train import TrainConfig

    return TrainConfig(optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                       batch_size=args.batch_size, epochs=args.epochs,
                       iterations=args.iterations, lr_schedule=args.lr_schedule, seed=args.seed,
                       device=args.device, deterministic=args.deterministic)


def load_splits(args: argparse.Namespace) -> Splits:
    """Load the data set the options name, then seed everything for what follows."""
    from netshrink import data
    from netshrink.train import seed_everything

    splits = data.load(args.data, root=args.data_root, val_size=args.val_size, seed=args.seed)
    seed_everything(args.seed)
    return splits


def data_and_model(args: argparse.Namespace) -> tuple[Splits, nn.Module]:
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
