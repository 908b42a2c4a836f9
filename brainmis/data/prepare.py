"""``brainmis prepare``: turn a source dataset into a canonical bundle, or verify a bundle.

    brainmis prepare SOURCE --out DIR [--layout hp|hp_mat|moth|nifti] [--subjects S ...]
    brainmis prepare --verify BUNDLE

SOURCE is a source manifest (.yaml/.yml/.json), a folder holding ``source.yaml``, or, with
``--layout``, a folder in that preset layout. ``--out`` must not exist or be empty; nothing is
written unless the whole source reads without error. ``--verify`` checks the sha256 of every
file of an existing bundle.
"""

from __future__ import annotations

from pathlib import Path

from brainmis.cli_parser import ToolArgumentParser
from brainmis.data.bundle import bundle_checksum, load_bundle, write_bundle
from brainmis.data.readers import LAYOUT_READERS, read_layout, read_source
from brainmis.data.records import BrainDataset
from brainmis.errors import BrainmisInputError, refuse_non_empty_dir


def build_parser() -> ToolArgumentParser:
    parser = ToolArgumentParser(
        prog="brainmis prepare",
        description="Turn a source dataset into a canonical bundle (or verify a bundle).",
    )
    parser.add_argument("source", help="manifest file, folder with source.yaml, or a folder")
    parser.add_argument("--out", help="bundle folder to write (must not exist or be empty)")
    parser.add_argument(
        "--layout", choices=sorted(LAYOUT_READERS), help="read SOURCE as this preset layout"
    )
    parser.add_argument("--subjects", nargs="+", help="subjects to read (default: all)")
    parser.add_argument(
        "--verify", action="store_true", help="SOURCE is a bundle: check the sha256 of every file"
    )
    return parser


def summary_lines(dataset: BrainDataset) -> list[str]:
    """One line for the dataset, one per subject: runs, TRs (kept), voxels, words; then one
    ``note:`` line per reader note (``BrainDataset.notes``)."""
    lines = [f"dataset {dataset.name}: TR {dataset.tr:g} s, {len(dataset.subjects)} subject(s)"]
    for subject in dataset.subjects.values():
        n_trs = sum(len(run.tr_times) for run in subject.runs)
        n_kept = sum(run.responses.shape[0] for run in subject.runs)
        n_words = sum(len(run.words) for run in subject.runs)
        repeats = sum(run.repeats is not None for run in subject.runs)
        extras = [f"{len(subject.roi_masks)} ROI(s)"]
        if repeats:
            extras.append(f"{repeats} run(s) with repeats")
        if subject.noise_ceiling is not None:
            extras.append("noise ceiling")
        if subject.voxel_coords is not None:
            extras.append("voxel coordinates")
        lines.append(
            f"  subject {subject.name}: {len(subject.runs)} runs, {n_trs} TRs ({n_kept} kept), "
            f"{subject.n_voxels} voxels, {n_words} words; {', '.join(extras)}"
        )
    return lines + [f"note: {note}" for note in dataset.notes]


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.verify:
        if args.out or args.layout or args.subjects:
            raise BrainmisInputError(None, "--verify takes only the bundle folder")
        dataset = load_bundle(args.source, verify="full")
        print("\n".join(summary_lines(dataset)))
        print(f"bundle {args.source} verified: sha256 {bundle_checksum(args.source)}")
        return 0
    if not args.out:
        raise BrainmisInputError(None, "--out DIR is required (see brainmis prepare --help)")
    out = refuse_non_empty_dir(args.out)
    source = Path(args.source)
    if args.layout:
        dataset = read_layout(source, args.layout, subjects=args.subjects)
    else:
        dataset = read_source(source, subjects=args.subjects)
    bundle = write_bundle(dataset, out)
    print("\n".join(summary_lines(dataset)))
    print(f"bundle written to {bundle} (sha256 {bundle_checksum(bundle)})")
    return 0
