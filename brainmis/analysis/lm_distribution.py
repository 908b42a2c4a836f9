"""Held-out LM loss as a distribution over windows, compared between conditions.

Input: each run's ``evaluation/lm_windows.csv`` (``brainmis.run_folder.layout``: per test
window its index, mean LM loss in nats per predicted token and token count), when present.
A mean LM loss can hide a change in shape: a model that got worse on a few windows and
better on the rest has the same mean as one that did not change. So, per setting:

- **Quantiles.** Per run, the 5/25/50/75/95% quantiles of its window losses (windows
  without a predicted token dropped; ``numpy.quantile``, linear interpolation). A subject's
  quantile is the mean over its folds and seeds; a condition's is the mean ± s.e.m. over
  subjects (``lm_distribution.csv``).
- **Per subject (descriptive).** For every pair of conditions and every (subject, fold,
  seed) both have: the two-sample Kolmogorov-Smirnov distance D between the two runs' window
  losses and its p-value as if the windows were independent samples (``ks_p_naive``), and
  the median of the paired window differences when both runs scored the same windows
  (``lm_distribution_pairs.csv``). That p is not a valid test: consecutive windows share
  ``context_trs - 1`` TRs of words (they overlap), the two conditions are scored on the
  *same* windows (paired, not two samples), and with hundreds of windows any tiny shift is
  "significant". It is shown to describe a subject, never to conclude.
- **Across subjects (the test).** Per pair and quantile level: each subject's difference of
  quantiles a - b (paired over the (fold, seed) units both conditions have, like every other
  paired test of ``brainmis compare``), the mean difference with its bootstrap interval
  (subjects resampled, ``brainmis.analysis.statistics.paired_effect``; none below 5
  subjects) and d_z, and the exact Wilcoxon signed-rank test over subjects, two-sided like
  every LM-loss test (``lm_distribution_tests.csv``). Five levels are five tests of one
  question; no correction is applied and none of them is the primary test (the mean's
  paired test in ``paired_tests.csv`` is).

``figures/lm_distribution_<setting>.png``: per condition the subject-averaged quantile
function (thick; the mean over subjects of each subject's quantiles at 1..99%, i.e. the
distribution averaged in quantile space) over each run's empirical CDF (thin).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from brainmis.analysis.comparison import ComparisonOptions, condition_pairs, paired_subject_means
from brainmis.analysis.statistics import mean_and_sem, paired_effect, wilcoxon_signed_rank
from brainmis.analysis.study import StudyMatrix
from brainmis.analysis.tables import write_csv
from brainmis.errors import BrainmisInputError
from brainmis.run_folder.layout import LM_WINDOWS_COLUMNS, LM_WINDOWS_FILE, evaluation_dir

QUANTILE_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
CURVE_LEVELS = tuple(np.round(np.linspace(0.01, 0.99, 99), 2))  # the figure's quantile function
LM_DISTRIBUTION_FILE = "lm_distribution.csv"
LM_DISTRIBUTION_TESTS_FILE = "lm_distribution_tests.csv"
LM_DISTRIBUTION_PAIRS_FILE = "lm_distribution_pairs.csv"
REFERENCE_CONDITION = "preserving"  # pairs with it are printed even when not a contrast

Unit = tuple[str, int, int]  # (subject, fold, seed)


def level_name(level: float) -> str:
    """``0.05 -> "q05"``, ``0.5 -> "q50"``."""
    return f"q{round(level * 100):02d}"


@dataclass(frozen=True)
class RunWindows:
    """One run's held-out windows: ``window (W,)`` indices, ``lm_loss (W,)`` nats/token
    (finite: windows without a predicted token are dropped)."""

    window: np.ndarray
    lm_loss: np.ndarray


def read_lm_windows(path: Path) -> RunWindows:
    """``lm_windows.csv`` -> ``RunWindows``; a malformed file is an input error naming it."""
    try:
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(header) != LM_WINDOWS_COLUMNS:
                raise BrainmisInputError(
                    path, f"expected the columns {','.join(LM_WINDOWS_COLUMNS)}, got {header}"
                )
            rows = [(int(row[0]), float(row[1]), int(row[2])) for row in reader if row]
    except BrainmisInputError:
        raise
    except (ValueError, IndexError) as error:
        raise BrainmisInputError(path, f"not a per-window LM loss table ({error})") from None
    windows = [w for w, _, _ in rows]
    if len(set(windows)) != len(windows):
        raise BrainmisInputError(path, "a window index appears twice")
    for w, loss, n in rows:
        if n < 0 or loss < 0 or (n > 0 and math.isinf(loss)):
            raise BrainmisInputError(
                path, f"window {w}: LM loss {loss} over {n} tokens (a loss is >= 0 and finite)"
            )
    kept = [(w, loss) for w, loss, n in rows if n > 0 and math.isfinite(loss)]
    if not kept:
        raise BrainmisInputError(path, "no window with a finite LM loss")
    return RunWindows(
        np.array([w for w, _ in kept], dtype=np.int64),
        np.array([loss for _, loss in kept], dtype=np.float64),
    )


@dataclass(frozen=True)
class QuantileRow:
    """A condition's quantile of the window losses: mean and s.e.m. over ``n_subjects``."""

    model: str
    dataset: str
    condition: str
    level: str
    n_subjects: int
    n_runs: int
    mean: float
    sem: float


@dataclass(frozen=True)
class QuantileTestRow:
    """Condition a vs b at one quantile level, over subjects (differences a - b)."""

    model: str
    dataset: str
    condition_a: str
    condition_b: str
    level: str
    alternative: str
    n_subjects: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    effect_size_dz: float
    wilcoxon_r_plus: float
    wilcoxon_r_minus: float
    p_wilcoxon: float


@dataclass(frozen=True)
class WindowPairRow:
    """One unit (subject, fold, seed) of a pair: descriptive two-sample numbers (see the
    module docstring for why ``ks_p_naive`` is no test)."""

    model: str
    dataset: str
    condition_a: str
    condition_b: str
    subject: str
    fold: int
    seed: int
    n_windows_a: int
    n_windows_b: int
    same_windows: bool
    ks_d: float
    ks_p_naive: float
    median_paired_difference: float


@dataclass
class LMDistributions:
    """Everything of the per-window analysis. ``runs[(model, dataset)][condition][unit]``:
    the run's windows; ``curves[(model, dataset)][condition]``: ``(CURVE_LEVELS,)`` mean over
    subjects of the subject quantile functions."""

    quantiles: list[QuantileRow] = field(default_factory=list)
    tests: list[QuantileTestRow] = field(default_factory=list)
    pairs: list[WindowPairRow] = field(default_factory=list)
    runs: dict[tuple[str, str], dict[str, dict[Unit, RunWindows]]] = field(default_factory=dict)
    curves: dict[tuple[str, str], dict[str, np.ndarray]] = field(default_factory=dict)


def _subject_average(by_unit: dict[Unit, np.ndarray]) -> dict[str, np.ndarray]:
    grouped: dict[str, list[np.ndarray]] = {}
    for unit, values in sorted(by_unit.items()):
        grouped.setdefault(unit[0], []).append(values)
    return {subject: np.mean(values, axis=0) for subject, values in grouped.items()}


def lm_distributions(matrix: StudyMatrix, options: ComparisonOptions) -> LMDistributions | None:
    """Read every used run's ``lm_windows.csv`` and compare; None when no run has one."""
    result = LMDistributions()
    for setting in matrix.settings:
        key = (setting.model, setting.dataset)
        by_condition: dict[str, dict[Unit, RunWindows]] = {}
        for loaded in setting.runs:
            path = evaluation_dir(loaded.run.path) / LM_WINDOWS_FILE
            if path.is_file():
                identity = loaded.identity
                by_condition.setdefault(identity.condition, {})[identity.unit] = read_lm_windows(
                    path
                )
        if not by_condition:
            continue
        result.runs[key] = by_condition
        conditions = [c for c in setting.conditions if c in by_condition]
        quantiles: dict[str, dict[Unit, np.ndarray]] = {}
        result.curves[key] = {}
        for condition in conditions:
            units = by_condition[condition]
            quantiles[condition] = {
                unit: np.quantile(windows.lm_loss, QUANTILE_LEVELS)
                for unit, windows in units.items()
            }
            per_subject = _subject_average(quantiles[condition])
            for position, level in enumerate(QUANTILE_LEVELS):
                summary = mean_and_sem([values[position] for values in per_subject.values()])
                result.quantiles.append(
                    QuantileRow(
                        *key,
                        condition,
                        level_name(level),
                        summary.n,
                        len(units),
                        summary.mean,
                        summary.sem,
                    )
                )
            curves = _subject_average(
                {u: np.quantile(w.lm_loss, CURVE_LEVELS) for u, w in units.items()}
            )
            result.curves[key][condition] = np.mean(list(curves.values()), axis=0)
        for a, b in condition_pairs(conditions, options.contrasts):
            result.tests += _quantile_tests(key, a, b, quantiles, options)
            result.pairs += _window_pairs(key, a, b, by_condition)
    return result if result.runs else None


def _quantile_tests(
    key: tuple[str, str],
    a: str,
    b: str,
    quantiles: dict[str, dict[Unit, np.ndarray]],
    options: ComparisonOptions,
) -> list[QuantileTestRow]:
    rows = []
    for position, level in enumerate(QUANTILE_LEVELS):
        pairs = paired_subject_means(
            {u: float(q[position]) for u, q in quantiles[a].items()},
            {u: float(q[position]) for u, q in quantiles[b].items()},
        )
        values_a = np.array([pair[0] for pair in pairs.values()])
        values_b = np.array([pair[1] for pair in pairs.values()])
        differences = values_a - values_b
        effect = paired_effect(differences)
        test = wilcoxon_signed_rank(differences, zero_method=options.zero_method)
        rows.append(
            QuantileTestRow(
                *key,
                a,
                b,
                level_name(level),
                "two-sided",
                len(pairs),
                float(values_a.mean()) if len(pairs) else math.nan,
                float(values_b.mean()) if len(pairs) else math.nan,
                float(differences.mean()) if len(pairs) else math.nan,
                effect.ci_low,
                effect.ci_high,
                effect.dz,
                test.r_plus,
                test.r_minus,
                test.p,
            )
        )
    return rows


def _window_pairs(
    key: tuple[str, str], a: str, b: str, by_condition: dict[str, dict[Unit, RunWindows]]
) -> list[WindowPairRow]:
    rows = []
    for unit in sorted(set(by_condition[a]) & set(by_condition[b])):
        run_a, run_b = by_condition[a][unit], by_condition[b][unit]
        ks = stats.ks_2samp(run_a.lm_loss, run_b.lm_loss)
        same = np.array_equal(run_a.window, run_b.window)
        median = float(np.median(run_a.lm_loss - run_b.lm_loss)) if same else math.nan
        rows.append(
            WindowPairRow(
                *key,
                a,
                b,
                *unit,
                run_a.lm_loss.size,
                run_b.lm_loss.size,
                bool(same),
                float(ks.statistic),
                float(ks.pvalue),
                median,
            )
        )
    return rows


def printed_pairs(distributions: LMDistributions, options: ComparisonOptions) -> list[tuple]:
    """The (model, dataset, a, b) the summary and report show: the contrasts, and every pair
    with ``preserving`` (the control of the LM-loss question)."""
    shown = []
    for row in distributions.tests:
        pair = (row.condition_a, row.condition_b)
        if pair in options.contrasts or REFERENCE_CONDITION in pair:
            key = (row.model, row.dataset, *pair)
            if key not in shown:
                shown.append(key)
    return shown


def _format_p(p: float) -> str:
    return "-" if not math.isfinite(p) else (f"{p:.2g}" if p < 0.001 else f"{p:.3f}")


def summary_lines(distributions: LMDistributions, options: ComparisonOptions) -> list[str]:
    """The printed summary's section: per setting, each condition's quantiles, then each
    shown pair's quantile differences with their Wilcoxon p and the mean KS D."""
    lines = ["== held-out LM loss per window (nats/token; quantiles: mean over subjects)"]
    for (model, dataset), by_condition in distributions.runs.items():
        lines.append(f"model={model} dataset={dataset}")
        for condition in by_condition:
            cells = [
                f"{row.level} {row.mean:.3f}"
                for row in distributions.quantiles
                if (row.model, row.dataset, row.condition) == (model, dataset, condition)
            ]
            lines.append(f"  {condition:<24} " + "  ".join(cells))
        for key in printed_pairs(distributions, options):
            if key[:2] != (model, dataset):
                continue
            tests = [
                row
                for row in distributions.tests
                if (row.model, row.dataset, row.condition_a, row.condition_b) == key
            ]
            d = [
                row.ks_d
                for row in distributions.pairs
                if (row.model, row.dataset, row.condition_a, row.condition_b) == key
            ]
            cells = [
                f"{row.level} {row.difference:+.3f} (p {_format_p(row.p_wilcoxon)})"
                for row in tests
            ]
            lines.append(
                f"  {key[2]} - {key[3]}: "
                + "  ".join(cells)
                + f"; KS D {np.mean(d):.2f} (mean over runs, descriptive)"
            )
    lines.append(
        "(per run: quantiles of its held-out windows' LM losses; a - b: mean over subjects of "
        "the subject differences; p: exact Wilcoxon over subjects, two-sided, uncorrected over "
        "the 5 levels; KS D: per run pair, windows are overlapping so its p is not a test; "
        f"files {LM_DISTRIBUTION_FILE}, {LM_DISTRIBUTION_TESTS_FILE}, "
        f"{LM_DISTRIBUTION_PAIRS_FILE})"
    )
    return lines


def write_lm_distribution_tables(distributions: LMDistributions, out_dir: Path) -> list[str]:
    """Write the three CSV tables into ``out_dir``; return their names."""
    tables = (
        (LM_DISTRIBUTION_FILE, distributions.quantiles, QuantileRow),
        (LM_DISTRIBUTION_TESTS_FILE, distributions.tests, QuantileTestRow),
        (LM_DISTRIBUTION_PAIRS_FILE, distributions.pairs, WindowPairRow),
    )
    for name, rows, row_type in tables:
        write_csv(rows, row_type, out_dir / name)
    return [name for name, _, _ in tables]
