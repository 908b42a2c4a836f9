"""Every number of a condition comparison, computed from a filled study matrix.

Units of replication: within a setting (model, dataset), LM loss and brain alignment are
paired over units = (subject, fold, training seed): mean and s.e.m. over units per
condition, paired t-test and Wilcoxon signed-rank between conditions. Probing follows
``brainmis.analysis.probing_stats`` (wins per task over probe seeds, win rates, rank
normalised scores, Wilcoxon across subjects with Holm over subfields). A contrast "a vs b"
asks whether a is higher than b (differences are a - b). When there are several settings,
contrasts are also pooled ("all"): each (setting, subject) is one pair.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from brainmis.analysis import probing_stats
from brainmis.analysis.matrix import SettingMatrix, StudyMatrix
from brainmis.analysis.probing_stats import OVERALL, ProbingTable
from brainmis.analysis.statistics import (
    holm_correction,
    mean_and_sem,
    paired_t_test,
    wilcoxon_signed_rank,
)

PAPER_CONTRASTS = (("preserving", "misaligned"), ("tuned", "preserving"))
POOLED = "all"

# Per-unit metrics compared between conditions: name -> description (with units).
UNIT_METRICS = {
    "lm_loss": "held-out LM loss (nats/token)",
    "brain_alignment": "brain alignment, mean voxel r (fresh ridge)",
    "brain_alignment_median": "brain alignment, median voxel r",
    "brain_alignment_nc_normalized": "brain alignment / noise ceiling",
    "probing_score": "probing score (mean over subfields)",
    "probing_rank_score": "rank-normalised probing score (mean over subfields)",
}


@dataclass(frozen=True)
class ComparisonOptions:
    """How to compare: contrasts (a, b), test settings and the probing metric preference."""

    contrasts: tuple[tuple[str, str], ...] = PAPER_CONTRASTS
    alpha: float = 0.05
    equal_var: bool = False
    zero_method: str = "wilcox"
    alternative: str = "two-sided"
    metric_preference: tuple[str, ...] = probing_stats.DEFAULT_METRICS


@dataclass(frozen=True)
class RunRow:
    model: str
    dataset: str
    subject: str
    fold: int
    condition: str
    seed: int
    path: str
    lm_epoch: int
    lm_loss: float
    brain_epoch: int
    brain_alignment: float
    brain_alignment_median: float
    brain_alignment_nc_normalized: float
    n_voxels: int
    probing_epoch: int
    probing_score: float
    probing_rank_score: float


@dataclass(frozen=True)
class ConditionSummaryRow:
    model: str
    dataset: str
    condition: str
    metric: str
    n: int
    mean: float
    sem: float


@dataclass(frozen=True)
class PairedTestRow:
    model: str
    dataset: str
    metric: str
    condition_a: str
    condition_b: str
    n_pairs: int
    mean_a: float
    mean_b: float
    mean_difference: float
    t: float
    p_t: float
    wilcoxon_r_plus: float
    wilcoxon_r_minus: float
    p_wilcoxon: float


@dataclass(frozen=True)
class ProbingScoreRow:
    model: str
    dataset: str
    condition: str
    scope: str
    n_units: int
    score_mean: float
    score_sem: float
    rank_score_mean: float
    rank_score_sem: float


@dataclass(frozen=True)
class TaskTestRow:
    model: str
    dataset: str
    condition_a: str
    condition_b: str
    subject: str
    fold: int
    seed: int
    task: str
    subfield: str
    metric: str
    mean_a: float
    mean_b: float
    t: float
    df: float
    p_a_greater: float
    p_b_greater: float
    win_a: bool
    win_b: bool


@dataclass(frozen=True)
class WinRateRow:
    model: str
    dataset: str
    condition_a: str
    condition_b: str
    subject: str
    fold: int
    seed: int
    scope: str
    win_rate_a: float
    win_rate_b: float


@dataclass(frozen=True)
class ContrastRow:
    """A contrast a vs b in one scope: subject means, win rates and the Wilcoxon test."""

    model: str
    dataset: str
    condition_a: str
    condition_b: str
    scope: str
    n_subjects: int
    score_a: float
    score_b: float
    difference: float
    win_rate_a: float
    win_rate_b: float
    wilcoxon_r_plus: float
    wilcoxon_r_minus: float
    p: float
    p_holm: float


@dataclass
class Comparison:
    """All tables of a comparison, plus the probing arrays the figures draw from."""

    options: ComparisonOptions
    matrix: StudyMatrix
    runs: list[RunRow] = field(default_factory=list)
    condition_summaries: list[ConditionSummaryRow] = field(default_factory=list)
    paired_tests: list[PairedTestRow] = field(default_factory=list)
    probing_scores: list[ProbingScoreRow] = field(default_factory=list)
    task_tests: list[TaskTestRow] = field(default_factory=list)
    win_rates: list[WinRateRow] = field(default_factory=list)
    contrasts: list[ContrastRow] = field(default_factory=list)
    probing_tables: dict[tuple[str, str], ProbingTable] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _value(number: float | None) -> float:
    return math.nan if number is None else float(number)


def condition_pairs(
    conditions: list[str], contrasts: tuple[tuple[str, str], ...]
) -> list[tuple[str, str]]:
    """Every unordered pair of ``conditions`` once, oriented as in ``contrasts`` where listed."""
    pairs = [pair for pair in contrasts if pair[0] in conditions and pair[1] in conditions]
    covered = {frozenset(pair) for pair in pairs}
    for pair in itertools.combinations(conditions, 2):
        if frozenset(pair) not in covered:
            pairs.append(pair)
    return pairs


@dataclass
class _SettingProbing:
    table: ProbingTable
    scores: np.ndarray
    rank_scores: np.ndarray


def _setting_probing(setting: SettingMatrix, options: ComparisonOptions) -> _SettingProbing | None:
    table = probing_stats.build_probing_table(
        setting.runs, setting.conditions, options.metric_preference
    )
    if table is None:
        return None
    return _SettingProbing(
        table, probing_stats.subfield_scores(table), probing_stats.rank_normalised_scores(table)
    )


def _unit_values(
    setting: SettingMatrix, probing: _SettingProbing | None
) -> tuple[list[RunRow], dict[str, dict[str, dict[tuple[str, int, int], float]]]]:
    """One RunRow per run, and metric -> condition -> unit -> value."""
    rows, values = [], {metric: {} for metric in UNIT_METRICS}
    for loaded in setting.runs:
        identity, results = loaded.identity, loaded.results
        brain = results.brain
        probing_score = probing_rank = math.nan
        if probing is not None and results.probing is not None:
            c = probing.table.conditions.index(identity.condition)
            u = probing.table.units.index(identity.unit)
            probing_score = float(probing.scores[c, u, -1])
            probing_rank = float(probing.rank_scores[c, u, -1])
        row = RunRow(
            model=identity.model,
            dataset=identity.dataset,
            subject=identity.subject,
            fold=identity.fold,
            condition=identity.condition,
            seed=identity.seed,
            path=str(loaded.run.path),
            lm_epoch=-1 if results.lm_epoch is None else results.lm_epoch,
            lm_loss=_value(results.lm_loss),
            brain_epoch=-1 if brain is None else brain.epoch,
            brain_alignment=math.nan if brain is None else brain.mean,
            brain_alignment_median=math.nan if brain is None else brain.median,
            brain_alignment_nc_normalized=math.nan if brain is None else brain.nc_normalized,
            n_voxels=-1 if brain is None else brain.n_voxels,
            probing_epoch=-1 if results.probing is None else results.probing.epoch,
            probing_score=probing_score,
            probing_rank_score=probing_rank,
        )
        rows.append(row)
        for metric in UNIT_METRICS:
            value = getattr(row, metric)
            if math.isfinite(value):
                values[metric].setdefault(identity.condition, {})[identity.unit] = value
    return rows, values


def _paired_row(
    setting: SettingMatrix,
    metric: str,
    by_unit_a: dict[tuple[str, int, int], float],
    by_unit_b: dict[tuple[str, int, int], float],
    pair: tuple[str, str],
    options: ComparisonOptions,
) -> PairedTestRow:
    units = sorted(set(by_unit_a) & set(by_unit_b))
    a = np.array([by_unit_a[unit] for unit in units])
    b = np.array([by_unit_b[unit] for unit in units])
    t_test = paired_t_test(a, b)
    signed_rank = wilcoxon_signed_rank(a, b, zero_method=options.zero_method)
    return PairedTestRow(
        model=setting.model,
        dataset=setting.dataset,
        metric=metric,
        condition_a=pair[0],
        condition_b=pair[1],
        n_pairs=len(units),
        mean_a=float(a.mean()) if units else math.nan,
        mean_b=float(b.mean()) if units else math.nan,
        mean_difference=t_test.mean_difference,
        t=t_test.t,
        p_t=t_test.p,
        wilcoxon_r_plus=signed_rank.r_plus,
        wilcoxon_r_minus=signed_rank.r_minus,
        p_wilcoxon=signed_rank.p if units else math.nan,
    )


def _probing_score_rows(setting: SettingMatrix, probing: _SettingProbing) -> list[ProbingScoreRow]:
    rows = []
    table = probing.table
    for c, condition in enumerate(table.conditions):
        for s, scope in enumerate(table.scopes):
            score = mean_and_sem(probing.scores[c, :, s])
            rank = mean_and_sem(probing.rank_scores[c, :, s])
            if score.n == 0:
                continue
            rows.append(
                ProbingScoreRow(
                    setting.model,
                    setting.dataset,
                    condition,
                    scope,
                    score.n,
                    score.mean,
                    score.sem,
                    rank.mean,
                    rank.sem,
                )
            )
    return rows


@dataclass
class _ContrastData:
    """Subject-level values of one contrast in one setting, by scope, for pooling."""

    scores_a: dict[str, list[float]] = field(default_factory=dict)
    scores_b: dict[str, list[float]] = field(default_factory=dict)
    wins_a: dict[str, list[float]] = field(default_factory=dict)
    wins_b: dict[str, list[float]] = field(default_factory=dict)


def _pair_tables(
    setting: SettingMatrix,
    probing: _SettingProbing,
    pair: tuple[str, str],
    options: ComparisonOptions,
    comparison: Comparison,
) -> _ContrastData:
    """Task tests and win rates of one pair; returns its subject-level values."""
    table = probing.table
    wins = probing_stats.pair_wins(table, pair[0], pair[1], options.alpha, options.equal_var)
    means = probing_stats.seed_means(table)
    a_index, b_index = table.conditions.index(pair[0]), table.conditions.index(pair[1])
    for u, (subject, fold, seed) in enumerate(table.units):
        for t, task in enumerate(table.tasks):
            if not wins.tested[u, t]:
                continue
            comparison.task_tests.append(
                TaskTestRow(
                    setting.model,
                    setting.dataset,
                    pair[0],
                    pair[1],
                    subject,
                    fold,
                    seed,
                    task,
                    table.task_subfields[t],
                    table.metrics[t],
                    float(means[a_index, u, t]),
                    float(means[b_index, u, t]),
                    float(wins.t[u, t]),
                    float(wins.df[u, t]),
                    float(wins.p_a_greater[u, t]),
                    float(wins.p_b_greater[u, t]),
                    bool(wins.win_a[u, t]),
                    bool(wins.win_b[u, t]),
                )
            )
    rate_a, rate_b = probing_stats.win_rates(table, wins)
    for u, (subject, fold, seed) in enumerate(table.units):
        for s, scope in enumerate(table.scopes):
            if math.isnan(rate_a[u, s]):
                continue
            comparison.win_rates.append(
                WinRateRow(
                    setting.model,
                    setting.dataset,
                    pair[0],
                    pair[1],
                    subject,
                    fold,
                    seed,
                    scope,
                    float(rate_a[u, s]),
                    float(rate_b[u, s]),
                )
            )
    subject_scores = probing_stats.subject_means(table, probing.scores)
    subject_wins_a = probing_stats.subject_means(table, rate_a)
    subject_wins_b = probing_stats.subject_means(table, rate_b)
    data = _ContrastData()
    for s, scope in enumerate(table.scopes):
        data.scores_a[scope] = list(subject_scores[a_index, :, s])
        data.scores_b[scope] = list(subject_scores[b_index, :, s])
        data.wins_a[scope] = list(subject_wins_a[:, s])
        data.wins_b[scope] = list(subject_wins_b[:, s])
    return data


def _contrast_rows(
    model: str, dataset: str, pair: tuple[str, str], data: _ContrastData, options: ComparisonOptions
) -> list[ContrastRow]:
    scopes = sorted(scope for scope in data.scores_a if scope != OVERALL) + [OVERALL]
    raw = []
    for scope in scopes:
        a, b = np.array(data.scores_a[scope]), np.array(data.scores_b[scope])
        paired = np.isfinite(a) & np.isfinite(b)
        test = wilcoxon_signed_rank(
            a[paired], b[paired], zero_method=options.zero_method, alternative=options.alternative
        )
        raw.append((scope, a[paired], b[paired], test))
    subfield_p = [test.p if a.size else math.nan for scope, a, _, test in raw if scope != OVERALL]
    adjusted = iter(holm_correction(subfield_p))
    rows = []
    for scope, a, b, test in raw:
        p = test.p if a.size else math.nan
        p_holm = p if scope == OVERALL else float(next(adjusted))
        wins_a = mean_and_sem(data.wins_a[scope]).mean
        wins_b = mean_and_sem(data.wins_b[scope]).mean
        score_a = float(a.mean()) if a.size else math.nan
        score_b = float(b.mean()) if b.size else math.nan
        rows.append(
            ContrastRow(
                model,
                dataset,
                pair[0],
                pair[1],
                scope,
                int(a.size),
                score_a,
                score_b,
                score_a - score_b,
                wins_a,
                wins_b,
                test.r_plus,
                test.r_minus,
                p,
                p_holm,
            )
        )
    return rows


def compare_study(matrix: StudyMatrix, options: ComparisonOptions) -> Comparison:
    """Compute every table of the comparison of ``matrix`` (see the module docstring)."""
    comparison = Comparison(options=options, matrix=matrix)
    pooled: dict[tuple[str, str], _ContrastData] = {}
    for setting in matrix.settings:
        probing = _setting_probing(setting, options)
        rows, values = _unit_values(setting, probing)
        comparison.runs.extend(rows)
        for metric, by_condition in values.items():
            for condition in setting.conditions:
                if condition in by_condition:
                    summary = mean_and_sem(list(by_condition[condition].values()))
                    comparison.condition_summaries.append(
                        ConditionSummaryRow(
                            setting.model,
                            setting.dataset,
                            condition,
                            metric,
                            summary.n,
                            summary.mean,
                            summary.sem,
                        )
                    )
        pairs = condition_pairs(setting.conditions, options.contrasts)
        for metric, by_condition in values.items():
            for pair in pairs:
                if pair[0] in by_condition and pair[1] in by_condition:
                    comparison.paired_tests.append(
                        _paired_row(
                            setting,
                            metric,
                            by_condition[pair[0]],
                            by_condition[pair[1]],
                            pair,
                            options,
                        )
                    )
        if probing is None:
            comparison.notes.append(
                f"model={setting.model} dataset={setting.dataset}: no probing results"
            )
            continue
        comparison.probing_tables[(setting.model, setting.dataset)] = probing.table
        comparison.probing_scores.extend(_probing_score_rows(setting, probing))
        for pair in pairs:
            data = _pair_tables(setting, probing, pair, options, comparison)
            if pair in options.contrasts:
                comparison.contrasts.extend(
                    _contrast_rows(setting.model, setting.dataset, pair, data, options)
                )
                target = pooled.setdefault(pair, _ContrastData())
                for name in ("scores_a", "scores_b", "wins_a", "wins_b"):
                    for scope, values_ in getattr(data, name).items():
                        getattr(target, name).setdefault(scope, []).extend(values_)
    if len(comparison.probing_tables) > 1:
        for pair in options.contrasts:
            if pair in pooled:
                comparison.contrasts.extend(
                    _contrast_rows(POOLED, POOLED, pair, pooled[pair], options)
                )
    for pair in options.contrasts:
        if not any(
            row.condition_a == pair[0] and row.condition_b == pair[1]
            for row in comparison.contrasts
        ):
            comparison.notes.append(
                f"contrast {pair[0]} vs {pair[1]}: not computed (needs both conditions with probing results)"
            )
    return comparison
