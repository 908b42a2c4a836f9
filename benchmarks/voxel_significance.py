"""Per-voxel permutation test of the held-out r: ours beside a plain loop and the ridge fit.

An HP-sized problem by default (``benchmarks/brain_eval.py``'s ``make_problem``): 1211 TRs
in 4 runs, 3,840 features, 25,000 voxels; the last run (302 TRs) is the test run. The ridge
(``brainmis.ridge.ridge_cv_held_out``, 12 penalties, leave-one-run-out inner folds) gives
the held-out predictions once; then, with the same 1,000 block orders (blocks of 10 TRs):

1. ours: ``brainmis.evaluation.brain.significance.voxel_significance`` (block-slot products
   once, a gather-sum per permutation batch, Benjamini-Hochberg);
2. a plain loop: one permutation at a time, the predicted series re-indexed and a
   column-wise Pearson r over all voxels in numpy (centring and norms each time);
3. the ridge fit itself: ``evaluate_brain_alignment`` on the same data, without the test;
4. ``evaluate_brain_alignment`` with the test (what an evaluation costs with it on).

Printed: the seconds of each (the fastest of ``--repeats`` calls), the loop's and the
ridge's time as a ratio to ours, whether the goal "significance < ridge" is met, and the
largest difference in p between ours and the loop (they must agree: the script exits 1
otherwise). ``--loop-permutations N`` times the loop on N permutations only and scales the
time to all of them (marked "scaled").

    python benchmarks/voxel_significance.py --threads 1
    python benchmarks/voxel_significance.py --scale 0.1 --loop-permutations 100   # quick
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from brain_eval import make_problem, timed  # noqa: E402

from brainmis.evaluation.brain.encoding import evaluate_brain_alignment  # noqa: E402
from brainmis.evaluation.brain.significance import (  # noqa: E402
    PermutationTestOptions,
    block_orders,
    fold_p_values,
    permuted_indices,
    voxel_significance,
)
from brainmis.ridge import DEFAULT_ALPHAS, ridge_cv_held_out  # noqa: E402


def loop_p_values(
    predictions: np.ndarray, responses: np.ndarray, orders: np.ndarray, block_trs: int
) -> np.ndarray:
    """The plain way: per permutation, re-index the predictions ``(n, V)`` and take the
    Pearson r of every column with the responses; p = (1 + #{r_perm >= r_obs}) / (1 + n)."""

    def column_r(P: np.ndarray, Y: np.ndarray) -> np.ndarray:
        P = P - P.mean(0)
        Y = Y - Y.mean(0)
        denominator = np.linalg.norm(P, axis=0) * np.linalg.norm(Y, axis=0)
        return np.where(denominator > 0, (P * Y).sum(0) / np.maximum(denominator, 1e-300), 0.0)

    n_trs = predictions.shape[0]
    observed = column_r(predictions, responses)
    exceed = np.zeros(predictions.shape[1], dtype=np.int64)
    for order in orders:
        permuted = predictions[permuted_indices(order, n_trs, block_trs)]
        exceed += column_r(permuted, responses) >= observed - 1e-5
    return (1.0 + exceed) / (1.0 + len(orders))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trs", type=int, default=1211)
    parser.add_argument("--n-features", type=int, default=3840)
    parser.add_argument("--n-voxels", type=int, default=25000)
    parser.add_argument("--n-runs", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the voxel count")
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--block-trs", type=int, default=10)
    parser.add_argument(
        "--loop-permutations",
        type=int,
        default=0,
        help="time the plain loop on this many permutations and scale (0: all of them)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="time each step this often, keep the fastest"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n_voxels = max(1, int(args.n_voxels * args.scale))
    features, responses, runs = make_problem(
        args.n_trs, args.n_features, n_voxels, args.n_runs, args.seed
    )
    test_run = int(runs.max())
    test = runs == test_run
    options = PermutationTestOptions(args.permutations, args.block_trs, 0.05, args.seed)
    print(
        f"problem: {args.n_trs} TRs ({int((~test).sum())} train / {int(test.sum())} test), "
        f"{args.n_features} features, {n_voxels} voxels; {args.permutations} permutations in "
        f"blocks of {args.block_trs} TRs; device {device}, {torch.get_num_threads()} torch "
        "threads"
    )

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    fit = ridge_cv_held_out(
        torch.from_numpy(features[~test]),
        torch.from_numpy(responses[~test]),
        torch.from_numpy(features[test]),
        torch.from_numpy(responses[test]),
        runs[~test],
        DEFAULT_ALPHAS,
        device=device,
    )
    folds = [(fit.predictions, fit.targets)]

    def ours():
        result = voxel_significance(folds, options)
        sync()
        return result

    ours()  # warm-up
    tested, t_ours = timed(ours, args.repeats)

    orders = block_orders(
        int(test.sum()), args.block_trs, args.permutations, np.random.default_rng(args.seed)
    )
    loop_count = args.loop_permutations or args.permutations
    P, Y = fit.predictions.cpu().numpy(), fit.targets.cpu().numpy()
    p_loop, t_loop = timed(
        lambda: loop_p_values(P, Y, orders[:loop_count], args.block_trs), args.repeats
    )
    t_loop_all = t_loop * args.permutations / loop_count
    if loop_count == args.permutations:
        delta_p = float(np.abs(p_loop - tested.p).max())
    else:  # compare on the permutations the loop ran
        p_ours = fold_p_values(fit.predictions, fit.targets, orders[:loop_count], args.block_trs)
        delta_p = float(np.abs(p_loop - p_ours).max())

    def ridge(significance=None):
        result = evaluate_brain_alignment(
            features,
            responses,
            runs,
            test_runs=test_run,
            device=device,
            significance=significance,
        )
        sync()
        return result

    _, t_ridge = timed(ridge, args.repeats)
    with_test, t_both = timed(lambda: ridge(options), args.repeats)

    loop_name = "plain loop (numpy, one permutation at a time)"
    loop_note = "" if loop_count == args.permutations else f" (scaled from {loop_count})"
    rows = [
        ("ours: voxel_significance", t_ours, ""),
        (loop_name + loop_note, t_loop_all, f"{t_loop_all / t_ours:.1f}x ours"),
        ("ridge fit: evaluate_brain_alignment", t_ridge, f"{t_ridge / t_ours:.1f}x ours"),
        ("evaluate_brain_alignment with the test", t_both, f"+{t_both - t_ridge:.2f} s"),
    ]
    print(f"{'step':<62}{'seconds':>10}{'ratio':>14}")
    for name, seconds, ratio in rows:
        print(f"{name:<62}{seconds:>10.2f}{ratio:>14}")
    goal = "met" if t_ours < t_ridge else "NOT met"
    print(
        f"goal significance < ridge: {goal} ({t_ours:.2f} s against {t_ridge:.2f} s, "
        f"{t_ours / t_ridge:.1%} of the ridge); the plain loop takes {t_loop_all / t_ours:.1f}x "
        f"ours; {with_test.significance.n_significant} of {n_voxels} voxels significant at "
        f"q <= 0.05; max |delta p| ours vs loop {delta_p:.2e}"
    )
    if delta_p > 2.0 / (1 + loop_count):  # at most a near-tie of one permutation
        print("check failed: ours and the plain loop give different p")
        return 1
    print("check: same p as the plain loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
