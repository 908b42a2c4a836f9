"""The LM-loss analyses of ``brainmis compare`` in one place: held-out LM loss per window
as distributions (``brainmis.analysis.lm_distribution``) and the removal frontier
(``brainmis.analysis.frontier``), with their tables, figures (``brainmis.analysis.lm_figures``),
summary lines and report sections.

``read_lm_analyses`` reads every input (per-window files, run configs) before ``compare``
writes anything; ``write_lm_analyses`` writes the tables and figures and returns the report
blocks that ``brainmis.analysis.report.write_reports`` appends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from brainmis.analysis import frontier as frontier_analysis
from brainmis.analysis import lm_distribution
from brainmis.analysis.comparison import Comparison
from brainmis.analysis.figures import Figure, setting_slug
from brainmis.analysis.lm_figures import plot_frontier, plot_lm_distribution
from brainmis.analysis.report import Block, Heading, Image, Paragraph, Table


@dataclass
class LMAnalyses:
    """What the two analyses found (each None when its inputs are absent)."""

    comparison: Comparison
    distributions: lm_distribution.LMDistributions | None
    frontier: frontier_analysis.Frontier | None

    def summary_lines(self) -> list[str]:
        lines: list[str] = []
        if self.distributions is not None:
            lines += [
                "",
                *lm_distribution.summary_lines(self.distributions, self.comparison.options),
            ]
        if self.frontier is not None:
            lines += ["", *frontier_analysis.summary_lines(self.frontier)]
        return lines


def read_lm_analyses(comparison: Comparison) -> LMAnalyses:
    """Read and compute both analyses (input errors are raised here, before any output)."""
    distributions = lm_distribution.lm_distributions(comparison.matrix, comparison.options)
    return LMAnalyses(comparison, distributions, frontier_analysis.removal_frontier(comparison))


def _cell(value: float, digits: int = 3, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3g}"


def _distribution_blocks(analyses: LMAnalyses, figures: list[Figure]) -> list[Block]:
    distributions = analyses.distributions
    options = analyses.comparison.options
    blocks: list[Block] = [
        Heading("Held-out LM loss per window (distributions)", 2),
        Paragraph(
            "Per run the quantiles of its held-out windows' LM losses (evaluation/"
            "lm_windows.csv); a condition's quantile is the mean over subjects (folds and seeds "
            "averaged first) ± s.e.m. Differences a - b per quantile are tested across subjects "
            "(exact Wilcoxon, two-sided; bootstrap 95% CI over subjects from 5 subjects), "
            "uncorrected over the 5 levels. KS D is a per-run-pair description: overlapping "
            "windows scored by both conditions are no independent samples, so its p "
            "(lm_distribution_pairs.csv, ks_p_naive) is not a test."
        ),
    ]
    levels = [lm_distribution.level_name(q) for q in lm_distribution.QUANTILE_LEVELS]
    for key, by_condition in distributions.runs.items():
        blocks.append(Heading(f"{key[0]} on {key[1]}", 3))
        lookup = {
            (r.condition, r.level): r
            for r in distributions.quantiles
            if (r.model, r.dataset) == key
        }
        rows = []
        for condition in by_condition:
            n = lookup[(condition, levels[0])].n_subjects
            cells = [
                f"{_cell(lookup[(condition, lv)].mean)} ± {_cell(lookup[(condition, lv)].sem)}"
                for lv in levels
            ]
            rows.append([condition, str(n), *cells])
        blocks.append(Table(["condition", "n", *levels], rows))
        test_rows = []
        for shown in lm_distribution.printed_pairs(distributions, options):
            if shown[:2] != key:
                continue
            d = [
                r.ks_d
                for r in distributions.pairs
                if (r.model, r.dataset, r.condition_a, r.condition_b) == shown
            ]
            for row in distributions.tests:
                if (row.model, row.dataset, row.condition_a, row.condition_b) != shown:
                    continue
                test_rows.append(
                    [
                        row.condition_a,
                        row.condition_b,
                        row.level,
                        str(row.n_subjects),
                        _cell(row.difference, 4, True),
                        f"[{_cell(row.ci_low, 4, True)}, {_cell(row.ci_high, 4, True)}]",
                        _cell(row.effect_size_dz, 2),
                        _p(row.p_wilcoxon),
                        _cell(sum(d) / len(d), 3) if d else "-",
                    ]
                )
        if test_rows:
            blocks.append(
                Table(
                    [
                        "a",
                        "b",
                        "level",
                        "n",
                        "a - b",
                        "95% CI",
                        "d_z",
                        "p (Wilcoxon)",
                        "KS D (mean)",
                    ],
                    test_rows,
                )
            )
        for figure in figures:
            if figure.kind == "lm_distribution" and (figure.model, figure.dataset) == key:
                blocks.append(Image(figure.path, figure.caption))
    return blocks


def _frontier_blocks(analyses: LMAnalyses, figures: list[Figure]) -> list[Block]:
    frontier = analyses.frontier
    blocks: list[Block] = [
        Heading("Removal frontier", 2),
        Paragraph(
            "Brain-alignment drop (preserving's mean voxel r minus the condition's) against the "
            "held-out LM-loss change relative to preserving, both per subject against its own "
            "preserving runs, then mean ± s.e.m. over subjects; lines join the settings of a "
            "sweep (fixed lambda, LM budget) in parameter order. At each target LM change the "
            "drop is interpolated linearly along the sweep (no extrapolation)."
        ),
    ]
    rows = [
        [
            p.line,
            f"{p.parameter:g}",
            p.condition,
            str(p.n_subjects),
            _cell(p.lm_change_pct, 2, True),
            _cell(p.brain_drop, 3, True),
            _cell(p.brain_drop_pct, 1, True),
            p.reference,
        ]
        for line in frontier.lines()
        for p in frontier.line_points(line)
    ]
    blocks.append(
        Table(
            [
                "line",
                "parameter",
                "condition",
                "n",
                "LM change %",
                "brain r drop",
                "drop %",
                "reference",
            ],
            rows,
        )
    )
    target_rows = [
        [
            r.line,
            f"+{r.target_lm_change_pct:g}%",
            r.status,
            _cell(r.parameter, 3),
            _cell(r.brain_drop, 3, True),
            _cell(r.brain_drop_pct, 1, True),
            str(r.n_subjects),
            _cell(r.brain_drop_sem, 3),
        ]
        for r in frontier.targets
    ]
    blocks.append(
        Table(
            ["line", "LM change", "status", "parameter", "brain r drop", "drop %", "n", "s.e.m."],
            target_rows,
        )
    )
    for figure in figures:
        if figure.kind == "frontier":
            blocks.append(Image(figure.path, figure.caption))
    return blocks


def write_lm_analyses(analyses: LMAnalyses, out_dir: Path) -> tuple[list[str], list[Block]]:
    """Write the tables and figures into ``out_dir``; return the file names (relative) and
    the report blocks."""
    files: list[str] = []
    figures: list[Figure] = []
    figure_dir = out_dir / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    matrix = analyses.comparison.matrix
    if analyses.distributions is not None:
        files += lm_distribution.write_lm_distribution_tables(analyses.distributions, out_dir)
        for setting in matrix.settings:
            key = (setting.model, setting.dataset)
            path = figure_dir / f"lm_distribution_{setting_slug(*key)}.png"
            if plot_lm_distribution(analyses.distributions, key, setting.conditions, path):
                caption = f"Held-out LM loss per window, per condition ({key[0]}, {key[1]})."
                figures.append(
                    Figure("lm_distribution", *key, str(path.relative_to(out_dir)), caption)
                )
    if analyses.frontier is not None:
        files += frontier_analysis.write_frontier_tables(analyses.frontier, out_dir)
        path = figure_dir / frontier_analysis.FRONTIER_FIGURE
        if plot_frontier(analyses.frontier, path):
            figures.append(
                Figure(
                    "frontier",
                    "all",
                    "all",
                    str(path.relative_to(out_dir)),
                    "Removal frontier: brain-alignment drop against LM-loss change.",
                )
            )
    blocks: list[Block] = []
    if analyses.distributions is not None:
        blocks += _distribution_blocks(analyses, figures)
    if analyses.frontier is not None:
        blocks += _frontier_blocks(analyses, figures)
    return files + [figure.path for figure in figures], blocks
