"""Reader of the Moth Radio Hour reading data (Deniz et al. 2019 layout).

Per subject (names from ``brainmis.data.readers.layouts``): a training HDF5 with one dataset
per story ``(T_story, V)``, an optional validation HDF5 whose stories hold repeated
presentations ``(n_repeats, T, V)`` (the run's responses are their mean, the repeats are
kept), and an optional mappers HDF5 with ROI masks under ``roi_masks/<name>``. Per story: a
Praat TextGrid with a word tier, and TR times from a trigger file or from a constant TR and
a start offset.

Times are seconds from the story start (the TextGrid's clock). The HDF5 rows are the kept TRs:
``trim_start`` / ``trim_end`` TRs of every story are missing from them (a parameter: papers
differ; set both to 0 if the files hold every TR).

Trigger files: lines ``<seconds> <label>``. Lines labelled ``trigger``, ``first-trigger`` or
``init-trigger`` are
TRs when any line carries such a label, otherwise every line except ``sound-start`` /
``sound-stop`` is one. A ``sound-start`` line, if present, is time zero. Each TR's time stamp
is its line's time as given (the clock the alignment rule ``t - TR < onset <= t`` reads).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from brainmis.data.readers import checks, layouts
from brainmis.data.readers.file_names import FileNames, natural_key, template_of
from brainmis.data.readers.textgrid import read_textgrid_words
from brainmis.data.records import BrainDataset, Run, Subject
from brainmis.errors import BrainmisInputError

MOTH_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "train": (template_of(layouts.moth_train(Path(), "{subject}")), ("subject",)),
    "val": (template_of(layouts.moth_val(Path(), "{subject}")), ("subject",)),
    "mappers": (template_of(layouts.moth_mappers(Path(), "{subject}")), ("subject",)),
    "textgrid": (template_of(layouts.moth_textgrid(Path(), "{story}")), ("story",)),
    "trfile": (template_of(layouts.moth_trfile(Path(), "{story}")), ("story",)),
}
TRIGGER_LABELS = frozenset({"trigger", "first-trigger", "init-trigger"})
SOUND_START, SOUND_STOP = "sound-start", "sound-stop"
ROI_GROUP = "roi_masks"


@dataclass(frozen=True)
class MothOptions:
    """Options of the ``moth`` layout.

    Attributes:
        trim_start: TRs of every story missing from the HDF5 rows at its start.
        trim_end: TRs missing at its end.
        tr: repetition time, seconds.
        tr_offset: if set, TR ``i`` of a story is at ``tr_offset + i * tr`` seconds and trigger
            files are not read.
        word_tier: name of the TextGrid word tier; default ``word`` or ``words``.
    """

    trim_start: int = layouts.MOTH_TRIM_START
    trim_end: int = layouts.MOTH_TRIM_END
    tr: float = layouts.MOTH_TR
    tr_offset: float | None = None
    word_tier: str | None = None


@dataclass(frozen=True)
class StoryTiming:
    """TR times (``(n_TR,)`` s) and words of one story."""

    tr_times: np.ndarray
    words: np.ndarray
    word_onsets: np.ndarray


def read_moth(
    root: Path,
    subjects: list[str] | None = None,
    options: MothOptions | None = None,
    files: dict[str, str] | None = None,
    name: str = "moth_reading",
    source: Path | None = None,
) -> BrainDataset:
    """Read the Moth layout under ``root`` (default subjects: every training file found)."""
    options = options or MothOptions()
    if options.trim_start < 0 or options.trim_end < 0:
        raise BrainmisInputError(source or root, "trim_start and trim_end must be >= 0")
    if not options.tr > 0:
        raise BrainmisInputError(source or root, f"tr must be positive, got {options.tr}")
    names = FileNames.with_overrides(root, MOTH_FILES, files, source)
    found = names.discover("train", "subject")
    if subjects is None:
        if not found:
            raise BrainmisInputError(
                root, f"no subject files found (expected files like {names.templates['train']})"
            )
        subjects = found
    timing_cache: dict[tuple[str, int], StoryTiming] = {}
    records = {}
    for subject in subjects:
        train_path = names.path("train", subject=subject)
        if not train_path.is_file():
            raise BrainmisInputError(
                train_path, f"unknown subject {subject!r}: file not found (subjects here: {found})"
            )
        records[subject] = read_moth_subject(names, subject, options, timing_cache)
    return BrainDataset(name=name, tr=float(options.tr), subjects=records)


def read_hdf_stories(path: Path, repeated: bool) -> dict[str, np.ndarray]:
    """Story name -> float32 responses: ``(T, V)``, or ``(n_repeats, T, V)`` if ``repeated``."""
    try:
        with h5py.File(path, "r") as handle:
            stories = {}
            for key in sorted(handle.keys(), key=natural_key):
                item = handle[key]
                if not isinstance(item, h5py.Dataset):
                    continue
                if item.dtype.kind not in "biuf":
                    raise BrainmisInputError(
                        path, f"dataset {key!r} must be numeric, found {item.dtype}"
                    )
                stories[key] = np.asarray(item[()], dtype=np.float32)
    except BrainmisInputError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        raise BrainmisInputError(
            path, f"not a readable HDF5 file (truncated or corrupt?): {error}"
        ) from None
    for key, array in stories.items():
        if repeated and array.ndim == 3 and array.shape[0] < 2:
            raise BrainmisInputError(
                path,
                f"dataset {key!r} holds {array.shape[0]} repeat(s) {array.shape}: a repeated "
                "story needs at least 2 (no noise ceiling comes from one); store a single "
                "presentation as (T, V)",
            )
        if array.ndim == 2 or (repeated and array.ndim == 3):
            continue
        shape = "(n_repeats, T, V) or (T, V)" if repeated else "(T, V)"
        raise BrainmisInputError(path, f"dataset {key!r} must be {shape}, found {array.shape}")
    if not stories:
        raise BrainmisInputError(path, "holds no story datasets")
    return stories


def read_trfile(path: Path) -> np.ndarray:
    """TR times in seconds from a trigger file (see the module docstring)."""
    checks.require_file(path, "TR trigger times, lines '<seconds> <label>'")
    entries: list[tuple[float, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        try:
            time = float(parts[0])
        except ValueError:
            raise BrainmisInputError(
                path, f"line {number}: expected '<seconds> <label>', found {line.strip()!r}"
            ) from None
        entries.append((time, parts[1].strip().lower() if len(parts) > 1 else ""))
    labels = {label for _, label in entries}
    zero = next((time for time, label in entries if label == SOUND_START), 0.0)
    if labels & TRIGGER_LABELS:
        times = [time for time, label in entries if label in TRIGGER_LABELS]
    else:
        times = [time for time, label in entries if label not in (SOUND_START, SOUND_STOP)]
    tr_times = np.array(times, dtype=np.float64) - zero
    checks.check_increasing(path, tr_times, "TR times", strict=True)
    if len(tr_times) == 0:
        raise BrainmisInputError(path, "holds no TR times")
    return tr_times


def story_timing(
    names: FileNames, story: str, n_rows: int, options: MothOptions, data_path: Path
) -> StoryTiming:
    """TR times and words of a story whose data has ``n_rows`` kept TRs."""
    n_trimmed = options.trim_start + options.trim_end
    if options.tr_offset is not None:
        tr_times = options.tr_offset + options.tr * np.arange(n_rows + n_trimmed)
    else:
        trfile = names.path("trfile", story=story)
        if not trfile.is_file():
            raise BrainmisInputError(
                trfile,
                f"missing file (TR times of story {story!r}); or set options.tr_offset to "
                "use a constant TR from a start offset",
            )
        tr_times = read_trfile(trfile)
        if len(tr_times) <= n_trimmed:
            raise BrainmisInputError(
                trfile,
                f"lists {len(tr_times)} TRs, no more than trim_start ({options.trim_start}) + "
                f"trim_end ({options.trim_end}); set the trimming options to the TRs missing "
                "from the HDF5 rows",
            )
        if len(tr_times) - n_trimmed != n_rows:
            raise BrainmisInputError(
                data_path,
                f"story {story!r} has {n_rows} response rows but {trfile.name} lists "
                f"{len(tr_times)} TRs, {len(tr_times) - n_trimmed} after trimming "
                f"{options.trim_start}/{options.trim_end}; responses and TR times must match "
                "(set options trim_start/trim_end)",
            )
    textgrid = names.path("textgrid", story=story)
    words, onsets = read_textgrid_words(textgrid, options.word_tier)
    timing = StoryTiming(tr_times, words, onsets)
    probe = Run(story, tr_times, np.zeros((0, 0), np.float32), np.zeros(0, np.int64), words, onsets)
    checks.check_words_inside_run(textgrid, probe, options.tr)
    return timing


def read_moth_subject(
    names: FileNames,
    subject: str,
    options: MothOptions,
    timing_cache: dict[tuple[str, int], StoryTiming],
) -> Subject:
    train_path = names.path("train", subject=subject)
    val_path = names.path("val", subject=subject)
    blocks: list[tuple[str, np.ndarray, Path]] = [
        (story, data, train_path) for story, data in read_hdf_stories(train_path, False).items()
    ]
    if val_path.is_file():
        blocks += [
            (story, data, val_path) for story, data in read_hdf_stories(val_path, True).items()
        ]
    stories = [story for story, _, _ in blocks]
    if len(set(stories)) != len(stories):
        raise BrainmisInputError(val_path, f"story names repeat across files: {stories}")
    n_voxels = blocks[0][1].shape[-1]
    runs = []
    for story, data, path in blocks:
        if data.shape[-1] != n_voxels:
            raise BrainmisInputError(
                path, f"story {story!r} has {data.shape[-1]} voxels, others {n_voxels}"
            )
        checks.check_finite(path, data, f"responses of story {story!r}")
        n_rows = data.shape[-2]
        key = (story, n_rows)
        if key not in timing_cache:
            timing_cache[key] = story_timing(names, story, n_rows, options, path)
        timing = timing_cache[key]
        repeats = data if data.ndim == 3 else None
        responses = data.mean(axis=0, dtype=np.float32) if repeats is not None else data
        runs.append(
            Run(
                name=story,
                tr_times=timing.tr_times,
                responses=responses,
                kept_trs=np.arange(options.trim_start, options.trim_start + n_rows, dtype=np.int64),
                words=timing.words,
                word_onsets=timing.word_onsets,
                repeats=repeats,
            )
        )
    return Subject(
        name=subject,
        runs=runs,
        roi_masks=read_moth_rois(names.path("mappers", subject=subject), n_voxels),
    )


def read_moth_rois(path: Path, n_voxels: int) -> dict[str, np.ndarray]:
    """ROI name -> ``(V,)`` bool from ``roi_masks/<name>``; ``{}`` without the file."""
    if not path.is_file():
        return {}
    try:
        with h5py.File(path, "r") as handle:
            group = handle.get(ROI_GROUP)
            if group is None:
                return {}
            raw = {
                key: np.asarray(item[()])
                for key, item in group.items()
                if isinstance(item, h5py.Dataset)
            }
    except BrainmisInputError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        raise BrainmisInputError(
            path, f"not a readable HDF5 file (truncated or corrupt?): {error}"
        ) from None
    return {
        roi: checks.as_voxel_mask(path, values, n_voxels, f"ROI {roi!r}")
        for roi, values in raw.items()
    }
