"""The tables of `netshrink reproduce transformer`: stages, training, GPTQ against RTN, targets.

Every number comes from the trials' metrics (netshrink.bench.tasks.transformer); a trial that
failed or did not run leaves its rows out (the template lists it below the tables).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netshrink.bench.tasks.transformer import TEACHER_BASE, TRAINING

if TYPE_CHECKING:
    from netshrink.bench.spec import TrialSpec
    from netshrink.reproduce.template import Run

ORIGINAL = "original float32"
ONNXRUNTIME = "original, onnxruntime int8"
FIGURES = ("cosine_mean", "cosine_p5", "neighbours", "spearman")
VAL_SENTENCES = TRAINING["val_sentences"]


def stage_rows(metrics: dict) -> list[dict]:
    """One row per stage of the measure trial's metrics ("stage|key": value)."""
    names = list(dict.fromkeys(k.split("|")[0] for k in metrics if "|" in k))
    base = {k.split("|")[1]: v for k, v in metrics.items() if k.startswith(ORIGINAL + "|")}
    ort = {k.split("|")[1]: v for k, v in metrics.items() if k.startswith(ONNXRUNTIME + "|")}
    rows = []
    for name in names:
        m = {k.split("|")[1]: v for k, v in metrics.items() if k.startswith(name + "|")}
        row = {"stage": name, "runtime": m.get("runtime"), "bytes": m.get("bytes"),
               "onnx_bytes": m.get("onnx_bytes"),
               "smaller": _ratio(base.get("bytes"), m.get("bytes"))}
        for batch in (1, 32):
            ms = m.get(f"b{batch}_ms")
            row[f"b{batch}_ms"] = ms
            row[f"b{batch}_speedup"] = _ratio(base.get(f"b{batch}_ms"), ms)
            row[f"b{batch}_vs_onnxruntime_int8"] = _ratio(ort.get(f"b{batch}_ms"), ms)
        row |= {k: m.get(k) for k in FIGURES}
        rows.append(row)
    return rows


def _ratio(a, b):
    return None if a is None or not b else a / b


def _fmt(value, digits: int = 3, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}{suffix}"


def stages_markdown(rows: list[dict]) -> list[str]:
    # file MB: the netshrink file a stage ships; ONNX MB: the file its onnxruntime session
    # reads, built from it (netshrink's int8 stages)
    lines = ["| stage | runs on | file MB | ONNX MB | x smaller | b1 ms | b1 speed-up | b32 ms "
             "| b32 speed-up | b32 vs onnxruntime int8 | cosine mean | cosine p5 | top-10 "
             "overlap | Spearman |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        onnx = r.get("onnx_bytes")
        lines.append("| " + " | ".join([
            r["stage"], str(r["runtime"]), _fmt((r["bytes"] or 0) / 1e6, 2),
            "-" if onnx is None else _fmt(onnx / 1e6, 2),
            _fmt(r["smaller"], 2, "x"), _fmt(r["b1_ms"], 1), _fmt(r["b1_speedup"], 2, "x"),
            _fmt(r["b32_ms"], 1), _fmt(r["b32_speedup"], 2, "x"),
            _fmt(r["b32_vs_onnxruntime_int8"], 2, "x"),
            *[_fmt(r[k], 4) for k in FIGURES]]) + " |")
    return lines


def gptq_rows(metrics: dict) -> list[dict]:
    rows = []
    for bits in (8, 7, 6, 5, 4, 3, 2):
        for rounding in ("rtn", "gptq"):
            key = f"{rounding}{bits}"
            if f"{key}_bytes" not in metrics:
                continue
            rows.append({"bits": bits, "rounding": rounding, "bytes": metrics[f"{key}_bytes"],
                         "smaller": _ratio(metrics.get("float_bytes"), metrics[f"{key}_bytes"]),
                         "seconds": metrics.get(f"{key}_seconds"),
                         **{k: metrics.get(f"{key}_{k}") for k in FIGURES}})
    return rows


def gptq_markdown(rows: list[dict], group_size: int) -> list[str]:
    lines = [f"Weight-only quantization of the original all-MiniLM-L6-v2 (every Linear and "
             f"embedding table; groups of {group_size} weights, one float16 scale and zero "
             "point each; embeddings round to nearest under both), agreement with float32 on "
             "the held-out sentences:", "",
             "| bits | rounding | file MB | x smaller | cosine mean | cosine p5 | top-10 overlap "
             "| Spearman | seconds to quantize |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join([
            str(r["bits"]), "GPTQ" if r["rounding"] == "gptq" else "round to nearest",
            _fmt(r["bytes"] / 1e6, 2), _fmt(r["smaller"], 2, "x"),
            *[_fmt(r[k], 4) for k in FIGURES], _fmt(r["seconds"], 0)]) + " |")
    return lines


def training_markdown(distilled: dict | None, pruned: dict | None,
                      prune_first: bool = False) -> list[str]:
    lines = ["| step | steps | sentences seen | seconds | cosine before | cosine after | "
             "parameters |", "|---|---|---|---|---|---|---|"]
    if distilled:
        lines.append(f"| distill (layers of the teacher, then trained) | {distilled['steps']} | "
                     f"{distilled['steps'] * 32:,} | {_fmt(distilled['train_seconds'], 0)} | "
                     f"{_fmt(distilled['initial_test_cosine'], 4)} | "
                     f"{_fmt(distilled['test_cosine'], 4)} | {distilled['parameters']:,} |")
    if pruned:
        what = (f"heads ({pruned['heads']} kept) and FFN ({pruned['ffn']} kept) of the "
                "teacher's layers pruned, then distilled" if prune_first else
                f"prune heads ({pruned['heads']} kept) and FFN ({pruned['ffn']} kept), recover")
        lines.append(f"| {what} | {pruned['steps']} | {pruned['steps'] * 32:,} | "
                     f"{_fmt(pruned['train_seconds'], 0)} | "
                     f"{_fmt(pruned['pruned_test_cosine'], 4)} | "
                     f"{_fmt(pruned['test_cosine'], 4)} | {pruned['parameters']:,} |")
    for name, m in (("distill", distilled), ("prune", pruned)):
        if m and m.get("val_curve"):
            lines += ["", f"Validation cosine along the {name} step's training (step: mean "
                      f"cosine on the {VAL_SENTENCES} validation sentences): " + ", ".join(
                          f"{step}: {_fmt(cosine, 4)}" for step, cosine in m["val_curve"])]
    return lines


def targets(rows: list[dict]) -> list[str]:
    # the pipeline's end: the smallest file among the stages with quantized embeddings
    ends = [r for r in rows if "embeddings" in r["stage"] and r["bytes"]]
    final = min(ends, key=lambda r: r["bytes"]) if ends else None
    if final is None:
        return ["- the final stage was not measured"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "not met"

    smaller, speed = final["smaller"] or 0, final["b32_speedup"] or 0
    cosine, overlap = final["cosine_mean"] or 0, final["neighbours"] or 0
    return [
        f"- final stage ({final['stage']}):",
        f"  - file {smaller:.2f}x smaller than float32 (target 10x: {verdict(smaller >= 10)}; "
        f"TinyBERT's 7.5x: {verdict(smaller >= 7.5)})",
        f"  - {speed:.2f}x faster at batch 32, same run (target 5x: {verdict(speed >= 5)}; "
        f"TinyBERT's 9.4x: {verdict(speed >= 9.4)})",
        f"  - mean cosine {cosine:.4f} (target 0.95: {verdict(cosine >= 0.95)})",
        f"  - top-10 neighbour overlap {overlap:.4f} (target 0.8: {verdict(overlap >= 0.8)})",
    ]


def write(
    run: Run,
    distill_trial: Callable[[dict], TrialSpec],
    prune_trial: Callable[[dict], TrialSpec],
    gptq_trial: Callable[[dict], TrialSpec],
    measure_trial: Callable[[dict], TrialSpec],
    target_text: str,
    anchors: str,
    write_csv: Callable[[Sequence[dict], Path], Path],
) -> str:
    s = run.settings

    def metrics_of(spec):
        row = run.row(spec)
        return None if row is None else row["metrics"]

    distilled, pruned = metrics_of(distill_trial(s)), metrics_of(prune_trial(s))
    gptq, measured = metrics_of(gptq_trial(s)), metrics_of(measure_trial(s))
    parts = ["# all-MiniLM-L6-v2 compressed end to end", "", run.note, ""]
    rows: list[dict] = []
    if measured:
        rows = stage_rows(measured)
        write_csv(rows, run.out / "stages.csv")
        parts += [f"## Every stage as deployed ({measured['eval_sentences']:,} held-out "
                  "sentences)", "",
                  f"Latency: median ms of {s['measure']['repeats']} runs, every stage timed "
                  f"alternately and isolated in one run, {measured['threads']} threads (CPU: "
                  f"{measured['cpu_flags']}), a batch of 1 and of 32 held-out sentences of "
                  f"32-64 tokens (padded to {measured.get('latency_tokens_b32')}); speed-ups "
                  "and sizes against the original float32 model in PyTorch. Quality: "
                  "agreement with the original float32 embeddings (netshrink.quality).", "",
                  *stages_markdown(rows), ""]
    if distilled or pruned:
        parts += ["## Training (netshrink.distill: cosine to the teacher's embeddings + MiniLM "
                  "attention relations of the last layer)", "",
                  "Cosine: mean on 256 held-out sentences (cut at 48 tokens), before and after "
                  "the step's training.", "", *training_markdown(distilled, pruned,
                                                   s["prune"].get("base") == TEACHER_BASE), ""]
    if gptq:
        g_rows = gptq_rows(gptq)
        write_csv(g_rows, run.out / "gptq.csv")
        parts += ["## GPTQ against round-to-nearest", "",
                  *gptq_markdown(g_rows, s["gptq"]["group_size"]), ""]
    parts += ["## The issue's targets", "", target_text + ".", "", *targets(rows), "",
              "Anchors: " + anchors, ""]
    return "\n".join(parts)
