"""``report.md`` and ``report.html``: the tables and figures of a comparison in one document.

The content is built once as a list of blocks (headings, paragraphs, tables, figures) and
rendered twice. The HTML embeds the PNGs as data URIs, so the single file opens anywhere;
the Markdown links them by relative path.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from brainmis.analysis.comparison import POOLED, Comparison, ContrastRow, PairedTestRow
from brainmis.analysis.figures import Figure
from brainmis.analysis.measure_agreement import agreement_sentence, measure_agreement
from brainmis.analysis.probing_stats import AGGREGATE_SCOPES, scope_label
from brainmis.analysis.tables import (
    CONDITION_HEADER,
    condition_table_rows,
    format_number,
    format_p,
    text_summary,
)


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    path: str
    caption: str


@dataclass(frozen=True)
class Preformatted:
    text: str


Block = Heading | Paragraph | Table | Image | Preformatted


REPORTED_PAIRED_METRICS = ("lm_loss", "brain_alignment", "probing_score")
PAIRED_HEADER = [
    "metric",
    "a",
    "b",
    "alternative",
    "n",
    "mean a",
    "mean b",
    "a - b",
    "95% CI",
    "d_z",
    "t",
    "p (t)",
    "W+",
    "W-",
    "p (Wilcoxon)",
]


def _interval(low: float, high: float) -> str:
    return f"[{format_number(low, signed=True)}, {format_number(high, signed=True)}]"


def _paired_table(rows: list[PairedTestRow]) -> Table:
    return Table(
        PAIRED_HEADER,
        [
            [
                row.metric,
                row.condition_a,
                row.condition_b,
                row.alternative,
                str(row.n_pairs),
                format_number(row.mean_a),
                format_number(row.mean_b),
                format_number(row.mean_difference, signed=True),
                _interval(row.ci_low, row.ci_high),
                format_number(row.effect_size_dz, 2, signed=True),
                format_number(row.t, 2),
                format_p(row.p_t),
                format_number(row.wilcoxon_r_plus, 1),
                format_number(row.wilcoxon_r_minus, 1),
                format_p(row.p_wilcoxon),
            ]
            for row in rows
        ],
    )


def _paired_paragraph(comparison: Comparison, unit: str) -> Paragraph:
    return Paragraph(
        f"Paired t-test and Wilcoxon signed-rank over {unit}; the mean difference a - b with its "
        f"percentile bootstrap 95% interval ({unit} resampled, 10,000 times) and Cohen's d_z "
        "(mean difference / s.d. of the differences). Alternative per row: contrasts "
        f"of brain alignment and probing use --alternative ({comparison.options.alternative}); "
        "LM loss and pairs that are not contrasts are two-sided. probing_score is the Holmes "
        "overall (mean over tasks). Every metric (median and noise-ceiling-normalised brain "
        "alignment, probing mean of subfields, rank scores) is in paired_tests.csv."
    )


def _voxel_selection_blocks(comparison: Comparison) -> list[Block]:
    """One row per distinct (dataset, subject, ceiling source, threshold, counts)."""
    distinct: dict[tuple, int] = {}
    for row in comparison.runs:
        if not row.ceiling_source and row.n_selected < 0:
            continue
        key = (
            row.dataset,
            row.subject,
            row.ceiling_source or "-",
            format_number(row.ceiling_threshold, 3),
            *(
                str(count) if count >= 0 else "-"
                for count in (
                    row.n_voxels_total,
                    row.n_non_finite_dropped,
                    row.n_constant_dropped,
                    row.n_in_roi,
                    row.n_above_ceiling,
                    row.n_selected,
                )
            ),
        )
        distinct[key] = distinct.get(key, 0) + 1
    if not distinct:
        return []
    header = [
        "dataset",
        "subject",
        "ceiling source",
        "threshold",
        "voxels",
        "non-finite dropped",
        "constant dropped",
        "in ROI",
        "above ceiling",
        "selected",
        "runs",
    ]
    return [
        Heading("Voxel selection", 2),
        Paragraph(
            "Per subject, as the brain-alignment evaluation recorded it (one row per distinct "
            "record; 'runs' = how many runs share it). Selected = in the ROI and ceiling > "
            "threshold, after dropping non-finite and constant voxels."
        ),
        Table(header, [[*key, str(count)] for key, count in sorted(distinct.items())]),
    ]


def _setting_blocks(comparison: Comparison, figures: list[Figure]) -> list[Block]:
    blocks: list[Block] = []
    for setting in comparison.matrix.settings:
        key = (setting.model, setting.dataset)
        blocks.append(Heading(f"{setting.model} on {setting.dataset}", 2))
        blocks.append(
            Paragraph(
                f"Conditions: {', '.join(setting.conditions)}. Subjects: "
                f"{', '.join(setting.subjects)}. Folds: {', '.join(map(str, setting.folds))}. "
                f"Training seeds: {', '.join(map(str, setting.seeds))}. "
                f"{len(setting.runs)} of {setting.n_cells} runs used."
            )
        )
        blocks.append(
            Heading("Conditions (mean ± s.e.m. over subjects, folds and seeds averaged)", 3)
        )
        blocks.append(Table(CONDITION_HEADER, condition_table_rows(comparison, *key)))
        paired = [
            row
            for row in comparison.paired_tests
            if (row.model, row.dataset) == key and row.metric in REPORTED_PAIRED_METRICS
        ]
        if paired:
            blocks.append(Heading("Paired tests between conditions (over subjects)", 3))
            blocks.append(_paired_paragraph(comparison, "subjects (subject means)"))
            blocks.append(_paired_table(paired))
        scores = [row for row in comparison.probing_scores if (row.model, row.dataset) == key]
        if scores:
            table = comparison.probing_tables[key]
            blocks.append(Heading("Probing score per subfield (mean over subjects)", 3))
            blocks.append(
                Paragraph(
                    f"{len(table.tasks)} tasks; metric per task: "
                    f"{', '.join(sorted(set(table.metrics)))}; {len(table.probe_seeds)} probe "
                    "seeds. Rank: Holmes-style rank-normalised score (1 = best condition). "
                    "'overall (mean of tasks)': every task counts once; 'mean of subfields': "
                    "every subfield counts once."
                )
            )
            lookup = {(row.condition, row.scope): row for row in scores}
            rows = []
            for condition in table.conditions:
                cells = [condition]
                for scope in table.scopes:
                    row = lookup.get((condition, scope))
                    cells.append(
                        "-"
                        if row is None
                        else f"{format_number(row.score_mean)} ({format_number(row.rank_score_mean, 2)})"
                    )
                rows.append(cells)
            header = ["condition", *[f"{scope_label(s)} (rank)" for s in table.scopes]]
            blocks.append(Table(header, rows))
        blocks += _contrast_blocks(comparison, *key)
        blocks += _measure_agreement_blocks(comparison, *key)
        for figure in figures:
            if (figure.model, figure.dataset) == key:
                blocks.append(Image(figure.path, figure.caption))
    return blocks


def _measure_agreement_blocks(comparison: Comparison, model: str, dataset: str) -> list[Block]:
    """RSA, CKA and Procrustes against the ridge: one direction verdict per pair."""
    rows = [
        row for row in measure_agreement(comparison) if (row.model, row.dataset) == (model, dataset)
    ]
    if not rows:
        return []
    return [
        Heading("Other measures against the ridge (direction of a - b over subjects)", 3),
        Paragraph(
            "Encoder-free measures of the same held-out run (brain_similarity.json): RSA, "
            "linear CKA, orthogonal Procrustes similarity; larger = more aligned for all. "
            f"{agreement_sentence(rows)}"
        ),
        Table(
            [
                "a vs b",
                "measure",
                "n",
                "ridge a - b",
                "a - b",
                "95% CI",
                "p (Wilcoxon)",
                "direction",
            ],
            [
                [
                    f"{row.condition_a} vs {row.condition_b}",
                    row.metric,
                    str(row.n_pairs),
                    format_number(row.ridge_difference, signed=True),
                    format_number(row.difference, signed=True),
                    _interval(row.ci_low, row.ci_high),
                    format_p(row.p_wilcoxon),
                    row.verdict,
                ]
                for row in rows
            ],
        ),
    ]


def _contrast_order(row: ContrastRow) -> tuple:
    """Contrast rows by pair: the subfields, then overall, then mean_of_subfields."""
    aggregate = AGGREGATE_SCOPES.index(row.scope) if row.scope in AGGREGATE_SCOPES else -1
    return (row.condition_a, row.condition_b, aggregate, row.scope)


def _contrast_blocks(comparison: Comparison, model: str, dataset: str) -> list[Block]:
    rows = [row for row in comparison.contrasts if (row.model, row.dataset) == (model, dataset)]
    if not rows:
        return []
    options = comparison.options
    return [
        Heading("Contrasts (probing, Wilcoxon across subjects, Holm over subfields)", 3),
        Paragraph(
            f"Win: one-sided {'Student' if options.equal_var else 'Welch'} t-test of the probe "
            f"seeds, p < {options.alpha}. Wilcoxon signed-rank ({options.alternative}, "
            f"zero_method={options.zero_method}) on subject means; Holm across subfields; "
            "'overall (mean of tasks)' and 'mean of subfields' each tested on their own, "
            "uncorrected. Scores a and b: the conditions' absolute probing scores (mean over "
            "subjects); the 95% CI of a - b is a bootstrap over subjects; that of the win-rate "
            "difference a bootstrap over the tasks (resampled within their subfield)."
        ),
        Table(
            [
                "a vs b",
                "scope",
                "alternative",
                "subjects",
                "score a",
                "score b",
                "a - b",
                "95% CI",
                "d_z",
                "wins a",
                "wins b",
                "wins a - b, 95% CI over tasks",
                "p",
                "p (Holm)",
            ],
            [
                [
                    f"{row.condition_a} vs {row.condition_b}",
                    scope_label(row.scope),
                    row.alternative,
                    str(row.n_subjects),
                    format_number(row.score_a),
                    format_number(row.score_b),
                    format_number(row.difference, signed=True),
                    _interval(row.ci_low, row.ci_high),
                    format_number(row.effect_size_dz, 2, signed=True),
                    format_number(row.win_rate_a, 2),
                    format_number(row.win_rate_b, 2),
                    _interval(row.win_difference_ci_low, row.win_difference_ci_high),
                    format_p(row.p),
                    format_p(row.p_holm) if row.scope not in AGGREGATE_SCOPES else "-",
                ]
                for row in sorted(rows, key=_contrast_order)
            ],
        ),
    ]


def report_blocks(comparison: Comparison, figures: list[Figure], files: list[str]) -> list[Block]:
    """The report's content: overview, per-setting tables and figures, pooled contrasts."""
    blocks: list[Block] = [Heading("brainmis condition comparison", 1)]
    runs = comparison.matrix.runs
    blocks.append(
        Paragraph(
            f"{len(runs)} runs in {len(comparison.matrix.settings)} setting(s). "
            "Brain alignment is the fresh cross-validated ridge read-out (mean voxel r on "
            "held-out runs); LM loss is on held-out stimuli; both from each run's latest "
            "evaluation."
        )
    )
    missing = comparison.matrix.missing
    if missing:
        blocks.append(Heading("Dropped (incomplete matrix, --allow-incomplete)", 2))
        blocks.append(Preformatted("\n".join(cell.describe() for cell in missing)))
    for note in comparison.notes:
        blocks.append(Paragraph(f"Note: {note}"))
    blocks.append(Heading("Summary", 2))
    blocks.append(Preformatted(text_summary(comparison)))
    blocks += _voxel_selection_blocks(comparison)
    blocks += _setting_blocks(comparison, figures)
    pooled_paired = [
        row
        for row in comparison.paired_tests
        if (row.model, row.dataset) == (POOLED, POOLED) and row.metric in REPORTED_PAIRED_METRICS
    ]
    pooled = _contrast_blocks(comparison, POOLED, POOLED)
    if pooled_paired or pooled:
        blocks.append(Heading("All settings pooled", 2))
        blocks.append(
            Paragraph(
                "The settings (models) of one dataset x subject are averaged first, so each "
                "person is one pair; n counts dataset x subject pairs."
            )
        )
    if pooled_paired:
        blocks.append(Heading("Paired tests, pooled", 3))
        blocks.append(_paired_paragraph(comparison, "dataset x subject pairs"))
        blocks.append(_paired_table(pooled_paired))
    blocks += pooled
    blocks.append(Heading("Files", 2))
    blocks.append(Paragraph(", ".join(files)))
    return blocks


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Preformatted):
            parts.append(f"```\n{block.text}\n```")
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(_md_cell(c) for c in block.header) + " |"]
            lines.append("|" + "---|" * len(block.header))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            parts.append("\n".join(lines))
        elif isinstance(block, Image):
            parts.append(f"![{block.caption}]({block.path})\n\n*{block.caption}*")
    return "\n\n".join(parts) + "\n"


_STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.2em;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}th{background:#f2f2f2}"
    "pre{background:#f7f7f7;padding:0.8em;overflow-x:auto;font-size:0.85em}"
    "figure{margin:1em 0}img{max-width:100%}figcaption{font-style:italic;color:#555}"
)


def render_html(blocks: list[Block], out_dir: Path) -> str:
    """HTML with the figures (read from ``out_dir``) embedded as base64 PNG data URIs."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>brainmis condition comparison</title>",
        f"<style>{_STYLE}</style></head><body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Preformatted):
            parts.append(f"<pre>{html.escape(block.text)}</pre>")
        elif isinstance(block, Table):
            header = "".join(f"<th>{html.escape(c)}</th>" for c in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in block.rows
            )
            parts.append(f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Image):
            data = base64.b64encode((out_dir / block.path).read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" '
                f'alt="{html.escape(block.caption)}" title="{html.escape(block.path)}">'
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_reports(
    comparison: Comparison,
    figures: list[Figure],
    files: list[str],
    out_dir: Path,
    extra_blocks: list[Block] | None = None,
) -> list[str]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; return their names.
    ``extra_blocks`` (e.g. ``brainmis.analysis.lm_report``'s sections) go before "Files"."""
    blocks = report_blocks(comparison, figures, files)
    if extra_blocks:
        blocks[-2:-2] = extra_blocks  # the last two blocks are the "Files" heading and list
    (out_dir / "report.md").write_text(render_markdown(blocks))
    (out_dir / "report.html").write_text(render_html(blocks, out_dir))
    return ["report.md", "report.html"]
