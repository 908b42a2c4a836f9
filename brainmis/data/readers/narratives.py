"""Reader of the Narratives layout (Nastase et al. 2021, OpenNeuro ds002345, BIDS).

Per subject and story (file names from ``brainmis.data.readers.layouts``; any may be
overridden under ``files:``, e.g. ``bold`` pointing at ``derivatives/afni-nosmooth/...``):

- ``sub-<S>/func/sub-<S>_task-<story>_bold.nii.gz``: 4D BOLD ``(X, Y, Z, T)``, volume ``i``
  at ``i * TR`` seconds from the scan start (TR from the header, or the ``tr`` option;
  Narratives: 1.5 s). Each story is a ``Run`` named after the story (the BIDS task label).
- ``sub-<S>/func/sub-<S>_task-<story>_events.tsv`` (else the top-level
  ``task-<story>_events.tsv``): its first event's ``onset`` is when the story's audio file
  starts (the music before some stories is part of that file), seconds from the scan start;
  the ``audio_onset`` option replaces both.
- ``stimuli/gentle/<story>/align.json``: the Gentle forced alignment, ``{"words": [{"word",
  "case", "start", "end"}, ...]}``, seconds from the audio start. Only ``case == "success"``
  words have times; the others are dropped (``untimed_words: drop``, the default, as the
  published ``align.csv`` does) or placed evenly between their timed neighbours
  (``interpolate``). A word's onset is ``audio onset + start``.
- optional ROI: ``sub-<S>/anat/sub-<S>_roi.nii.gz`` (+ ``_roi_labels.tsv``), a 0/1 mask or a
  label atlas in the BOLD space, read as the ``nifti`` layout reads it; a ``files.roi``
  template without ``{subject}`` is one group mask for all (Narratives derivatives share
  MNI space). The subject's voxels are those non-zero in any volume of any story plus every
  ROI voxel (``nifti.in_brain_mask``), with their ``(i, j, k)`` and the affine.
- or surfaces: a ``files.bold`` template ending in ``.func.gii`` that names the left
  hemisphere (``..._space-fsaverage6_hemi-L_desc-clean.func.gii``, the afni-smooth /
  afni-nosmooth derivatives); its ``hemi-R`` twin is read too, the subject's "voxels" are the
  vertices of both hemispheres (left first) non-zero in any story, without ROI or
  coordinates; TR from the ``tr`` option (GIfTI stores none), default 1.5 s.

Subjects are named without ``sub-`` (``001``). Which stories: ``story_set`` and ``stories``
(``brainmis.data.readers.story_sets``; default only the stories every chosen subject has).

Exclusions: ``code/scan_exclude.json`` when present (or the ``exclude_scans`` option, a path
relative to the root; ``brainmis prepare --exclude-scans FILE``; ``apply_exclusions: false``
ignores it). Two forms: the published one, ``{task: {"sub-001": ["sub-001_task-pieman_run-1",
...]}}``, excludes a scan whose BOLD file name contains one of the subject's patterns (as the
Narratives code does); or ``{task: ["sub-001", "002"]}``, which excludes those subjects'
scans of the task. A subject the file names must be in the source (a ``sub-<S>`` folder or a
row of ``participants.tsv``): a typo would otherwise keep a bad scan silently.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from brainmis.data.readers import checks, layouts
from brainmis.data.readers.file_names import FileNames, natural_key, template_of
from brainmis.data.readers.nifti import (
    header_tr,
    image_data,
    in_brain_mask,
    load_image,
    read_roi_image,
)
from brainmis.data.readers.story_sets import choose_stories, parse_story_list
from brainmis.data.records import BrainDataset, Run, Subject
from brainmis.errors import BrainmisInputError

NARRATIVES_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bold": (
        template_of(layouts.narratives_bold(Path(), "{subject}", "{story}")),
        ("subject", "story"),
    ),
    "events": (
        template_of(layouts.narratives_events(Path(), "{subject}", "{story}")),
        ("subject", "story"),
    ),
    "task_events": (template_of(layouts.narratives_task_events(Path(), "{story}")), ("story",)),
    "align": (template_of(layouts.narratives_align(Path(), "{story}")), ("story",)),
    "roi": (template_of(layouts.narratives_roi(Path(), "{subject}")), ("subject",)),
    "roi_labels": (template_of(layouts.narratives_roi_labels(Path(), "{subject}")), ("subject",)),
    "participants": (layouts.NARRATIVES_PARTICIPANTS, ()),
    "exclusions": (layouts.NARRATIVES_EXCLUDE, ()),
}
UNTIMED_CHOICES = ("drop", "interpolate")
# A BIDS label (the story after task-): letters and digits only. More after it (run-1,
# space-MNI, ...) means the template matched another entity, which the reader does not split.
BIDS_LABEL = re.compile(r"[A-Za-z0-9]+")
TIMED_CASE = "success"
SURFACE_SUFFIX = ".func.gii"  # fsaverage6 derivatives: hemi-L / hemi-R files per story
SURFACE_LEFT, SURFACE_RIGHT = "hemi-L", "hemi-R"


@dataclass(frozen=True)
class NarrativesOptions:
    """Options of the ``narratives`` layout.

    Attributes:
        tr: repetition time in seconds; default from the BOLD header.
        trim_start: volumes of every story left out of the responses at its start.
        trim_end: volumes left out at its end.
        story_set: ``shared`` or ``each`` (``brainmis.data.readers.story_sets``).
        stories: comma-separated story names to read (default: all).
        exclude_scans: the exclusion file, relative to the root (default
            ``code/scan_exclude.json`` when present).
        apply_exclusions: false ignores any exclusion file.
        untimed_words: ``drop`` or ``interpolate`` the words Gentle could not align.
        audio_onset: seconds from the scan start to the audio start of every story,
            instead of the events files.
        roi_name: name of the ROI when the ROI image is a 0/1 mask.
    """

    tr: float | None = None
    trim_start: int = 0
    trim_end: int = 0
    story_set: str = "shared"
    stories: str | None = None
    exclude_scans: str | None = None
    apply_exclusions: bool = True
    untimed_words: str = "drop"
    audio_onset: float | None = None
    roi_name: str = "roi"


@dataclass(frozen=True)
class StoryWords:
    """The words of a story's alignment, onsets in seconds from the audio start."""

    words: np.ndarray
    onsets: np.ndarray
    n_untimed: int
    n_entries: int


def read_narratives(
    root: Path,
    subjects: list[str] | None = None,
    options: NarrativesOptions | None = None,
    files: dict[str, str] | None = None,
    name: str = "narratives",
    source: Path | None = None,
) -> BrainDataset:
    """Read the Narratives layout under ``root`` (default subjects: every one with a BOLD)."""
    options = options or NarrativesOptions()
    where = source or root
    if options.trim_start < 0 or options.trim_end < 0:
        raise BrainmisInputError(where, "trim_start and trim_end must be >= 0")
    if options.untimed_words not in UNTIMED_CHOICES:
        raise BrainmisInputError(
            where,
            f"option untimed_words must be one of {UNTIMED_CHOICES}, got {options.untimed_words!r}",
        )
    names = FileNames.with_overrides(root, NARRATIVES_FILES, files, source)
    available: dict[str, list[str]] = {}
    for found in names.discover_all("bold"):
        if not BIDS_LABEL.fullmatch(found["story"]):
            raise BrainmisInputError(
                names.path("bold", **found),
                f"task label {found['story']!r} is followed by other BIDS entities (run-, "
                "space-, ...): point files.bold at one form of the scans",
            )
        available.setdefault(found["subject"], []).append(found["story"])
    if not available:
        raise BrainmisInputError(
            root, f"no BOLD files found (expected files like {names.templates['bold']})"
        )
    if subjects is None:
        subjects = sorted(available, key=natural_key)
    for subject in subjects:
        if subject not in available:
            raise BrainmisInputError(
                root,
                f"unknown subject {subject!r}: no BOLD file like {names.templates['bold']} "
                f"(subjects here: {sorted(available, key=natural_key)})",
            )
    notes: list[str] = []
    chosen = {subject: list(available[subject]) for subject in subjects}
    if options.apply_exclusions:
        chosen = apply_exclusions(names, options, chosen, set(available), notes)
    stories, story_notes = choose_stories(
        chosen, options.story_set, parse_story_list(options.stories, where), where
    )
    notes += story_notes
    alignments: dict[str, StoryWords] = {}
    records, trs = {}, []
    for subject in subjects:
        for story in stories[subject]:
            if story not in alignments:
                alignments[story] = read_alignment(
                    names.path("align", story=story), options.untimed_words
                )
        records[subject], tr = read_narratives_subject(
            names, subject, stories[subject], alignments, options, notes
        )
        trs.append(tr)
    if not np.allclose(trs, trs[0], rtol=1e-3):
        raise BrainmisInputError(root, f"subjects have different TRs: {trs}")
    for story, alignment in alignments.items():
        if alignment.n_untimed:
            verb = "dropped" if options.untimed_words == "drop" else "placed between neighbours"
            notes.append(
                f"story {story}: {alignment.n_untimed} of {alignment.n_entries} words have no "
                f"time in align.json (case != {TIMED_CASE}); {verb}"
            )
    return BrainDataset(name=name, tr=trs[0], subjects=records, notes=notes)


# --- exclusions ----------------------------------------------------------------------------


def read_exclusions(path: Path) -> dict[str, dict[str, list[str]]]:
    """Task -> subject (without ``sub-``) -> scan-name patterns (empty: every scan)."""
    checks.require_file(path, "scan exclusions, JSON task -> subject ids")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BrainmisInputError(path, f"not valid JSON: {error}") from None
    if not isinstance(content, dict):
        raise BrainmisInputError(path, "expected a JSON object mapping task -> subjects")
    exclusions: dict[str, dict[str, list[str]]] = {}
    for task, value in content.items():
        if isinstance(value, list):
            value = {subject: [] for subject in value}
        if not isinstance(value, dict):
            raise BrainmisInputError(
                path,
                f"task {task!r}: expected a list of subject ids or an object subject -> scan names",
            )
        entries: dict[str, list[str]] = {}
        for subject, patterns in value.items():
            if not isinstance(subject, str) or not subject:
                raise BrainmisInputError(path, f"task {task!r}: subject {subject!r} is not a name")
            if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
                raise BrainmisInputError(
                    path, f"task {task!r}, {subject}: expected a list of scan names"
                )
            entries[bare_subject(subject)] = list(patterns)
        exclusions[str(task)] = entries
    return exclusions


def bare_subject(subject: str) -> str:
    """``sub-001`` -> ``001``."""
    return subject[4:] if subject.startswith("sub-") else subject


def participant_ids(path: Path) -> set[str]:
    """Subjects listed in ``participants.tsv`` (column ``participant_id``); empty without it."""
    if not path.is_file():
        return set()
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if "participant_id" not in (reader.fieldnames or []):
            raise BrainmisInputError(path, "missing column participant_id")
        return {bare_subject((row["participant_id"] or "").strip()) for row in reader}


def apply_exclusions(
    names: FileNames,
    options: NarrativesOptions,
    chosen: dict[str, list[str]],
    present: set[str],
    notes: list[str],
) -> dict[str, list[str]]:
    """``chosen`` without the excluded scans (module docstring); one note per exclusion."""
    if options.exclude_scans is not None:
        path = Path(options.exclude_scans)
        path = path if path.is_absolute() else names.root / path
    else:
        path = names.path("exclusions")
        if not path.is_file():
            return chosen
    exclusions = read_exclusions(path)
    known = present | participant_ids(names.path("participants"))
    unknown = sorted(
        {subject for entries in exclusions.values() for subject in entries} - known,
        key=natural_key,
    )
    if unknown:
        raise BrainmisInputError(
            path,
            f"names subject(s) {['sub-' + s for s in unknown]} that this source does not "
            f"hold (no sub-<S> folder, not in {layouts.NARRATIVES_PARTICIPANTS}); a typo "
            "would keep a bad scan",
        )
    kept: dict[str, list[str]] = {}
    for subject, stories in chosen.items():
        kept[subject] = []
        for story in stories:
            if story in exclusions and subject in exclusions[story]:
                patterns = exclusions[story][subject]
                bold = names.path("bold", subject=subject, story=story).name
                if not patterns or any(pattern in bold for pattern in patterns):
                    notes.append(f"subject {subject}: story {story} excluded by {path.name}")
                    continue
            kept[subject].append(story)
        if not kept[subject]:
            raise BrainmisInputError(
                path, f"excludes every story of subject {subject}; leave it out with --subjects"
            )
    return kept


# --- words and timing ----------------------------------------------------------------------


def read_alignment(path: Path, untimed: str) -> StoryWords:
    """The words of a Gentle ``align.json`` and their onsets (seconds from the audio start)."""
    checks.require_file(path, "Gentle forced alignment align.json of the story")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BrainmisInputError(path, f"not valid JSON: {error}") from None
    entries = content.get("words") if isinstance(content, dict) else None
    if not isinstance(entries, list):
        raise BrainmisInputError(path, 'expected a JSON object with a "words" list (Gentle)')
    words: list[str] = []
    onsets: list[float] = []  # NaN where untimed
    ends: list[float] = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("word"), str):
            raise BrainmisInputError(path, f'word {number}: expected an object with a "word"')
        text = entry["word"].strip()
        if not text:
            continue
        timed = entry.get("case", TIMED_CASE) == TIMED_CASE
        start, end = entry.get("start"), entry.get("end")
        if timed:
            if not all(isinstance(v, int | float) and math.isfinite(v) for v in (start, end)):
                raise BrainmisInputError(
                    path,
                    f"word {number} ({text!r}): case {TIMED_CASE!r} but start/end "
                    f"{start!r}/{end!r} are not numbers of seconds",
                )
            if end < start:
                raise BrainmisInputError(
                    path, f"word {number} ({text!r}): end {end:g} s before start {start:g} s"
                )
        words.append(text)
        onsets.append(float(start) if timed else math.nan)
        ends.append(float(end) if timed else math.nan)
    onset_array = np.array(onsets, dtype=np.float64)
    timed_mask = np.isfinite(onset_array)
    if not timed_mask.any():
        raise BrainmisInputError(
            path, f"holds no timed word ({len(entries)} entries, none with case {TIMED_CASE!r})"
        )
    checks.check_increasing(path, onset_array[timed_mask], "word start times", strict=False)
    word_array = np.array(words, dtype=str)
    n_untimed = int((~timed_mask).sum())
    if untimed == "interpolate" and n_untimed:
        onset_array = interpolate_onsets(onset_array, np.array(ends, dtype=np.float64))
        timed_mask = np.isfinite(onset_array)
    return StoryWords(word_array[timed_mask], onset_array[timed_mask], n_untimed, len(entries))


def interpolate_onsets(onsets: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Onsets with each run of NaN between two timed words spread evenly from the earlier
    word's end to the later word's start; NaN before the first or after the last timed word
    stays NaN (dropped)."""
    onsets = onsets.copy()
    timed = np.flatnonzero(np.isfinite(onsets))
    for left, right in zip(timed[:-1], timed[1:], strict=True):
        if right - left > 1:
            gap_start = min(ends[left], onsets[right])
            onsets[left + 1 : right] = np.linspace(gap_start, onsets[right], right - left + 1)[1:-1]
    return onsets


def read_audio_onset(names: FileNames, subject: str, story: str) -> float:
    """Seconds from the scan start to the audio start: the first event's onset."""
    path = names.path("events", subject=subject, story=story)
    if not path.is_file():
        path = names.path("task_events", story=story)
    if not path.is_file():
        raise BrainmisInputError(
            names.path("events", subject=subject, story=story),
            f"missing file (events TSV giving the audio onset of story {story!r}; also looked "
            f"for {names.templates['task_events'].format(story=story)}); or set option "
            "audio_onset",
        )
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if "onset" not in (reader.fieldnames or []):
            raise BrainmisInputError(path, "missing column onset")
        rows = list(reader)
    if not rows:
        raise BrainmisInputError(path, "holds no event (the story's onset)")
    try:
        onset = float(rows[0]["onset"])
    except (TypeError, ValueError):
        raise BrainmisInputError(
            path, f"line 2: onset {rows[0]['onset']!r} is not a number"
        ) from None
    if not math.isfinite(onset) or onset < 0:
        raise BrainmisInputError(path, f"line 2: onset {onset:g} must be seconds >= 0")
    return onset


# --- one subject ---------------------------------------------------------------------------


def read_narratives_subject(
    names: FileNames,
    subject: str,
    stories: list[str],
    alignments: dict[str, StoryWords],
    options: NarrativesOptions,
    notes: list[str],
) -> tuple[Subject, float]:
    """One subject's stories from NIfTI volumes, or from GIfTI surfaces (``.func.gii``)."""
    paths = [names.path("bold", subject=subject, story=story) for story in stories]
    surface = [path.name.endswith(SURFACE_SUFFIX) for path in paths]
    if any(surface) and not all(surface):
        raise BrainmisInputError(paths[0], "stories mix NIfTI volumes and GIfTI surfaces")
    if all(surface):
        return read_surface_subject(names, subject, stories, paths, alignments, options)
    return read_volume_subject(names, subject, stories, paths, alignments, options, notes)


def read_volume_subject(
    names: FileNames,
    subject: str,
    stories: list[str],
    paths: list[Path],
    alignments: dict[str, StoryWords],
    options: NarrativesOptions,
    notes: list[str],
) -> tuple[Subject, float]:
    volumes, trs = [], []
    shape = affine = None
    for path in paths:
        image = load_image(path, "4D BOLD")
        if len(image.shape) != 4:
            raise BrainmisInputError(path, f"BOLD must be 4-D (X, Y, Z, T), found {image.shape}")
        if shape is None:
            shape, affine = tuple(image.shape[:3]), image.affine
        elif tuple(image.shape[:3]) != shape or not np.allclose(image.affine, affine, atol=1e-3):
            raise BrainmisInputError(
                path, f"story is not in the same space as story {stories[0]} (shape/affine)"
            )
        trs.append(float(options.tr) if options.tr is not None else header_tr(path, image))
        data = image_data(path, image)
        checks.check_finite(path, data, "BOLD values")
        volumes.append(data)
    if not np.allclose(trs, trs[0], rtol=1e-3):
        raise BrainmisInputError(paths[-1], f"stories have different TRs: {trs}")
    tr = trs[0]
    assert shape is not None and affine is not None  # at least one story (choose_stories)
    roi_volumes = read_roi_image(names, subject, shape, affine, options, notes)  # type: ignore[arg-type]
    in_brain = in_brain_mask(shape, volumes, roi_volumes)
    runs = [
        story_run(names, subject, story, data[in_brain].T, tr, alignments[story], options, path)
        for story, data, path in zip(stories, volumes, paths, strict=True)
    ]
    subject_record = Subject(
        name=subject,
        runs=runs,
        roi_masks={roi: mask[in_brain] for roi, mask in roi_volumes.items()},
        voxel_coords=np.argwhere(in_brain).astype(np.int64),
        volume_shape=shape,  # type: ignore[arg-type]
        affine=np.asarray(affine, dtype=np.float64),
    )
    return subject_record, tr


def read_surface_subject(
    names: FileNames,
    subject: str,
    stories: list[str],
    paths: list[Path],
    alignments: dict[str, StoryWords],
    options: NarrativesOptions,
) -> tuple[Subject, float]:
    """Surface stories: the vertices of both hemispheres non-zero in any story, no ROI, no
    voxel coordinates; TR from the ``tr`` option (GIfTI has none), default 1.5 s."""
    series = [read_surface_bold(path) for path in paths]
    n_vertices = {data.shape[1] for data in series}
    if len(n_vertices) != 1:
        raise BrainmisInputError(paths[-1], f"stories have different vertex counts {n_vertices}")
    in_brain = np.zeros(series[0].shape[1], dtype=bool)
    for data in series:
        in_brain |= np.any(data != 0, axis=0)
    tr = float(options.tr) if options.tr is not None else layouts.NARRATIVES_TR
    runs = [
        story_run(names, subject, story, data[:, in_brain], tr, alignments[story], options, path)
        for story, data, path in zip(stories, series, paths, strict=True)
    ]
    return Subject(name=subject, runs=runs), tr


def read_surface_bold(path: Path) -> np.ndarray:
    """``(T, V)`` float32: the vertices of the ``hemi-L`` file ``path``, then those of its
    ``hemi-R`` twin (the same name with ``hemi-R``)."""
    if SURFACE_LEFT not in path.name:
        raise BrainmisInputError(
            path,
            f"a surface BOLD template must name the left hemisphere ({SURFACE_LEFT}); the "
            f"right one is the same name with {SURFACE_RIGHT}",
        )
    right = path.with_name(path.name.replace(SURFACE_LEFT, SURFACE_RIGHT))
    halves = [read_gifti_series(half) for half in (path, right)]
    if halves[0].shape[0] != halves[1].shape[0]:
        raise BrainmisInputError(
            right, f"{halves[1].shape[0]} time points, the left hemisphere {halves[0].shape[0]}"
        )
    return np.concatenate(halves, axis=1)


def read_gifti_series(path: Path) -> np.ndarray:
    """``(T, V)`` float32 from a GIfTI time series: one data array per time point (or one
    ``(V, T)`` array)."""
    checks.require_file(path, "GIfTI surface time series (.func.gii)")
    try:
        arrays = [np.asarray(array.data, dtype=np.float32) for array in nib.load(path).darrays]
    except Exception as error:  # nibabel raises many types for a bad file
        raise BrainmisInputError(path, f"not a readable GIfTI file: {error}") from None
    if len(arrays) == 1 and arrays[0].ndim == 2:
        data = arrays[0].T
    elif arrays and all(array.ndim == 1 for array in arrays) and len({a.size for a in arrays}) == 1:
        data = np.stack(arrays)
    else:
        raise BrainmisInputError(
            path, "expected one data array per time point, each (V,), or one (V, T) array"
        )
    checks.check_finite(path, data, "surface values")
    return data


def story_run(
    names: FileNames,
    subject: str,
    story: str,
    responses: np.ndarray,
    tr: float,
    alignment: StoryWords,
    options: NarrativesOptions,
    path: Path,
) -> Run:
    """The run of one story from ``responses (n_volumes, V)``: volume ``i`` at ``i * tr`` s,
    words at the audio onset plus their align.json start, the trimmed volumes dropped."""
    n_volumes = responses.shape[0]
    if n_volumes <= options.trim_start + options.trim_end:
        raise BrainmisInputError(path, f"{n_volumes} volumes, too few for the trimming")
    audio_onset = (
        options.audio_onset
        if options.audio_onset is not None
        else read_audio_onset(names, subject, story)
    )
    onsets = audio_onset + alignment.onsets
    tr_times = tr * np.arange(n_volumes, dtype=np.float64)
    if onsets[-1] > tr_times[-1]:
        raise BrainmisInputError(
            path,
            f"{n_volumes} volumes cover 0 .. {tr_times[-1]:g} s, but the words of story "
            f"{story!r} run to {onsets[-1]:g} s (audio onset {audio_onset:g} s + "
            f"{alignment.onsets[-1]:g} s in align.json): the scan does not cover the "
            "story (cut short, or another story's alignment?)",
        )
    kept = np.arange(options.trim_start, n_volumes - options.trim_end, dtype=np.int64)
    record = Run(
        name=story,
        tr_times=tr_times,
        responses=np.ascontiguousarray(responses[kept], dtype=np.float32),
        kept_trs=kept,
        words=alignment.words,
        word_onsets=onsets,
    )
    checks.check_words_inside_run(names.path("align", story=story), record, tr)
    return record
