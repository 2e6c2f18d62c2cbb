"""Sweep tasks of the compressed transformer (netshrink reproduce transformer):

    transformer_distill   all-MiniLM-L6-v2's student: some of its layers (initialized from
                          the teacher's), distilled on the corpus's training sentences to the
                          teacher's embeddings (cosine) and its last layer's attention
                          relations (MiniLM), through netshrink.distill
    transformer_prune     a distilled student (or, with base "teacher", the teacher's own
                          `layers`) with attention heads and feed-forward neurons removed
                          (netshrink.prune_, StructuredConfig), recovered (or trained) by the
                          same distillation
    transformer_gptq      the original model's Linear and embedding weights at 4 and 3 bits,
                          GPTQ against round-to-nearest: agreement and file size
    transformer_measure   every stage as deployed: file bytes, agreement with the original on
                          held-out sentences (netshrink.quality), latency at batch 1 and 32
                          against PyTorch float32 and onnxruntime's own int8, one run

Earlier stages' files are read from <sweep>/trials/<id>/model.safetensors. Every figure of
quality is measured on held-out sentences (netshrink.data.corpus), never trained on.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from netshrink.bench.spec import TrialSpec
from netshrink.bench.tasks import Task, known_keys, trial_model
from netshrink.errors import NetshrinkError
from netshrink.train import Callback

if TYPE_CHECKING:
    from netshrink.data.inputs import Inputs
    from netshrink.data.splits import Splits
    from netshrink.models.minilm import SentenceEncoder
    from netshrink.train import TrainState

# What a student trains with (both stages): its own sentences' tokens are cut at max_tokens
# (teacher and student read the same cut sentence); word embeddings stay the teacher's.
TRAINING = {"batch_size": 32, "lr": 3e-4, "relation_weight": 1.0, "loss": "cosine",
            "max_tokens": 48, "val_sentences": 128, "test_sentences": 256,
            "train_sentences": None, "freeze_embeddings": True, "evaluations": 2, "threads": 2}
DISTILL_DEFAULTS = {"layers": [0, 3, 5], "steps": 200, **TRAINING}
PRUNE_DEFAULTS = {"heads_sparsity": 0.5, "ffn_sparsity": 0.75, "criterion": "l1",
                  "steps": 100, **TRAINING}
GPTQ_DEFAULTS = {"bits": [4, 3], "group_size": 128, "calibration_sentences": 128,
                 "eval_sentences": 2000, "threads": 2}
# row_bits: the stage whose Linear layers are GPTQ-rounded with one scale per row, so that
# int8 kernels run their own codes (netshrink.quant.weight_only.integer_linear), beside
# row_embedding_bits-bit embedding tables in groups of row_embedding_group_size (0: no stage)
MEASURE_DEFAULTS = {"eval_sentences": 2000, "repeats": 10, "threads": 2, "batches": [1, 32],
                    "embedding_bits": 4, "group_size": 128, "calibration_sentences": 128,
                    "latency_tokens": [32, 64], "row_bits": 4, "row_embedding_bits": 3,
                    "row_embedding_group_size": 64}
CORPUS = "python-docs"
TEACHER_BASE = "teacher"  # a prune trial's base: prune the teacher's layers, then distil
# options that are optional, not defaults, so that the trials without them keep their ids:
# hint_weight (TinyBERT's hidden-state hints) and bucket (batches of similar length) for both
# trainings; prune_rounds and round_steps (pruning in rounds, distilled between: see
# prune_rounds) for the prune stage only
OPTIONAL = ("hint_weight", "bucket")
PRUNE_OPTIONAL = ("prune_rounds", "round_steps")


class TrimPadding(Callback):
    """Cut each training batch of token inputs to its longest sentence (less compute)."""

    def on_batch(
        self,
        state: TrainState,
        inputs: Inputs,
        targets: torch.Tensor,
        indices: torch.Tensor,
    ) -> tuple[Inputs, torch.Tensor]:
        from netshrink.models.minilm import trim_padding

        return trim_padding(inputs), targets


def _corpus():
    from netshrink.data import corpus

    return corpus.load()


def sentence_splits(train: list[str], val: list[str], test: list[str], max_tokens: int) -> Splits:
    """Splits of token inputs (labels -1: the teacher's embeddings are the only targets)."""
    from netshrink.data import Examples, Splits
    from netshrink.data.inputs import example_shape
    from netshrink.models import minilm

    def part(sentences):
        inputs = minilm.token_inputs(sentences, max_tokens)
        return Examples(inputs, torch.full((len(sentences),), -1, dtype=torch.long))

    train_set = part(train)
    return Splits(CORPUS, train_set, part(val), part(test), 1, example_shape(train_set.inputs))


def _texts(p: dict) -> tuple[list[str], list[str], list[str]]:
    """(training, validation, test) sentences: validation from the end of the training part,
    test from the start of the held-out part."""
    text = _corpus()
    train = list(text.train[:p["train_sentences"]] if p["train_sentences"] else text.train)
    val = train[-p["val_sentences"]:]
    return train[:-p["val_sentences"]], val, list(text.heldout[:p["test_sentences"]])


def last_attention(model: SentenceEncoder, layer: int) -> tuple[str, str, str]:
    base = f"bert.encoder.layer.{layer}.attention.self"
    return f"{base}.query", f"{base}.key", f"{base}.value"


def layer_hints(teacher: SentenceEncoder, student: SentenceEncoder) -> tuple[tuple[str, str], ...]:
    """TinyBERT's uniform layer map for hidden-state hints (every token's output matched by
    mean squared error): student layer i stands for the teacher's layer (i + 1) * N / M - 1,
    so the last matches the last."""
    depth, taught = len(teacher.bert.encoder.layer), len(student.bert.encoder.layer)
    return tuple((f"bert.encoder.layer.{(i + 1) * depth // taught - 1}",
                  f"bert.encoder.layer.{i}") for i in range(taught))


def relation_heads(student: SentenceEncoder, teacher: SentenceEncoder) -> int:
    """MiniLM's relation heads: the teacher's head count when the student's last layer has it,
    else the most, up to the student's own heads (after head pruning), that split both
    widths evenly (11 heads of 32 against the teacher's 384: 8)."""
    s = student.bert.encoder.layer[-1].attention.self
    t = teacher.bert.encoder.layer[-1].attention.self
    if s.num_attention_heads == t.num_attention_heads:
        return t.num_attention_heads
    common = math.gcd(s.all_head_size, t.all_head_size)
    return max(h for h in range(1, s.num_attention_heads + 1) if common % h == 0)


def distill_student(
    student: SentenceEncoder,
    teacher: SentenceEncoder,
    p: dict,
    workdir: Path,
    log_name: str = "log.csv",
) -> dict:
    """Train `student` toward `teacher` (embeddings + last-layer relations); its metrics."""
    from netshrink.distill import DistillConfig, Relation, distill
    from netshrink.train import TrainConfig

    train, val, test = _texts(p)
    splits = sentence_splits(train, val, test, p["max_tokens"])
    relations = ()
    if p["relation_weight"]:
        relations = (Relation(last_attention(teacher, len(teacher.bert.encoder.layer) - 1),
                              last_attention(student, len(student.bert.encoder.layer) - 1),
                              relation_heads(student, teacher), p["relation_weight"]),)
    hint_weight = p.get("hint_weight", 0.0)
    hints = layer_hints(teacher, student) if hint_weight else ()
    config = DistillConfig(loss=p["loss"], relations=relations, hints=hints,
                           hint_weight=hint_weight)
    train_config = TrainConfig(optimizer="adamw", lr=p["lr"], batch_size=p["batch_size"],
                               iterations=p["steps"], lr_schedule="cosine",
                               eval_every=max(1, p["steps"] // p["evaluations"]), device="cpu",
                               bucket=p.get("bucket", False))
    student.bert.embeddings.word_embeddings.weight.requires_grad_(not p["freeze_embeddings"])
    student.train()
    result = distill(student, teacher, splits, config, train_config, [TrimPadding()],
                     log_csv=workdir / log_name, progress=False)
    student.eval()
    student.bert.embeddings.word_embeddings.weight.requires_grad_(True)
    history = result.history[-1] if result.history else {}
    # [step, validation cosine] at every evaluation: whether the training still gains at its end
    curve = [[row["iteration"], row.get("val_cosine")] for row in result.history]
    return {"test_cosine": result.test_cosine, "val_cosine": history.get("val_cosine"),
            "val_curve": curve,
            "train_seconds": result.seconds, "steps": result.iterations,
            "train_sentences": len(train)}


def _threads(n: int) -> None:
    torch.set_num_threads(int(n))


def _trial_file(workdir: Path, trial_id: str) -> Path:
    return trial_model(workdir, trial_id, "earlier", "run the earlier stages first")


def check_distill(params: dict) -> None:
    known_keys(params, {*OPTIONAL, *DISTILL_DEFAULTS}, "transformer_distill")
    _check_optional(params)


def _check_optional(params: dict) -> None:
    from netshrink import checks

    if "hint_weight" in params:
        checks.real(params["hint_weight"], "hint_weight", 0.0)
    if "bucket" in params:
        checks.boolean(params["bucket"], "bucket")
    if "prune_rounds" in params:
        checks.positive_integer(params["prune_rounds"], "prune_rounds")
    if "round_steps" in params:
        checks.positive_integer(params["round_steps"], "round_steps")


def distill_task(spec: TrialSpec, workdir: Path) -> dict:
    import netshrink
    from netshrink import measure
    from netshrink.models import minilm

    p = {**DISTILL_DEFAULTS, **spec.params}
    _threads(p["threads"])
    netshrink.train.seed_everything(spec.seed)
    teacher = minilm.pretrained()
    student = minilm.student(teacher, p["layers"])
    before = _initial_cosine(student, teacher, p)
    metrics = distill_student(student, teacher, p, workdir)
    netshrink.save(student, workdir / "model.safetensors")
    return {**metrics, "initial_test_cosine": before,
            "parameters": measure.count_parameters(student)}


@torch.no_grad()
def _initial_cosine(student, teacher, p: dict) -> float:
    from netshrink.distill.callback import agreement
    from netshrink.models import minilm

    test = list(_corpus().heldout[:p["test_sentences"]])
    return agreement(student, teacher, minilm.token_inputs(test, p["max_tokens"]))


def check_prune(params: dict) -> None:
    known_keys(params, {"base", "layers", *OPTIONAL, *PRUNE_OPTIONAL, *PRUNE_DEFAULTS},
               "transformer_prune")
    _check_optional(params)
    if "base" not in params:
        raise NetshrinkError("a transformer_prune trial needs params.base (the distill trial, "
                             f"or {TEACHER_BASE!r} with layers: the teacher's layers to keep)")
    if (params["base"] == TEACHER_BASE) != ("layers" in params):
        raise NetshrinkError(f"transformer_prune: layers (the teacher's layers to keep) go with "
                             f"base {TEACHER_BASE!r} and only with it")


def _taylor_data(teacher, p: dict) -> tuple[dict, torch.Tensor]:
    """(token inputs, the teacher's embeddings) of the first training sentences: the taylor
    criterion ranks units by the first-order change of the distillation loss to the teacher,
    not by a classification loss the student never had."""
    from netshrink.distill.cache import compute_logits
    from netshrink.models import minilm
    from netshrink.prune.criteria import TAYLOR_EXAMPLES

    inputs = minilm.token_inputs(_texts(p)[0][:TAYLOR_EXAMPLES], p["max_tokens"])
    return inputs, compute_logits(teacher, inputs, batch_size=128)[0]


def _distill_loss(p: dict):
    """The distillation's own loss (p["loss"]: cosine or embedding_mse), batch-averaged."""
    from netshrink.distill.losses import output_loss

    return lambda embeddings, targets: output_loss(embeddings, targets, p["loss"]).mean()


def _kept(n: int, sparsity: float) -> int:
    """Units a group of `n` keeps at `sparsity` (as netshrink.prune_ rounds it)."""
    return n - int(sparsity * n + 1e-9)


def prune_rounds(
    heads: int,
    ffn: int,
    p: dict,
) -> list[tuple[int, int, int]]:
    """[(heads kept, neurons kept, steps distilled after)] of every round, from a layer of
    `heads` heads and `ffn` neurons to the sparsities of `p`.

    One round (the default) prunes to the target, then distils all p["steps"]. With R
    rounds (iterative pruning: R even cuts of the units to remove, each ranked on the
    student as it is then), each of the first R - 1 rounds is distilled p["round_steps"]
    steps (default: together half of the steps), the last the rest: the same steps in all,
    the final architecture trained longest, and no cut so deep that the student must
    relearn from far.
    """
    rounds = p.get("prune_rounds", 1)
    steps = p["steps"]
    each = p.get("round_steps", steps // (2 * (rounds - 1)) if rounds > 1 else 0)
    if rounds > 1 and not 1 <= each < steps / (rounds - 1):
        raise NetshrinkError(f"transformer_prune: {rounds - 1} rounds of round_steps={each} "
                             f"leave no steps of {steps} for the last; lower round_steps or "
                             "prune_rounds")
    target = (_kept(heads, p["heads_sparsity"]), _kept(ffn, p["ffn_sparsity"]))
    plan = []
    for r in range(1, rounds + 1):
        kept = tuple(n - round((n - t) * r / rounds) for n, t in zip((heads, ffn), target,
                                                                       strict=True))
        plan.append((*kept, each if r < rounds else steps - (rounds - 1) * each))
    return plan


def _prune_to(student, heads: int, ffn: int, p: dict, data, example) -> None:
    """Remove heads and neurons of every layer of `student` down to `heads` and `ffn`."""
    import netshrink
    from netshrink.prune import StructuredConfig

    layer = student.bert.encoder.layer[0]
    now = {"heads": layer.attention.self.num_attention_heads,
           "ffn": layer.intermediate.dense.out_features}
    for target, kept in (("heads", heads), ("ffn", ffn)):
        if kept < now[target]:
            rate = (now[target] - kept) / now[target]
            netshrink.prune_(student, StructuredConfig(criterion=p["criterion"], sparsity=rate,
                                                       targets=(target,)),
                             data, loss_fn=_distill_loss(p), example=example)


def prune_task(spec: TrialSpec, workdir: Path) -> dict:
    import netshrink
    from netshrink import measure
    from netshrink.models import minilm

    p = {**PRUNE_DEFAULTS, **spec.params}
    _threads(p["threads"])
    netshrink.train.seed_everything(spec.seed)
    check_prune(spec.params)
    teacher = minilm.pretrained()
    if p["base"] == TEACHER_BASE:  # prune first: every step trains the final architecture
        student = minilm.student(teacher, p["layers"])
    else:
        student = netshrink.load(_trial_file(workdir, p["base"]))
    example = minilm.tokenize(list(_corpus().train[:4]))
    before = measure.count_parameters(student)
    data = _taylor_data(teacher, p) if p["criterion"] == "taylor" else None
    layer = student.bert.encoder.layer[0]
    plan = prune_rounds(layer.attention.self.num_attention_heads,
                        layer.intermediate.dense.out_features, p)
    rounds, curve, seconds, offset = [], [], 0.0, 0
    for r, (heads, ffn, steps) in enumerate(plan):
        _prune_to(student, heads, ffn, p, data, example)
        pruned_cosine = _initial_cosine(student, teacher, p)
        name = "log.csv" if len(plan) == 1 else f"log-round{r + 1}.csv"
        metrics = distill_student(student, teacher, {**p, "steps": steps}, workdir, name)
        rounds.append({"heads": heads, "ffn": ffn, "steps": steps,
                       "pruned_test_cosine": pruned_cosine,
                       "test_cosine": metrics["test_cosine"]})
        curve += [[offset + step, value] for step, value in metrics["val_curve"]]
        seconds += metrics["train_seconds"]
        offset += steps
    netshrink.save(student, workdir / "model.safetensors")
    layer = student.bert.encoder.layer[0]
    extra = {"rounds": rounds} if len(plan) > 1 else {}
    return {**metrics, "val_curve": curve, "train_seconds": seconds, "steps": offset,
            "pruned_test_cosine": rounds[0]["pruned_test_cosine"], **extra,
            "parameters_before": before, "parameters": measure.count_parameters(student),
            "heads": layer.attention.self.num_attention_heads,
            "ffn": layer.intermediate.dense.out_features}


# --- measuring -----------------------------------------------------------------------------
@torch.inference_mode()
def encode(
    model: nn.Module | Callable[..., torch.Tensor],
    sentences: list[str],
    batch_size: int = 64,
) -> torch.Tensor:
    """Embeddings of `sentences` in their order, computed in batches of similar length (far
    less padding than in corpus order; padding changes no embedding)."""
    from netshrink.models import minilm

    if isinstance(model, torch.nn.Module):
        model.eval()
    lengths = [len(ids) for ids in minilm.tokenizer()(sentences)["input_ids"]]
    order = sorted(range(len(sentences)), key=lengths.__getitem__)
    out = [None] * len(sentences)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        embeddings = model(**minilm.tokenize([sentences[i] for i in chunk]))
        for i, e in zip(chunk, torch.as_tensor(embeddings), strict=True):
            out[i] = e
    return torch.stack(out).float()


def latency_sentences(sentences: Iterable[str], low: int, high: int, count: int) -> list[str]:
    """The first `count` sentences whose token count (with [CLS], [SEP]) is in [low, high]."""
    from netshrink.models import minilm

    found = []
    for sentence in sentences:
        n = len(minilm.tokenizer()(sentence)["input_ids"])
        if low <= n <= high:
            found.append(sentence)
            if len(found) == count:
                return found
    raise NetshrinkError(f"only {len(found)} held-out sentences have {low}-{high} tokens; "
                         f"{count} are needed")


def calibration(sentences: list[str]) -> list[dict]:
    """Batches of 32 token inputs for GPTQ's Hessians (training sentences)."""
    from netshrink.models import minilm

    return [minilm.tokenize(sentences[i:i + 32]) for i in range(0, len(sentences), 32)]


def weight_only(
    model: SentenceEncoder,
    bits: int,
    group_size: int,
    rounding: str,
    batches: list[dict] | None,
    skip: Sequence[str] = (),
    act_order: bool = False,
) -> SentenceEncoder:
    import copy

    import netshrink
    from netshrink.quant import WeightOnly

    quantized = copy.deepcopy(model)
    netshrink.quantize_(quantized, WeightOnly(bits=bits, group_size=group_size,
                                              rounding=rounding, skip=tuple(skip),
                                              act_order=act_order),
                        data=batches if rounding == "gptq" else None)
    return quantized


def check_gptq(params: dict) -> None:
    known_keys(params, set(GPTQ_DEFAULTS), "transformer_gptq")


def gptq_task(spec: TrialSpec, workdir: Path) -> dict:
    """GPTQ against round-to-nearest on the original model, at each bit width."""
    import netshrink
    from netshrink import quality
    from netshrink.models import minilm

    p = {**GPTQ_DEFAULTS, **spec.params}
    _threads(p["threads"])
    text = _corpus()
    sentences = list(text.heldout[:p["eval_sentences"]])
    batches = calibration(list(text.train[:p["calibration_sentences"]]))
    model = minilm.pretrained()
    reference = encode(model, sentences)
    metrics: dict = {"float_bytes": netshrink.save(model, workdir / "float.safetensors")
                     .stat().st_size}
    (workdir / "float.safetensors").unlink()
    for bits in p["bits"]:
        for rounding in ("rtn", "gptq"):
            start = time.perf_counter()
            quantized = weight_only(model, bits, p["group_size"], rounding, batches)
            seconds = time.perf_counter() - start
            path = netshrink.save(quantized, workdir / f"{rounding}{bits}.safetensors")
            figures = quality.agreement(reference, encode(quantized, sentences))
            key = f"{rounding}{bits}"
            metrics |= {f"{key}_{k}": v for k, v in figures.to_dict().items()}
            metrics |= {f"{key}_bytes": path.stat().st_size, f"{key}_seconds": seconds}
            path.unlink()
    return metrics


def check_measure(params: dict) -> None:
    known_keys(params, {"distill", "prune", *MEASURE_DEFAULTS}, "transformer_measure")
    if "distill" not in params or "prune" not in params:
        raise NetshrinkError("a transformer_measure trial needs params.distill and params.prune "
                             "(the earlier trials' ids)")
    bits = params.get("row_bits", MEASURE_DEFAULTS["row_bits"])
    if isinstance(bits, bool) or not isinstance(bits, int) or (bits and not 2 <= bits <= 6):
        raise NetshrinkError(f"transformer_measure: row_bits={bits!r} must be 0 (no such stage) "
                             "or 2 to 6 (codes minus their zero must stay within int8's "
                             "pairs: 7-bit at most)")


def measure_task(spec: TrialSpec, workdir: Path) -> dict:
    """Every stage as deployed, measured in one run (see the module docstring)."""
    import netshrink
    from netshrink import measure, quality
    from netshrink.models import minilm
    from netshrink.quant import minilm_deploy

    p = {**MEASURE_DEFAULTS, **spec.params}
    _threads(p["threads"])
    text = _corpus()
    sentences = list(text.heldout[:p["eval_sentences"]])
    batches = calibration(list(text.train[:p["calibration_sentences"]]))
    folder = Path(tempfile.mkdtemp(prefix="measure-", dir=workdir))
    teacher = minilm.pretrained()
    distilled = netshrink.load(_trial_file(workdir, p["distill"]))
    pruned = netshrink.load(_trial_file(workdir, p["prune"]))

    def saved(model, name: str) -> int:
        return netshrink.save(model, folder / f"{name}.safetensors").stat().st_size

    # stage -> (callable on token inputs, file bytes, what runs it)
    stages: dict[str, tuple] = {}
    stages["original float32"] = (teacher, saved(teacher, "teacher"), "PyTorch float32")
    ort_runner, ort_path = minilm_deploy.onnxruntime_int8(teacher, folder, p["threads"])
    stages["original, onnxruntime int8"] = (ort_runner, ort_path.stat().st_size,
                                            "onnxruntime quantize_dynamic")
    onnx_bytes: dict[str, int] = {}  # stage -> the size of the ONNX file its runner reads
    runner, path, quantized = minilm_deploy.int8(teacher, folder, p["threads"], "teacher-int8")
    stages["original, netshrink int8"] = (runner, saved(quantized, "teacher-int8"),
                                          minilm_deploy.RUNTIME)
    onnx_bytes["original, netshrink int8"] = path.stat().st_size
    stages["distilled (3 layers)"] = (distilled, saved(distilled, "distilled"),
                                      "PyTorch float32")
    stages["distilled + pruned"] = (pruned, saved(pruned, "pruned"), "PyTorch float32")
    runner, path, quantized = minilm_deploy.int8(pruned, folder, p["threads"], "pruned-int8")
    stages["distilled + pruned + int8"] = (runner, saved(quantized, "pruned-int8"),
                                           minilm_deploy.RUNTIME)
    onnx_bytes["distilled + pruned + int8"] = path.stat().st_size
    embeddings4 = weight_only(pruned, p["embedding_bits"], p["group_size"], "rtn", None,
                              skip=("bert.encoder",))
    runner, path, quantized = minilm_deploy.int8(embeddings4, folder, p["threads"], "final")
    final = f"distilled + pruned + int8 + {p['embedding_bits']}-bit embeddings"
    stages[final] = (runner, saved(quantized, "final"), minilm_deploy.RUNTIME)
    onnx_bytes[final] = path.stat().st_size
    if p["row_bits"]:
        rows = weight_only(pruned, p["row_bits"], None, "gptq", batches,
                           skip=("bert.embeddings",))
        rows = weight_only(rows, p["row_embedding_bits"], p["row_embedding_group_size"], "rtn",
                           None, skip=("bert.encoder",))
        runner, path, _ = minilm_deploy.int8(rows, folder, p["threads"], "rows")
        # the file holds the packed codes; the runner is built from it (exact integers)
        name = (f"distilled + pruned + {p['row_bits']}-bit GPTQ rows on int8 kernels + "
                f"{p['row_embedding_bits']}-bit embeddings")
        stages[name] = (runner, saved(rows, "rows"), minilm_deploy.RUNTIME)
        onnx_bytes[name] = path.stat().st_size
    gptq4 = weight_only(pruned, 4, p["group_size"], "gptq", batches)
    stages["distilled + pruned + 4-bit GPTQ (weight-only)"] = (
        gptq4, saved(gptq4, "gptq4"), "PyTorch float32 (weights dequantized per call)")

    reference = encode(teacher, sentences)
    metrics: dict = {"eval_sentences": len(sentences)}
    for name, (model, size, runtime) in stages.items():
        figures = quality.agreement(reference, encode(model, sentences)).to_dict()
        metrics |= {f"{name}|{k}": v for k, v in figures.items()}
        metrics |= {f"{name}|bytes": size, f"{name}|runtime": runtime}
        if name in onnx_bytes:
            metrics[f"{name}|onnx_bytes"] = onnx_bytes[name]
    low, high = p["latency_tokens"]
    for batch in p["batches"]:
        timed = latency_sentences(text.heldout, low, high, batch)
        inputs = minilm.tokenize(timed)
        stats = measure.compare_latency(
            {name: (lambda m=model, x=inputs: m(**x)) for name, (model, _, _) in stages.items()},
            repeats=p["repeats"], warmup=2, num_threads=p["threads"], settle=1,
            isolate=True)
        for name, s in stats.items():
            metrics[f"{name}|b{batch}_ms"] = 1000 * s.median
            metrics[f"{name}|b{batch}_p10_ms"] = 1000 * s.p10
            metrics[f"{name}|b{batch}_p90_ms"] = 1000 * s.p90
        metrics[f"latency_tokens_b{batch}"] = int(inputs["attention_mask"].shape[1])
    metrics["threads"] = p["threads"]
    metrics["cpu_flags"] = cpu_flags()
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()
    return {k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in metrics.items()}


def cpu_flags() -> str:
    """The vector extensions of this CPU that the integer kernels care about."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/vnni"


TASKS = {
    "transformer_distill": Task(distill_task, check_distill,
                                lambda p: {**DISTILL_DEFAULTS, **p}),
    "transformer_prune": Task(prune_task, check_prune, lambda p: {**PRUNE_DEFAULTS, **p}),
    "transformer_gptq": Task(gptq_task, check_gptq, lambda p: {**GPTQ_DEFAULTS, **p}),
    "transformer_measure": Task(measure_task, check_measure,
                                lambda p: {**MEASURE_DEFAULTS, **p}),
}
