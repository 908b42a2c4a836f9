"""Reader of the generic layout: NIfTI 4D BOLD per run, events TSV, ROI mask or label atlas.

Per subject and run ``1, 2, ...`` (names from ``brainmis.data.readers.layouts``): a 4D BOLD
image ``(X, Y, Z, T)`` and an events TSV with columns ``word``, ``onset``, ``duration``
(seconds from the run start). Per subject: a 3D ROI image in the same space, either a 0/1
mask (one ROI, named by the ``roi_name`` option) or an integer label atlas, whose labels are
named by an optional TSV ``index<TAB>name`` (else ``label_<k>``).

Volume ``i`` of a run is stamped at ``i * TR`` seconds, TR from the header's 4th zoom (or the
``tr`` option). The subject's voxels are the in-brain voxels: those non-zero in any volume of
any run, plus every ROI voxel; ``voxel_coords`` holds their ``(i, j, k)`` indices in C order,
with the image's affine and shape. ``trim_start`` / ``trim_end`` drop volumes at the start /
end of every run from the responses (their words stay as context).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from brainmis.data.readers import checks, layouts
from brainmis.data.readers.file_names import FileNames, template_of
from brainmis.data.records import BrainDataset, Run, Subject
from brainmis.errors import BrainmisInputError

NIFTI_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bold": (template_of(layouts.nifti_bold(Path(), "{subject}", "{run}")), ("subject", "run")),
    "events": (
        template_of(layouts.nifti_events(Path(), "{subject}", "{run}")),
        ("subject", "run"),
    ),
    "roi": (template_of(layouts.nifti_roi(Path(), "{subject}")), ("subject",)),
    "roi_labels": (template_of(layouts.nifti_roi_labels(Path(), "{subject}")), ("subject",)),
}
EVENT_COLUMNS = ("word", "onset", "duration")
TIME_UNIT_SECONDS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6, "unknown": 1.0}


@dataclass(frozen=True)
class NiftiOptions:
    """Options of the ``nifti`` layout.

    Attributes:
        tr: repetition time in seconds; default from the BOLD header.
        trim_start: volumes of every run left out of the responses at its start.
        trim_end: volumes left out at its end.
        roi_name: name of the ROI when the ROI image is a 0/1 mask.
    """

    tr: float | None = None
    trim_start: int = 0
    trim_end: int = 0
    roi_name: str = "roi"


def read_nifti(
    root: Path,
    subjects: list[str] | None = None,
    options: NiftiOptions | None = None,
    files: dict[str, str] | None = None,
    name: str = "nifti",
    source: Path | None = None,
) -> BrainDataset:
    """Read the NIfTI layout under ``root`` (default subjects: every one with a run 1)."""
    options = options or NiftiOptions()
    if options.trim_start < 0 or options.trim_end < 0:
        raise BrainmisInputError(source or root, "trim_start and trim_end must be >= 0")
    names = FileNames.with_overrides(root, NIFTI_FILES, files, source)
    found = names.discover("bold", "subject", run=1)
    if subjects is None:
        if not found:
            raise BrainmisInputError(
                root, f"no BOLD runs found (expected files like {names.templates['bold']})"
            )
        subjects = found
    records, trs, notes = {}, [], []
    for subject in subjects:
        first = names.path("bold", subject=subject, run=1)
        if not first.is_file():
            raise BrainmisInputError(
                first, f"unknown subject {subject!r}: file not found (subjects here: {found})"
            )
        records[subject], tr = read_nifti_subject(names, subject, options, notes)
        trs.append(tr)
    if not np.allclose(trs, trs[0], rtol=1e-3):
        raise BrainmisInputError(root, f"subjects have different TRs: {trs}")
    return BrainDataset(name=name, tr=trs[0], subjects=records, notes=notes)


def load_image(path: Path, what: str) -> nib.spatialimages.SpatialImage:
    checks.require_file(path, what)
    try:
        return nib.load(path)
    except Exception as error:  # nibabel raises many types for a bad file
        raise BrainmisInputError(path, f"not a readable NIfTI image ({what}): {error}") from None


def image_data(path: Path, image: nib.spatialimages.SpatialImage) -> np.ndarray:
    try:
        return np.asarray(image.dataobj, dtype=np.float32)
    except Exception as error:  # truncated gzip, short file...
        raise BrainmisInputError(path, f"image data cannot be read (truncated?): {error}") from None


def header_tr(path: Path, image: nib.spatialimages.SpatialImage) -> float:
    zooms = image.header.get_zooms()
    if len(zooms) < 4 or not zooms[3] > 0:
        raise BrainmisInputError(path, "the header gives no TR; set options.tr")
    _, time_unit = image.header.get_xyzt_units()
    return float(zooms[3]) * TIME_UNIT_SECONDS.get(time_unit, 1.0)


def read_events(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Words and onsets (seconds) of an events TSV with ``word``, ``onset``, ``duration``."""
    checks.require_file(path, "events TSV with columns word, onset, duration")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        header = list(reader.fieldnames or [])
        rows = list(reader)
    missing = [column for column in EVENT_COLUMNS if column not in header]
    if missing:
        raise BrainmisInputError(path, f"missing column(s) {missing} (need {list(EVENT_COLUMNS)})")
    words, onsets = [], []
    for number, row in enumerate(rows, start=2):
        word = (row["word"] or "").strip()
        try:
            onset = float(row["onset"])
        except (TypeError, ValueError):
            raise BrainmisInputError(
                path, f"line {number}: onset {row['onset']!r} is not a number"
            ) from None
        if not word:
            raise BrainmisInputError(path, f"line {number}: empty word")
        check_duration(path, number, row["duration"])
        words.append(word)
        onsets.append(onset)
    onsets_array = np.array(onsets, dtype=np.float64)
    checks.check_increasing(path, onsets_array, "word onsets", strict=False)
    return np.array(words, dtype=str), onsets_array


def check_duration(path: Path, number: int, value: str | None) -> None:
    """An event's duration (seconds) must be a finite number >= 0."""
    try:
        duration = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BrainmisInputError(
            path, f"line {number}: duration {value!r} is not a number"
        ) from None
    if not np.isfinite(duration) or duration < 0:
        raise BrainmisInputError(
            path, f"line {number}: duration {value!r} must be a number of seconds >= 0"
        )


def read_roi_image(
    names: FileNames,
    subject: str,
    shape: tuple[int, ...],
    affine: np.ndarray,
    options: NiftiOptions,
    notes: list[str],
) -> dict[str, np.ndarray]:
    """ROI name -> ``(X, Y, Z)`` bool volume; ``{}`` when the subject has no ROI image.

    A label TSV naming a label the atlas lacks is refused; atlas labels the TSV does not name
    are kept as ``label_<k>`` and said in ``notes`` (the prepare summary prints them).
    """
    path = names.path("roi", subject=subject)
    if not path.is_file():
        return {}
    image = load_image(path, "ROI mask or label atlas")
    labels = image_data(path, image)
    if labels.ndim == 4 and labels.shape[3] == 1:
        labels = labels[..., 0]
    if labels.shape != shape:
        raise BrainmisInputError(path, f"ROI image has shape {labels.shape}, BOLD {shape}")
    if not np.allclose(image.affine, affine, atol=1e-3):
        raise BrainmisInputError(path, "ROI image is not in the BOLD space (affines differ)")
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)) or labels.min() < 0:
        raise BrainmisInputError(path, "ROI image must hold 0/1 or non-negative integer labels")
    values = sorted(set(np.unique(labels).astype(np.int64).tolist()) - {0})
    if values == [1] and not names.path("roi_labels", subject=subject).is_file():
        return {options.roi_name: labels == 1}
    labels_path = names.path("roi_labels", subject=subject)
    label_names = read_label_names(labels_path)
    extra = sorted(set(label_names) - set(values) - {0})  # 0 names the background
    if extra:
        raise BrainmisInputError(
            labels_path,
            f"names label(s) {extra} that the atlas {path.name} does not hold "
            f"(its labels: {values}); is it the label table of another atlas?",
        )
    unnamed = [value for value in values if value not in label_names]
    if label_names and unnamed:
        notes.append(
            f"subject {subject}: atlas label(s) {unnamed} of {path.name} have no name in "
            f"{labels_path.name}; kept as label_<k>"
        )
    return {label_names.get(value, f"label_{value}"): labels == value for value in values}


def read_label_names(path: Path) -> dict[int, str]:
    """Optional TSV ``index<TAB>name`` (a header line is allowed); ``{}`` without the file."""
    if not path.is_file():
        return {}
    names: dict[int, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.strip().split("\t")
        if not parts[0]:
            continue
        if len(parts) < 2:
            raise BrainmisInputError(path, f"line {number}: expected 'index<TAB>name'")
        try:
            names[int(parts[0])] = parts[1].strip()
        except ValueError:
            if number == 1:
                continue  # header
            raise BrainmisInputError(
                path, f"line {number}: index {parts[0]!r} is not an integer"
            ) from None
    return names


def in_brain_mask(
    shape: tuple[int, ...], volumes: list[np.ndarray], roi_volumes: dict[str, np.ndarray]
) -> np.ndarray:
    """``(X, Y, Z)`` bool: voxels non-zero in any volume of any run ``(X, Y, Z, T)``, plus
    every ROI voxel (the subject's voxels, whole brain when no ROI is given)."""
    in_brain = np.zeros(shape, dtype=bool)
    for data in volumes:
        in_brain |= np.any(data != 0, axis=3)
    for mask in roi_volumes.values():
        in_brain |= mask
    return in_brain


def read_nifti_subject(
    names: FileNames, subject: str, options: NiftiOptions, notes: list[str]
) -> tuple[Subject, float]:
    volumes, words_per_run, run_paths = [], [], []
    shape = affine = None
    trs = []
    run = 1
    while names.path("bold", subject=subject, run=run).is_file():
        path = names.path("bold", subject=subject, run=run)
        image = load_image(path, "4D BOLD")
        if len(image.shape) != 4:
            raise BrainmisInputError(path, f"BOLD must be 4-D (X, Y, Z, T), found {image.shape}")
        if shape is None:
            shape, affine = tuple(image.shape[:3]), image.affine
        elif tuple(image.shape[:3]) != shape or not np.allclose(image.affine, affine, atol=1e-3):
            raise BrainmisInputError(path, "run is not in the same space as run 1 (shape/affine)")
        trs.append(float(options.tr) if options.tr is not None else header_tr(path, image))
        if image.shape[3] <= options.trim_start + options.trim_end:
            raise BrainmisInputError(path, f"{image.shape[3]} volumes, too few for the trimming")
        data = image_data(path, image)
        checks.check_finite(path, data, "BOLD values")
        volumes.append(data)
        words_per_run.append(read_events(names.path("events", subject=subject, run=run)))
        run_paths.append(path)
        run += 1
    if not np.allclose(trs, trs[0], rtol=1e-3):
        raise BrainmisInputError(run_paths[-1], f"runs have different TRs: {trs}")
    tr = trs[0]
    if shape is None or affine is None:
        raise BrainmisInputError(
            names.path("bold", subject=subject, run=1), "missing file (4D BOLD)"
        )
    roi_volumes = read_roi_image(names, subject, shape, affine, options, notes)
    in_brain = in_brain_mask(shape, volumes, roi_volumes)
    coords = np.argwhere(in_brain).astype(np.int64)  # C order, (V, 3)
    runs = []
    for index, (data, (words, onsets)) in enumerate(
        zip(volumes, words_per_run, strict=True), start=1
    ):
        n_volumes = data.shape[3]
        kept = np.arange(options.trim_start, n_volumes - options.trim_end, dtype=np.int64)
        record = Run(
            name=f"run{index}",
            tr_times=tr * np.arange(n_volumes, dtype=np.float64),
            responses=np.ascontiguousarray(data[in_brain].T[kept], dtype=np.float32),
            kept_trs=kept,
            words=words,
            word_onsets=onsets,
        )
        checks.check_words_inside_run(names.path("events", subject=subject, run=index), record, tr)
        runs.append(record)
    subject_record = Subject(
        name=subject,
        runs=runs,
        roi_masks={roi: mask[in_brain] for roi, mask in roi_volumes.items()},
        voxel_coords=coords,
        volume_shape=shape,  # type: ignore[arg-type]
        affine=np.asarray(affine, dtype=np.float64),
    )
    return subject_record, tr
