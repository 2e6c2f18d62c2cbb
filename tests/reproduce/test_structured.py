"""The structured-pruning reproduction: its trials and its tables (no training here)."""

from pathlib import Path

from netshrink.reproduce import ReproOptions, structured
from netshrink.reproduce.template import Run


def test_default_plan_has_every_arm_for_every_seed_and_a_latency_run_per_model():
    s = structured.settings(ReproOptions(out=Path("x")))
    bases, prunes, latency = structured.stages(s, ReproOptions(out=Path("x")))
    assert len(bases) == 2 * 3
    arms = len(s["criteria"]) + len(s["torch_pruning"]) + 1
    recovery = sum(len(arm["models"]) for arm in s["recovery_arms"])
    assert len(prunes) == 3 * len(s["sparsities"]) * (2 * arms + recovery)
    assert {p.params["engine"] for p in prunes} == {"netshrink", "torch-pruning",
                                                    "unstructured", "dense"}
    assert len(latency) == 2 * len(s["sparsities"])
    assert all(p.params["base"] in {b.trial_id for b in bases} for p in prunes)


def test_tables_from_finished_rows(tmp_path):
    options = ReproOptions(out=tmp_path, seeds=(0,))
    s = structured.settings(options)
    bases, prunes, latency = structured.stages(s, options)
    rows = [{"trial_id": b.trial_id, "metrics": {"test_accuracy": 0.9}} for b in bases]
    rows += [{"trial_id": p.trial_id, "metrics": {
        "test_accuracy": 0.89, "parameters_before": 100, "parameters_after": 30,
        "flops_before": 1000, "flops_after": 300}} for p in prunes]
    key = "netshrink:group_l1:layerwise"
    rows += [{"trial_id": t.trial_id, "metrics": {
        "dense|torch|64|speedup": 1.0, f"{key}|torch|64|speedup": 3.5,
        f"{key}|torch|64|median_ms": 1.0, f"{key}|torch|1|speedup": 1.5,
        f"{key}|torch|1|median_ms": 1.0, "dense|torch|64|median_ms": 3.5}} for t in latency]
    text = structured.tables(Run(options, s, "note", rows))
    assert "| netshrink group_l1 | 89.00 | 1.00 | 30 | 300 | 1.50x | 3.50x |" in text
    assert "3.50x at batch 64 (target 3x: met)" in text
    assert "netshrink group_l1: 1.00 points lost" in text
    assert "resnet 50%: netshrink group_l1 +0.00 points against Torch-Pruning l1" in text
    assert ("| netshrink group_l1, distilled from the dense net 2 epochs | 89.00 | 1.00 | 30 | "
            "300 | 1.50x | 3.50x |") in text  # the latency of its architecture, group_l1's
    assert "Torch-Pruning l1, fine-tuned 6 epochs: 1.00 points lost" in text
    assert ("netshrink group_l1, fine-tuned 6 epochs: +0.00 points against the dense net "
            "trained as long") in text
    assert "1 point" in text and (tmp_path / "accuracy_vs_speedup.png").is_file()


def test_recovery_arms_are_trials_of_their_own_and_keep_the_plain_arms_ids():
    s = structured.settings(ReproOptions(out=Path("x")))
    _, prunes, _ = structured.stages(s, ReproOptions(out=Path("x")))
    distilled = [p for p in prunes if p.params.get("recovery") == "distill"]
    assert {p.model for p in distilled} == {"resnet", "vgg"}
    assert len({p.trial_id for p in prunes}) == len(prunes)
    plain = next(p for p in prunes if p.params["criterion"] == "group_l1"
                 and "recovery" not in p.params and p.model == "resnet")
    longer = next(p for p in prunes if p.params.get("recovery") == "finetune"
                  and p.params["engine"] == "netshrink" and p.seed == plain.seed)
    assert longer.params["finetune"]["epochs"] == 3 * plain.params["finetune"]["epochs"]
    assert "recovery" not in longer.resolved()["params"]  # "finetune" is the default
