"""The report of a sweep folder (`netshrink report DIR`): plots, a Markdown report, a summary CSV.

Defaults, each overridable:
- x: `compression` (given by the task, or derived from sparsity or density), else `parameters`.
- y: every numeric metric except x and timings (names ending in "seconds").
- lines: the columns of the spec that vary across trials, except the seed and those that only
  move the point along x (a sparsity or a width, which x already shows); one line per
  combination. Points are the mean over seeds, error bars one standard deviation.
"""

from __future__ import annotations

import os
from pathlib import Path

from netshrink.bench.report import (
    aggregate,
    columns_of,
    flatten,
    markdown_table,
    plot_lines,
    scalar,
    with_compression,
    write_csv,
)
from netshrink.bench.results import load_rows
from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_write

X_CANDIDATES = ("compression", "parameters")
NOT_CONDITIONS = {"trial_id", "status", "error", "seconds", "seed"}
IDENTITY = {"task", "model", "data", "method"}  # never treated as a mere position along x


def write_report(
    folder: str | os.PathLike,
    x: str | None = None,
    ys: list[str] | None = None,
    group: list[str] | None = None,
    out: str | os.PathLike | None = None,
) -> list[Path]:
    """Write report.md, summary.csv and plots/*.png for the sweep in `folder`; return paths."""
    folder = Path(folder)
    out = Path(out) if out else folder
    raw = load_rows(folder)
    flat = with_compression([flatten(r) for r in raw])
    ok = [r for r in flat if r["status"] == "ok"]
    failed = [r for r in flat if r["status"] != "ok"]
    metrics = _metric_columns(raw)
    if ok and "compression" in columns_of(ok) and "compression" not in metrics:
        metrics.append("compression")
    conditions = [c for c in columns_of(flat) if c not in NOT_CONDITIONS and c not in metrics]

    x = x or next((c for c in X_CANDIDATES if any(_is_number(r.get(c)) for r in ok)), None)
    if x is not None and not any(_is_number(r.get(x)) for r in ok):
        raise NetshrinkError(f"--x {x}: no finished trial has a number in column {x!r}; "
                             f"columns: {', '.join(columns_of(flat))}")
    ys = ys or [m for m in metrics if m != x and not m.endswith("seconds")
                and any(_is_number(r.get(m)) for r in ok)]
    for y in ys:
        if not any(_is_number(r.get(y)) for r in ok):
            raise NetshrinkError(f"--y {y}: no finished trial has a number in column {y!r}")
    varying = [c for c in conditions if c != x and len({scalar(r.get(c)) for r in ok}) > 1]
    for name in group or []:
        if name not in columns_of(flat):
            raise NetshrinkError(f"--group {name}: no such column; columns: "
                                 f"{', '.join(columns_of(flat))}")
    lines = list(group) if group else _line_columns(ok, varying, x)
    keys = list(dict.fromkeys([*lines, *([x] if x else []), *varying]))
    table = aggregate(ok, keys, ys)

    written = []
    sections = []
    if x is None:
        sections.append("No plots: no column to put on the x axis (compression or parameters); "
                        "choose one with `netshrink report DIR --x COLUMN`.\n")
    for y in ys if x else []:
        _check_one_point_per_x(table, lines, x, y)
        png = out / "plots" / f"{_slug(y)}-vs-{_slug(x)}.png"
        plot_lines(table, x, f"{y}_mean", lines, png, logx=True, yerr=f"{y}_std",
                   title=f"{y} vs {x} (mean ± std over seeds)", ylabel=y)
        written.append(png)
        sections.append(f"## {y} vs {x}\n\n![{y} vs {x}]({png.relative_to(out).as_posix()})\n")
    for y in ys:
        cells = [{**t, y: _mean_std(t, y)} for t in table]
        sections.append(f"### {y}: mean ± std (n seeds)\n\n"
                        + markdown_table(cells, [*keys, y, f"{y}_n"]))
    if failed:
        sections.append(f"## Failed trials ({len(failed)})\n\n" + markdown_table(
            failed, ["trial_id", *varying, "seed", "error"]))

    fixed = {c: ok[0].get(c) for c in conditions if c not in varying and c != x} if ok else {}
    head = [f"# Sweep report: {folder.name}\n",
            f"{len(flat)} trials: {len(ok)} finished, {len(failed)} failed. Every trial's row: "
            "`results.csv` (and `results.sqlite`); the means below: `summary.csv`.\n"]
    if fixed:
        head.append("Same in every trial: " + ", ".join(
            f"`{k}={scalar(v)}`" for k, v in fixed.items() if v is not None) + "\n")
    if lines and x:
        head.append(f"One line per {', '.join(lines)}.\n")
    summary = write_csv(table, out / "summary.csv")
    report = out / "report.md"
    atomic_write(report, "\n".join(head + sections))
    return [report, summary, *written]


def _metric_columns(raw: list[dict]) -> list[str]:
    """The flat names of every metric, in order of first appearance."""
    names: dict[str, None] = {}
    for row in raw:
        base = flatten({**row, "metrics": {}})
        names.update(dict.fromkeys(k for k in flatten(row) if k not in base))
    return list(names)


def _line_columns(rows: list[dict], varying: list[str], x: str | None) -> list[str]:
    """Varying columns that tell lines apart: drop those that only move points along x.

    A column is dropped when, without it, every (other columns, x) point still belongs to
    exactly one combination of all columns: then x already shows it (a sparsity, a width).
    """
    if x is None:
        return varying
    kept = list(varying)
    removable = sorted((c for c in varying if c not in IDENTITY),
                       key=lambda c: -len({scalar(r.get(c)) for r in rows}))
    for column in removable:
        others = [c for c in kept if c != column]
        owners: dict[tuple, set] = {}
        for row in rows:
            point = tuple(scalar(row.get(c)) for c in [*others, x])
            owners.setdefault(point, set()).add(tuple(scalar(row.get(c)) for c in kept))
        if all(len(v) == 1 for v in owners.values()):
            kept = others
    return kept


def _check_one_point_per_x(table: list[dict], lines: list[str], x: str, y: str) -> None:
    seen: set[tuple] = set()
    for row in table:
        if row.get(f"{y}_mean") is None:
            continue
        point = (*(scalar(row.get(c)) for c in lines), scalar(row.get(x)))
        if point in seen:
            raise NetshrinkError(
                f"the line {dict(zip(lines, point, strict=False))} has several points at "
                f"{x}={point[-1]}: trials differ in a column that is not in --group; add it"
            )
        seen.add(point)


def _mean_std(row: dict, y: str) -> str:
    mean, std = row.get(f"{y}_mean"), row.get(f"{y}_std")
    if mean is None:
        return ""
    return f"{mean:.4g}" if std is None else f"{mean:.4g} ± {std:.2g}"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
