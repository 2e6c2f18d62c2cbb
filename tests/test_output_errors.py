"""Outputs that cannot be written are one OutputError naming the path and the reason, and
leave nothing half-written: a folder in the way, a parent that is a file, a full disk."""

import pytest
import torch
from safetensors import SafetensorError

import netshrink
from netshrink import models
from netshrink.errors import NetshrinkError, OutputError
from netshrink.fileio import atomic_write


def _model():
    torch.manual_seed(0)
    return models.create("mlp", (1, 4, 4), 3, widths=[8])


@pytest.mark.parametrize("suffix", [".safetensors", ".nsz"])
def test_a_folder_in_the_way_and_a_parent_that_is_a_file(tmp_path, suffix):
    (tmp_path / f"m{suffix}").mkdir()
    with pytest.raises(OutputError, match="a folder is in the way of the output file"):
        netshrink.save(_model(), tmp_path / f"m{suffix}")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OutputError, match=r"I/O error writing .*a-file/m"):
        netshrink.save(_model(), tmp_path / "a-file" / f"m{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", f"m{suffix}"]


def test_a_full_disk_is_one_output_error_and_leaves_nothing(tmp_path, monkeypatch):
    from netshrink import serialize

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(serialize, "save_file", full)
    with pytest.raises(OutputError, match=r"I/O error writing .*No space left on device"):
        netshrink.save(_model(), tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_reports_the_operating_systems_reason(tmp_path, monkeypatch):
    import os

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OutputError, match="No space left on device; check that its folder"):
        atomic_write(tmp_path / "x.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_metadata_that_is_not_json_is_refused_before_writing(tmp_path):
    with pytest.raises(NetshrinkError, match="JSON-serializable"):
        netshrink.save(_model(), tmp_path / "m.safetensors", metadata={"x": object()})
    assert list(tmp_path.iterdir()) == []
