"""Cost of the encoder-free measures (RSA, linear CKA, Procrustes) beside the ridge fit.

The HP-sized problem of ``benchmarks/brain_eval.py`` by default: 1211 TRs in 4 runs, 3,840
features (5 TRs x 768), 25,000 voxels; the last run is the held-out run. The reference is
the ridge evaluation every run already pays for,
``brainmis.evaluation.brain.encoding.evaluate_brain_alignment`` (12 penalties, per-voxel
choice by leave-one-run-out, scored on the held-out run; no permutation test). Each measure is
``brainmis.evaluation.brain.similarity.held_out_similarity`` with that measure alone (feature
standardisation on the training runs included; Procrustes includes its PCA), over all voxels
and ``--rois`` equal ROIs.

Printed: seconds of each (the fastest of ``--repeats`` calls), the measure's seconds / the
ridge's seconds, and the measure's value (all voxels).

    python benchmarks/similarity_metrics.py                # full size, CPU
    python benchmarks/similarity_metrics.py --scale 0.1    # quick
    python benchmarks/similarity_metrics.py --device cuda
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
from brainmis.evaluation.brain.similarity import (  # noqa: E402
    SIMILARITY_METRICS,
    held_out_similarity,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trs", type=int, default=1211)
    parser.add_argument("--n-features", type=int, default=3840)
    parser.add_argument("--n-voxels", type=int, default=25000)
    parser.add_argument("--n-runs", type=int, default=4)
    parser.add_argument("--rois", type=int, default=4, help="equal ROIs besides all voxels")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the voxel count")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    n_voxels = max(8, int(args.n_voxels * args.scale))
    features, responses, runs = make_problem(
        args.n_trs, args.n_features, n_voxels, args.n_runs, args.seed
    )
    responses = (responses - responses.mean(0)) / responses.std(0)
    test_run = int(runs.max())
    rois = {f"roi{k}": (np.arange(n_voxels) * args.rois // n_voxels) == k for k in range(args.rois)}
    device = torch.device(args.device)
    print(
        f"{args.n_trs} TRs in {args.n_runs} runs ({int((runs == test_run).sum())} held out), "
        f"{args.n_features} features, {n_voxels} voxels, {args.rois} ROIs; device {device}; "
        f"torch threads {torch.get_num_threads()}; fastest of {args.repeats}"
    )

    def ridge():
        return evaluate_brain_alignment(
            features, responses, runs, test_runs=test_run, roi_masks=rois, device=device
        )

    ridge_result, ridge_seconds = timed(ridge, args.repeats)
    print(f"{'measure':<12}{'seconds':>10}{'/ ridge':>10}{'value':>10}")
    print(f"{'ridge':<12}{ridge_seconds:>10.2f}{1.0:>10.3f}{ridge_result.mean:>10.4f}")
    for metric in SIMILARITY_METRICS:
        scores, seconds = timed(
            lambda metric=metric: held_out_similarity(
                features,
                responses,
                runs,
                test_run,
                metrics=[metric],
                roi_masks=rois,
                device=device,
            ),
            args.repeats,
        )
        print(
            f"{metric:<12}{seconds:>10.2f}{seconds / ridge_seconds:>10.3f}"
            f"{scores[metric].all:>10.4f}"
        )


if __name__ == "__main__":
    main()
