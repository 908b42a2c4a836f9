"""Reader of the LeBel et al. 2023 layout (OpenNeuro ds003020, its ``derivative/`` form).

The same lab's format as Moth (``brainmis.data.readers.moth``), stored one file per story:

- ``derivative/preprocessed_data/<S>/<story>.hf5``: dataset ``data`` ``(n_kept, V)`` float
  (``(n_repeats, n_kept, V)`` for a repeated story: the run's responses are their mean),
  subjects named as in the dataset (``UTS01``);
- ``derivative/TextGrids/<story>.TextGrid``: Praat TextGrid with a word tier, seconds from
  the audio start (``brainmis.data.readers.textgrid``);
- TR times: ``derivative/respdict.json`` (``{story: n}``), from which, as the dataset's own
  code does, the story has ``n - pad`` TRs at ``i * tr - sound_start`` seconds (defaults
  ``pad`` 5, ``tr`` 2.0 s, ``sound_start`` 10 s), of which the response rows lack the first
  ``trim_start`` (10) and the last ``trim_end`` (5): ``n_kept = n - 20``. Or trigger files
  ``derivative/trfiles/<story>.report`` (lines ``<seconds> <label>``, read as Moth's).
  ``tr_source``: ``auto`` (respdict when the file exists, else trigger files), ``respdict``
  or ``trfile``.

The story timing, trimming checks and word reading are Moth's (``moth.story_timing``); this
module adds the per-story files, respdict and the dataset name inside the HDF5. No ROI masks
(the dataset's ROIs live in a pycortex database): every voxel is a candidate, selected by the
noise ceiling. Which stories: ``story_set`` and ``stories`` (``story_sets``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from brainmis.data.readers import checks, layouts
from brainmis.data.readers.file_names import FileNames, natural_key, template_of
from brainmis.data.readers.moth import MothOptions, StoryTiming, story_timing
from brainmis.data.readers.story_sets import choose_stories, parse_story_list
from brainmis.data.records import BrainDataset, Run, Subject
from brainmis.errors import BrainmisInputError

LEBEL_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "responses": (
        template_of(layouts.lebel_responses(Path(), "{subject}", "{story}")),
        ("subject", "story"),
    ),
    "textgrid": (template_of(layouts.lebel_textgrid(Path(), "{story}")), ("story",)),
    "trfile": (template_of(layouts.lebel_trfile(Path(), "{story}")), ("story",)),
    "respdict": (layouts.LEBEL_RESPDICT, ()),
}
TR_SOURCES = ("auto", "respdict", "trfile")


@dataclass(frozen=True)
class LebelOptions:
    """Options of the ``lebel`` layout.

    Attributes:
        tr: repetition time, seconds.
        trim_start: TRs of every story missing from the response rows at its start.
        trim_end: TRs missing at its end.
        pad: TRs that respdict counts beyond the story's TR clock.
        sound_start: seconds from the first TR to the audio start (TR ``i`` at
            ``i * tr - sound_start``).
        tr_source: ``auto``, ``respdict`` or ``trfile`` (module docstring).
        hdf_dataset: the dataset inside each ``.hf5`` file.
        word_tier: name of the TextGrid word tier; default ``word`` or ``words``.
        story_set: ``shared`` or ``each`` (``brainmis.data.readers.story_sets``).
        stories: comma-separated story names to read (default: all).
    """

    tr: float = layouts.LEBEL_TR
    trim_start: int = layouts.LEBEL_TRIM_START
    trim_end: int = layouts.LEBEL_TRIM_END
    pad: int = layouts.LEBEL_PAD
    sound_start: float = layouts.LEBEL_SOUND_START
    tr_source: str = "auto"
    hdf_dataset: str = "data"
    word_tier: str | None = None
    story_set: str = "shared"
    stories: str | None = None


def read_lebel(
    root: Path,
    subjects: list[str] | None = None,
    options: LebelOptions | None = None,
    files: dict[str, str] | None = None,
    name: str = "lebel",
    source: Path | None = None,
) -> BrainDataset:
    """Read the LeBel layout under ``root`` (default subjects: every one with a response file)."""
    options = options or LebelOptions()
    where = source or root
    if options.trim_start < 0 or options.trim_end < 0 or options.pad < 0:
        raise BrainmisInputError(where, "trim_start, trim_end and pad must be >= 0")
    if not options.tr > 0:
        raise BrainmisInputError(where, f"tr must be positive, got {options.tr}")
    if options.tr_source not in TR_SOURCES:
        raise BrainmisInputError(
            where, f"option tr_source must be one of {TR_SOURCES}, got {options.tr_source!r}"
        )
    names = FileNames.with_overrides(root, LEBEL_FILES, files, source)
    available: dict[str, list[str]] = {}
    for found in names.discover_all("responses"):
        available.setdefault(found["subject"], []).append(found["story"])
    if not available:
        raise BrainmisInputError(
            root, f"no response files found (expected files like {names.templates['responses']})"
        )
    if subjects is None:
        subjects = sorted(available, key=natural_key)
    for subject in subjects:
        if subject not in available:
            raise BrainmisInputError(
                root,
                f"unknown subject {subject!r}: no file like {names.templates['responses']} "
                f"(subjects here: {sorted(available, key=natural_key)})",
            )
    stories, notes = choose_stories(
        {subject: available[subject] for subject in subjects},
        options.story_set,
        parse_story_list(options.stories, where),
        where,
    )
    respdict = read_respdict(names, options)
    timing_cache: dict[tuple[str, int], StoryTiming] = {}
    records = {
        subject: read_lebel_subject(
            names, subject, stories[subject], options, respdict, timing_cache
        )
        for subject in subjects
    }
    return BrainDataset(name=name, tr=float(options.tr), subjects=records, notes=notes)


def read_respdict(names: FileNames, options: LebelOptions) -> dict[str, int] | None:
    """Story -> number of TRs from ``respdict.json``; None when TRs come from trigger files."""
    path = names.path("respdict")
    if options.tr_source == "trfile" or (options.tr_source == "auto" and not path.is_file()):
        return None
    checks.require_file(path, "respdict.json, story -> number of TRs")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BrainmisInputError(path, f"not valid JSON: {error}") from None
    if not isinstance(content, dict):
        raise BrainmisInputError(path, "expected a JSON object mapping story -> number of TRs")
    for story, count in content.items():
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            raise BrainmisInputError(
                path, f"story {story!r}: {count!r} is not a positive number of TRs"
            )
    return dict(content)


def read_story_responses(path: Path, dataset: str) -> np.ndarray:
    """``(n_kept, V)`` or ``(n_repeats, n_kept, V)`` float32 from dataset ``dataset``."""
    checks.require_file(path, f"HDF5 with dataset {dataset!r} (TRs, voxels)")
    try:
        with h5py.File(path, "r") as handle:
            item = handle.get(dataset)
            if not isinstance(item, h5py.Dataset):
                raise BrainmisInputError(
                    path,
                    f"has no dataset {dataset!r} (found: {sorted(handle.keys())}); set option "
                    "hdf_dataset if the responses are stored under another name",
                )
            if item.dtype.kind not in "biuf":
                raise BrainmisInputError(
                    path, f"dataset {dataset!r} must be numeric, found {item.dtype}"
                )
            data = np.asarray(item[()], dtype=np.float32)
    except BrainmisInputError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        raise BrainmisInputError(
            path, f"not a readable HDF5 file (truncated or corrupt?): {error}"
        ) from None
    if data.ndim == 3 and data.shape[0] < 2:
        raise BrainmisInputError(
            path,
            f"dataset {dataset!r} holds {data.shape[0]} repeat(s) {data.shape}: store a single "
            "presentation as (T, V)",
        )
    if data.ndim not in (2, 3):
        raise BrainmisInputError(
            path, f"dataset {dataset!r} must be (T, V) or (n_repeats, T, V), found {data.shape}"
        )
    checks.check_finite(path, data, f"responses in {dataset!r}")
    return data


def lebel_story_timing(
    names: FileNames,
    story: str,
    n_rows: int,
    options: LebelOptions,
    respdict: dict[str, int] | None,
    data_path: Path,
) -> StoryTiming:
    """TR times and words of a story whose responses have ``n_rows`` rows (Moth's timing)."""
    n_trimmed = options.trim_start + options.trim_end
    if respdict is not None:
        respdict_path = names.path("respdict")
        if story not in respdict:
            raise BrainmisInputError(respdict_path, f"has no entry for story {story!r}")
        n_trs = respdict[story] - options.pad
        if n_trs - n_trimmed != n_rows:
            raise BrainmisInputError(
                data_path,
                f"story {story!r} has {n_rows} response rows but {respdict_path.name} gives "
                f"{respdict[story]} TRs, {n_trs - n_trimmed} rows after pad {options.pad} and "
                f"trimming {options.trim_start}/{options.trim_end}; set options pad / "
                "trim_start / trim_end to match the files",
            )
        tr_offset: float | None = -options.sound_start
    else:
        trfile = names.path("trfile", story=story)
        if not trfile.is_file():
            raise BrainmisInputError(
                trfile,
                f"missing file (TR times of story {story!r}): give {layouts.LEBEL_RESPDICT} or "
                "a trigger file per story",
            )
        tr_offset = None
    moth_options = MothOptions(
        trim_start=options.trim_start,
        trim_end=options.trim_end,
        tr=options.tr,
        tr_offset=tr_offset,
        word_tier=options.word_tier,
    )
    return story_timing(names, story, n_rows, moth_options, data_path)


def read_lebel_subject(
    names: FileNames,
    subject: str,
    stories: list[str],
    options: LebelOptions,
    respdict: dict[str, int] | None,
    timing_cache: dict[tuple[str, int], StoryTiming],
) -> Subject:
    runs = []
    n_voxels = None
    for story in stories:
        path = names.path("responses", subject=subject, story=story)
        data = read_story_responses(path, options.hdf_dataset)
        if n_voxels is None:
            n_voxels = data.shape[-1]
        elif data.shape[-1] != n_voxels:
            raise BrainmisInputError(
                path, f"story {story!r} has {data.shape[-1]} voxels, story {stories[0]} {n_voxels}"
            )
        n_rows = data.shape[-2]
        key = (story, n_rows)
        if key not in timing_cache:
            timing_cache[key] = lebel_story_timing(names, story, n_rows, options, respdict, path)
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
    return Subject(name=subject, runs=runs)
