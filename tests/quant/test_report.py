"""netshrink.quant.report: the per-layer fates that quantize_ returns, looked up, counted and
printed as a table."""

import pytest
import torch
from torch import nn

import netshrink
from netshrink.quant import Dynamic
from netshrink.quant.report import FATES, LayerFate, QuantReport

ROWS = [LayerFate("features.0", "Conv2d", "integer"),
        LayerFate("fc", "Linear", "skipped", "skip pattern 'fc'"),
        LayerFate("classifier.head", "Linear", "integer", "int8")]


def test_lookup_by_name_counts_and_names_by_fate():
    report = QuantReport(ROWS)
    assert len(report) == 3 and list(report) == ROWS
    assert report["fc"].detail == "skip pattern 'fc'"
    with pytest.raises(KeyError):
        report["nope"]
    assert report.names("integer") == ["features.0", "classifier.head"]
    assert report.names("float") == []
    assert report.counts() == {"integer": 2, "skipped": 1}
    assert report.to_dicts()[1] == {"name": "fc", "type": "Linear", "fate": "skipped",
                                    "detail": "skip pattern 'fc'"}
    assert repr(report) == "QuantReport(2 integer, 1 skipped)"


def test_the_table_aligns_its_columns():
    lines = str(QuantReport(ROWS)).splitlines()
    assert lines[0].split() == ["layer", "type", "fate", "detail"]
    assert len(lines) == 4
    assert {line.index(line.split()[1]) for line in lines[1:]} == {16}  # after the longest name
    assert lines[2].rstrip().endswith("skipped    skip pattern 'fc'")
    assert str(QuantReport([])) == "(no layers)"
    short = str(QuantReport([LayerFate("a", "X", "float")])).splitlines()
    assert short[1].startswith("a     X    float")  # headers set the minimum widths


def test_the_report_copies_its_rows():
    rows = list(ROWS)
    report = QuantReport(rows)
    rows.clear()
    assert len(report) == 3


def test_quantize_reports_every_layer_with_a_known_fate():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    report = netshrink.quantize_(model, Dynamic(skip=("2",)))
    assert isinstance(report, QuantReport)
    assert {r.fate for r in report} <= set(FATES)
    assert report["0"].fate == "integer" and report["2"].fate == "skipped"
