"""The template every reproduction runs on: config first, trials swept into OUT/sweep, the
tables given only finished trials, failed ones listed, never a KeyError."""

import json
import types

from netshrink.bench import TrialSpec
from netshrink.reproduce import REPRODUCTIONS, ReproOptions, names, template

TRAIN = {"batch_size": 64, "iterations": 2}
GOOD = TrialSpec("train", "mlp", "digits", {"widths": [4]}, train=TRAIN)
BAD = TrialSpec("train", "mlp", "digits", {"widths": [0]}, train=TRAIN)  # fails when built
LATER = TrialSpec("train", "mlp", "digits", {"widths": [5]}, train=TRAIN)


def _protocol(seen: dict):
    def tables(run):
        seen["rows"] = run.rows
        good, bad = run.row(GOOD), run.row(BAD)
        return (f"# toy\n\n{run.note}\n\ngood {good['metrics']['parameters']}, "
                f"bad {'n/a' if bad is None else bad['status']}\n")

    return types.SimpleNamespace(
        settings=lambda options: {"seeds": list(options.seeds or (0,))},
        describe=lambda options, s: f"toy run, seeds {s['seeds']}",
        stages=lambda s, options: [[GOOD, BAD], [LATER]],
        tables=tables)


def test_config_sweep_tables_and_failed_trials(tmp_path, capsys):
    seen: dict = {}
    options = ReproOptions(out=tmp_path, executor="serial")
    run = template.run("toy", _protocol(seen), options)
    assert [r["trial_id"] for r in seen["rows"]] == [GOOD.trial_id, LATER.trial_id]
    assert run.row(BAD) is None and run.seconds > 0
    text = (tmp_path / "results.md").read_text()
    assert "toy run, seeds [0]" in text and "bad n/a" in text
    assert "## Failed trials (1)" in text
    assert f"- {BAD.trial_id} train mlp digits seed=0: NetshrinkError: mlp widths" in text
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["reproduction"] == "toy" and config["settings"] == {"seeds": [0]}
    assert [t["trial_id"] for t in config["trials"]] == [s.trial_id for s in (GOOD, BAD, LATER)]
    assert (tmp_path / "sweep" / "trials" / GOOD.trial_id / "result.json").is_file()
    assert "wrote into" in capsys.readouterr().out
    # a rerun resumes: nothing runs again, the same report
    template.run("toy", _protocol(seen), options)
    assert (tmp_path / "results.md").read_text() == text


def test_every_reproduction_module_has_the_protocol():
    import importlib

    assert list(names()) == list(REPRODUCTIONS)
    for module, _ in REPRODUCTIONS.values():
        protocol = importlib.import_module(module)
        for name in ("settings", "describe", "stages", "tables"):
            assert callable(getattr(protocol, name)), (module, name)


def test_the_pruning_tables_say_nothing_ran_instead_of_raising(tmp_path):
    from pathlib import Path

    from netshrink.reproduce import distillation, lottery, obd, synflow
    from netshrink.reproduce.template import Run

    for protocol in (obd, lottery, synflow, distillation):
        options = ReproOptions(out=Path(tmp_path))
        settings = protocol.settings(options)
        text = protocol.tables(Run(options, settings, "note", rows=[]))
        assert text.startswith("# ")


def test_the_quantization_table_says_n_a_for_a_model_without_rows():
    from netshrink.reproduce import quantization

    float_only = [{"model": "minilm", "method": "float", "top1": 1.0, "latency_ms_b1": None,
                   "latency_ms_b256": 300.0, "size_mb": 90.3}]
    text = quantization.markdown(quantization.summarize([]) + float_only,
                                 quantization.plan(False), False)
    assert "| minilm | 1.0000 | N/A | N/A |" in text
