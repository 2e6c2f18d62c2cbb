"""netshrink.reproduce.transformer_tables: the tables of the transformer reproduction, from
trial metrics written by hand (no model is trained or timed)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from netshrink.reproduce import transformer_tables as tables

FIGURES = {"cosine_mean": 0.9, "cosine_p5": 0.8, "neighbours": 0.85, "spearman": 0.7}


def measured():
    m = {}
    for stage, size, b1, b32 in [(tables.ORIGINAL, 90e6, 10.0, 100.0),
                                 (tables.ONNXRUNTIME, 23e6, 5.0, 40.0),
                                 ("pruned embeddings int8", 8e6, 2.0, 16.0)]:
        m |= {f"{stage}|runtime": "torch", f"{stage}|bytes": size, f"{stage}|b1_ms": b1,
              f"{stage}|b32_ms": b32, **{f"{stage}|{k}": v for k, v in FIGURES.items()}}
    m["eval_sentences"] = 1000  # keys without a stage are not stages
    return m


def test_stage_rows_compare_each_stage_with_the_original_and_onnxruntime():
    rows = tables.stage_rows(measured())
    assert [r["stage"] for r in rows] == [tables.ORIGINAL, tables.ONNXRUNTIME,
                                          "pruned embeddings int8"]
    last = rows[-1]
    assert last["smaller"] == pytest.approx(90 / 8)
    assert last["b1_speedup"] == pytest.approx(5.0) and last["b32_speedup"] == pytest.approx(
        100 / 16)
    assert last["b32_vs_onnxruntime_int8"] == pytest.approx(40 / 16)
    assert rows[0]["smaller"] == 1.0 and last["cosine_mean"] == 0.9


def test_a_stage_without_a_figure_is_n_a():
    m = measured()
    del m[f"{tables.ORIGINAL}|b1_ms"]
    m["pruned embeddings int8|b32_ms"] = 0  # no ratio to a zero (or a missing) time
    row = tables.stage_rows(m)[-1]
    assert row["b1_speedup"] is None and row["b32_speedup"] is None
    line = tables.stages_markdown([row])[-1]
    assert line.startswith("| pruned embeddings int8 | torch | 8.00 | - | 11.25x | 2.0 | n/a | ")
    m["pruned embeddings int8|onnx_bytes"] = 8.5e6
    assert "| 8.00 | 8.50 | 11.25x |" in tables.stages_markdown(tables.stage_rows(m))[-1]
    assert line.endswith("| 0.9000 | 0.8000 | 0.8500 | 0.7000 |")
    assert len(tables.stages_markdown([row])) == 3  # header, rule, one row


def test_gptq_rows_in_bit_order_and_their_table():
    metrics = {"float_bytes": 100.0, "gptq4_bytes": 20.0, "gptq4_seconds": 12.4,
               "rtn4_bytes": 20.0, "rtn8_bytes": 30.0,
               **{f"gptq4_{k}": v for k, v in FIGURES.items()}}
    rows = tables.gptq_rows(metrics)
    assert [(r["bits"], r["rounding"]) for r in rows] == [(8, "rtn"), (4, "rtn"), (4, "gptq")]
    assert rows[2]["smaller"] == 5.0 and rows[2]["cosine_mean"] == 0.9
    assert rows[0]["seconds"] is None and rows[0]["spearman"] is None
    lines = tables.gptq_markdown(rows, 64)
    assert "groups of 64 weights" in lines[0]
    assert lines[-1] == "| 4 | GPTQ | 0.00 | 5.00x | 0.9000 | 0.8000 | 0.8500 | 0.7000 | 12 |"
    assert lines[-3].startswith("| 8 | round to nearest | 0.00 | 3.33x | n/a |")


def test_training_rows_say_which_way_the_student_was_pruned():
    distilled = {"steps": 10, "train_seconds": 5.6, "initial_test_cosine": 0.1,
                 "test_cosine": 0.75, "parameters": 1234567}
    pruned = {"steps": 3, "train_seconds": 2.0, "pruned_test_cosine": 0.5, "test_cosine": 0.8,
              "parameters": 1000, "heads": 2, "ffn": 100}
    lines = tables.training_markdown(distilled, pruned)
    assert lines[2] == ("| distill (layers of the teacher, then trained) | 10 | 320 | 6 | "
                        "0.1000 | 0.7500 | 1,234,567 |")
    assert lines[3].startswith("| prune heads (2 kept) and FFN (100 kept), recover | 3 | 96 |")
    first = tables.training_markdown(None, pruned, prune_first=True)
    assert len(first) == 3 and "of the teacher's layers pruned, then distilled" in first[2]


def test_training_curves_follow_the_table():
    pruned = {"steps": 600, "train_seconds": 2.0, "pruned_test_cosine": 0.5, "test_cosine": 0.8,
              "parameters": 1000, "heads": 2, "ffn": 100,
              "val_curve": [[300, 0.71234], [600, 0.75]]}
    lines = tables.training_markdown(None, pruned, prune_first=True)
    assert lines[-1] == ("Validation cosine along the prune step's training (step: mean cosine "
                         "on the 128 validation sentences): 300: 0.7123, 600: 0.7500")
    assert len(tables.training_markdown(None, {**pruned, "val_curve": []})) == 3


def test_targets_judge_the_final_embeddings_stage():
    assert tables.targets([]) == ["- the final stage was not measured"]
    m = measured()
    # a larger stage with quantized embeddings, listed after it, is not the pipeline's end
    m |= {k.replace("pruned embeddings int8", "pruned int8 + 8-bit embeddings"): v
          for k, v in m.items() if k.startswith("pruned embeddings int8|")}
    m["pruned int8 + 8-bit embeddings|bytes"] = 12e6
    rows = tables.stage_rows(m)
    assert rows[-1]["stage"] == "pruned int8 + 8-bit embeddings"
    lines = tables.targets(rows)
    assert lines[0] == "- final stage (pruned embeddings int8):"
    assert "11.25x smaller than float32 (target 10x: met; TinyBERT's 7.5x: met)" in lines[1]
    assert "6.25x faster at batch 32, same run (target 5x: met; TinyBERT's 9.4x: not met)" \
        in lines[2]
    assert "mean cosine 0.9000 (target 0.95: not met)" in lines[3]
    assert "overlap 0.8500 (target 0.8: met)" in lines[4]


def test_write_assembles_the_sections_of_the_trials_that_ran(tmp_path):
    rows = {"measure": {"metrics": {**measured(), "threads": 2, "cpu_flags": "avx2",
                                    "latency_tokens_b32": 64}}}
    run = SimpleNamespace(settings={"measure": {"repeats": 5}, "prune": {},
                                    "gptq": {"group_size": 32}},
                          note="A note.", out=Path(tmp_path), row=rows.get)
    written = []
    text = tables.write(run, lambda s: "distill", lambda s: "prune", lambda s: "gptq",
                        lambda s: "measure", "Targets", "anchors here",
                        lambda r, path: written.append(path))
    assert text.startswith("# all-MiniLM-L6-v2 compressed end to end\n\nA note.\n")
    assert "## Every stage as deployed (1,000 held-out sentences)" in text
    assert "median ms of 5 runs" in text and "(CPU: avx2)" in text
    assert "## Training" not in text and "## GPTQ" not in text  # those trials did not run
    assert text.rstrip().endswith("Anchors: anchors here")
    assert written == [tmp_path / "stages.csv"]
