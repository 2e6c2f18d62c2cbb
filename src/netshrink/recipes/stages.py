"""The kinds of recipe stage: how each resolves and checks its config, what model state it
needs and leaves, and how it runs. Each runs the library's own verb with its own config, so a
stage of a recipe is exactly what the same call in Python does.

Adding a kind of stage is one `Kind` subclass and one entry in `KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from netshrink.errors import NetshrinkError

FLOAT, SHARED, INTEGER = "float", "shared", "integer"


@dataclass
class Context:
    """What a running stage may use: the data, its folder, the files of earlier stages."""

    splits: object
    folder: Path
    stage_files: dict[str, Path]
    seed: int
    progress: bool | None = False  # None: a progress bar when stderr is a terminal
    model_factory: object = None  # builds a fresh instance of the user's model class, or None


class Kind:
    """One kind of stage. `resolve` returns the config with every default filled in (its
    identity), raising NetshrinkError naming the bad key; `run` changes the model in place
    (or returns a new one) and returns metrics."""

    compresses = False  # the dense reference for ratios is the stage before the first such

    def resolve(self, config: dict) -> dict:
        raise NotImplementedError

    def refuses(self, state: str, config: dict) -> str | None:
        """Why this stage cannot run on a model in `state`, or None."""
        if state == INTEGER:
            return "the model is already converted to integers; put this stage before quantize"
        if state == SHARED:
            return "the model's weights are shared (a codebook each); put this stage before share"
        return None

    def leaves(self, config: dict, state: str) -> str:
        return state

    def references(self, config: dict) -> dict[str, str]:
        """{key: earlier stage name} this config points to."""
        return {}

    def run(self, model: nn.Module, config: dict, ctx: Context) -> tuple[nn.Module, dict]:
        raise NotImplementedError


def _train_config(config: dict, seed: int):
    from netshrink.train import TrainConfig

    return TrainConfig.from_dict({"seed": seed, **config})


def _resolve_train(config: dict) -> dict:
    """TrainConfig's fields with defaults, but the seed only when given (else the recipe's)."""
    from netshrink.train import TrainConfig

    resolved = TrainConfig.from_dict(dict(config)).to_dict()
    if "seed" not in config:
        resolved.pop("seed")
    return resolved


class Train(Kind):
    """netshrink.train.fit with a TrainConfig (also "finetune", the same after compression)."""

    def resolve(self, config: dict) -> dict:
        return _resolve_train(config)

    def refuses(self, state: str, config: dict) -> str | None:
        if state == INTEGER:
            return ("a model converted to integers does not train; fine-tune during QAT "
                    "instead: quantize: {method: qat, train: {...}}")
        return None

    def run(self, model: nn.Module, config: dict, ctx: Context) -> tuple[nn.Module, dict]:
        from netshrink.train import fit

        result = fit(model, ctx.splits, _train_config(config, ctx.seed),
                     log_csv=ctx.folder / "log.csv", progress=ctx.progress)
        return model, {"train_seconds": result.seconds, "iterations": result.iterations,
                       "early_stop_iteration": result.early_stop_iteration}


class Prune(Kind):
    """netshrink.prune_ with a PruneConfig."""

    compresses = True

    def resolve(self, config: dict) -> dict:
        from netshrink.prune import PruneConfig

        return PruneConfig.from_dict(config).to_dict()

    def run(self, model: nn.Module, config: dict, ctx: Context) -> tuple[nn.Module, dict]:
        import netshrink
        from netshrink.prune import PruneConfig

        mask = netshrink.prune_(model, PruneConfig.from_dict(config), ctx.splits)
        return model, {"density": mask.density(), "collapsed": list(mask.collapsed)}


class Structured(Kind):
    """netshrink.prune_ with a StructuredConfig: channels, neurons, heads removed for good."""

    compresses = True

    def resolve(self, config: dict) -> dict:
        from netshrink.prune import StructuredConfig

        return StructuredConfig.from_dict(config).to_dict()

    def run(self, model: nn.Module, config: dict, ctx: Context) -> tuple[nn.Module, dict]:
        import netshrink
        from netshrink.prune import StructuredConfig

        result = netshrink.prune_(model, StructuredConfig.from_dict(config), ctx.splits)
        (ctx.folder / "structured.txt").write_text(str(result) + "\n")
        return model, {"parameters_before": result.parameters_before,
                       "parameters_after": result.parameters_after}


class Share(Kind):
    """netshrink.share_ with a ShareConfig (k-means weight sharing), then fine-tunes the
    centroids (`train:`, a TrainConfig; {} skips it)."""

    compresses = True

    def resolve(self, config: dict) -> dict:
        from netshrink.pack import ShareConfig

        rest, train = _split_train(config, {"epochs": 1.0, "lr": 1e-4})
        shared = ShareConfig.from_dict(rest).to_dict()
        shared["skip"] = list(shared["skip"])
        return {**shared, "train": _resolve_train(train) if train else {}}

    def leaves(self, config: dict, state: str) -> str:
        return SHARED

    def run(self, model: nn.Module, config: dict, ctx: Context) -> tuple[nn.Module, dict]:
        import netshrink
        from netshrink.pack import ShareConfig
        from netshrink.train import fit

        rest, train = _split_train(config, {})
        report = netshrink.share_(model, ShareConfig.from_dict(rest))
        (ctx.folder / "share.txt").write_text(str(report) + "\n")
        if train:
            fit(model, ctx.splits, _train_config(train, ctx.seed), progress=ctx.progress)
        return model, {}


def _split_train(config: dict, default: dict | None) -> tuple[dict, dict | None]:
    rest = dict(config)
    train = rest.pop("train", default)
    if train is not None and not isinstance(train, dict):
        raise NetshrinkError(f"train must be a mapping of training options, got {train!r}")
    return rest, train


def _teacher_key(config: dict) -> tuple[dict, object]:
    rest = dict(config)
    teacher = rest.pop("teacher", None)
    if teacher is not None and not (isinstance(teacher, str) or (
            isinstance(teacher, dict) and set(teacher) == {"file"})):
        raise NetshrinkError(f"teacher must name an earlier stage or be {{file: PATH}}, got "
                             f"{teacher!r}")
    return rest, teacher


def _load_teacher(teacher, ctx: Context) -> nn.Module:
    import netshrink

    if isinstance(teacher, dict):
        return netshrink.load(teacher["file"])
    fresh = ctx.model_factory() if ctx.model_factory else None
    return netshrink.load(ctx.stage_files[teacher], model=fresh)


class Distill(Kind):
    """netshrink.distill of the current model from a teacher: an earlier stage's model (by
    name) or a file, with a DistillConfig and a TrainConfig (`train:`)."""

    def resolve(self, config: dict) -> dict:
        from netshrink.distill import DistillConfig

        rest, teacher = _teacher_key(config)
        if teacher is None:
            raise NetshrinkError("teacher: missing (an earlier stage's name, or {file: PATH})")
        rest, train = _split_train(rest, {})
        return {"teacher": teacher, **DistillConfig.from_dict(rest).to_dict(),
                "train": _resolve_train(train)}

    refuses = Train.refuses

    def references(self, config: dict) -> dict[str, str]:
        teacher = config.get("teacher")
        return {"teacher": teacher} if isinstance(teacher, str) else {}

    def run(self, model: nn.Module, config: dict, ctx: Context) -> tuple[nn.Module, dict]:
        from netshrink.distill import DistillConfig, distill

        rest, teacher = _teacher_key(config)
        rest, train = _split_train(rest, {})
        result = distill(model, _load_teacher(teacher, ctx), ctx.splits,
                         DistillConfig.from_dict(rest), _train_config(train, ctx.seed),
                         log_csv=ctx.folder / "log.csv", progress=ctx.progress)
        return model, {"train_seconds": result.seconds, "iterations": result.iterations}


QAT_TRAIN = {"epochs": 1.0, "lr": 1e-4}


class Quantize(Kind):
    """netshrink.quantize_ with Dynamic, Static or QAT (`method:`); QAT fine-tunes (`train:`,
    by distillation when `teacher:` names an earlier stage), then converts to integers."""

    compresses = True

    def resolve(self, config: dict) -> dict:
        from netshrink.quant.config import config_from_dict

        rest, teacher = _teacher_key(config)
        method = rest.get("method")
        rest, train = _split_train(rest, QAT_TRAIN if method == "qat" else None)
        if method != "qat" and (train is not None or teacher is not None):
            raise NetshrinkError("train and teacher apply to method qat only (it fine-tunes)")
        quantized = config_from_dict(dict(rest)).to_dict()
        quantized["skip"] = list(quantized["skip"])
        if method == "qat":
            quantized["train"] = _resolve_train(train)
            quantized["teacher"] = teacher
        return quantized

    def leaves(self, config: dict, state: str) -> str:
        return INTEGER

    def refuses(self, state: str, config: dict) -> str | None:
        if state == SHARED and config["method"] != "dynamic":
            return ("static and qat quantization refuse shared weights; quantize before share, "
                    "or use method: dynamic")
        return None if state == SHARED else super().refuses(state, config)

    def references(self, config: dict) -> dict[str, str]:
        teacher = config.get("teacher")
        return {"teacher": teacher} if isinstance(teacher, str) else {}

    def run(self, model: nn.Module, config: dict, ctx: Context) -> tuple[nn.Module, dict]:
        import netshrink
        from netshrink.quant import convert
        from netshrink.quant.config import config_from_dict
        from netshrink.train import fit

        rest, teacher = _teacher_key(config)
        rest, train = _split_train(rest, None)
        quant = config_from_dict(rest)
        needs_data = rest["method"] != "dynamic"
        report = netshrink.quantize_(model, quant, data=ctx.splits if needs_data else None)
        (ctx.folder / "quantization.txt").write_text(str(report) + "\n")
        if rest["method"] == "qat":
            config_ = _train_config(train, ctx.seed)
            if teacher is not None:
                from netshrink.distill import DistillConfig, distill

                distill(model, _load_teacher(teacher, ctx), ctx.splits, DistillConfig(),
                        config_, progress=ctx.progress)
            else:
                fit(model, ctx.splits, config_, progress=ctx.progress)
            report = convert(model)
        return model, {"layers": report.counts()}


class Export(Kind):
    """Write the model in a deployable format beside the stage's file: nsz (the compressed
    file: positions, shared or integer values, entropy coded), onnx (qdq or integer operators,
    integer models) or safetensors; the stage's bytes and accuracy are that file's."""

    FORMATS = ("onnx", "nsz", "safetensors")

    def resolve(self, config: dict) -> dict:
        unknown = set(config) - {"format", "mode"}
        if unknown:
            raise NetshrinkError(f"unknown export key {sorted(unknown)[0]!r}; known: format, mode")
        fmt = config.get("format", "safetensors")
        if fmt not in self.FORMATS:
            raise NetshrinkError(f"format={fmt!r} must be one of {', '.join(self.FORMATS)}")
        mode = config.get("mode", "qdq")
        if mode not in ("qdq", "integer"):
            raise NetshrinkError(f"mode={mode!r} must be qdq or integer")
        return {"format": fmt, "mode": mode}

    def refuses(self, state: str, config: dict) -> str | None:
        if config["format"] == "onnx" and state != INTEGER:
            return "format onnx exports integer models; put it after a quantize stage"
        return None

    def run(self, model: nn.Module, config: dict, ctx: Context) -> tuple[nn.Module, dict]:
        if config["format"] == "nsz":
            import netshrink

            path = netshrink.save(model, ctx.folder / "model.nsz")
            return model, {"export": path.name, "export_bytes": path.stat().st_size}
        if config["format"] == "onnx":
            from netshrink.quant import export_onnx

            example = ctx.splits.test.tensors[0][:1]
            path = export_onnx(model, example, ctx.folder / "model.onnx", mode=config["mode"])
            return model, {"export": str(path.name), "export_bytes": path.stat().st_size}
        return model, {}


KINDS: dict[str, Kind] = {
    "train": Train(), "finetune": Train(), "prune": Prune(), "distill": Distill(),
    "structured": Structured(), "share": Share(), "quantize": Quantize(), "export": Export(),
}
