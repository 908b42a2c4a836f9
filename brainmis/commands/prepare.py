"""``brainmis prepare``: turn a source dataset into a canonical bundle, or verify a bundle.

    brainmis prepare SOURCE --out DIR [--layout hp|hp_mat|moth|nifti|narratives|lebel]
                     [--subjects S ...] [--exclude-scans FILE]
                     [--no-noise-ceiling] [--ceiling-components K]
    brainmis prepare --verify BUNDLE

SOURCE is a source manifest (.yaml/.yml/.json), a folder holding ``source.yaml``, or, with
``--layout``, a folder in that preset layout. ``--out`` must not exist or be empty; nothing is
written unless the whole source reads without error. ``--verify`` checks the sha256 of every
file of an existing bundle. ``--exclude-scans FILE`` (Narratives only) names the JSON of scans
to leave out (default: ``code/scan_exclude.json`` of the source when present); the layouts
and their files: docs/datasets.md.

Noise ceiling: without repeats and with at least 2 subjects, every subject that has no
ceiling file gets the predictive inter-subject ceiling (``brainmis.data.dataset_ceiling``;
one progress line per subject), stored in the bundle with its method. The subjects must
share the stimulus timeline; ``--no-noise-ceiling`` skips it.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from brainmis.cli_parser import ToolArgumentParser
from brainmis.data.bundle import bundle_checksum, load_bundle, write_bundle
from brainmis.data.dataset_ceiling import (
    add_predictive_ceilings,
    subjects_without_ceiling,
    timeline_mismatch,
)
from brainmis.data.noise_ceiling import DEFAULT_CEILING_COMPONENTS
from brainmis.data.readers import LAYOUT_READERS, read_from_manifest, read_layout, read_source
from brainmis.data.readers.source_manifest import read_source_manifest
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
        "--exclude-scans",
        metavar="FILE",
        help="narratives: JSON of scans to leave out, task -> subject ids (default: the "
        "source's code/scan_exclude.json when present)",
    )
    parser.add_argument(
        "--verify", action="store_true", help="SOURCE is a bundle: check the sha256 of every file"
    )
    parser.add_argument(
        "--no-noise-ceiling",
        action="store_true",
        help="do not compute the inter-subject noise ceiling of subjects without one",
    )
    parser.add_argument(
        "--ceiling-components",
        type=int,
        default=DEFAULT_CEILING_COMPONENTS,
        help="principal components of the other subjects that predict a subject's voxels "
        f"(default {DEFAULT_CEILING_COMPONENTS})",
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
            extras.append(f"noise ceiling: {subject.noise_ceiling_method or 'given'}")
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
    dataset = read_dataset(source, args.layout, args.subjects, args.exclude_scans)
    if not args.no_noise_ceiling:
        add_ceilings(dataset, source, args.ceiling_components)
    bundle = write_bundle(dataset, out)
    print("\n".join(summary_lines(dataset)))
    print(f"bundle written to {bundle} (sha256 {bundle_checksum(bundle)})")
    return 0


def read_dataset(
    source: Path, layout: str | None, subjects: list[str] | None, exclude_scans: str | None
) -> BrainDataset:
    """The dataset of a preset layout folder or a source manifest; ``exclude_scans`` (an
    exclusion file, Narratives only) becomes the reader's ``exclude_scans`` option."""
    options = {} if exclude_scans is None else {"exclude_scans": str(Path(exclude_scans).resolve())}
    if layout:
        if options and layout != "narratives":
            raise BrainmisInputError(None, "--exclude-scans applies to the narratives layout only")
        return read_layout(source, layout, subjects=subjects, **options)
    if not options:
        return read_source(source, subjects=subjects)
    manifest = read_source_manifest(source)
    if manifest.layout != "narratives":
        raise BrainmisInputError(
            manifest.path, "--exclude-scans applies to the narratives layout only"
        )
    manifest = dataclasses.replace(manifest, options={**manifest.options, **options})
    return read_from_manifest(manifest, subjects)


def add_ceilings(dataset: BrainDataset, source: Path, n_components: int) -> None:
    """The predictive inter-subject ceiling for the subjects without one (module docstring)."""
    missing = subjects_without_ceiling(dataset)
    if not missing:
        return
    if len(dataset.subjects) < 2:
        print(
            f"no noise ceiling for subject {missing[0]}: one subject and no repeats (give a "
            "ceiling file, or train with data.allow_roi_only: true)"
        )
        return
    if n_components < 1:
        raise BrainmisInputError(None, f"--ceiling-components must be >= 1, got {n_components}")
    mismatch = timeline_mismatch(dataset)
    if mismatch is not None:
        raise BrainmisInputError(
            source,
            f"{mismatch}: an inter-subject noise ceiling needs every subject on the same "
            "stimulus timeline; prepare with --no-noise-ceiling (or give ceiling files)",
        )
    print(
        f"noise ceiling for {len(missing)} subject(s) from the other subjects' responses "
        f"(PCA k={n_components}, ridge, leave-one-run-out)",
        flush=True,
    )
    start = time.perf_counter()
    add_predictive_ceilings(
        dataset, n_components=n_components, progress=lambda line: print(f"  {line}", flush=True)
    )
    print(f"noise ceilings done in {time.perf_counter() - start:.1f} s", flush=True)
