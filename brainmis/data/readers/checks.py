"""Validation shared by every reader: each check raises ``BrainmisInputError(file, problem)``.

Readers call these on what they load, before anything is written, so that a bad input stops
with one line naming the file and what is wrong with it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from brainmis.data.alignment import tr_of_words
from brainmis.data.records import BrainDataset, Run
from brainmis.errors import BrainmisInputError

FINITE_CHECK_ROWS = 256
"""Rows per block when counting non-finite values, so a large memmap is scanned in pieces."""


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is an existing file, else raise naming what it should hold."""
    path = Path(path)
    if not path.is_file():
        raise BrainmisInputError(path, f"missing file ({what})")
    return path


def load_npy(path: Path, what: str, mmap: bool = False) -> np.ndarray:
    """Load a ``.npy`` array without pickle; a pickled or object array is refused.

    Args:
        path: the ``.npy`` file.
        what: what the file should hold, for the error message.
        mmap: memory-map the file read-only instead of reading it.
    """
    require_file(path, what)
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as error:
        if "pickle" in str(error).lower() or "object" in str(error).lower():
            raise BrainmisInputError(
                path,
                f"holds a pickled/object array ({what}); only plain numeric or string "
                "arrays are read",
            ) from None
        raise BrainmisInputError(path, f"not a readable .npy file ({what}): {error}") from None
    except (OSError, EOFError) as error:
        raise BrainmisInputError(path, f"not a readable .npy file ({what}): {error}") from None
    if not isinstance(array, np.ndarray):
        raise BrainmisInputError(path, f"expected one .npy array ({what}), found an archive")
    check_not_object(path, array, what)
    return array


def load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` archive without pickle, as name -> array."""
    require_file(path, what)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "pickle" in str(error).lower() or "object" in str(error).lower():
            raise BrainmisInputError(
                path, f"holds a pickled/object array ({what}); store plain arrays"
            ) from None
        raise BrainmisInputError(path, f"not a readable .npz file ({what}): {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise BrainmisInputError(path, f"not a readable .npz file ({what}): {error}") from None
    return arrays


def check_not_object(path: Path, array: np.ndarray, what: str) -> None:
    if array.dtype.hasobject:
        raise BrainmisInputError(path, f"holds an object array ({what}); store plain arrays")


def check_numeric(path: Path, array: np.ndarray, what: str) -> None:
    """Integer, unsigned, float or bool dtype."""
    check_not_object(path, array, what)
    if array.dtype.kind not in "biuf":
        raise BrainmisInputError(path, f"{what} must be numeric, found dtype {array.dtype}")


def check_ndim(path: Path, array: np.ndarray, ndim: int, what: str, shape_hint: str) -> None:
    if array.ndim != ndim:
        raise BrainmisInputError(
            path, f"{what} must be {ndim}-D {shape_hint}, found shape {tuple(array.shape)}"
        )


def count_non_finite(array: np.ndarray) -> int:
    """Number of NaN or infinite values; scans a large (memory-mapped) array in row blocks."""
    if array.dtype.kind not in "fc":
        return 0
    if array.ndim < 2:
        return int(np.count_nonzero(~np.isfinite(array)))
    total = 0
    for start in range(0, array.shape[0], FINITE_CHECK_ROWS):
        block = np.asarray(array[start : start + FINITE_CHECK_ROWS])
        total += int(np.count_nonzero(~np.isfinite(block)))
    return total


def check_finite(path: Path, array: np.ndarray, what: str) -> None:
    """Refuse NaN or infinite values, with their count."""
    bad = count_non_finite(array)
    if bad:
        raise BrainmisInputError(
            path, f"{what} contain {bad} NaN/Inf value(s) out of {array.size}; fix or mask them"
        )


def check_same_length(path: Path, first: np.ndarray, second: np.ndarray, names: str) -> None:
    """``names`` like ``"responses (rows) and TR times"``."""
    if len(first) != len(second):
        raise BrainmisInputError(
            path, f"{names} have different lengths: {len(first)} vs {len(second)}"
        )


def check_increasing(path: Path, times: np.ndarray, what: str, strict: bool) -> None:
    """Times must be finite and increasing (``strict``) or non-decreasing."""
    times = np.asarray(times, dtype=np.float64)
    if not np.all(np.isfinite(times)):
        raise BrainmisInputError(path, f"{what} contain NaN/Inf")
    steps = np.diff(times)
    bad = np.flatnonzero(steps <= 0 if strict else steps < 0)
    if bad.size:
        i = int(bad[0])
        order = "increasing" if strict else "non-decreasing"
        raise BrainmisInputError(
            path,
            f"{what} are not {order}: {times[i + 1]:g} follows {times[i]:g} at entry "
            f"{i + 1} ({bad.size} such place(s))",
        )


def median_step(path: Path, times: np.ndarray, what: str) -> float:
    """The median spacing of increasing times (the TR of a run), in the times' unit."""
    if len(times) < 2:
        raise BrainmisInputError(path, f"{what}: need at least 2 TRs to know the TR")
    return float(np.median(np.diff(np.asarray(times, dtype=np.float64))))


def as_voxel_mask(path: Path, values: np.ndarray, n_voxels: int, what: str) -> np.ndarray:
    """A ``(V,)`` bool mask from a bool/0-1 mask of length V or an array of voxel indices."""
    values = np.asarray(values)
    check_numeric(path, values, what)
    if values.ndim != 1:
        raise BrainmisInputError(path, f"{what} must be 1-D, found shape {values.shape}")
    if values.dtype.kind == "b":
        if len(values) != n_voxels:
            raise BrainmisInputError(
                path, f"{what} has {len(values)} entries but the data have {n_voxels} voxels"
            )
        return values.astype(bool)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise BrainmisInputError(path, f"{what} must hold booleans or voxel indices")
        values = values.astype(np.int64)
    if len(values) == n_voxels and np.isin(values, (0, 1)).all() and n_voxels > 2:
        return values.astype(bool)
    if values.size and (values.min() < 0 or values.max() >= n_voxels):
        raise BrainmisInputError(path, f"{what} holds voxel indices outside 0..{n_voxels - 1}")
    mask = np.zeros(n_voxels, dtype=bool)
    mask[values.astype(np.int64)] = True
    return mask


def check_roi_masks(path: Path, masks: Mapping[str, np.ndarray], n_voxels: int) -> None:
    for name, mask in masks.items():
        if mask.shape != (n_voxels,) or mask.dtype != bool:
            raise BrainmisInputError(path, f"ROI {name!r} must be a ({n_voxels},) bool mask")


def empty_roi_notes(dataset: BrainDataset) -> list[str]:
    """One note per ROI mask without a single voxel: accepted, but training over every ROI
    (``data.rois`` unset) will refuse it, so ``prepare`` says so."""
    return [
        f"subject {subject.name}: ROI {name!r} holds no voxel; train with data.rois naming "
        "the others"
        for subject in dataset.subjects.values()
        for name, mask in subject.roi_masks.items()
        if not np.any(mask)
    ]


def ceiling_notes(dataset: BrainDataset) -> list[str]:
    """One note per subject whose noise ceiling goes above 1: ceilings are correlations
    (``cc_max``, at most about 1), so larger values are likely another unit (percent)."""
    notes = []
    for subject in dataset.subjects.values():
        if subject.noise_ceiling is None or not np.size(subject.noise_ceiling):
            continue
        largest = float(np.nanmax(subject.noise_ceiling))
        if largest > 1.0:
            notes.append(
                f"subject {subject.name}: noise ceiling values go up to {largest:g}; ceilings "
                "are correlations (at most about 1): another unit, e.g. percent?"
            )
    return notes


def check_words_inside_run(path: Path, run: Run, tr: float) -> None:
    """Every word must fall in one TR of its run: ``tr_times[0] - tr < onset <= tr_times[-1]``."""
    if len(run.words) == 0:
        return
    outside = np.flatnonzero(tr_of_words(run.tr_times, tr, run.word_onsets) < 0)
    if outside.size:
        i = int(outside[0])
        raise BrainmisInputError(
            path,
            f"{outside.size} word(s) of run {run.name!r} lie outside its TRs "
            f"({run.tr_times[0] - tr:g} s .. {run.tr_times[-1]:g} s], first {str(run.words[i])!r} "
            f"at {run.word_onsets[i]:g} s",
        )


def check_dataset(dataset: BrainDataset, path: Path | str | None) -> None:
    """Internal consistency of a dataset (shapes, dtypes, times) before it is used or written.

    Does not scan responses for NaN/Inf (readers do that on load, which may be expensive).
    """
    if not dataset.subjects:
        raise BrainmisInputError(path, f"dataset {dataset.name!r} has no subjects")
    if not (np.isfinite(dataset.tr) and dataset.tr > 0):
        raise BrainmisInputError(path, f"TR must be a positive number of seconds, got {dataset.tr}")
    for subject in dataset.subjects.values():
        where = f"subject {subject.name!r}"
        if not subject.runs:
            raise BrainmisInputError(path, f"{where} has no runs")
        n_voxels = subject.runs[0].n_voxels
        if n_voxels == 0:
            raise BrainmisInputError(path, f"{where} has no voxels (responses have 0 columns)")
        names = [run.name for run in subject.runs]
        if len(set(names)) != len(names):
            raise BrainmisInputError(path, f"{where} has duplicate run names {names}")
        for run in subject.runs:
            check_run(run, n_voxels, path, where)
        if sum(len(run.words) for run in subject.runs) == 0:
            raise BrainmisInputError(
                path,
                f"{where} has no words in any run: training would read empty text "
                "(check the word/events files)",
            )
        check_roi_masks(path, subject.roi_masks, n_voxels)
        if subject.noise_ceiling is not None and subject.noise_ceiling.shape != (n_voxels,):
            raise BrainmisInputError(path, f"{where}: noise ceiling must be ({n_voxels},)")
        if subject.voxel_coords is not None and subject.voxel_coords.shape != (n_voxels, 3):
            raise BrainmisInputError(path, f"{where}: voxel coordinates must be ({n_voxels}, 3)")
        if subject.affine is not None and np.shape(subject.affine) != (4, 4):
            raise BrainmisInputError(path, f"{where}: affine must be 4 x 4")
        if subject.volume_shape is not None and len(subject.volume_shape) != 3:
            raise BrainmisInputError(path, f"{where}: volume shape must have 3 entries")


def check_run(run: Run, n_voxels: int, path: Path | str | None, where: str) -> None:
    where = f"{where} run {run.name!r}"
    if run.responses.ndim != 2 or run.responses.shape[1] != n_voxels:
        raise BrainmisInputError(
            path, f"{where}: responses must be (n_kept, {n_voxels}), found {run.responses.shape}"
        )
    if run.responses.shape[0] == 0:
        raise BrainmisInputError(path, f"{where}: no kept TRs (its responses have 0 rows)")
    if run.tr_times.ndim != 1 or len(run.kept_trs) != run.responses.shape[0]:
        raise BrainmisInputError(
            path,
            f"{where}: responses ({run.responses.shape[0]} rows) and kept TRs "
            f"({len(run.kept_trs)}) have different lengths",
        )
    kept = np.asarray(run.kept_trs)
    if kept.size and (
        kept.min() < 0 or kept.max() >= len(run.tr_times) or np.any(np.diff(kept) <= 0)
    ):
        raise BrainmisInputError(path, f"{where}: kept TRs must increase within the TR times")
    check_increasing(path, run.tr_times, f"{where} TR times", strict=True)
    if len(run.words) != len(run.word_onsets):
        raise BrainmisInputError(path, f"{where}: words and onsets have different lengths")
    check_increasing(path, run.word_onsets, f"{where} word onsets", strict=False)
    if run.repeats is not None and (
        run.repeats.ndim != 3 or run.repeats.shape[1:] != run.responses.shape
    ):
        raise BrainmisInputError(
            path, f"{where}: repeats must be (n_repeats, {run.responses.shape[0]}, {n_voxels})"
        )
