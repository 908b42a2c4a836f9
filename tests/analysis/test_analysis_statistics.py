"""brainmis.analysis.statistics against hand-computed values, with scipy as the reference."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from brainmis.analysis.statistics import (
    ALTERNATIVES,
    ZERO_METHODS,
    holm_correction,
    mean_and_sem,
    normalised_ranks,
    paired_effect,
    paired_t_test,
    two_sample_t_test,
    two_sample_t_tests,
    wilcoxon_signed_rank,
)


def scipy_wilcoxon(d, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stats.wilcoxon(d, **kwargs)


def test_mean_and_sem_by_hand():
    result = mean_and_sem([1.0, 2.0, 3.0, 4.0, np.nan])
    assert result.n == 4
    assert result.mean == pytest.approx(2.5)
    # std(ddof=1) = sqrt(5/3); sem = sqrt(5/3) / 2
    assert result.sem == pytest.approx(math.sqrt(5 / 3) / 2)
    assert result.sem == pytest.approx(stats.sem([1, 2, 3, 4]))
    assert math.isnan(mean_and_sem([7.0]).sem)
    assert mean_and_sem([]).n == 0


def test_paired_t_test_by_hand_and_scipy():
    a, b = np.array([3.0, 5.0, 7.0]), np.array([2.0, 3.0, 4.0])
    # d = 1, 2, 3: mean 2, sd 1, se 1/sqrt(3), t = 2 sqrt(3), df 2
    result = paired_t_test(a, b)
    assert result.t == pytest.approx(2 * math.sqrt(3))
    assert result.df == 2
    assert result.p == pytest.approx(2 * stats.t.sf(2 * math.sqrt(3), 2))
    reference = stats.ttest_rel(a, b)
    assert result.p == pytest.approx(reference.pvalue)
    for alternative in ALTERNATIVES:
        mine = paired_t_test(a, b, alternative)
        assert mine.p == pytest.approx(stats.ttest_rel(a, b, alternative=alternative).pvalue)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_paired_t_test_constant_differences():
    same = paired_t_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.t, same.p) == (0.0, 1.0)
    shifted = paired_t_test([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert shifted.t == math.inf and shifted.p == 0.0
    assert stats.ttest_rel([2.0, 3.0, 4.0], [1.0, 2.0, 3.0]).pvalue == 0.0
    assert math.isnan(paired_t_test([1.0], [2.0]).p)


def test_wilcoxon_no_ties_by_hand():
    d = np.array([1.0, 2.0, -3.0, 4.0, 5.0])
    result = wilcoxon_signed_rank(d)
    assert (result.r_plus, result.r_minus) == (12.0, 3.0)
    # sign flips of ranks 1..5 with r- <= 3: {}, {1}, {2}, {3}, {1, 2} -> 5 of 32, two-sided x2
    assert result.p == pytest.approx(10 / 32)
    assert result.method == "exact"
    reference = scipy_wilcoxon(d)
    assert result.p == pytest.approx(reference.pvalue)
    assert min(result.r_plus, result.r_minus) == reference.statistic
    assert wilcoxon_signed_rank(d, alternative="greater").p == pytest.approx(5 / 32)


def test_wilcoxon_ties_by_hand():
    d = np.array([1.0, -1.0, 2.0, 2.0, 3.0])
    result = wilcoxon_signed_rank(d)
    # |d| ranks 1.5, 1.5, 3.5, 3.5, 5: r+ = 13.5, r- = 1.5
    assert (result.r_plus, result.r_minus) == (13.5, 1.5)
    # subsets of {1.5, 1.5, 3.5, 3.5, 5} summing to <= 1.5: {}, {1.5}, {1.5'} -> 3/32, x2
    assert result.p == pytest.approx(6 / 32)
    assert result.p == pytest.approx(scipy_wilcoxon(d).pvalue)  # scipy: exact permutation


def test_wilcoxon_zero_differences_each_zero_method():
    d = np.array([0.0, 1.0, 2.0, -3.0, 4.0, 5.0])
    wilcox = wilcoxon_signed_rank(d, zero_method="wilcox")
    # the zero is dropped: same as [1, 2, -3, 4, 5]
    assert (wilcox.n, wilcox.n_nonzero, wilcox.r_plus, wilcox.r_minus) == (6, 5, 12.0, 3.0)
    assert wilcox.p == pytest.approx(10 / 32)
    pratt = wilcoxon_signed_rank(d, zero_method="pratt")
    # ranked with the zero (rank 1), which is then dropped: r+ = 2+3+5+6, r- = 4
    assert (pratt.r_plus, pratt.r_minus) == (16.0, 4.0)
    # sign flips of {2, 3, 4, 5, 6} with r- <= 4: {}, {2}, {3}, {4} -> 4/32, x2
    assert pratt.p == pytest.approx(8 / 32)
    zsplit = wilcoxon_signed_rank(d, zero_method="zsplit")
    assert (zsplit.r_plus, zsplit.r_minus) == (16.5, 4.5)
    assert zsplit.p == pytest.approx(8 / 32)
    for zero_method, mine in (("wilcox", wilcox), ("pratt", pratt), ("zsplit", zsplit)):
        reference = scipy_wilcoxon(d, zero_method=zero_method)
        assert mine.p == pytest.approx(reference.pvalue)
        assert min(mine.r_plus, mine.r_minus) == pytest.approx(reference.statistic)


def test_wilcoxon_all_zero_differences():
    a = np.array([0.5, 0.6, 0.7, 0.8])
    for zero_method in ZERO_METHODS:
        result = wilcoxon_signed_rank(a, a.copy(), zero_method=zero_method)
        assert result.n_nonzero == 0
        assert result.p == 1.0
        assert result.method == "none"
    assert wilcoxon_signed_rank(a, a.copy()).r_plus == 0.0
    # scipy agrees for Wilcoxon's rule (statistic 0, p 1)
    reference = scipy_wilcoxon(a - a)
    assert (reference.statistic, reference.pvalue) == (0.0, 1.0)


def test_wilcoxon_matches_scipy_on_random_small_samples():
    rng = np.random.default_rng(3)
    for _ in range(4):
        d = rng.integers(-3, 4, size=int(rng.integers(3, 10))).astype(float)
        if not d.any():
            continue
        for zero_method in ZERO_METHODS:
            for alternative in ALTERNATIVES:
                mine = wilcoxon_signed_rank(d, zero_method=zero_method, alternative=alternative)
                reference = scipy_wilcoxon(
                    d,
                    zero_method=zero_method,
                    alternative=alternative,
                    method=stats.PermutationMethod(),
                )
                assert mine.p == pytest.approx(reference.pvalue), (d, zero_method, alternative)


def test_wilcoxon_normal_approximation_for_large_samples():
    rng = np.random.default_rng(4)
    d = rng.normal(0.2, 1.0, size=80).round(1)
    d = d[d != 0]
    for alternative in ALTERNATIVES:
        mine = wilcoxon_signed_rank(d, alternative=alternative)
        assert mine.method == "normal"
        reference = scipy_wilcoxon(d, alternative=alternative, method="asymptotic", correction=True)
        assert mine.p == pytest.approx(reference.pvalue, rel=1e-9)


def test_welch_and_student_by_hand():
    a, b = [1.0, 2.0, 3.0], [0.0, 0.0, 1.0]
    welch = two_sample_t_test(a, b)
    # means 2 and 1/3, variances 1 and 1/3: se = sqrt(1/3 + 1/9) = 2/3, t = 2.5
    # df = (4/9)^2 / ((1/3)^2/2 + (1/9)^2/2) = 3.2
    assert welch.t == pytest.approx(2.5)
    assert welch.df == pytest.approx(3.2)
    assert welch.p == pytest.approx(stats.t.sf(2.5, 3.2))
    student = two_sample_t_test(a, b, equal_var=True)
    # pooled variance 2/3, se = sqrt(2/3 * 2/3) = 2/3, t = 2.5, df = 4
    assert (student.t, student.df) == (pytest.approx(2.5), 4.0)
    assert student.p == pytest.approx(stats.t.sf(2.5, 4))
    for equal_var in (False, True):
        for alternative in ALTERNATIVES:
            mine = two_sample_t_test(a, b, equal_var=equal_var, alternative=alternative)
            reference = stats.ttest_ind(a, b, equal_var=equal_var, alternative=alternative)
            assert mine.p == pytest.approx(reference.pvalue)


def test_two_sample_t_test_degenerate_cases():
    tie = two_sample_t_test([1.0, 1.0, 1.0], [1.0, 1.0])
    assert (tie.t, tie.p) == (0.0, 0.5)  # one-sided, the limit of t = 0
    assert two_sample_t_test([1.0, 1.0], [1.0, 1.0], alternative="two-sided").p == 1.0
    higher = two_sample_t_test([0.8, 0.8], [0.7, 0.7])
    assert higher.t == math.inf and higher.p == 0.0
    assert two_sample_t_test([0.8, 0.8], [0.7, 0.7], alternative="less").p == 1.0
    assert math.isnan(two_sample_t_test([0.8], [0.7, 0.6]).p)
    with_nan = two_sample_t_test([1.0, 2.0, 3.0, np.nan], [0.0, 0.0, 1.0])
    assert with_nan.t == pytest.approx(2.5)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    adjusted = holm_correction([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[4])
    np.testing.assert_allclose(holm_correction([0.5, 0.9]), [1.0, 1.0])
    assert holm_correction([]).size == 0


def test_normalised_ranks_by_hand():
    np.testing.assert_allclose(normalised_ranks([0.1, 0.3, 0.2]), [0.0, 1.0, 0.5])
    tied = normalised_ranks([0.5, 0.7, 0.7, np.nan])
    np.testing.assert_allclose(tied[:3], [0.0, 0.75, 0.75])
    assert math.isnan(tied[3])
    assert np.isnan(normalised_ranks([0.4, np.nan])).all()


def test_vectorised_t_tests_match_scipy_row_by_row():
    rng = np.random.default_rng(5)
    a = rng.normal(0.7, 0.02, size=(4, 6, 5))
    b = rng.normal(0.69, 0.03, size=(4, 6, 5))
    a[0, 0, 3:] = np.nan  # a task with only three seeds for a
    b[1, 2, 1:] = np.nan  # and one with a single seed for b: not testable
    for equal_var in (False, True):
        tests = two_sample_t_tests(a, b, equal_var=equal_var)
        assert tests.t.shape == (4, 6)
        assert np.isnan(tests.p_greater[1, 2]) and np.isnan(tests.t[1, 2])
        for index in np.ndindex(4, 6):
            if index == (1, 2):
                continue
            x, y = a[index][np.isfinite(a[index])], b[index][np.isfinite(b[index])]
            greater = stats.ttest_ind(x, y, equal_var=equal_var, alternative="greater")
            assert tests.t[index] == pytest.approx(greater.statistic)
            assert tests.p_greater[index] == pytest.approx(greater.pvalue)
            assert tests.p_less[index] == pytest.approx(1 - greater.pvalue)


def test_normalised_ranks_along_an_axis():
    scores = np.array([[0.1, 0.5, np.nan], [0.3, 0.5, 0.2], [0.2, np.nan, np.nan]])
    ranks = normalised_ranks(scores, axis=0)
    np.testing.assert_allclose(ranks[:, 0], [0.0, 1.0, 0.5])
    np.testing.assert_allclose(ranks[:2, 1], [0.5, 0.5])  # a tie of two
    assert np.isnan(ranks[2, 1]) and np.isnan(ranks[:, 2]).all()


def test_paired_effect_dz_and_interval():
    d = np.array([0.1, 0.3, 0.2, 0.4, 0.0, 0.2])
    effect = paired_effect(d)
    assert effect.dz == pytest.approx(d.mean() / d.std(ddof=1))
    assert effect.ci_low < d.mean() < effect.ci_high
    assert d.min() <= effect.ci_low and effect.ci_high <= d.max()  # n = 6: inside the data
    assert paired_effect(d) == effect  # seeded: the same interval every time
    assert math.isnan(paired_effect([0.2]).ci_low) and math.isnan(paired_effect([0.2]).dz)
    assert math.isnan(paired_effect([0.2, 0.2]).dz)  # no spread: d_z undefined
    few = paired_effect([0.1, 0.3, 0.2, 0.4])  # 4 subjects: d_z, but no interval
    assert math.isfinite(few.dz) and math.isnan(few.ci_low) and math.isnan(few.ci_high)


def test_paired_effect_interval_covers_a_planted_mean_difference():
    """Over 200 synthetic studies of 6 subjects (an fMRI study's size) with a true mean
    difference of 0.05, the 95% interval holds it in about 95% of them (the plain percentile
    interval would cover ~85%)."""
    rng = np.random.default_rng(7)
    covered = [
        effect.ci_low <= 0.05 <= effect.ci_high
        for effect in (
            paired_effect(0.05 + 0.03 * rng.standard_normal(6), n_resamples=2000, seed=s)
            for s in range(200)
        )
    ]
    assert 0.90 <= np.mean(covered) <= 0.99
