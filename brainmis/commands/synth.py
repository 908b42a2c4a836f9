"""``brainmis synth``: write a synthetic dataset with known ground truth in a real layout.

    brainmis synth --layout hp|moth|nifti|narratives|lebel --out DIR
                   [--world semantic|probed|unprobed] [--subjects N] [--seed S] [--voxels V]
                   [--runs R] [--features F]

The output folder must not exist or be empty. The dataset can then be prepared like a real
one: ``brainmis prepare DIR --out BUNDLE`` (DIR holds ``source.yaml``).
"""

from __future__ import annotations

import json

from brainmis.cli_parser import ToolArgumentParser
from brainmis.data.synthetic import LAYOUTS, SyntheticSpec, generate_synthetic
from brainmis.data.synthetic.worlds import DEFAULT_FEATURES, WORLDS
from brainmis.errors import BrainmisInputError, refuse_non_empty_dir


def build_parser() -> ToolArgumentParser:
    defaults = SyntheticSpec()
    parser = ToolArgumentParser(
        prog="brainmis synth",
        description="Write a synthetic fMRI dataset (known ground truth) in a real on-disk layout.",
    )
    parser.add_argument("--layout", required=True, choices=LAYOUTS, help="on-disk layout to write")
    parser.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    parser.add_argument("--subjects", type=int, default=2, help="number of subjects (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--voxels",
        type=int,
        default=defaults.n_voxels,
        help=f"voxels per subject (default {defaults.n_voxels})",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=defaults.n_runs,
        help=f"runs, or stories (training stories for moth) (default {defaults.n_runs})",
    )
    parser.add_argument(
        "--world",
        choices=WORLDS,
        default=defaults.world,
        help="what drives the brain: semantic categories (default), categories that probing "
        "tasks test (probed), or a random partition of the vocabulary (unprobed)",
    )
    parser.add_argument(
        "--features",
        type=int,
        default=None,
        help="axes driving the brain (default: "
        + ", ".join(f"{world} {count}" for world, count in DEFAULT_FEATURES.items())
        + ")",
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    out = refuse_non_empty_dir(args.out)
    if args.subjects < 1:
        raise BrainmisInputError(None, f"--subjects must be at least 1, got {args.subjects}")
    if args.seed < 0:
        raise BrainmisInputError(None, f"--seed must be >= 0, got {args.seed}")
    try:
        generate_synthetic(
            args.layout,
            out,
            n_subjects=args.subjects,
            seed=args.seed,
            n_voxels=args.voxels,
            n_runs=args.runs,
            world=args.world,
            n_features=DEFAULT_FEATURES[args.world] if args.features is None else args.features,
        )
    except ValueError as error:
        if isinstance(error, BrainmisInputError):
            raise
        raise BrainmisInputError(None, str(error)) from None
    truth = json.loads((out / "ground_truth" / "truth.json").read_text(encoding="utf-8"))
    runs = truth["runs"]
    print(f"wrote synthetic {args.layout} dataset to {out}")
    print(f"  subjects: {', '.join(truth['subjects'])}")
    print(
        f"  runs: {len(runs)} ({', '.join(run['name'] for run in runs)}), "
        f"kept TRs: {sum(run['n_kept'] for run in runs)}, words: {sum(run['n_words'] for run in runs)}"
        + (f", repeated: {truth['repeated_run']}" if truth["repeated_run"] else "")
    )
    rois = ", ".join(f"{name} ({count})" for name, count in truth["rois"].items())
    print(
        f"  voxels: {args.voxels} per subject, {truth['n_signal_voxels']} with signal; ROIs: {rois}"
    )
    print(f"  world: {truth['world']}; brain driven by: {', '.join(truth['categories'])}")
    targeted = sorted(truth["probing_task_groups"]["tasks"])
    print(f"  probing tasks it targets: {', '.join(targeted) or 'none'}")
    print(f"  source manifest: {out / 'source.yaml'}; ground truth: {out / 'ground_truth'}")
    return 0
