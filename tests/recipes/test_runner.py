"""A recipe runs stage after stage from files, resumes after any kill, never repeats a stage."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import netshrink

RECIPE = {
    "name": "tiny", "data": "digits", "model": {"name": "mlp", "args": {"widths": [32]}},
    "seed": 3, "measure": {"batch_sizes": [1, 32], "repeats": 3, "warmup": 1},
    "stages": [{"train": {"epochs": 10, "lr": 3e-3}},
               {"prune": {"method": "magnitude", "sparsity": 0.7}},
               {"finetune": {"epochs": 1}},
               {"distill": {"teacher": "train", "train": {"epochs": 1}}},
               {"quantize": {"method": "static"}}],
}


def _rows(folder: Path) -> dict:
    return {r["stage"]: r for r in json.loads((folder / "results.json").read_text())}


def _stage_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "stages").iterdir())


def test_a_recipe_runs_measures_and_does_not_run_a_finished_stage_again(tmp_path):
    result = netshrink.run(RECIPE, tmp_path / "run")
    rows = {r["stage"]: r for r in result.rows}
    assert list(rows) == ["start", "train", "prune", "finetune", "distill", "quantize"]
    assert rows["prune"]["density"] == pytest.approx(0.3, abs=1e-3)
    assert rows["quantize"]["bytes"] < rows["train"]["bytes"] / 2.5
    assert rows["train"]["test_accuracy"] > 0.5
    assert rows["quantize"]["x_smaller"] > 2.5 and "latency_ms_b32" in rows["quantize"]
    assert (tmp_path / "run" / "results.md").read_text().count("|") > 40
    assert {rows[s]["runtime"] for s in rows if s != "quantize"} == {"torch"}
    assert "onnxruntime" in rows["quantize"]["runtime"] or "torch" in rows["quantize"]["runtime"]
    assert rows["quantize"]["runtime_accuracy"] == pytest.approx(rows["quantize"]["test_accuracy"],
                                                                 abs=0.02)
    on_torch = netshrink.run({**RECIPE, "runtime": "torch"}, tmp_path / "torch",
                             stages=tmp_path / "run" / "stages")  # the same stages, re-timed
    named = on_torch.row("quantize")["runtime"]  # e.g. "b1: torch; b32: torch, fbgemm kernels"
    assert "torch" in named and "onnxruntime" not in named
    model = netshrink.load(next((tmp_path / "run" / "stages").glob("05-quantize-*"))
                           / "model.safetensors")
    assert netshrink.prune.density(model) == pytest.approx(0.3, abs=1e-3)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "run" / "stages").rglob("*.json")}
    again = netshrink.run(RECIPE, tmp_path / "run", measure=False)
    assert [r["test_accuracy"] for r in again.rows] == [r["test_accuracy"] for r in result.rows]
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing ran again
    changed = {**RECIPE, "stages": [*RECIPE["stages"][:2], {"finetune": {"epochs": 2}}]}
    netshrink.run(changed, tmp_path / "run", measure=False)
    names = _stage_folders(tmp_path / "run")
    assert sum(n.startswith("03-finetune") for n in names) == 2  # a new one beside the old
    assert sum(n.startswith("02-prune") for n in names) == 1     # the shared start reused


def test_a_run_killed_mid_stage_resumes_to_the_same_result(tmp_path):
    recipe = tmp_path / "r.yaml"
    slow = {**RECIPE, "stages": [{"train": {"epochs": 2}}, {"finetune": {"epochs": 20}},
                                 {"prune": {"sparsity": 0.5}}]}
    recipe.write_text(yaml.safe_dump(slow))
    netshrink.run(slow, tmp_path / "whole", measure=False)
    command = [sys.executable, "-m", "netshrink", "run", str(recipe), "--out",
               str(tmp_path / "killed"), "--no-measure"]
    process = subprocess.Popen(command, env={**os.environ})
    stages = tmp_path / "killed" / "stages"
    deadline = time.time() + 300
    while time.time() < deadline and not list(stages.glob(".02-finetune-*.tmp")):
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert list(stages.glob(".02-finetune-*.tmp")), "killed while the stage was running"
    assert not list(stages.glob("02-finetune-*")) and not (tmp_path / "killed" /
                                                           "results.json").exists()
    subprocess.run(command, check=True)
    whole, killed = _rows(tmp_path / "whole"), _rows(tmp_path / "killed")
    assert [r["test_accuracy"] for r in killed.values()] == \
        [r["test_accuracy"] for r in whole.values()]
    assert not list(stages.glob(".*.tmp"))


class Mine(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU())
        self.head = nn.Linear(24, 10)

    def forward(self, x):
        return self.head(self.body(x))


def test_a_recipe_runs_on_a_users_own_model_class(tmp_path):
    torch.manual_seed(0)
    result = netshrink.run({**RECIPE, "model": "mlp"}, tmp_path / "mine", model_factory=Mine)
    assert result.row("quantize")["test_accuracy"] > 0.3


def test_a_stage_that_reads_a_file_runs_again_when_the_file_changes(tmp_path):
    teacher = tmp_path / "teacher.safetensors"
    spec = {"name": "mlp", "args": {"widths": [16]}}
    netshrink.save(netshrink.models.create("mlp", (1, 8, 8), 10, widths=[16]), teacher)
    recipe = {**RECIPE, "model": spec,
              "stages": [{"distill": {"teacher": {"file": str(teacher)},
                                      "train": {"epochs": 1}}}]}
    netshrink.run(recipe, tmp_path / "run", measure=False)
    netshrink.run(recipe, tmp_path / "run", measure=False)
    assert sum(n.startswith("01-distill") for n in _stage_folders(tmp_path / "run")) == 1
    torch.manual_seed(1)
    netshrink.save(netshrink.models.create("mlp", (1, 8, 8), 10, widths=[16]), teacher)
    netshrink.run(recipe, tmp_path / "run", measure=False)
    assert sum(n.startswith("01-distill") for n in _stage_folders(tmp_path / "run")) == 2
    teacher.unlink()
    with pytest.raises(netshrink.errors.NetshrinkError, match=r"teacher\.safetensors"):
        netshrink.run(recipe, tmp_path / "run", measure=False)


def test_the_last_stages_file_is_copied_to_the_output_folder(tmp_path):
    recipe = {**RECIPE, "stages": [{"train": {"epochs": 1}}, {"export": {"format": "nsz"}}]}
    result = netshrink.run(recipe, tmp_path / "run", measure=False)
    shipped = tmp_path / "run" / "model.nsz"
    assert shipped.read_bytes() == Path(result.rows[-1]["file"]).read_bytes()
    assert not list((tmp_path / "run").glob(".*.tmp"))
