"""Tables of a comparison: CSV files, one JSON with every number, and a plain-text summary.

NaN (a number that could not be computed, e.g. a test with one pair) is written as an empty
CSV cell and as ``null`` in JSON.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from brainmis.analysis.comparison import (
    POOLED,
    UNIT_METRICS,
    Comparison,
    ConditionSummaryRow,
    ContrastRow,
    PairedTestRow,
    ProbingScoreRow,
    RunRow,
    TaskTestRow,
    WinRateRow,
)
from brainmis.analysis.probing_stats import AGGREGATE_SCOPES, MEAN_OF_SUBFIELDS, OVERALL

# file name -> (attribute of Comparison, row type)
CSV_TABLES = {
    "runs.csv": ("runs", RunRow),
    "condition_summary.csv": ("condition_summaries", ConditionSummaryRow),
    "paired_tests.csv": ("paired_tests", PairedTestRow),
    "probing_scores.csv": ("probing_scores", ProbingScoreRow),
    "probing_task_tests.csv": ("task_tests", TaskTestRow),
    "probing_win_rates.csv": ("win_rates", WinRateRow),
    "contrasts.csv": ("contrasts", ContrastRow),
    "task_group_contrasts.csv": ("group_contrasts", ContrastRow),
}


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_csv(rows: list[Any], row_type: type, path: Path) -> None:
    """Write dataclass ``rows`` of ``row_type`` as CSV (header from the fields, even if empty)."""
    names = [item.name for item in dataclasses.fields(row_type)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(getattr(row, name)) for name in names])


def comparison_as_dict(comparison: Comparison) -> dict[str, Any]:
    """Everything in the comparison as JSON-ready data (NaN -> None)."""
    options = dataclasses.asdict(comparison.options)
    settings = [
        {
            "model": setting.model,
            "dataset": setting.dataset,
            "conditions": setting.conditions,
            "subjects": setting.subjects,
            "folds": setting.folds,
            "seeds": setting.seeds,
            "result_kinds": setting.result_kinds,
            "n_cells": setting.n_cells,
            "n_runs_used": len(setting.runs),
        }
        for setting in comparison.matrix.settings
    ]
    missing = [
        {**dataclasses.asdict(cell.identity), "reason": cell.reason}
        for cell in comparison.matrix.missing
    ]
    tables = {
        name.removesuffix(".csv"): [dataclasses.asdict(row) for row in getattr(comparison, attr)]
        for name, (attr, _) in CSV_TABLES.items()
    }
    data = {
        "options": options,
        "metrics": UNIT_METRICS,
        "settings": settings,
        "missing": missing,
        "notes": comparison.notes,
        **tables,
    }
    return _json_value(data)


def write_tables(comparison: Comparison, out_dir: Path) -> list[str]:
    """Write every CSV table and ``comparison.json`` into ``out_dir``; return the file names."""
    names = []
    for name, (attr, row_type) in CSV_TABLES.items():
        if attr == "group_contrasts" and comparison.options.task_groups is None:
            continue
        write_csv(getattr(comparison, attr), row_type, out_dir / name)
        names.append(name)
    missing_rows = [
        {**dataclasses.asdict(cell.identity), "reason": cell.reason}
        for cell in comparison.matrix.missing
    ]
    with (out_dir / "missing.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle,
            fieldnames=["model", "dataset", "subject", "fold", "condition", "seed", "reason"],
        )
        writer.writeheader()
        writer.writerows(missing_rows)
    names.append("missing.csv")
    (out_dir / "comparison.json").write_text(
        json.dumps(comparison_as_dict(comparison), indent=1, allow_nan=False) + "\n"
    )
    names.append("comparison.json")
    return names


def format_number(value: float, digits: int = 3, signed: bool = False) -> str:
    """A table cell: fixed digits, ``+inf``/``-inf`` for infinities, ``-`` for NaN."""
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    if not math.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def format_p(value: float) -> str:
    """A p-value cell: 3 decimals, or 2 significant digits below 0.001."""
    if not math.isfinite(value):
        return "-"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def format_effect(ci_low: float, ci_high: float, dz: float) -> str:
    """``[95% CI low, high], d_z x`` beside a mean difference (``-`` where undefined)."""
    interval = f"[{format_number(ci_low, signed=True)}, {format_number(ci_high, signed=True)}]"
    return f"95% CI {interval}, d_z {format_number(dz, 2, signed=True)}"


def format_wins(row: ContrastRow) -> str:
    """``wins a% vs b% (a - b 95% CI over tasks [low, high] points)``."""
    text = f"wins {format_number(100 * row.win_rate_a, 0)}% vs {format_number(100 * row.win_rate_b, 0)}%"
    if not math.isfinite(row.win_difference_ci_low):
        return text
    low = format_number(100 * row.win_difference_ci_low, 0, signed=True)
    high = format_number(100 * row.win_difference_ci_high, 0, signed=True)
    return f"{text} (a - b, 95% CI over tasks [{low}, {high}] points)"


def _mean_sem(row: ConditionSummaryRow | None) -> str:
    if row is None or not math.isfinite(row.mean):
        return "-"
    sem = f" ± {row.sem:.3f}" if math.isfinite(row.sem) else ""
    return f"{row.mean:.3f}{sem}"


# Columns of the condition table: (metric, header). "task mean" = the Holmes overall (mean
# over tasks), "subfield mean" = the mean of the subfield means.
CONDITION_COLUMNS = (
    ("lm_loss", "LM loss"),
    ("brain_alignment", "brain r"),
    ("probing_score", "probing (task mean)"),
    ("probing_score_mean_of_subfields", "probing (subfield mean)"),
    ("probing_rank_score", "rank (task mean)"),
    ("probing_rank_score_mean_of_subfields", "rank (subfield mean)"),
)
CONDITION_HEADER = ["condition", *[header for _, header in CONDITION_COLUMNS], "subjects"]
SCOPE_TEXT = {OVERALL: "probing (task mean)", MEAN_OF_SUBFIELDS: "probing (subfield mean)"}


def condition_table_rows(comparison: Comparison, model: str, dataset: str) -> list[list[str]]:
    """Rows ``[condition, *CONDITION_COLUMNS, subjects]`` of one setting: mean ± s.e.m. over
    subjects (each subject averaged over its folds and seeds)."""
    summaries = {
        (row.condition, row.metric): row
        for row in comparison.condition_summaries
        if (row.model, row.dataset) == (model, dataset)
    }
    setting = next(
        s for s in comparison.matrix.settings if (s.model, s.dataset) == (model, dataset)
    )
    rows = []
    for condition in setting.conditions:
        cells = [condition]
        for metric, _ in CONDITION_COLUMNS:
            cells.append(_mean_sem(summaries.get((condition, metric))))
        counts = [row.n for (c, _), row in summaries.items() if c == condition]
        cells.append(str(max(counts)) if counts else "0")
        rows.append(cells)
    return rows


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _paired(comparison: Comparison, model: str, dataset: str, metric: str, pair: tuple[str, str]):
    for row in comparison.paired_tests:
        if (row.model, row.dataset, row.metric, row.condition_a, row.condition_b) == (
            model,
            dataset,
            metric,
            *pair,
        ):
            return row
    return None


def contrast_lines(comparison: Comparison, model: str, dataset: str) -> list[str]:
    """The contrasts of one setting (or of the pooled "all" setting) as text lines."""
    unit = "subjects"
    lines = []
    for pair in comparison.options.contrasts:
        rows = [
            row
            for row in comparison.contrasts
            if (row.model, row.dataset, row.condition_a, row.condition_b) == (model, dataset, *pair)
        ]
        paired = {
            m: _paired(comparison, model, dataset, m, pair) for m in ("lm_loss", "brain_alignment")
        }
        if not rows and not any(paired.values()):
            continue
        lines.append(f"{pair[0]} vs {pair[1]} (differences a - b)")
        groups = [
            row
            for row in comparison.group_contrasts
            if (row.model, row.dataset, row.condition_a, row.condition_b) == (model, dataset, *pair)
        ]
        for metric, label in (("lm_loss", "LM loss"), ("brain_alignment", "brain r")):
            row = paired[metric]
            if row is not None:
                lines.append(
                    f"  {label:<23} {format_number(row.mean_difference, signed=True):>7}  "
                    f"{format_effect(row.ci_low, row.ci_high, row.effect_size_dz)}; "
                    f"paired t p={format_p(row.p_t)}, Wilcoxon p={format_p(row.p_wilcoxon)} "
                    f"({row.alternative}; n={row.n_pairs} {unit})"
                )
        order = {scope: i for i, scope in enumerate(AGGREGATE_SCOPES)}
        for row in sorted(rows, key=lambda r: (order.get(r.scope, len(order)), r.scope)):
            if row.scope in AGGREGATE_SCOPES:
                label, holm = SCOPE_TEXT[row.scope], ""
            else:
                label, holm = f"  {row.scope}", f", Holm p={format_p(row.p_holm)}"
            lines.append(
                f"  {label:<23} {format_number(row.difference, signed=True):>7}  "
                f"{format_effect(row.ci_low, row.ci_high, row.effect_size_dz)}; "
                f"scores {format_number(row.score_a)} vs {format_number(row.score_b)}; "
                f"{format_wins(row)}, "
                f"Wilcoxon p={format_p(row.p)}{holm} ({row.alternative}; n={row.n_subjects} {unit})"
            )
        if groups:
            lines.append("  task groups (--task-groups)")
        for row in groups:
            lines.append(
                f"    {row.scope:<21} {format_number(row.difference, signed=True):>7}  "
                f"{format_effect(row.ci_low, row.ci_high, row.effect_size_dz)}; "
                f"Wilcoxon p={format_p(row.p)}, Holm p={format_p(row.p_holm)} "
                f"({row.alternative}; n={row.n_subjects} {unit})"
            )
    return lines


def text_summary(comparison: Comparison) -> str:
    """The compact plain-text comparison the CLI prints: per setting a condition table, then
    the contrasts."""
    blocks = []
    for setting in comparison.matrix.settings:
        header = (
            f"== model={setting.model} dataset={setting.dataset}: {len(setting.subjects)} subjects "
            f"x {len(setting.folds)} folds x {len(setting.seeds)} seeds, "
            f"{len(setting.runs)} of {setting.n_cells} runs used"
        )
        rows = condition_table_rows(comparison, setting.model, setting.dataset)
        lines = [header, *_aligned([CONDITION_HEADER, *rows])]
        contrasts = contrast_lines(comparison, setting.model, setting.dataset)
        if contrasts:
            lines += ["", *contrasts]
        blocks.append("\n".join(lines))
    pooled = contrast_lines(comparison, POOLED, POOLED)
    if pooled:
        header = (
            "== all settings pooled (a subject's settings averaged: one pair per dataset x subject)"
        )
        blocks.append("\n".join([header, *pooled]))
    options = comparison.options
    blocks.append(
        "(mean ± s.e.m. over subjects, each subject averaged over its folds and seeds; tests "
        "pair subjects. 95% CI: expanded percentile bootstrap of the mean difference over "
        "subjects (10,000 resamples, from 5 subjects); d_z: mean difference / s.d. of the "
        "subjects' differences. probing task mean = Holmes overall, the mean over tasks; "
        "subfield mean = the mean of the subfield means; scores: the two conditions' mean "
        "probing scores. Wins: one-sided "
        f"{'Student' if options.equal_var else 'Welch'} t-test over probe seeds, alpha="
        f"{options.alpha}; their CI: percentile bootstrap over the tasks, resampled within "
        "their subfield (2,000 resamples). Contrast tests of brain r and probing: "
        f"{options.alternative}; LM loss and pairs that are no contrast: two-sided; Wilcoxon zero_method="
        f"{options.zero_method})"
    )
    return "\n\n".join(blocks)
