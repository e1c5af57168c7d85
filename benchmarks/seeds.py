"""Summaries over distillation seeds: a grid cell distilled with several ``seed`` values is reported as the
mean ± sample standard deviation over seeds of each seed's mean final-epoch accuracy, beside the mean
evaluation spread (the std over one distillation's evaluation runs) and the mean wall times."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dd3d.table import collect


@dataclass
class SeedSummary:
    """One variant (e.g. a method) over its distillation seeds; accuracies in percent, times in seconds."""

    seeds: int
    mean: float
    std: float
    eval_spread: float
    per_seed: list[float]
    distill_s: float
    eval_s: float

    def cell(self) -> str:
        return f"{self.mean:.1f} ± {self.std:.1f}"


def summarise(eval_folders: list[Path], metric: str = "oa") -> SeedSummary | None:
    """The summary of ``metric`` (a metrics.json key stem: oa, instance_miou, class_miou) over the finished
    evaluations ``eval_folders`` (one per seed; missing ones are left out), or None when none has finished.
    The distillation is the evaluation folder's parent."""
    done = [f for f in eval_folders if (f / "metrics.json").is_file()]
    if not done:
        return None
    records = collect(done)
    oa = np.array([100 * r[f"{metric}_mean"] for r in records])
    distill_s = [json.loads((f.parent / "distill.json").read_text())["wall_time_s"] for f in done]
    return SeedSummary(len(done), float(oa.mean()), float(oa.std(ddof=1)) if len(oa) > 1 else 0.0,
                       float(np.mean([100 * r[f"{metric}_std"] for r in records])), [round(float(v), 1) for v in oa],
                       float(np.mean(distill_s)), float(np.mean([r["wall_time_s"] for r in records])))


def markdown_rows(rows: dict[str, SeedSummary | None]) -> str:
    """A markdown table, one row per variant: mean ± std over seeds, evaluation spread, per-seed values, times."""
    lines = ["| variant | OA over seeds | seeds | eval spread | per seed | distill s | eval s |",
             "|---|---|---|---|---|---|---|"]
    for name, s in rows.items():
        if s is None:
            lines.append(f"| {name} | — | 0 | | | | |")
            continue
        lines.append(f"| {name} | {s.cell()} | {s.seeds} | ± {s.eval_spread:.1f} | {', '.join(map(str, s.per_seed))} "
                     f"| {s.distill_s:.0f} | {s.eval_s:.0f} |")
    return "\n".join(lines)
