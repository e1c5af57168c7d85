"""Collect ``dd3d eval`` results into a Table-1/2-style table (rows dataset × setting × cpc × metric, columns methods).

Classification rows report OA; segmentation rows (paper Table 2) report point OA, instance mIoU and
class mIoU, one row each. ``by="backbone"`` pivots to the cross-architecture layout of Table 3
(rows dataset × … × method, columns the evaluation backbones).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from dd3d.distill import METHODS
from dd3d.errors import DD3DError
from dd3d.models import CLASSIFIERS

#: column order of the methods: the registry's (coresets, matching baselines, DD3D last)
METHOD_ORDER = list(METHODS)
#: metric key in metrics.json -> row label; segmentation records have the mIoU keys too
METRICS = {"oa": "OA", "instance_miou": "instance mIoU", "class_miou": "class mIoU"}


def _metrics_file(path: Path) -> Path:
    for candidate in (path, path / "metrics.json", path / "eval" / "metrics.json"):
        if candidate.is_file():
            return candidate
    raise DD3DError(f"{path}: no metrics.json here or in {path / 'eval'} (run `dd3d eval` first)")


def collect(paths: list[Path]) -> list[dict[str, Any]]:
    """One record per evaluation folder, checked for the fields the table needs."""
    records = []
    for path in paths:
        file = _metrics_file(path)
        try:
            record = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DD3DError(f"{file}: not valid JSON") from None
        missing = [k for k in ("method", "cpc", "dataset", "setting", "oa_mean", "oa_std") if k not in record]
        if missing:
            raise DD3DError(f"{file}: missing {', '.join(missing)} (not written by `dd3d eval`?)")
        records.append(record)
    return records


def _column_name(record: dict[str, Any], by: str, backbones: set[str]) -> str:
    if by == "backbone":
        size = record.get("backbone_size", "full")
        return f"{record.get('backbone')}" + (f" ({size})" if size != "full" else "")
    name = record["method"]
    return f"{name} ({record.get('backbone')})" if len(backbones) > 1 else name


def _order(column: str, by: str) -> tuple[int, str]:
    order = METHOD_ORDER if by == "method" else list(CLASSIFIERS)
    head = column.split(" ")[0]
    return (order.index(head) if head in order else 99, column)


def _grid(records: list[dict[str, Any]], by: str) -> tuple[list[tuple], list[str], dict]:
    """Rows (dataset, setting, cpc, metric[, method]) × columns (methods, or backbones when ``by``
    is "backbone") -> the records of each cell."""
    backbones = {r.get("backbone") for r in records}
    cells: dict[tuple, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        for metric in (m for m in METRICS if f"{m}_mean" in r):
            key = (r["dataset"], r["setting"], r["cpc"], metric) + ((r["method"],) if by == "backbone" else ())
            cells[key][_column_name(r, by, backbones)].append(r)
    columns = sorted({c for row in cells.values() for c in row}, key=lambda c: _order(c, by))
    rows = sorted(cells, key=lambda k: (k[0], k[1], k[2] or 0, list(METRICS).index(k[3]),
                                        *(_order(k[4], "method") if by == "backbone" else ())))
    return rows, columns, cells


def _cell(entries: list[dict[str, Any]], metric: str) -> tuple[float, float] | None:
    """Mean ± std of ``metric`` over every run of every entry (e.g. 2 distillations × 5 evaluations)."""
    runs = [v for e in entries for v in e.get(f"{metric}_runs", [e[f"{metric}_mean"]])]
    if not runs:
        return None
    mean = sum(runs) / len(runs)
    std = (sum((v - mean) ** 2 for v in runs) / len(runs)) ** 0.5
    return 100 * mean, 100 * std


def _values(cells: dict, key: tuple, columns: list[str]) -> list[tuple[float, float] | None]:
    return [_cell(cells[key][c], key[3]) if c in cells[key] else None for c in columns]


def render_markdown(records: list[dict[str, Any]], by: str = "method") -> str:
    """Markdown table; ``by="backbone"`` gives the paper's Table 3 layout (columns backbones)."""
    rows, columns, cells = _grid(records, by)
    lead = ["dataset", "setting", "cpc", "metric"] + (["method"] if by == "backbone" else [])
    out = ["| " + " | ".join(lead + columns) + " |", "|---" * (len(lead) + len(columns)) + "|"]
    for key in rows:
        values = _values(cells, key, columns)
        best = max((v[0] for v in values if v is not None), default=None)
        text = []
        for v in values:
            if v is None:
                text.append("—")
            else:
                s = f"{v[0]:.2f} ± {v[1]:.2f}"
                text.append(f"**{s}**" if v[0] == best and len(values) > 1 else s)
        label = [str(k) for k in key[:3]] + [METRICS[key[3]]] + list(key[4:])
        out.append("| " + " | ".join(label + text) + " |")
    out.append("")
    out.append("Metrics (%) at the final epoch (OA: overall accuracy; mIoU: part segmentation), mean ± std over "
               "all evaluation runs; bold: best in row.")
    return "\n".join(out) + "\n"


def render_csv(records: list[dict[str, Any]], by: str = "method") -> str:
    rows, columns, cells = _grid(records, by)
    lead = ["dataset", "setting", "cpc", "metric"] + (["method"] if by == "backbone" else [])
    lines = [",".join(lead) + "," + ",".join(f"{c} mean,{c} std" for c in columns)]
    for key in rows:
        parts = []
        for v in _values(cells, key, columns):
            parts += ["", ""] if v is None else [f"{v[0]:.2f}", f"{v[1]:.2f}"]
        lines.append(",".join(str(k) for k in key) + "," + ",".join(parts))
    return "\n".join(lines) + "\n"
