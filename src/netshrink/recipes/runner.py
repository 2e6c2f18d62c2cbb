"""Running a recipe: stage after stage, each from the previous stage's file, resumable.

Layout of the output folder OUT:

    OUT/recipe.json                      the resolved recipe (every default filled in)
    OUT/stages/00-start-<id>/            the model before any stage
    OUT/stages/NN-<name>-<id>/           model.safetensors, result.json, the stage's own files
    OUT/results.md, results.csv, results.json   one row per stage: accuracy, bytes, latency
    OUT/model.safetensors (or model.nsz)  a copy of the last stage's file: the result to ship

A stage's id is the hash of its resolved config chained to the previous stage's id, so a stage
is the same exactly when everything before it is. It runs in a staging folder that becomes
`NN-<name>-<id>` in one rename once its model file and result are written: a stage is complete
or absent. A run killed at any moment (SIGKILL included) leaves only staging folders, deleted
by the next run, which resumes at the stage that was running; a finished stage never runs
again. Every stage starts from the model loaded back from the previous stage's file, so a
resumed run and an uninterrupted one compute exactly the same thing, and the accuracy reported
is always that of the model in the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_copy, atomic_write
from netshrink.recipes.schema import Recipe, Stage, check_layer_names, parse
from netshrink.recipes.stages import KINDS, Context

if TYPE_CHECKING:
    from netshrink.data.splits import Splits

STAGES = "stages"
RESULT = "result.json"
MODEL = "model.safetensors"


@dataclass
class RunResult:
    """What a run produced: one row per stage (start included) and the output folder."""

    out: Path
    rows: list[dict] = field(default_factory=list)

    def row(self, name: str) -> dict:
        for r in self.rows:
            if r["stage"] == name:
                return r
        raise KeyError(name)


def load_recipe(source: Recipe | dict | str | os.PathLike) -> Recipe:
    """A checked Recipe from a Recipe, a mapping, or a YAML file's path."""
    if isinstance(source, Recipe):
        return source
    if isinstance(source, dict):
        return parse(source)
    from netshrink.yamlfile import read_yaml

    path = Path(source)
    return parse(read_yaml(path), source=str(path))


def build_start(recipe: Recipe, splits: Splits, model_factory: Callable[[], nn.Module] | None
                ) -> nn.Module:
    """The model the first stage starts from."""
    import netshrink
    from netshrink import models
    from netshrink.train import seed_everything

    seed_everything(recipe.seed)
    spec = recipe.model
    if "file" in spec:
        return netshrink.load(spec["file"], model=model_factory() if model_factory else None)
    if model_factory is not None:
        return model_factory()
    return models.create(spec["name"], input_shape=splits.input_shape,
                         num_classes=splits.num_classes, init=spec.get("init", "default"),
                         **spec.get("args", {}))


def load_data(recipe: Recipe) -> Splits:
    from netshrink import data

    spec = dict(recipe.data)
    return data.load(spec.pop("name"), seed=recipe.seed, **spec)


def run(
    recipe: Recipe | dict | str | os.PathLike,
    out: str | os.PathLike,
    model_factory: Callable[[], nn.Module] | None = None,
    progress: bool | None = None,
    measure: bool = True,
    stages: str | os.PathLike | None = None,
) -> RunResult:
    """Run `recipe` (a Recipe, a mapping or a YAML path) into `out`, resuming where a previous
    run stopped. model_factory: builds a fresh float instance of your own model class (instead
    of the recipe's zoo model), used to start and to load each stage's file. stages: the folder
    of stage folders (default OUT/stages); recipes that share it share their common first
    stages (the same stage ids), each run once."""
    from netshrink.recipes.report import measure_rows, write_tables

    recipe = load_recipe(recipe)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NetshrinkError(f"--out {out} exists and is not a folder")
    splits = load_data(recipe)
    start = build_start(recipe, splits, model_factory)
    check_layer_names(recipe, start)  # a typo in a layer name is refused before any stage
    stage_root = Path(stages) if stages is not None else out / STAGES
    stage_root.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    _clean_staging(stage_root)
    atomic_write(out / "recipe.json", json.dumps(recipe.to_dict(), indent=2) + "\n")
    result = RunResult(out)
    previous = recipe.identity() + _files_digest(recipe.model)
    folder = _finished_or_run(stage_root, 0, "start", previous, recipe, start, splits,
                              lambda model, ctx: (model, {}), model_factory, progress)
    result.rows.append(_read(folder))
    files = {"start": folder / MODEL}
    for stage in recipe.stages:
        identity = stage.identity(previous + _files_digest(stage.config))
        folder = _finished_or_run(stage_root, stage.index, stage.name, identity, recipe,
                                  files[result.rows[-1]["stage"]], splits,
                                  _runner(stage, files, recipe, progress), model_factory,
                                  progress)
        row = _read(folder)
        result.rows.append(row)
        files[stage.name] = folder / MODEL
        previous = identity
    if measure:
        measure_rows(recipe, result.rows, files, splits, model_factory)
    final = Path(result.rows[-1]["file"])  # the file to ship, as OUT/model.<suffix>
    atomic_copy(final, out / f"model{final.suffix}")
    write_tables(recipe, result)
    return result


def _files_digest(config) -> str:
    """The SHA-256 of every file a config names ({file: PATH}: a model or a teacher), so a
    stage that reads a file is run again when the file changes, not only when its path does."""
    found = []

    def walk(value) -> None:
        if isinstance(value, dict):
            if set(value) == {"file"} and isinstance(value["file"], str):
                found.append(Path(value["file"]))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(config)
    if not found:
        return ""
    digest = hashlib.sha256()
    for path in found:
        if not path.is_file():
            raise NetshrinkError(f"{path}: no such model file (named by the recipe's "
                                 "{file: PATH})")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return ":" + digest.hexdigest()[:16]


def _runner(stage: Stage, files: dict[str, Path], recipe: Recipe, progress):
    def step(model: nn.Module, ctx: Context):
        ctx.stage_files = dict(files)
        return KINDS[stage.kind].run(model, stage.config, ctx)
    return step


def _finished_or_run(root: Path, index: int, name: str, identity: str, recipe: Recipe,
                     source, splits, step, model_factory, progress) -> Path:
    """The stage's folder: as found when it finished before, else run now and committed."""
    folder = root / f"{index:02d}-{name}-{identity}"
    if (folder / RESULT).exists():
        if progress is not False and index:
            print(f"  {recipe.name}: stage {index} {name}: reused {folder.name}", flush=True)
        return folder
    if progress is not False and index:
        print(f"  {recipe.name}: stage {index} {name}: running", flush=True)
    staging = root / f".{folder.name}.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    model = source if isinstance(source, nn.Module) else _load(source, model_factory)
    ctx = Context(splits, staging, {}, recipe.seed, progress, model_factory)
    began = time.perf_counter()
    model, metrics = step(model, ctx)
    seconds = time.perf_counter() - began
    _save_and_check(model, staging, name, metrics, seconds, splits, model_factory)
    os.replace(staging, folder)
    return folder


def _load(path: Path, model_factory) -> nn.Module:
    import netshrink

    return netshrink.load(path, model=model_factory() if model_factory else None)


def _save_and_check(model: nn.Module, folder: Path, name: str, metrics: dict, seconds: float,
                    splits, model_factory) -> None:
    """Save the model, evaluate the one loaded back from the file, write result.json last."""
    import netshrink
    from netshrink.train import evaluate

    path = netshrink.save(model, folder / MODEL, metadata={"stage": name})
    export = metrics.get("export")
    if export and export.endswith(".nsz"):  # the file a user ships is the one measured
        path = folder / export
    loaded = _load(path, model_factory)
    _, accuracy = evaluate(loaded, splits.test)
    row = {"stage": name, "test_accuracy": accuracy, "bytes": path.stat().st_size,
           "file_name": path.name, "seconds": seconds, **metrics}
    if export:
        row["bytes"] = metrics["export_bytes"]
    atomic_write(folder / RESULT, json.dumps(row, indent=2, default=str) + "\n")


def _read(folder: Path) -> dict:
    """A finished stage's row, with where its files are now."""
    row = json.loads((folder / RESULT).read_text())
    row["folder"] = str(folder)
    row["file"] = str(folder / row.get("file_name", MODEL))
    return row


def _clean_staging(stages: Path) -> None:
    for leftover in stages.glob(".*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)
