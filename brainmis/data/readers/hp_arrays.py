"""Reader of the Harry Potter array layout (the Toneva & Wehbe 2019 distribution).

Files (names from ``brainmis.data.readers.layouts``): ``time_fmri.npy`` and
``runs_fmri.npy`` ``(n_TR_total,)`` give every TR's time stamp (seconds, one clock over the
session) and run number; ``words_fmri.npy`` (or ``stimuli_words.npy``) and
``time_words_fmri.npy`` give the RSVP items and their onsets; ``data_subject_X.npy``
``(n_kept_total, V)`` holds the responses of the kept TRs, the first ``trim_start`` and last
``trim_end`` TRs of every run having been removed (20 / 15 in the distribution: 1351 TR
times -> 1211 rows). Optional per subject:
``rois_subject_X.npz`` (ROI name -> ``(V,)`` bool mask or voxel indices) and
``noise_ceiling_subject_X.npy`` ``(V,)``.

Time stamps are kept as given (absolute over the session); each run holds only its own TRs
and the words that fall in them. Word markers: see ``hp_words``.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainmis.data.readers import checks, layouts
from brainmis.data.readers.file_names import FileNames, template_of
from brainmis.data.readers.hp_words import clean_hp_words, split_words_by_run
from brainmis.data.records import BrainDataset, Run, Subject
from brainmis.errors import BrainmisInputError

HP_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "time_fmri": (layouts.HP_TIME_FMRI, ()),
    "runs_fmri": (layouts.HP_RUNS_FMRI, ()),
    "time_words": (layouts.HP_TIME_WORDS, ()),
    "words": (layouts.HP_WORDS, ()),
    "words_alt": (layouts.HP_WORDS_ALT, ()),
    "data": (template_of(layouts.hp_data(Path(), "{subject}")), ("subject",)),
    "rois": (template_of(layouts.hp_rois(Path(), "{subject}")), ("subject",)),
    "rois_pickled": (template_of(layouts.hp_rois_pickled(Path(), "{subject}")), ("subject",)),
    "noise_ceiling": (template_of(layouts.hp_noise_ceiling(Path(), "{subject}")), ("subject",)),
}


@dataclass(frozen=True)
class HpArrayOptions:
    """Options of the ``hp`` layout.

    Attributes:
        trim_start: TRs missing from the data rows at the start of every run.
        trim_end: TRs missing at the end of every run.
        tr: repetition time in seconds; default the median spacing of ``time_fmri``.
        allow_pickled_rois: read ``rois_subject_X.npy`` pickled dicts (only for files you
            trust: unpickling can run code).
    """

    trim_start: int = layouts.HP_TRIM_START
    trim_end: int = layouts.HP_TRIM_END
    tr: float | None = None
    allow_pickled_rois: bool = False


@dataclass(frozen=True)
class HpTiming:
    """Session timing shared by every subject: TR times per run and the words of each run."""

    run_names: list[str]
    run_tr_times: list[np.ndarray]
    run_words: list[tuple[np.ndarray, np.ndarray]]
    tr: float


def read_hp_arrays(
    root: Path,
    subjects: list[str] | None = None,
    options: HpArrayOptions | None = None,
    files: dict[str, str] | None = None,
    name: str = "harry_potter",
    source: Path | None = None,
) -> BrainDataset:
    """Read the HP array layout under ``root`` into a ``BrainDataset``.

    Args:
        root: the folder holding the files.
        subjects: subject letters to read; default every ``data_subject_*.npy`` found.
        options: trimming, TR, pickled-ROI opt-in.
        files: per-file template overrides (see ``file_names``); ``source`` names the
            manifest in errors about them.
        name: dataset name.
    """
    options = options or HpArrayOptions()
    if options.trim_start < 0 or options.trim_end < 0:
        raise BrainmisInputError(source or root, "trim_start and trim_end must be >= 0")
    names = FileNames.with_overrides(root, HP_FILES, files, source)
    timing = read_hp_timing(names, options)
    subject_names = resolve_subjects(names, subjects)
    subject_records = {
        subject: read_hp_subject(names, subject, timing, options) for subject in subject_names
    }
    return BrainDataset(name=name, tr=timing.tr, subjects=subject_records)


def resolve_subjects(names: FileNames, subjects: list[str] | None) -> list[str]:
    found = names.discover("data", "subject")
    if subjects is None:
        if not found:
            raise BrainmisInputError(
                names.root, f"no subject data found (expected files like {names.templates['data']})"
            )
        return found
    for subject in subjects:
        if not names.path("data", subject=subject).is_file():
            raise BrainmisInputError(
                names.path("data", subject=subject),
                f"unknown subject {subject!r}: file not found (subjects here: {found})",
            )
    return list(subjects)


def read_hp_timing(names: FileNames, options: HpArrayOptions) -> HpTiming:
    """TR times per run, the TR and the words of every run."""
    time_path, runs_path = names.path("time_fmri"), names.path("runs_fmri")
    times = checks.load_npy(time_path, "TR times, seconds")
    runs = checks.load_npy(runs_path, "run number of every TR")
    for path, array, what in ((time_path, times, "TR times"), (runs_path, runs, "run numbers")):
        checks.check_numeric(path, array, what)
        checks.check_ndim(path, array, 1, what, "(n_TR,)")
    checks.check_same_length(runs_path, runs, times, "run numbers and TR times (time_fmri)")
    if len(times) == 0:
        raise BrainmisInputError(time_path, "holds no TR times (no runs to read)")
    checks.check_finite(runs_path, runs, "run numbers")
    times = times.astype(np.float64)
    run_labels = list(dict.fromkeys(runs.tolist()))
    run_tr_times = []
    for label in run_labels:
        index = np.flatnonzero(runs == label)
        if np.any(np.diff(index) != 1):
            raise BrainmisInputError(runs_path, f"the TRs of run {label} are not contiguous")
        run_tr_times.append(times[index])
        checks.check_increasing(time_path, times[index], f"TR times of run {label}", strict=True)
    if options.tr is not None:
        tr = float(options.tr)
    else:
        tr = float(np.median(np.concatenate([np.diff(t) for t in run_tr_times])))
    if not tr > 0:
        raise BrainmisInputError(time_path, f"TR must be positive, found {tr:g} s")
    for label, tr_times in zip(run_labels, run_tr_times, strict=True):
        if len(tr_times) <= options.trim_start + options.trim_end:
            raise BrainmisInputError(
                runs_path,
                f"run {label} has {len(tr_times)} TRs, no more than trim_start "
                f"({options.trim_start}) + trim_end ({options.trim_end}); set the trimming "
                "options to the TRs missing from the data rows",
            )
    words, onsets, words_path = read_hp_word_list(names)
    run_words = split_words_by_run(words_path, run_tr_times, tr, words, onsets)
    run_names = [
        f"run{int(label)}" if float(label).is_integer() else str(label) for label in run_labels
    ]
    return HpTiming(run_names, run_tr_times, run_words, tr)


def read_hp_word_list(names: FileNames) -> tuple[np.ndarray, np.ndarray, Path]:
    """Cleaned words and their onsets; the words file path (for errors)."""
    words_path = names.path("words")
    if not words_path.is_file() and names.path("words_alt").is_file():
        words_path = names.path("words_alt")
    checks.require_file(words_path, f"stimulus words (or {names.templates['words_alt']})")
    onsets_path = names.path("time_words")
    words = checks.load_npy(words_path, "stimulus words")
    onsets = checks.load_npy(onsets_path, "word onsets, seconds")
    if words.dtype.kind == "S":
        words = np.char.decode(words, "utf-8")
    if words.dtype.kind != "U":
        raise BrainmisInputError(words_path, f"words must be a string array, found {words.dtype}")
    checks.check_ndim(words_path, words, 1, "words", "(n_words,)")
    checks.check_numeric(onsets_path, onsets, "word onsets")
    checks.check_ndim(onsets_path, onsets, 1, "word onsets", "(n_words,)")
    checks.check_same_length(onsets_path, words, onsets, f"words ({words_path.name}) and onsets")
    checks.check_increasing(onsets_path, onsets, "word onsets", strict=False)
    n_items = len(words)
    words, onsets = clean_hp_words(words, onsets)
    if len(words) == 0:
        raise BrainmisInputError(
            words_path,
            f"holds no words ({n_items} item(s), none a word: paragraph marks or empty); "
            "training would read empty text",
        )
    return words, onsets, onsets_path


def read_hp_subject(
    names: FileNames, subject: str, timing: HpTiming, options: HpArrayOptions
) -> Subject:
    data_path = names.path("data", subject=subject)
    data = checks.load_npy(data_path, f"responses of subject {subject}", mmap=True)
    checks.check_numeric(data_path, data, "responses")
    checks.check_ndim(data_path, data, 2, "responses", "(n_kept_TRs, n_voxels)")
    n_kept = [len(t) - options.trim_start - options.trim_end for t in timing.run_tr_times]
    if data.shape[0] != sum(n_kept):
        raise BrainmisInputError(
            data_path,
            f"responses have {data.shape[0]} rows but the TR times give {sum(n_kept)} kept TRs "
            f"({len(n_kept)} runs, trim_start={options.trim_start}, "
            f"trim_end={options.trim_end}); responses and TR times must match",
        )
    checks.check_finite(data_path, data, "responses")
    runs = []
    offset = 0
    for run_name, tr_times, (words, onsets), count in zip(
        timing.run_names, timing.run_tr_times, timing.run_words, n_kept, strict=True
    ):
        rows = data[offset : offset + count]
        offset += count
        runs.append(
            Run(
                name=run_name,
                tr_times=tr_times,
                responses=rows if rows.dtype == np.float32 else rows.astype(np.float32),
                kept_trs=np.arange(options.trim_start, options.trim_start + count, dtype=np.int64),
                words=words,
                word_onsets=onsets,
            )
        )
    n_voxels = data.shape[1]
    ceiling_path = names.path("noise_ceiling", subject=subject)
    ceiling = read_noise_ceiling(ceiling_path, n_voxels)
    return Subject(
        name=subject,
        runs=runs,
        roi_masks=read_hp_rois(names, subject, n_voxels, options.allow_pickled_rois),
        noise_ceiling=ceiling,
        noise_ceiling_method=None if ceiling is None else f"precomputed ({ceiling_path.name})",
    )


def read_hp_rois(
    names: FileNames, subject: str, n_voxels: int, allow_pickled: bool
) -> dict[str, np.ndarray]:
    """ROI name -> ``(V,)`` bool; ``{}`` when the subject has no ROI file."""
    npz_path = names.path("rois", subject=subject)
    pickled_path = names.path("rois_pickled", subject=subject)
    if npz_path.is_file():
        arrays = checks.load_npz(npz_path, "ROI masks")
        return {
            roi: checks.as_voxel_mask(npz_path, values, n_voxels, f"ROI {roi!r}")
            for roi, values in arrays.items()
        }
    if not pickled_path.is_file():
        return {}
    if not allow_pickled:
        raise BrainmisInputError(
            pickled_path,
            "ROI masks stored as a pickled dict are not read by default (unpickling can run "
            "code); if you trust the file set 'options: {allow_pickled_rois: true}' in the "
            f"source manifest, or save the masks as {npz_path.name} (np.savez)",
        )
    return read_pickled_rois(pickled_path, n_voxels)


# The only globals a pickled dict of numpy arrays needs; anything else (a function to call,
# another class) is refused before it is looked up, so even an opted-in file runs no code.
_NUMPY_PICKLE_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, nothing that names other code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _NUMPY_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, not only numpy arrays")
        return super().find_class(module, name)


def read_pickled_rois(path: Path, n_voxels: int) -> dict[str, np.ndarray]:
    """The explicit opt-in branch: a ``.npy`` holding a pickled dict ROI name -> mask/indices.

    Reached only with ``allow_pickled_rois: true``, and even then the pickle is read by an
    unpickler that accepts numpy arrays and plain containers only (no other class or
    function can be named, so no code runs).
    """
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                np.lib.format.read_array_header_1_0(handle)
            else:
                np.lib.format.read_array_header_2_0(handle)
            content = _NumpyOnlyUnpickler(handle).load()
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as error:
        raise BrainmisInputError(path, f"not a readable pickled ROI dict: {error}") from None
    if isinstance(content, np.ndarray) and content.dtype.hasobject and content.ndim == 0:
        content = content.item()
    if not isinstance(content, dict):
        raise BrainmisInputError(path, "expected a pickled dict ROI name -> voxel mask/indices")
    return {
        str(roi): checks.as_voxel_mask(path, np.asarray(values), n_voxels, f"ROI {roi!r}")
        for roi, values in content.items()
    }


def read_noise_ceiling(path: Path, n_voxels: int) -> np.ndarray | None:
    """Optional precomputed ``(V,)`` ceiling (correlation units); None without the file."""
    if not path.is_file():
        return None
    ceiling = checks.load_npy(path, "noise ceiling per voxel")
    checks.check_numeric(path, ceiling, "noise ceiling")
    if ceiling.shape != (n_voxels,):
        raise BrainmisInputError(
            path, f"noise ceiling must have shape ({n_voxels},), found {ceiling.shape}"
        )
    checks.check_finite(path, ceiling, "noise ceiling values")
    return ceiling.astype(np.float32)
