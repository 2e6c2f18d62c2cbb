"""What the commands share: KEY=VALUE options and the --out folder."""

import pytest

from netshrink.cli.options import key_values, out_dir, parse_value
from netshrink.errors import NetshrinkError


def test_values_are_json_when_they_parse():
    assert parse_value("[800, 800]") == [800, 800]
    assert parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("glorot") == "glorot"
    assert key_values(["input-dropout=0.2", "widths=[8]"], "--arg") == {
        "input_dropout": 0.2, "widths": [8]}


def test_bad_key_values_and_an_out_file_are_refused(tmp_path):
    with pytest.raises(NetshrinkError, match="--arg 'widths' must look like key=value"):
        key_values(["widths"], "--arg")
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(NetshrinkError, match="exists and is not a folder"):
        out_dir(str(path))
    assert out_dir(str(tmp_path / "a" / "b")).is_dir()
