"""Readers of the source layouts, each producing a validated ``BrainDataset``.

``read_source(path)`` reads a dataset described by a source manifest (see
``brainmis.data.readers.source_manifest``; ``read_from_manifest`` takes one already parsed);
``read_layout(root, layout, ...)`` reads a folder in one of the preset layouts (``hp``,
``hp_mat``, ``moth``, ``nifti``, ``narratives``, ``lebel``) with default file names
(``brainmis.data.readers.layouts``); docs/datasets.md lists what each expects.
Nothing is unpickled (except ROI dicts on the explicit ``allow_pickled_rois`` opt-in), and
every problem raises ``BrainmisInputError`` naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainmis.data.readers.checks import ceiling_notes, check_dataset, empty_roi_notes
from brainmis.data.readers.hp_arrays import HpArrayOptions, read_hp_arrays
from brainmis.data.readers.hp_mat import HpMatOptions, read_hp_mat
from brainmis.data.readers.lebel import LebelOptions, read_lebel
from brainmis.data.readers.moth import MothOptions, read_moth
from brainmis.data.readers.narratives import NarrativesOptions, read_narratives
from brainmis.data.readers.nifti import NiftiOptions, read_nifti
from brainmis.data.readers.source_manifest import (
    LAYOUTS,
    SourceManifest,
    build_options,
    files_outside_root,
    read_source_manifest,
)
from brainmis.data.records import BrainDataset
from brainmis.errors import BrainmisInputError


@dataclass(frozen=True)
class LayoutReader:
    """A layout's reader function, its options dataclass and its default dataset name."""

    read: Callable[..., BrainDataset]
    options_type: type
    default_name: str


LAYOUT_READERS: dict[str, LayoutReader] = {
    "hp": LayoutReader(read_hp_arrays, HpArrayOptions, "harry_potter"),
    "hp_mat": LayoutReader(read_hp_mat, HpMatOptions, "harry_potter"),
    "moth": LayoutReader(read_moth, MothOptions, "moth_reading"),
    "nifti": LayoutReader(read_nifti, NiftiOptions, "nifti"),
    "narratives": LayoutReader(read_narratives, NarrativesOptions, "narratives"),
    "lebel": LayoutReader(read_lebel, LebelOptions, "lebel"),
}
__all__ = ["LAYOUT_READERS", "read_from_manifest", "read_layout", "read_source"]


def read_source(path: str | Path, subjects: list[str] | None = None) -> BrainDataset:
    """Read the dataset a source manifest describes.

    Args:
        path: a manifest ``.yaml``/``.yml``/``.json`` file, or a folder holding
            ``source.yaml``.
        subjects: if given, read only these (overrides the manifest's ``subjects``).
    """
    return read_from_manifest(read_source_manifest(path), subjects)


def read_from_manifest(manifest: SourceManifest, subjects: list[str] | None = None) -> BrainDataset:
    """Read the dataset of a parsed manifest; errors about options name the manifest file."""
    reader = LAYOUT_READERS[manifest.layout]
    source = manifest.path or manifest.root
    if subjects is not None and len(set(subjects)) != len(subjects):
        raise BrainmisInputError(source, f"subjects repeat: {list(subjects)}")
    options = build_options(reader.options_type, manifest.options, source, manifest.layout)
    dataset = reader.read(
        manifest.root,
        subjects=subjects if subjects is not None else manifest.subjects,
        options=options,
        files=manifest.files,
        name=manifest.name,
        source=source,
    )
    check_dataset(dataset, source)
    dataset.notes.extend(
        files_outside_root(manifest) + empty_roi_notes(dataset) + ceiling_notes(dataset)
    )
    return dataset


def read_layout(
    root: str | Path,
    layout: str,
    subjects: list[str] | None = None,
    name: str | None = None,
    files: Mapping[str, str] | None = None,
    **options: Any,
) -> BrainDataset:
    """Read a folder in a preset layout with its default file names.

    Args:
        root: the folder.
        layout: one of ``LAYOUT_READERS`` (``hp``, ``hp_mat``, ``moth``, ``nifti``,
            ``narratives``, ``lebel``).
        subjects: subjects to read (default: every one found).
        name: dataset name (default: the layout's, e.g. ``harry_potter``).
        files: optional file-name template overrides.
        **options: layout options (e.g. ``trim_start=20``, ``tr_offset=0.0``).
    """
    root = Path(root)
    if layout not in LAYOUT_READERS:
        raise BrainmisInputError(root, f"unknown layout {layout!r} (one of: {', '.join(LAYOUTS)})")
    if not root.is_dir():
        raise BrainmisInputError(root, "source folder does not exist")
    manifest = SourceManifest(
        path=None,
        name=name or LAYOUT_READERS[layout].default_name,
        layout=layout,
        root=root.resolve(),
        subjects=list(subjects) if subjects is not None else None,
        options=dict(options),
        files=dict(files or {}),
    )
    return read_from_manifest(manifest)
