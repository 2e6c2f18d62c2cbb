"""The OBD reproduction: curve unpacking and a tiny run."""

from netshrink.reproduce import ReproOptions, obd, run


def test_curve_rows_unpack_mode_fraction_field():
    rows = [{"data": "d", "seed": 0, "status": "ok", "params": {"method": "obd"},
             "metrics": {"trained.train_loss": 0.1, "one-shot.0.5.train_loss": 0.3,
                         "iterative.0.5.train_loss_after": 0.2}}]
    curves = obd.curve_rows(rows)
    assert {(r["mode"], r["fraction"]) for r in curves} == {("one-shot", 0.5),
                                                            ("iterative", 0.5)}


def test_tiny_run(tmp_path, monkeypatch):
    base = obd.settings

    def tiny(options):
        s = base(options)
        s.update(model_args={"widths": [8]}, seeds=[0], fractions=[0.0, 0.5],
                 train={"batch_size": 64, "iterations": 20}, retrain={"iterations": 5})
        return s

    monkeypatch.setattr(obd, "settings", tiny)
    run("obd", ReproOptions(out=tmp_path, executor="serial"))
    text = (tmp_path / "results.md").read_text()
    assert "| 50% |" in text and "OBD predicted" in text
    assert (tmp_path / "deletion_digits.png").stat().st_size > 0
    assert "Failed trials" not in text
