"""Probing results across conditions: per-task wins, win rates, rank-normalised scores.

Within one setting (model, dataset) the probing results form an array
``scores (n_conditions, n_units, n_tasks, n_probe_seeds)``; a unit is one (subject, fold,
training seed) cell, NaN marks a result that is not there. Every per-unit quantity below is
given per *scope*: each subfield, then two aggregates over all tasks:

- ``overall``: the mean over tasks (datasets), every task counting once (Holmes);
- ``mean_of_subfields``: the mean of the subfield values, every subfield counting once
  however many tasks it has.

From the array:

- **Wins.** For a pair of conditions (a, b), per unit and task, the probe seeds of a against
  those of b with a one-sided two-sample t-test (Welch by default: the seeds' spread differs
  between models; Student with ``equal_var=True``). a wins the task when p(a > b) < alpha, b
  wins when p(b > a) < alpha. Tasks with fewer than two seeds on either side are not tested.
- **Win rates.** The fraction of tested tasks a wins, within each subfield; ``overall`` is
  the fraction of all tested tasks won, ``mean_of_subfields`` the mean of the subfield rates.
- **Scores.** The mean over probe seeds, then over the tasks of a scope.
- **Rank-normalised scores (Holmes).** Per unit and task, the conditions ranked by their
  seed-mean score, ranks min-max normalised to [0, 1] (best = 1, ties share), then averaged
  over the tasks of a scope.
- **Across subjects.** Unit values averaged per subject (over folds and training seeds),
  then a paired Wilcoxon signed-rank test between two conditions per scope, Holm
  correction across the subfields only (the two aggregates are each tested on their own).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brainmis.analysis.statistics import normalised_ranks, two_sample_t_tests
from brainmis.analysis.study import LoadedRun

OVERALL = "overall"
MEAN_OF_SUBFIELDS = "mean_of_subfields"
AGGREGATE_SCOPES = (OVERALL, MEAN_OF_SUBFIELDS)
SCOPE_LABELS = {OVERALL: "overall (mean of tasks)", MEAN_OF_SUBFIELDS: "mean of subfields"}
DEFAULT_METRICS = ("accuracy", "pearson")


@dataclass
class ProbingTable:
    """Probing scores of one setting. ``scores``: ``(C, U, T, S)``, NaN = not there.

    ``units[u] = (subject, fold, seed)``; ``metrics[t]``: the metric used for task t;
    ``subfield_names``: the sorted subfields, without the aggregate scopes.
    """

    conditions: list[str]
    units: list[tuple[str, int, int]]
    tasks: list[str]
    task_subfields: list[str]
    metrics: list[str]
    probe_seeds: list[int]
    scores: np.ndarray

    @property
    def subfield_names(self) -> list[str]:
        return sorted(set(self.task_subfields))

    @property
    def scopes(self) -> list[str]:
        """Subfield names, then ``overall`` and ``mean_of_subfields``: the last axis of every
        per-scope array."""
        return [*self.subfield_names, *AGGREGATE_SCOPES]

    @property
    def subjects(self) -> list[str]:
        return sorted({unit[0] for unit in self.units})


@dataclass
class PairWins:
    """Task-level tests of condition a against b. Arrays are ``(U, T)``."""

    condition_a: str
    condition_b: str
    p_a_greater: np.ndarray
    p_b_greater: np.ndarray
    t: np.ndarray
    df: np.ndarray
    tested: np.ndarray
    win_a: np.ndarray
    win_b: np.ndarray


def build_probing_table(
    runs: list[LoadedRun], conditions: list[str], metric_preference: Sequence[str]
) -> ProbingTable | None:
    """Collect the probing results of ``runs`` (one setting) into a ``ProbingTable``.

    Per task the metric is the first of ``metric_preference`` that any run reports for it
    (default: accuracy, Pearson r for regression tasks); tasks with none are left out.
    Returns None when no run has probing results or no task has a preferred metric.
    """
    with_probing = [run for run in runs if run.results.probing is not None]
    if not with_probing:
        return None
    task_subfields: dict[str, str] = {}
    task_metrics: dict[str, set[str]] = {}
    probe_seeds: set[int] = set()
    for run in with_probing:
        probing = run.results.probing
        for task, by_metric in probing.scores.items():
            task_subfields.setdefault(task, probing.subfields[task])
            task_metrics.setdefault(task, set()).update(by_metric)
            for by_seed in by_metric.values():
                probe_seeds.update(by_seed)
    chosen: dict[str, str] = {}
    for task in sorted(task_metrics):
        for metric in metric_preference:
            if metric in task_metrics[task]:
                chosen[task] = metric
                break
    if not chosen:
        return None
    tasks = sorted(chosen, key=lambda task: (task_subfields[task], task))
    units = sorted({run.identity.unit for run in with_probing})
    seeds = sorted(probe_seeds)
    scores = np.full((len(conditions), len(units), len(tasks), len(seeds)), np.nan)
    condition_index = {name: i for i, name in enumerate(conditions)}
    unit_index = {unit: i for i, unit in enumerate(units)}
    seed_index = {seed: i for i, seed in enumerate(seeds)}
    for run in with_probing:
        c, u = condition_index[run.identity.condition], unit_index[run.identity.unit]
        for t, task in enumerate(tasks):
            by_seed = run.results.probing.scores.get(task, {}).get(chosen[task], {})
            for seed, score in by_seed.items():
                scores[c, u, t, seed_index[seed]] = score
    return ProbingTable(
        conditions=list(conditions),
        units=units,
        tasks=tasks,
        task_subfields=[task_subfields[task] for task in tasks],
        metrics=[chosen[task] for task in tasks],
        probe_seeds=seeds,
        scores=scores,
    )


def nan_mean(values: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean`` without the all-NaN warning (all-NaN slices give NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmean(values, axis=axis)


def seed_means(table: ProbingTable) -> np.ndarray:
    """Mean score over probe seeds: ``(C, U, T)``."""
    return nan_mean(table.scores, axis=-1)


def scope_label(scope: str) -> str:
    """How a scope is written in printed tables, reports and figures."""
    return SCOPE_LABELS.get(scope, scope)


def per_subfield(table: ProbingTable, task_values: np.ndarray) -> np.ndarray:
    """Mean over the tasks of each subfield, ``overall`` = mean over all tasks and
    ``mean_of_subfields`` = mean of the subfield means (NaN values are left out).

    ``task_values``: ``(..., T)`` -> ``(..., F + 2)`` in the order of ``table.scopes``.
    """
    subfields = np.asarray(table.task_subfields)
    columns = [
        nan_mean(task_values[..., subfields == name], axis=-1) for name in table.subfield_names
    ]
    by_subfield = np.stack(columns, axis=-1)
    overall = nan_mean(task_values, axis=-1)
    mean_of_subfields = nan_mean(by_subfield, axis=-1)
    return np.concatenate([by_subfield, overall[..., None], mean_of_subfields[..., None]], axis=-1)


def subfield_scores(table: ProbingTable) -> np.ndarray:
    """Probing score per condition, unit and scope: ``(C, U, F + 2)``."""
    return per_subfield(table, seed_means(table))


def rank_normalised_scores(table: ProbingTable) -> np.ndarray:
    """Holmes-style rank-normalised score per condition, unit and scope: ``(C, U, F + 2)``."""
    return per_subfield(table, normalised_ranks(seed_means(table), axis=0))


def pair_wins(
    table: ProbingTable, condition_a: str, condition_b: str, alpha: float, equal_var: bool
) -> PairWins:
    """One-sided t-tests of a's probe seeds against b's, per unit and task (see module)."""
    a = table.scores[table.conditions.index(condition_a)]
    b = table.scores[table.conditions.index(condition_b)]
    tests = two_sample_t_tests(a, b, equal_var=equal_var)
    tested = np.isfinite(tests.p_greater)
    return PairWins(
        condition_a=condition_a,
        condition_b=condition_b,
        p_a_greater=tests.p_greater,
        p_b_greater=tests.p_less,
        t=tests.t,
        df=tests.df,
        tested=tested,
        win_a=tested & (np.nan_to_num(tests.p_greater, nan=1.0) < alpha),
        win_b=tested & (np.nan_to_num(tests.p_less, nan=1.0) < alpha),
    )


def win_rates(table: ProbingTable, wins: PairWins) -> tuple[np.ndarray, np.ndarray]:
    """Win rates of a over b and of b over a per unit and scope: two ``(U, F + 2)`` arrays.

    Untested tasks are left out of the fractions (NaN when a subfield has none); ``overall``
    is the fraction of all tested tasks won.
    """
    rate_a = np.where(wins.tested, wins.win_a.astype(float), np.nan)
    rate_b = np.where(wins.tested, wins.win_b.astype(float), np.nan)
    return per_subfield(table, rate_a), per_subfield(table, rate_b)


def subject_means(table: ProbingTable, unit_values: np.ndarray) -> np.ndarray:
    """Average ``(..., U, X)`` unit values per subject -> ``(..., n_subjects, X)``."""
    subjects = np.asarray([unit[0] for unit in table.units])
    columns = [nan_mean(unit_values[..., subjects == name, :], axis=-2) for name in table.subjects]
    return np.stack(columns, axis=-2)


# Resamples of the tasks for the win-rate intervals (the per-scope means are cheap).
TASK_BOOTSTRAP_RESAMPLES = 2_000
TASK_BOOTSTRAP_SEED = 0


def _within_subfield_resamples(
    table: ProbingTable, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Task indices ``(R, T)``: each subfield's positions filled by draws, with replacement,
    from that subfield's own tasks (so every resample keeps the subfield sizes)."""
    subfields = np.asarray(table.task_subfields)
    indices = np.empty((n_resamples, len(table.tasks)), dtype=int)
    for name in table.subfield_names:
        positions = np.flatnonzero(subfields == name)
        indices[:, positions] = rng.choice(positions, size=(n_resamples, positions.size))
    return indices


def win_difference_intervals(
    table: ProbingTable,
    wins: PairWins,
    confidence: float = 0.95,
    n_resamples: int = TASK_BOOTSTRAP_RESAMPLES,
    seed: int = TASK_BOOTSTRAP_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval over *tasks* of the win-rate difference (a's win rate
    minus b's, averaged over subjects) per scope: two ``(F + 2,)`` arrays, low and high.

    A win rate is a share of tasks, so its uncertainty comes from which tasks the suite
    happens to hold: the tasks are resampled (within their subfield, keeping the subfield
    sizes), the subjects are kept. Per resample, each subject's per-task difference
    ``win_a - win_b`` (mean over its units, untested tasks left out) is averaged over the
    drawn tasks of each scope and then over subjects. NaN where a scope has a single task
    (nothing to resample) or no tested task.
    """
    difference = np.where(wins.tested, wins.win_a.astype(float) - wins.win_b.astype(float), np.nan)
    by_subject = subject_means(table, difference)  # (n_subjects, T)
    rng = np.random.default_rng(seed)
    drawn = by_subject[:, _within_subfield_resamples(table, n_resamples, rng)]  # (S, R, T)
    rates = nan_mean(per_subfield(table, drawn), axis=0)  # (R, F + 2)
    tail = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        low, high = np.nanquantile(rates, [tail, 1.0 - tail], axis=0)
    subfields = np.asarray(table.task_subfields)
    sizes = [int((subfields == name).sum()) for name in table.subfield_names]
    single = np.array([size < 2 for size in sizes] + [len(table.tasks) < 2] * 2)
    return np.where(single, np.nan, low), np.where(single, np.nan, high)
