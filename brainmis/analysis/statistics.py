"""Small, explicit statistical tests used to compare conditions.

Each function does one thing and returns a dataclass, so every number that reaches a table
can be traced to one formula. scipy is the reference the tests check these against; the
functions are written out here so that the handling of the edge cases (zero differences,
ties, zero variance, too few values) is visible and documented instead of being whatever a
library version does.

Conventions: ``alternative`` is ``"two-sided"``, ``"greater"`` (the first sample is larger)
or ``"less"``. A test that cannot be computed (fewer than two values) returns NaN for its
statistic and p-value; callers keep the NaN and report ``n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALTERNATIVES = ("two-sided", "greater", "less")
ZERO_METHODS = ("wilcox", "pratt", "zsplit")

# Above this many non-zero differences the signed-rank p-value uses the normal approximation;
# at or below it the exact sign-flip distribution is enumerated (ties handled exactly).
WILCOXON_EXACT_MAX_N = 50


@dataclass(frozen=True)
class MeanSem:
    """Mean and standard error of the mean (``std(ddof=1) / sqrt(n)``) of finite values."""

    n: int
    mean: float
    sem: float


@dataclass(frozen=True)
class PairedTTest:
    """Paired t-test of ``a - b``: ``t = mean(d) / (std(d, ddof=1) / sqrt(n))``, df = n - 1."""

    n: int
    mean_difference: float
    t: float
    df: float
    p: float


@dataclass(frozen=True)
class SignedRankTest:
    """Wilcoxon signed-rank test of ``a - b``.

    ``r_plus`` / ``r_minus``: sums of the ranks of |d| for positive / negative differences
    (with ``zsplit``, half of each zero's rank goes to each). ``n_nonzero``: differences that
    carry a sign. ``method``: ``"exact"`` (sign-flip distribution), ``"normal"`` or
    ``"none"`` (no non-zero difference: p = 1).
    """

    n: int
    n_nonzero: int
    r_plus: float
    r_minus: float
    p: float
    method: str


@dataclass(frozen=True)
class TwoSampleTTest:
    """Two-sample t statistic of ``mean(a) - mean(b)`` and its one-sided p-value(s)."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    t: float
    df: float
    p: float


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def _finite(values: np.ndarray | list[float]) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


def mean_and_sem(values: np.ndarray | list[float]) -> MeanSem:
    """Mean and s.e.m. of the finite entries of ``values`` (NaN sem for fewer than two)."""
    finite = _finite(values)
    n = int(finite.size)
    if n == 0:
        return MeanSem(0, math.nan, math.nan)
    mean = float(finite.mean())
    sem = float(finite.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return MeanSem(n, mean, sem)


def _t_p_value(t: float, df: float, alternative: str) -> float:
    if alternative == "greater":
        return float(stats.t.sf(t, df))
    if alternative == "less":
        return float(stats.t.cdf(t, df))
    return float(min(1.0, 2.0 * stats.t.sf(abs(t), df)))


def _degenerate_t(difference: float, alternative: str) -> tuple[float, float]:
    """t and p when the standard error is zero: a constant difference.

    Zero difference: t = 0, as its limit gives: p = 1 two-sided, 0.5 one-sided (scipy gives
    NaN). Non-zero: t = +-inf, p = 0 in the direction of the difference and 1 against it.
    """
    if difference == 0:
        return 0.0, 1.0 if alternative == "two-sided" else 0.5
    t = math.copysign(math.inf, difference)
    if alternative == "two-sided":
        return t, 0.0
    agrees = (difference > 0) == (alternative == "greater")
    return t, 0.0 if agrees else 1.0


def paired_t_test(
    a: np.ndarray | list[float], b: np.ndarray | list[float], alternative: str = "two-sided"
) -> PairedTTest:
    """Paired t-test of equal-length samples ``a`` and ``b`` (pairs with a NaN are dropped)."""
    _check_alternative(alternative)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in shape: {a.shape} vs {b.shape}")
    d = _finite(a - b)
    n = int(d.size)
    if n < 2:
        mean = float(d.mean()) if n else math.nan
        return PairedTTest(n, mean, math.nan, math.nan, math.nan)
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))
    df = float(n - 1)
    if se == 0:
        t, p = _degenerate_t(mean, alternative)
    else:
        t = mean / se
        p = _t_p_value(t, df, alternative)
    return PairedTTest(n, mean, t, df, p)


def _signed_ranks(d: np.ndarray, zero_method: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Ranks of |d| for the non-zero differences, their signs and the zsplit zero share.

    ``wilcox`` drops zeros before ranking; ``pratt`` ranks zeros with the rest, then drops
    them; ``zsplit`` ranks them with the rest and splits their ranks between r+ and r-.
    """
    zero = d == 0
    if zero_method == "wilcox":
        d = d[~zero]
        zero = np.zeros(d.size, dtype=bool)
    ranks = stats.rankdata(np.abs(d), method="average")
    zero_share = float(ranks[zero].sum() / 2.0) if zero_method == "zsplit" else 0.0
    return ranks[~zero], np.sign(d[~zero]), zero_share


def _sign_flip_distribution(doubled_ranks: np.ndarray) -> np.ndarray:
    """P(sum of a random subset of ``doubled_ranks`` = k) for k = 0..sum; each in with p 1/2.

    ``doubled_ranks`` are integers (2 x average ranks, so ties' half ranks stay exact).
    """
    counts = np.zeros(int(doubled_ranks.sum()) + 1)
    counts[0] = 1.0
    for rank in doubled_ranks.astype(int):
        shifted = np.zeros_like(counts)
        shifted[rank:] = counts[: counts.size - rank]
        counts = (counts + shifted) / 2.0
    return counts


def _signed_rank_p_exact(ranks: np.ndarray, r_plus: float, alternative: str) -> float:
    doubled = np.rint(2 * ranks).astype(int)
    distribution = _sign_flip_distribution(doubled)
    observed = int(np.rint(2 * r_plus))
    p_greater = float(distribution[observed:].sum())
    p_less = float(distribution[: observed + 1].sum())
    if alternative == "greater":
        return min(1.0, p_greater)
    if alternative == "less":
        return min(1.0, p_less)
    return min(1.0, 2.0 * min(p_greater, p_less))


def _signed_rank_p_normal(ranks: np.ndarray, r_plus: float, alternative: str) -> float:
    """Normal approximation of the sign-flip distribution of r+, with continuity correction.

    Mean and variance are those of the conditional distribution given the ranks, which
    already includes the tie correction: E = sum(r)/2, Var = sum(r^2)/4.
    """
    mean = ranks.sum() / 2.0
    sd = math.sqrt(float((ranks**2).sum()) / 4.0)
    if alternative == "greater":
        return float(stats.norm.sf((r_plus - mean - 0.5) / sd))
    if alternative == "less":
        return float(stats.norm.cdf((r_plus - mean + 0.5) / sd))
    z = (abs(r_plus - mean) - 0.5) / sd
    return float(min(1.0, 2.0 * stats.norm.sf(max(z, 0.0))))


def wilcoxon_signed_rank(
    a: np.ndarray | list[float],
    b: np.ndarray | list[float] | None = None,
    *,
    zero_method: str = "wilcox",
    alternative: str = "two-sided",
) -> SignedRankTest:
    """Wilcoxon signed-rank test of the paired differences ``a - b`` (or of ``a`` alone).

    Zero differences follow ``zero_method`` (see ``_signed_ranks``); the default ``wilcox``
    drops them, Wilcoxon's original rule and scipy's default. Tied |d| get average ranks.
    The p-value is the sign-flip (permutation) distribution of r+ given the observed ranks:
    exact up to ``WILCOXON_EXACT_MAX_N`` non-zero differences (so ties and zeros stay exact),
    a normal approximation with continuity correction above. No non-zero difference at all
    (e.g. identical samples) gives r+ = r- = 0 (plus zsplit shares) and p = 1.
    Pairs with a NaN are dropped first.
    """
    _check_alternative(alternative)
    if zero_method not in ZERO_METHODS:
        raise ValueError(f"zero_method must be one of {ZERO_METHODS}, got {zero_method!r}")
    a = np.asarray(a, dtype=float)
    d = a if b is None else a - np.asarray(b, dtype=float)
    d = _finite(d)
    ranks, signs, zero_share = _signed_ranks(d, zero_method)
    r_plus = float(ranks[signs > 0].sum()) + zero_share
    r_minus = float(ranks[signs < 0].sum()) + zero_share
    n_nonzero = int(ranks.size)
    if n_nonzero == 0:
        return SignedRankTest(int(d.size), 0, r_plus, r_minus, 1.0, "none")
    r_plus_nonzero = r_plus - zero_share
    if n_nonzero <= WILCOXON_EXACT_MAX_N:
        p = _signed_rank_p_exact(ranks, r_plus_nonzero, alternative)
        method = "exact"
    else:
        p = _signed_rank_p_normal(ranks, r_plus_nonzero, alternative)
        method = "normal"
    return SignedRankTest(int(d.size), n_nonzero, r_plus, r_minus, p, method)


@dataclass(frozen=True)
class TwoSampleTTests:
    """Vectorised two-sample t-tests: every field has the leading shape of the inputs."""

    n_a: np.ndarray
    n_b: np.ndarray
    mean_a: np.ndarray
    mean_b: np.ndarray
    t: np.ndarray
    df: np.ndarray
    p_greater: np.ndarray
    p_less: np.ndarray


def two_sample_t_tests(a: np.ndarray, b: np.ndarray, *, equal_var: bool = False) -> TwoSampleTTests:
    """Welch (default) or Student t-tests of ``mean(a) - mean(b)`` along the last axis.

    ``a (..., n_a)``, ``b (..., n_b)`` with equal leading shapes; NaN entries are absent
    values. Welch: ``t = (ma - mb) / sqrt(va/na + vb/nb)``, Welch-Satterthwaite df. Student:
    pooled variance, df = na + nb - 2. Both samples constant (zero standard error): t = +-inf
    when the means differ (p 0 in their direction, 1 against), t = 0 when they are equal
    (one-sided p 0.5). Fewer than two values in a sample: NaN. Both one-sided p-values are
    returned; the two-sided one is ``min(1, 2 min(p_greater, p_less))``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape[:-1] != b.shape[:-1]:
        raise ValueError(f"leading shapes differ: {a.shape} vs {b.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        n_a = np.isfinite(a).sum(axis=-1)
        n_b = np.isfinite(b).sum(axis=-1)
        mean_a = np.where(np.isfinite(a), a, 0.0).sum(axis=-1) / n_a
        mean_b = np.where(np.isfinite(b), b, 0.0).sum(axis=-1) / n_b
        squares_a = np.where(np.isfinite(a), (a - mean_a[..., None]) ** 2, 0.0).sum(axis=-1)
        squares_b = np.where(np.isfinite(b), (b - mean_b[..., None]) ** 2, 0.0).sum(axis=-1)
        var_a, var_b = squares_a / (n_a - 1), squares_b / (n_b - 1)
        pooled_df = (n_a + n_b - 2).astype(float)
        if equal_var:
            pooled = (squares_a + squares_b) / pooled_df
            se = np.sqrt(pooled * (1.0 / n_a + 1.0 / n_b))
            df = pooled_df
        else:
            share_a, share_b = var_a / n_a, var_b / n_b
            se = np.sqrt(share_a + share_b)
            welch_df = (share_a + share_b) ** 2 / (share_a**2 / (n_a - 1) + share_b**2 / (n_b - 1))
            df = np.where(se > 0, welch_df, pooled_df)
        difference = mean_a - mean_b
        t = np.where(
            se > 0, difference / se, np.where(difference == 0, 0.0, np.sign(difference) * np.inf)
        )
    too_few = (n_a < 2) | (n_b < 2)
    t = np.where(too_few, np.nan, t)
    df = np.where(too_few, np.nan, df)
    # the t distribution's tails at +-inf are exactly 0 and 1, so constant samples need no
    # special case here
    p_greater = np.where(too_few, np.nan, stats.t.sf(t, np.where(too_few, 1.0, df)))
    p_less = np.where(too_few, np.nan, stats.t.cdf(t, np.where(too_few, 1.0, df)))
    return TwoSampleTTests(n_a, n_b, mean_a, mean_b, t, df, p_greater, p_less)


def two_sample_t_test(
    a: np.ndarray | list[float],
    b: np.ndarray | list[float],
    *,
    equal_var: bool = False,
    alternative: str = "greater",
) -> TwoSampleTTest:
    """One two-sample t-test of 1-D ``a`` against ``b`` (see ``two_sample_t_tests``).

    Used one-sided per probing task: ``alternative="greater"`` asks whether condition a's
    probe seeds score higher than condition b's.
    """
    _check_alternative(alternative)
    a, b = _finite(a), _finite(b)
    tests = two_sample_t_tests(a, b, equal_var=equal_var)
    p_greater, p_less = float(tests.p_greater), float(tests.p_less)
    if alternative == "greater":
        p = p_greater
    elif alternative == "less":
        p = p_less
    else:
        p = min(1.0, 2.0 * min(p_greater, p_less))
    return TwoSampleTTest(
        n_a=int(tests.n_a),
        n_b=int(tests.n_b),
        mean_a=float(tests.mean_a),
        mean_b=float(tests.mean_b),
        t=float(tests.t),
        df=float(tests.df),
        p=p,
    )


def holm_correction(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Sorted ascending p_(1) <= ... <= p_(m): ``adj_(i) = max_{j <= i} min(1, (m - j + 1)
    p_(j))``. NaN entries stay NaN and do not count towards m.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    m = valid.size
    if m == 0:
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * p[index]))
        adjusted[index] = running
    return adjusted


def normalised_ranks(scores: np.ndarray | list[float], axis: int = 0) -> np.ndarray:
    """Rank conditions by score (higher is better) and min-max normalise the ranks to [0, 1].

    ``scores``: conditions along ``axis`` (e.g. ``(n_conditions,)`` or ``(n_conditions, ...)``
    for many tasks at once). NaN entries (a condition without the task) are left out and stay
    NaN. Ties share their average rank. Best -> 1, worst -> 0; where fewer than two conditions
    are ranked the result is NaN (there is nothing to rank against).
    """
    scores = np.asarray(scores, dtype=float)
    ranks = stats.rankdata(scores, method="average", axis=axis, nan_policy="omit")
    k = np.isfinite(scores).sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = (ranks - 1.0) / (k - 1.0)
    return np.where((k >= 2) & np.isfinite(scores), normalised, np.nan)


BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
# Fewer units than this give no interval: a bootstrap of 2-4 values cannot leave their range,
# so it would look precise where the data say nothing.
MIN_BOOTSTRAP_UNITS = 5


@dataclass(frozen=True)
class PairedEffect:
    """Size of a paired difference over n units (subjects).

    ``dz``: the standardised mean difference ``mean(d) / sd(d)`` (Cohen's d_z, ``ddof=1``;
    NaN with fewer than 2 units or no spread). ``ci_low``, ``ci_high``: the expanded
    percentile bootstrap interval of ``mean(d)`` over the units (NaN with fewer than
    ``MIN_BOOTSTRAP_UNITS`` units).
    """

    dz: float
    ci_low: float
    ci_high: float


def paired_effect(
    differences: np.ndarray | list[float],
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> PairedEffect:
    """Cohen's d_z and a seeded bootstrap interval of the mean of ``differences`` (one value
    per unit: the units are resampled with replacement, ``n_resamples`` times).

    The plain percentile interval is too narrow with few units (the resampled means spread
    like ``sd * sqrt((n - 1) / n) / sqrt(n)`` and a normal, not a t, tail). With the subjects
    of a typical fMRI study (6-8) it covers clearly less than 95%, so the percentiles are
    taken at the expanded tail ``Phi(-sqrt(n / (n - 1)) * t_{n-1, 1-tail})`` (Hesterberg's
    expanded percentile interval), which restores the nominal coverage for a mean."""
    d = _finite(differences)
    if d.size < 2:
        return PairedEffect(math.nan, math.nan, math.nan)
    spread = float(d.std(ddof=1))
    dz = float(d.mean() / spread) if spread > 0 else math.nan
    if d.size < MIN_BOOTSTRAP_UNITS:
        return PairedEffect(dz, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_resamples, d.size))].mean(axis=1)
    n = d.size
    quantile = stats.t.ppf(1.0 - (1.0 - confidence) / 2.0, df=n - 1)
    tail = float(stats.norm.cdf(-math.sqrt(n / (n - 1)) * quantile))
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return PairedEffect(dz, float(low), float(high))
