"""Tables and plots of sweep results: flatten rows, aggregate over seeds, Markdown, PNG.

Every comparison (pruning, quantization, distillation) reports the same way:

    rows = [flatten(r) for r in run_trials(trials, out)]
    rows = with_compression(rows)
    table = aggregate(rows, group_by=["method", "compression"], metrics=["test_accuracy"])
    plot_lines(table, x="compression", y="test_accuracy_mean", group=["method"],
               out_png=out / "accuracy.png", yerr="test_accuracy_std")
    text = markdown_table(table, ["method", "compression", "test_accuracy_mean", "n"])

Flat rows are plain dicts of scalars, so they go straight into CSV, SQLite or pandas.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_path, atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The fields of a run_trials row that are not spec fields, metrics or nested arguments.
ROW_FIELDS = ("trial_id", "status", "error", "seconds")
SPEC_SCALARS = ("task", "model", "data", "seed")
NESTED = ("model_args", "data_args", "train")


def scalar(value: object) -> object:
    """A value fit for a flat table: lists and dicts become compact JSON text."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def flatten(row: dict) -> dict:
    """A run_trials row as one flat dict.

    Keys: trial_id, status, error, seconds, task, model, data, seed; `model_args.K`,
    `data_args.K`, `train.K`; then the task's params and its metrics under their own names.
    A param or metric whose name is already taken is kept as `params.K` / `metrics.K`.
    Lists and dicts become JSON text (so `widths=[300, 100]` reads "[300,100]").
    """
    flat = {key: scalar(row.get(key)) for key in ROW_FIELDS}
    flat["status"] = flat["status"] or "ok"
    for key in SPEC_SCALARS:
        if key in row:
            flat[key] = scalar(row[key])
    for nested in NESTED:
        for key, value in sorted((row.get(nested) or {}).items()):
            flat[f"{nested}.{key}"] = scalar(value)
    for prefix in ("params", "metrics"):
        for key, value in (row.get(prefix) or {}).items():
            name = key if key not in flat else f"{prefix}.{key}"
            flat[name] = scalar(value)
    return flat


def with_compression(rows: Iterable[dict]) -> list[dict]:
    """Copies of flat rows with a `compression` column when it can be derived.

    compression = 1 / density = 1 / (1 - sparsity); a row that already has `compression` keeps
    it. Rows without sparsity or density are returned unchanged.
    """
    out = []
    for row in rows:
        row = dict(row)
        if _number(row.get("compression")) is None:
            density = _number(row.get("density"))
            sparsity = _number(row.get("sparsity"))
            if density is None and sparsity is not None:
                density = 1.0 - sparsity
            if density is not None and density > 0:
                row["compression"] = 1.0 / density
        out.append(row)
    return out


def _number(value) -> float | None:
    """`value` as a float when it is a real number (bools are not), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _sort_key(value):
    """Sort mixed values: None first, then numbers, then text."""
    if value is None:
        return (0, 0.0, "")
    number = _number(value)
    if number is not None:
        return (1, number, "")
    return (2, 0.0, str(value))


def aggregate(rows: Iterable[dict], group_by: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """Mean and spread of `metrics` over the rows of each `group_by` combination (e.g. seeds).

    Returns one dict per group, sorted by the group values: the group_by keys, `n` (rows in the
    group) and for each metric `M_mean`, `M_std` (sample standard deviation; None with fewer
    than two values) and `M_n` (rows where M is a number). Missing or non-numeric values are
    left out of a metric's statistics; a group with none has `M_mean` None.
    """
    if isinstance(group_by, str) or isinstance(metrics, str):
        raise NetshrinkError("group_by and metrics must be lists of column names, not strings")
    group_by, metrics = list(group_by), list(metrics)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        key = tuple(scalar(row.get(k)) for k in group_by)
        groups.setdefault(key, []).append(row)
    out = []
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k)):
        members = groups[key]
        entry = dict(zip(group_by, key, strict=True))
        entry["n"] = len(members)
        for metric in metrics:
            values = [v for v in (_number(m.get(metric)) for m in members) if v is not None]
            entry[f"{metric}_mean"] = statistics.fmean(values) if values else None
            entry[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else None
            entry[f"{metric}_n"] = len(values)
        out.append(entry)
    return out


def markdown_table(
    rows: Sequence[dict],
    columns: Sequence[str] | dict[str, str],
    float_format: str | dict[str, str] = ".4g",
) -> str:
    """A GitHub Markdown table of `columns` (a list of keys, or {key: header}).

    float_format: a format spec for floats (".4f", ".2%"), or {column: spec} with "" the default.
    None prints as an empty cell; "|" in text is escaped.
    """
    headers = dict(columns) if isinstance(columns, dict) else {c: c for c in columns}
    if not headers:
        raise NetshrinkError("markdown_table needs at least one column")
    formats = float_format if isinstance(float_format, dict) else {"": float_format}

    def cell(key: str, value) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            spec = formats.get(key, formats.get("", ".4g"))
            return "nan" if math.isnan(value) else format(value, spec)
        return str(scalar(value)).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(str(h).replace("|", "\\|") for h in headers.values()) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell(k, row.get(k)) for k in headers) + " |")
    return "\n".join(lines) + "\n"


def new_figure(width: float, height: float, dpi: int = 110) -> Figure:
    """A matplotlib Figure on the Agg canvas: no display, no pyplot state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write `fig` as a PNG at `path` atomically (complete or absent)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def plot_lines(
    rows: Sequence[dict],
    x: str,
    y: str,
    group: Sequence[str] | str | None,
    out_png: str | os.PathLike,
    logx: bool = True,
    yerr: str | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> Path:
    """Write a PNG of `y` against `x`, one line per `group` combination, error bars `yerr`.

    Rows are usually `aggregate` output (y="M_mean", yerr="M_std"). Points are sorted by x;
    rows whose x or y is not a number are skipped. Drawn with matplotlib's Agg canvas (no
    display needed) and written atomically.
    """
    keys = [group] if isinstance(group, str) else list(group or [])
    lines: dict[tuple, list[tuple[float, float, float]]] = {}
    for row in rows:
        xv, yv = _number(row.get(x)), _number(row.get(y))
        if xv is None or yv is None or (logx and xv <= 0):
            continue
        err = _number(row.get(yerr)) if yerr else None
        label = tuple(scalar(row.get(k)) for k in keys)
        lines.setdefault(label, []).append((xv, yv, err or 0.0))
    if not lines:
        raise NetshrinkError(f"nothing to plot: no row has numbers in both {x!r} and {y!r}")

    fig = new_figure(6.4, 4.4, dpi=120)
    ax = fig.add_subplot()
    for label in sorted(lines, key=lambda k: tuple(_sort_key(v) for v in k)):
        points = sorted(lines[label])
        xs, ys, es = zip(*points, strict=True)
        name = ", ".join(str(v) for v in label) or y
        ax.errorbar(xs, ys, yerr=es if yerr else None, marker="o", markersize=4, capsize=3,
                    label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", title=", ".join(keys) or None, title_fontsize="small")
    fig.tight_layout()
    return save_figure(fig, out_png)


def columns_of(rows: Iterable[dict]) -> list[str]:
    """Every key of `rows`, in order of first appearance."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def write_csv(rows: Sequence[dict], path: str | os.PathLike,
              columns: Sequence[str] | None = None) -> Path:
    """Write flat rows to a CSV file atomically; columns default to every key of every row."""
    columns = list(columns or columns_of(rows))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: scalar(row.get(k)) for k in columns})
    atomic_write(path, buffer.getvalue())
    return Path(path)
