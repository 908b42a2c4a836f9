"""Reader of the original Harry Potter release (Wehbe et al. 2014): ``subject_N.mat``.

Each MATLAB file (read with ``scipy.io.loadmat``, no pickle) holds:

- ``data`` ``(n_TR, V)``: responses of every TR (nothing trimmed);
- ``time`` ``(n_TR, 2)``: TR time stamp in seconds and run number;
- ``words``: struct array with ``text``, ``start`` (seconds, same clock) and ``length``;
- ``meta``: ``colToCoord`` ``(V, 3)`` 1-based voxel coordinates, ``dimx/dimy/dimz`` the volume
  shape, ``matrix`` the 4 x 4 voxel-to-world (MNI) affine of 1-based coordinates,
  ``colToROInum`` ``(V,)`` ROI number of each voxel (0 = none) and ``ROInumToName``.

The subject gets 0-based ``voxel_coords`` and the affine adjusted to them
(``matrix @ shift_by_one``), so a per-voxel result can be written back as a NIfTI volume.
``trim_start``/``trim_end`` drop TRs of every run from the responses here (the file holds
them all); their words stay as context. The defaults, 20 / 15 TRs per run, are those of the
array layout (``hp``: 1351 TRs -> 1211 kept rows), so that both forms of the data give the
same kept TRs and the same samples; set them to 0 to keep every TR. Word markers (``+``,
``@``): see ``hp_words``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from brainmis.data.readers import checks, layouts
from brainmis.data.readers.file_names import FileNames, template_of
from brainmis.data.readers.hp_words import clean_hp_words, split_words_by_run
from brainmis.data.records import BrainDataset, Run, Subject
from brainmis.errors import BrainmisInputError

HP_MAT_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "mat": (template_of(layouts.hp_mat(Path(), "{subject}")), ("subject",)),
}

ONE_BASED_TO_ZERO_BASED = np.array(
    [[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1], [0, 0, 0, 1]], dtype=np.float64
)
"""``affine_0 = affine_1 @ this``: maps 0-based voxel indices through a 1-based affine."""


@dataclass(frozen=True)
class HpMatOptions:
    """Options of the ``hp_mat`` layout.

    Attributes:
        trim_start: TRs of every run left out of the responses at its start (default 20, as
            in the array layout).
        trim_end: TRs left out at its end (default 15, as in the array layout).
        tr: repetition time in seconds; default the median TR spacing.
    """

    trim_start: int = layouts.HP_TRIM_START
    trim_end: int = layouts.HP_TRIM_END
    tr: float | None = None


def read_hp_mat(
    root: Path,
    subjects: list[str] | None = None,
    options: HpMatOptions | None = None,
    files: dict[str, str] | None = None,
    name: str = "harry_potter",
    source: Path | None = None,
) -> BrainDataset:
    """Read ``subject_N.mat`` files under ``root`` (default: every one found)."""
    options = options or HpMatOptions()
    if options.trim_start < 0 or options.trim_end < 0:
        raise BrainmisInputError(source or root, "trim_start and trim_end must be >= 0")
    names = FileNames.with_overrides(root, HP_MAT_FILES, files, source)
    found = names.discover("mat", "subject")
    if subjects is None:
        if not found:
            raise BrainmisInputError(
                root, f"no subject files found (expected files like {names.templates['mat']})"
            )
        subjects = found
    records: dict[str, Subject] = {}
    trs = []
    for subject in subjects:
        path = names.path("mat", subject=subject)
        if not path.is_file():
            raise BrainmisInputError(
                path, f"unknown subject {subject!r}: file not found (subjects here: {found})"
            )
        records[subject], tr = read_mat_subject(path, subject, options)
        trs.append(tr)
    if not np.allclose(trs, trs[0], rtol=1e-3):
        raise BrainmisInputError(root, f"subjects have different TRs: {trs}")
    return BrainDataset(name=name, tr=trs[0], subjects=records)


def load_mat(path: Path) -> dict[str, Any]:
    """The variables of a MATLAB file (v4 to v7.2), structs as dicts."""
    try:
        return scipy.io.loadmat(path, simplify_cells=True)
    except NotImplementedError:
        raise BrainmisInputError(
            path, "MATLAB v7.3 (HDF5) files are not supported; re-save it with save(..., '-v7')"
        ) from None
    except Exception as error:  # scipy raises many types (IndexError...) on a corrupt file
        problem = str(error) or type(error).__name__
        raise BrainmisInputError(path, f"not a readable MATLAB file: {problem}") from None


def field(path: Path, container: dict[str, Any], key: str, where: str) -> Any:
    if key not in container:
        raise BrainmisInputError(path, f"missing variable {where}{key}")
    return container[key]


def read_mat_subject(path: Path, subject: str, options: HpMatOptions) -> tuple[Subject, float]:
    """One subject and its TR (seconds)."""
    content = load_mat(path)
    data = np.asarray(field(path, content, "data", ""))
    time = np.asarray(field(path, content, "time", ""))
    meta = field(path, content, "meta", "")
    if not isinstance(meta, dict):
        raise BrainmisInputError(path, "'meta' must be a struct")
    checks.check_numeric(path, data, "data")
    checks.check_ndim(path, data, 2, "data", "(n_TR, n_voxels)")
    checks.check_numeric(path, time, "time")
    if time.ndim != 2 or time.shape[1] != 2:
        raise BrainmisInputError(
            path, f"'time' must be (n_TR, 2) [seconds, run], found {time.shape}"
        )
    checks.check_same_length(path, data, time, "responses ('data' rows) and TR times ('time')")
    checks.check_finite(path, data, "responses ('data')")

    tr_seconds, run_of_tr = time[:, 0].astype(np.float64), time[:, 1]
    labels = list(dict.fromkeys(run_of_tr.tolist()))
    run_rows = []
    for label in labels:
        rows = np.flatnonzero(run_of_tr == label)
        if np.any(np.diff(rows) != 1):
            raise BrainmisInputError(path, f"the TRs of run {label:g} are not contiguous in 'time'")
        checks.check_increasing(path, tr_seconds[rows], f"TR times of run {label:g}", strict=True)
        if len(rows) <= options.trim_start + options.trim_end:
            raise BrainmisInputError(
                path,
                f"run {label:g} has {len(rows)} TRs, too few for the trimming (trim_start="
                f"{options.trim_start}, trim_end={options.trim_end}; set them in the source "
                "manifest's options)",
            )
        run_rows.append(rows)
    tr = (
        float(options.tr)
        if options.tr is not None
        else float(np.median(np.concatenate([np.diff(tr_seconds[rows]) for rows in run_rows])))
    )
    words, onsets = read_mat_words(path, field(path, content, "words", ""))
    run_words = split_words_by_run(path, [tr_seconds[r] for r in run_rows], tr, words, onsets)

    runs = []
    for label, rows, (run_word_list, run_onsets) in zip(labels, run_rows, run_words, strict=True):
        kept = np.arange(options.trim_start, len(rows) - options.trim_end, dtype=np.int64)
        runs.append(
            Run(
                name=f"run{int(label)}" if float(label).is_integer() else str(label),
                tr_times=tr_seconds[rows],
                responses=np.ascontiguousarray(data[rows[kept]], dtype=np.float32),
                kept_trs=kept,
                words=run_word_list,
                word_onsets=run_onsets,
            )
        )
    n_voxels = data.shape[1]
    coords, volume_shape, affine, roi_masks = read_mat_meta(path, meta, n_voxels)
    subject_record = Subject(
        name=subject,
        runs=runs,
        roi_masks=roi_masks,
        voxel_coords=coords,
        volume_shape=volume_shape,
        affine=affine,
    )
    return subject_record, tr


def read_mat_words(path: Path, words: Any) -> tuple[np.ndarray, np.ndarray]:
    """``words`` struct array -> cleaned ``(n_words,)`` words and float64 onsets."""
    entries = [words] if isinstance(words, dict) else list(np.atleast_1d(words))
    texts, starts = [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "text" not in entry or "start" not in entry:
            raise BrainmisInputError(path, f"words({i + 1}) must be a struct with text and start")
        text = entry["text"]
        texts.append(text if isinstance(text, str) else str(np.asarray(text).squeeze()))
        starts.append(float(np.asarray(entry["start"]).squeeze()))
    onsets = np.array(starts, dtype=np.float64)
    checks.check_increasing(path, onsets, "word start times", strict=False)
    return clean_hp_words(np.array(texts, dtype=str), onsets)


def read_mat_meta(
    path: Path, meta: dict[str, Any], n_voxels: int
) -> tuple[np.ndarray, tuple[int, int, int], np.ndarray, dict[str, np.ndarray]]:
    """0-based ``(V, 3)`` coordinates, volume shape, 0-based affine and ROI masks."""
    coords = np.asarray(field(path, meta, "colToCoord", "meta."))
    checks.check_numeric(path, coords, "meta.colToCoord")
    if coords.shape != (n_voxels, 3):
        raise BrainmisInputError(
            path, f"meta.colToCoord must be ({n_voxels}, 3), found {coords.shape}"
        )
    volume_shape = tuple(
        int(np.asarray(field(path, meta, key, "meta.")).squeeze())
        for key in ("dimx", "dimy", "dimz")
    )
    coords = coords.astype(np.int64) - 1
    if coords.min() < 0 or np.any(coords.max(axis=0) >= np.array(volume_shape)):
        raise BrainmisInputError(path, f"meta.colToCoord lies outside the volume {volume_shape}")
    matrix = np.asarray(meta.get("matrix", np.eye(4)), dtype=np.float64)
    if matrix.shape != (4, 4):
        raise BrainmisInputError(path, f"meta.matrix must be 4 x 4, found {matrix.shape}")
    affine = matrix @ ONE_BASED_TO_ZERO_BASED
    roi_masks: dict[str, np.ndarray] = {}
    if "colToROInum" in meta:
        numbers = np.asarray(meta["colToROInum"]).reshape(-1)
        if numbers.shape != (n_voxels,):
            raise BrainmisInputError(path, f"meta.colToROInum must have {n_voxels} entries")
        roi_names = np.atleast_1d(np.asarray(meta.get("ROInumToName", []), dtype=object))
        for number in sorted(set(numbers.astype(np.int64).tolist()) - {0}):
            roi = str(roi_names[number - 1]) if 0 < number <= len(roi_names) else f"roi{number}"
            roi_masks[roi] = roi_masks.get(roi, np.zeros(n_voxels, bool)) | (numbers == number)
    return coords, volume_shape, affine, roi_masks  # type: ignore[return-value]
