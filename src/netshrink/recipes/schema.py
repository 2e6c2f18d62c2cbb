"""A recipe: data, a model, and stages applied in order, each the config of the Python API.

    name: lenet5-small-fast
    data: fashion-mnist            # or {name: mnist, val_size: 5000}
    model: lenet5                  # or {name: mlp, args: {widths: [100]}}, or {file: m.safetensors}
    seed: 0
    measure: {batch_sizes: [1, 256], threads: 2, repeats: 20}
    runtime: auto                  # statically quantized stages: auto | torch | onnxruntime
    stages:
      - train: {epochs: 10, lr_schedule: cosine}        # netshrink.train.TrainConfig
      - prune: {method: magnitude, sparsity: 0.9}       # netshrink.prune.PruneConfig
      - finetune: {epochs: 3}                           # TrainConfig again
      - distill: {teacher: train, temperature: 4, train: {epochs: 3}}
      - quantize: {method: static}                      # Dynamic / Static / QAT fields
      - export: {format: onnx}

Each stage is a mapping with one key, its kind, whose value holds the fields of that kind's
config (and `name:` beside it to name the stage; the default is the kind, numbered when it
repeats). Everything is checked before any stage runs: an unknown kind or key, a wrong type or
value, a teacher that names no earlier stage, an order that cannot work (pruning, training or
quantizing a model already converted to integers) are one error naming the stage and the key.

`runtime` is how statically quantized stages are timed (netshrink.quant.compile_int8: their
integer program on the fastest runtime, "auto", or the one named); float and dynamic stages
are timed as PyTorch modules.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netshrink.errors import NetshrinkError

if TYPE_CHECKING:
    from torch import nn

RECIPE_KEYS = ("name", "data", "model", "seed", "measure", "runtime", "stages")
RUNTIMES = ("auto", "torch", "onnxruntime")  # netshrink.quant.int8.RUNTIMES
MEASURE_DEFAULTS = {"batch_sizes": [1, 256], "threads": 2, "repeats": 20, "warmup": 3}


@dataclass(frozen=True)
class Stage:
    """One resolved stage: its kind, name, position and config (as plain JSON values)."""

    index: int
    kind: str
    name: str
    config: dict

    def identity(self, previous: str) -> str:
        """The hash of this stage's resolved config chained to the stage before it, so a
        stage is the same (and not run again) exactly when everything up to it is."""
        text = json.dumps({"previous": previous, "kind": self.kind, "config": self.config},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Recipe:
    """A checked recipe (see the module docstring)."""

    name: str
    data: dict
    model: dict
    seed: int
    measure: dict
    stages: tuple[Stage, ...] = field(default_factory=tuple)
    runtime: str = "auto"

    def to_dict(self) -> dict:
        return {"name": self.name, "data": self.data, "model": self.model, "seed": self.seed,
                "measure": self.measure, "runtime": self.runtime,
                "stages": [{s.kind: s.config, "name": s.name} for s in self.stages]}

    def identity(self) -> str:
        """The hash of what every stage starts from (data, model, seed)."""
        text = json.dumps({"data": self.data, "model": self.model, "seed": self.seed},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse(document: object, source: str = "recipe") -> Recipe:
    """A checked Recipe from a parsed YAML / JSON document (errors start with `source`)."""
    from netshrink.recipes.stages import KINDS

    if not isinstance(document, dict):
        raise NetshrinkError(f"{source}: a recipe is a mapping with {', '.join(RECIPE_KEYS)}")
    for key in document:
        if key not in RECIPE_KEYS:
            raise NetshrinkError(f"{source}: unknown key {key!r}{_hint(key, RECIPE_KEYS)}; "
                                 f"known: {', '.join(RECIPE_KEYS)}")
    for key in ("data", "model", "stages"):
        if key not in document:
            raise NetshrinkError(f"{source}: missing key {key!r}")
    name = document.get("name", "recipe")
    if not isinstance(name, str) or not name:
        raise NetshrinkError(f"{source}: name must be text, got {name!r}")
    seed = document.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise NetshrinkError(f"{source}: seed must be an integer in [0, 2**63), got {seed!r}")
    data = _data(document["data"], source)
    model = _model(document["model"], source)
    measure = _measure(document.get("measure") or {}, source)
    runtime = document.get("runtime", "auto")
    if runtime not in RUNTIMES:
        raise NetshrinkError(f"{source}: runtime must be one of {', '.join(RUNTIMES)} (how "
                             f"statically quantized stages are timed), got {runtime!r}")
    raw = document["stages"]
    if not isinstance(raw, list) or not raw:
        raise NetshrinkError(f"{source}: stages must be a non-empty list of stages")
    stages: list[Stage] = []
    names: set[str] = set()
    for index, item in enumerate(raw, start=1):
        kind, config, stage_name = _split(item, index, KINDS, source)
        where = f"{source}: stage {index} ({kind})"
        try:
            resolved = KINDS[kind].resolve(copy.deepcopy(config))
        except NetshrinkError as err:
            raise NetshrinkError(f"{where}: {err}") from None
        stage_name = stage_name or _default_name(kind, names)
        if stage_name in names or stage_name == "start":
            raise NetshrinkError(f"{where}: the name {stage_name!r} is taken by an earlier stage")
        names.add(stage_name)
        stages.append(Stage(index, kind, stage_name, resolved))
    recipe = Recipe(name, data, model, seed, measure, tuple(stages), runtime)
    check_order(recipe, source)
    return recipe


def _hint(key, known) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _named(value, key: str, fields: tuple[str, ...], source: str) -> dict:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise NetshrinkError(f"{source}: {key} must be a name or a mapping with a name")
    for k in value:
        if k not in fields:
            raise NetshrinkError(f"{source}: {key}: unknown key {k!r}{_hint(k, fields)}; known: "
                                 f"{', '.join(fields)}")
    return dict(value)


def _data(value, source: str) -> dict:
    from netshrink import checks
    from netshrink import data as datasets

    data = _named(value, "data", ("name", "val_size", "root"), source)
    try:
        if data["name"].lower() not in datasets.names():
            raise NetshrinkError(f"name={data['name']!r} is not one of "
                                 f"{', '.join(datasets.names())}")
        if data.get("val_size") is not None:
            checks.integer(data["val_size"], "val_size", 0)
        if data.get("root") is not None:
            checks.text(data["root"], "root")
    except NetshrinkError as err:
        raise NetshrinkError(f"{source}: data: {err}") from None
    return data


def _model(value, source: str) -> dict:
    from netshrink.models.registry import INITS

    if isinstance(value, dict) and "file" in value:
        if set(value) != {"file"} or not isinstance(value["file"], str):
            raise NetshrinkError(f"{source}: model: {{file: PATH}} takes only the file's path")
        return dict(value)
    model = _named(value, "model", ("name", "args", "init"), source)
    if not isinstance(model.get("args", {}), dict):
        raise NetshrinkError(f"{source}: model: args must be a mapping of model arguments")
    if model.get("init", "default") not in INITS:
        raise NetshrinkError(f"{source}: model: init={str(model['init'])[:40]!r} must be one "
                             f"of {', '.join(INITS)}")
    return model


def _measure(value, source: str) -> dict:
    if not isinstance(value, dict):
        raise NetshrinkError(f"{source}: measure must be a mapping")
    reject_unknown_fields_dict(value, MEASURE_DEFAULTS, f"{source}: measure")
    out = {**MEASURE_DEFAULTS, **value}
    sizes = out["batch_sizes"]
    if not isinstance(sizes, list) or not sizes or not all(
            isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 65536 for b in sizes):
        raise NetshrinkError(f"{source}: measure: batch_sizes must be a list of integers in "
                             f"[1, 65536], got {sizes!r}")
    for key, low, high in (("threads", 1, 256), ("repeats", 1, 10_000), ("warmup", 0, 1000)):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise NetshrinkError(f"{source}: measure: {key} must be an integer in "
                                 f"[{low}, {high}], got {v!r}")
    return out


def reject_unknown_fields_dict(values: dict, known: dict, where: str) -> None:
    unknown = [k for k in values if k not in known]
    if unknown:
        raise NetshrinkError(f"{where}: unknown key {unknown[0]!r}{_hint(unknown[0], known)}; "
                             f"known: {', '.join(known)}")


def _split(item, index: int, kinds: dict, source: str) -> tuple[str, dict, str | None]:
    """(kind, config, name) of one stage item."""
    where = f"{source}: stage {index}"
    if isinstance(item, str):
        item = {item: {}}
    if not isinstance(item, dict):
        raise NetshrinkError(f"{where}: a stage is a mapping {{KIND: {{...}}}}, got {item!r}")
    name = item.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise NetshrinkError(f"{where}: name must be text, got {name!r}")
    keys = [k for k in item if k != "name"]
    if len(keys) != 1:
        raise NetshrinkError(f"{where}: a stage has exactly one kind ({', '.join(kinds)}), "
                             f"got {keys or 'none'}")
    kind = keys[0]
    if kind not in kinds:
        raise NetshrinkError(f"{where}: unknown stage {kind!r}{_hint(kind, kinds)}; choose "
                             f"from {', '.join(kinds)}")
    config = item[kind] if item[kind] is not None else {}
    if not isinstance(config, dict):
        raise NetshrinkError(f"{where} ({kind}): its config must be a mapping, got {config!r}")
    return kind, config, name


def _default_name(kind: str, names: set[str]) -> str:
    if kind not in names:
        return kind
    n = 2
    while f"{kind}-{n}" in names:
        n += 1
    return f"{kind}-{n}"


def check_order(recipe: Recipe, source: str = "recipe") -> None:
    """Refuse orders that cannot work, naming the stage: each kind says what state it needs
    (float weights, trainable weights) and what it leaves (integer, fake-quantized)."""
    from netshrink.recipes.stages import KINDS

    state = "float"
    seen: list[str] = []
    for stage in recipe.stages:
        kind = KINDS[stage.kind]
        where = f"{source}: stage {stage.index} ({stage.kind})"
        problem = kind.refuses(state, stage.config)
        if problem:
            raise NetshrinkError(f"{where}: {problem}")
        for key, reference in kind.references(stage.config).items():
            if reference not in seen:
                raise NetshrinkError(f"{where}: {key}: {reference!r} names no earlier stage; "
                                     f"earlier stages: {', '.join(seen) or 'none'}")
        state = kind.leaves(stage.config, state)
        seen.append(stage.name)


# the stage kinds whose configs name layers: kind -> the names their patterns match in a model
def _layer_names(kind: str, model) -> list[str] | None:
    if kind == "prune":
        from netshrink.prune import prunable

        return list(prunable(model))
    if kind == "share":
        from netshrink.pack.share import shareable

        return list(shareable(model))
    if kind in ("structured", "quantize"):
        return [n for n, _ in model.named_modules() if n]
    return None


def check_layer_names(recipe: Recipe, model: nn.Module, source: str = "recipe") -> None:
    """Refuse layer patterns (skip, layers) that name no layer of the model the recipe starts
    from, naming the stage, before any stage runs. Names do not change before the first
    quantize stage (which may decompose attention), so the stages up to it are checked; a
    model loaded already transformed is left to each stage's own check."""
    from netshrink.core.patterns import check_patterns
    from netshrink.core.transforms import recorded

    if recorded(model):
        return
    for stage in recipe.stages:
        names = _layer_names(stage.kind, model)
        if names is not None:
            try:
                for key in ("skip", "layers"):
                    check_patterns(list(stage.config.get(key) or ()), names, key)
            except NetshrinkError as err:
                raise NetshrinkError(f"{source}: stage {stage.index} ({stage.kind}): "
                                     f"{err}") from None
        if stage.kind == "quantize":
            return
