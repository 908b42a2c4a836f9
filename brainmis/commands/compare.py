"""``brainmis compare RUN_DIR... --out DIR``: statistics, tables, figures and a report across runs.

Finds the runs at or below each RUN_DIR, checks that they fill the experiment matrix
(conditions x subjects x folds x seeds per model and dataset), compares the conditions and
writes into ``--out``: CSV tables and ``comparison.json`` (every number), PNG figures in
``figures/``, ``report.md``, ``report.html`` and ``summary.txt`` (the plain-text table it
also prints). Every input is read and checked before the output folder is created.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from brainmis.analysis.comparison import (
    CONTRAST_ALTERNATIVES,
    PAPER_CONTRASTS,
    Comparison,
    ComparisonOptions,
    compare_study,
)
from brainmis.analysis.curves import Curve, read_curves
from brainmis.analysis.figures import write_figures
from brainmis.analysis.lm_report import read_lm_analyses, write_lm_analyses
from brainmis.analysis.probing_stats import DEFAULT_METRICS
from brainmis.analysis.report import write_reports
from brainmis.analysis.results import read_per_voxel_r, read_run_results
from brainmis.analysis.runs import discover_runs
from brainmis.analysis.statistics import ZERO_METHODS
from brainmis.analysis.study import StudyMatrix, build_study_matrix, require_complete
from brainmis.analysis.tables import text_summary, write_tables
from brainmis.analysis.task_groups import read_task_groups
from brainmis.cli_parser import ToolArgumentParser
from brainmis.errors import BrainmisInputError, refuse_non_empty_dir


def build_parser() -> argparse.ArgumentParser:
    parser = ToolArgumentParser(
        prog="brainmis compare",
        description="Compare conditions across runs: statistics, tables, figures, report.",
    )
    parser.add_argument(
        "run_dirs",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="a run folder or any folder above run folders (searched recursively)",
    )
    parser.add_argument("--out", required=True, type=Path, help="new or empty output folder")
    parser.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="compare what is there when cells of the matrix are missing "
        "(and say what was dropped) instead of refusing",
    )
    parser.add_argument(
        "--contrasts",
        nargs="+",
        metavar="A:B",
        help="contrasts 'a vs b' (is a higher than b?); default: "
        "preserving:misaligned tuned:preserving (those whose conditions exist)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="per-task win threshold of the one-sided t-test (default 0.05)",
    )
    parser.add_argument(
        "--probe-test",
        choices=("welch", "student"),
        default="welch",
        help="two-sample t-test over probe seeds for task wins (default welch)",
    )
    parser.add_argument(
        "--zero-method",
        choices=ZERO_METHODS,
        default="wilcox",
        help="zero differences in Wilcoxon tests: wilcox drops them (default), "
        "pratt ranks then drops them, zsplit splits their ranks",
    )
    parser.add_argument(
        "--alternative",
        choices=CONTRAST_ALTERNATIVES,
        default="two-sided",
        help="brain-alignment and probing tests of each contrast A:B: 'greater' tests A > B "
        "(the paper's directions: preserving > misaligned, tuned > preserving), default "
        "two-sided; LM-loss tests and pairs that are not contrasts stay two-sided",
    )
    parser.add_argument(
        "--task-groups",
        type=Path,
        default=None,
        metavar="FILE",
        help="test groups of probing tasks: a synthetic world's ground_truth/truth.json or a "
        "TSV 'task<TAB>group' (unlisted tasks form the group 'other')",
    )
    parser.add_argument(
        "--probing-metric",
        nargs="+",
        default=list(DEFAULT_METRICS),
        help="probing metric per task: the first of these the task has (default: accuracy pearson)",
    )
    return parser


def parse_contrasts(
    values: list[str], matrix: StudyMatrix, explicit: bool
) -> tuple[tuple[str, str], ...]:
    """``["a:b", ...]`` -> pairs. Unknown conditions are an error only for explicit contrasts."""
    seen = {condition for setting in matrix.settings for condition in setting.conditions}
    pairs = []
    for value in values:
        parts = value.split(":")
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise BrainmisInputError(
                None, f"--contrasts {value!r}: expected A:B with two different conditions"
            )
        unknown = [part for part in parts if part not in seen]
        if unknown:
            if explicit:
                raise BrainmisInputError(
                    None,
                    f"--contrasts {value!r}: no runs of condition(s) {', '.join(unknown)} "
                    f"(found: {', '.join(sorted(seen))})",
                )
            continue
        pairs.append((parts[0], parts[1]))
    return tuple(pairs)


def _check_and_read_extras(matrix: StudyMatrix) -> dict[Path, dict[str, Curve]]:
    """Read every per-voxel r file (to check it) and every run's training curves."""
    curves = {}
    for loaded in matrix.runs:
        brain = loaded.results.brain
        if brain is not None and brain.per_voxel_file is not None:
            read_per_voxel_r(brain.per_voxel_file)
        curves[loaded.run.path] = read_curves(loaded.run.path)
    return curves


@dataclass(frozen=True)
class CompareResult:
    """What ``compare_runs`` produced: the numbers, the printed summary and the files."""

    comparison: Comparison
    summary: str
    files: list[str]


def compare_runs(
    run_dirs: list[Path],
    out: Path,
    *,
    allow_incomplete: bool = False,
    contrasts: list[str] | None = None,
    options: ComparisonOptions | None = None,
) -> CompareResult:
    """Discover, check, compare and write everything into ``out`` (the command without argv).

    ``contrasts``: ``"a:b"`` strings; None means the paper's two, where both conditions exist.
    ``options`` (contrasts inside it are replaced by the parsed ``contrasts``). Raises
    ``BrainmisInputError`` before anything is written when an input is wrong, ``--out`` is not
    empty, or (unless ``allow_incomplete``) the matrix has missing cells; dropped cells are
    listed on stderr.
    """
    out = refuse_non_empty_dir(out)
    options = options or ComparisonOptions()
    if not 0 < options.alpha < 1:
        raise BrainmisInputError(None, f"--alpha must be between 0 and 1, got {options.alpha}")
    run_dirs = [Path(path) for path in run_dirs]
    runs = discover_runs(run_dirs)
    matrix = build_study_matrix(runs, read_run_results)
    if not allow_incomplete:
        require_complete(matrix, run_dirs[0] if len(run_dirs) == 1 else None)
    elif matrix.missing:
        print(
            f"compare: dropped {len(matrix.missing)} of {matrix.n_cells} cells "
            "(--allow-incomplete):",
            file=sys.stderr,
        )
        for cell in matrix.missing:
            print(f"  dropped: {cell.describe()}", file=sys.stderr)
    if not matrix.runs:
        raise BrainmisInputError(run_dirs[0], "no complete run with results to compare")
    explicit = contrasts is not None
    requested = contrasts if explicit else [f"{a}:{b}" for a, b in PAPER_CONTRASTS]
    options = replace(options, contrasts=parse_contrasts(requested, matrix, explicit))
    curves = _check_and_read_extras(matrix)
    comparison = compare_study(matrix, options)
    lm_analyses = read_lm_analyses(comparison)  # per-window LM losses, the removal frontier
    summary = "\n".join([text_summary(comparison), *lm_analyses.summary_lines()])

    out.mkdir(parents=True, exist_ok=True)
    files = write_tables(comparison, out)
    (out / "summary.txt").write_text(summary + "\n")
    figures = write_figures(comparison, out, lambda path: curves.get(path, {}))
    files += ["summary.txt", *[figure.path for figure in figures]]
    lm_files, lm_blocks = write_lm_analyses(lm_analyses, out)
    files += lm_files
    files += write_reports(comparison, figures, files, out, extra_blocks=lm_blocks)
    return CompareResult(comparison, summary, files)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    options = ComparisonOptions(
        alpha=args.alpha,
        equal_var=args.probe_test == "student",
        zero_method=args.zero_method,
        alternative=args.alternative,
        metric_preference=tuple(args.probing_metric),
        task_groups=None if args.task_groups is None else read_task_groups(args.task_groups),
    )
    result = compare_runs(
        args.run_dirs,
        args.out,
        allow_incomplete=args.allow_incomplete,
        contrasts=args.contrasts,
        options=options,
    )
    print(result.summary)
    print(f"\nwrote {len(result.files)} files to {args.out} (open {args.out / 'report.html'})")
    return 0
