"""Per-task wins, win rates, subfield scores and rank-normalised scores on a hand-made table."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from brainmis.analysis import probing_stats
from brainmis.analysis.probing_stats import ProbingTable


def hand_table() -> ProbingTable:
    """Two conditions, two units of one subject, three tasks (2 syntax, 1 semantics), 3 seeds.

    Unit 0: t1 a clearly higher, t2 identical, t3 b clearly higher.
    Unit 1: t1 a clearly higher, t2 a clearly higher, t3 task missing for b.
    """
    nan = np.nan
    a = [
        [[0.80, 0.81, 0.79], [0.60, 0.61, 0.59], [0.50, 0.51, 0.49]],
        [[0.90, 0.91, 0.89], [0.70, 0.71, 0.69], [0.40, 0.41, 0.39]],
    ]
    b = [
        [[0.70, 0.71, 0.69], [0.60, 0.61, 0.59], [0.60, 0.61, 0.59]],
        [[0.80, 0.81, 0.79], [0.60, 0.61, 0.59], [nan, nan, nan]],
    ]
    return ProbingTable(
        conditions=["a", "b"],
        units=[("S1", 0, 42), ("S1", 1, 42)],
        tasks=["t1", "t2", "t3"],
        task_subfields=["syntax", "syntax", "semantics"],
        metrics=["accuracy"] * 3,
        probe_seeds=[0, 1, 2],
        scores=np.array([a, b], dtype=float),
    )


def test_scopes_are_sorted_subfields_then_the_two_aggregates():
    assert hand_table().scopes == ["semantics", "syntax", "overall", "mean_of_subfields"]


def test_pair_wins_by_hand():
    table = hand_table()
    wins = probing_stats.pair_wins(table, "a", "b", alpha=0.05, equal_var=False)
    # t1 unit 0: difference 0.1, both variances 1e-4, se = sqrt(2e-4/3), df = 4
    t = 0.1 / np.sqrt(2e-4 / 3)
    assert wins.t[0, 0] == pytest.approx(t)
    assert wins.df[0, 0] == pytest.approx(4.0)
    assert wins.p_a_greater[0, 0] == pytest.approx(stats.t.sf(t, 4))
    reference = stats.ttest_ind(
        table.scores[0, 0, 0], table.scores[1, 0, 0], equal_var=False, alternative="greater"
    )
    assert wins.p_a_greater[0, 0] == pytest.approx(reference.pvalue)
    np.testing.assert_array_equal(wins.win_a, [[True, False, False], [True, True, False]])
    np.testing.assert_array_equal(wins.win_b, [[False, False, True], [False, False, False]])
    np.testing.assert_array_equal(wins.tested, [[True, True, True], [True, True, False]])
    assert wins.p_a_greater[0, 1] == pytest.approx(0.5)  # identical seeds: t = 0


def test_win_rates_within_subfield_then_across():
    table = hand_table()
    wins = probing_stats.pair_wins(table, "a", "b", alpha=0.05, equal_var=False)
    rate_a, rate_b = probing_stats.win_rates(table, wins)
    # unit 0: semantics a 0/1, syntax a 1/2 -> overall = 1 of 3 tested tasks won,
    # mean of subfields (0 + 0.5) / 2
    np.testing.assert_allclose(rate_a[0], [0.0, 0.5, 1 / 3, 0.25])
    np.testing.assert_allclose(rate_b[0], [1.0, 0.0, 1 / 3, 0.5])
    # unit 1: semantics untested (NaN), syntax a 2/2 -> both aggregates over what was tested
    assert np.isnan(rate_a[1, 0])
    np.testing.assert_allclose(rate_a[1, 1:], [1.0, 1.0, 1.0])


def test_subfield_scores_and_subject_means():
    table = hand_table()
    scores = probing_stats.subfield_scores(table)
    # condition a, unit 0: semantics 0.5, syntax (0.8 + 0.6) / 2 = 0.7;
    # overall = mean of the 3 tasks (0.8 + 0.6 + 0.5) / 3, mean of subfields (0.5 + 0.7) / 2
    np.testing.assert_allclose(scores[0, 0], [0.5, 0.7, 1.9 / 3, 0.6])
    # condition b, unit 1: semantics missing -> both aggregates = syntax only
    assert np.isnan(scores[1, 1, 0])
    np.testing.assert_allclose(scores[1, 1, 1:], [0.7, 0.7, 0.7])
    per_subject = probing_stats.subject_means(table, scores)
    assert per_subject.shape == (2, 1, 4)
    # a, syntax: units 0.7 and 0.8 -> 0.75
    assert per_subject[0, 0, 1] == pytest.approx(0.75)


def test_rank_normalised_scores_by_hand():
    table = hand_table()
    ranks = probing_stats.rank_normalised_scores(table)
    # unit 0: t1 a best (a 1, b 0), t2 tie (0.5, 0.5), t3 b best (a 0, b 1)
    # semantics: a 0, b 1; syntax: a 0.75, b 0.25; overall (3 tasks): a 1.5 / 3, b 1.5 / 3;
    # mean of subfields: a 0.375, b 0.625
    np.testing.assert_allclose(ranks[:, 0, :], [[0.0, 0.75, 0.5, 0.375], [1.0, 0.25, 0.5, 0.625]])
    # unit 1, t3 only a has it: not ranked -> semantics NaN for both
    assert np.isnan(ranks[:, 1, 0]).all()
    np.testing.assert_allclose(ranks[:, 1, 1], [1.0, 0.0])


def test_three_conditions_rank_in_between():
    table = hand_table()
    third = table.scores[:1] - 0.05  # condition c: a shifted down, between a and b on t1
    table = ProbingTable(
        conditions=["a", "b", "c"],
        units=table.units,
        tasks=table.tasks,
        task_subfields=table.task_subfields,
        metrics=table.metrics,
        probe_seeds=table.probe_seeds,
        scores=np.concatenate([table.scores, third]),
    )
    means = probing_stats.seed_means(table)
    np.testing.assert_allclose(means[:, 0, 0], [0.80, 0.70, 0.75])
    ranks = probing_stats.rank_normalised_scores(table)
    assert ranks[2, 0, 1] == pytest.approx(np.mean([0.5, 0.0]))  # syntax: t1 middle, t2 last


def test_win_difference_intervals_by_hand():
    """Subject S1's per-task differences win_a - win_b (mean over its two units): t1 1, t2
    0.5 (syntax); t3 -1 (semantics, unit 1 untested). Tasks are resampled within syntax, so
    syntax takes the means 1, 0.75 or 0.5 (probabilities 1/4, 1/2, 1/4); semantics has one
    task: no interval."""
    table = hand_table()
    wins = probing_stats.pair_wins(table, "a", "b", alpha=0.05, equal_var=False)
    low, high = probing_stats.win_difference_intervals(table, wins)
    by_scope = dict(zip(table.scopes, zip(low, high)))
    assert np.isnan(by_scope["semantics"][0]) and np.isnan(by_scope["semantics"][1])
    assert by_scope["syntax"] == pytest.approx((0.5, 1.0))
    assert by_scope["overall"] == pytest.approx((0.0, 1 / 3))  # mean of (syntax pair, -1)
    assert by_scope["mean_of_subfields"] == pytest.approx((-0.25, 0.0))


def planted_win_table(n_tasks: int, won: int, seed: int = 0) -> ProbingTable:
    """One subject, one unit, ``n_tasks`` tasks of one subfield; a is 0.1 above b on the
    first ``won`` tasks (a clear win), equal in expectation on the rest."""
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.5, 0.8, size=(1, n_tasks, 1)) + rng.normal(0, 0.01, (1, n_tasks, 5))
    shift = np.where(np.arange(n_tasks) < won, 0.1, 0.0)[None, :, None]
    a = b.mean(axis=-1, keepdims=True) + shift + rng.normal(0, 0.01, (1, n_tasks, 5))
    return ProbingTable(
        conditions=["a", "b"],
        units=[("S1", 0, 0)],
        tasks=[f"t{i}" for i in range(n_tasks)],
        task_subfields=["syntax"] * n_tasks,
        metrics=["accuracy"] * n_tasks,
        probe_seeds=list(range(5)),
        scores=np.stack([a, b]),
    )


def test_win_difference_interval_brackets_the_observed_rate_and_shrinks_with_more_tasks():
    widths = []
    for n_tasks in (40, 160):
        table = planted_win_table(n_tasks, won=n_tasks // 2)
        wins = probing_stats.pair_wins(table, "a", "b", alpha=0.05, equal_var=False)
        rate_a, rate_b = probing_stats.win_rates(table, wins)
        observed = float(rate_a[0, -2] - rate_b[0, -2])  # overall
        low, high = probing_stats.win_difference_intervals(table, wins)
        assert low[-2] < observed < high[-2]
        # a share p of n tasks: s.d. sqrt(p (1 - p) / n); the 95% interval about 4 of them
        expected = 2 * 1.96 * np.sqrt(observed * (1 - observed) / n_tasks)
        assert high[-2] - low[-2] == pytest.approx(expected, rel=0.3)
        widths.append(high[-2] - low[-2])
    assert widths[1] < 0.65 * widths[0]
