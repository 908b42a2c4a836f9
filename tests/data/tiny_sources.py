"""Tiny hand-made source datasets for the reader, bundle and prepare tests.

Each writer builds a few-kilobyte dataset in one layout, with every file named through
``brainmis.data.readers.layouts``, and returns what a reader should find, so tests can
compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import scipy.io
import yaml

from brainmis.data.readers import layouts

# --- Harry Potter array layout -------------------------------------------------------------
# 2 runs of 8 TRs (TR 2 s, one clock: run 1 at 0..14 s, run 2 at 16..30 s), trimming 2 / 1
# -> 5 kept rows per run, 10 rows in all.
HP_TR = 2.0
HP_TRS_PER_RUN = 8
HP_TRIM = (2, 1)
HP_VOXELS = 6
HP_ITEMS = np.array(["+", "The", "@cat", "sat,", "+", "Down", "here."])
HP_ITEM_ONSETS = np.array([4.0, 4.5, 5.0, 5.5, 16.0, 16.5, 17.0])
HP_RUN_WORDS = (["The", "cat", "sat,"], ["Down", "here."])
HP_RUN_ONSETS = ([4.5, 5.0, 5.5], [16.5, 17.0])


@dataclass
class TinyHp:
    root: Path
    data: dict[str, np.ndarray]  # subject -> (10, V) float32 responses
    rois: dict[str, np.ndarray]  # ROI name -> (V,) bool, same for every subject


def write_hp(
    root: Path,
    subjects: tuple[str, ...] = ("F", "H"),
    rois: str | None = "npz",
    ceiling: bool = True,
    words_file: str = layouts.HP_WORDS,
    seed: int = 0,
) -> TinyHp:
    """HP array layout; ``rois`` is ``"npz"``, ``"pickled"`` (a pickled dict) or None."""
    root.mkdir(parents=True, exist_ok=True)
    n_runs = 2
    np.save(root / layouts.HP_TIME_FMRI, HP_TR * np.arange(n_runs * HP_TRS_PER_RUN))
    np.save(root / layouts.HP_RUNS_FMRI, np.repeat(np.arange(1, n_runs + 1), HP_TRS_PER_RUN))
    np.save(root / layouts.HP_TIME_WORDS, HP_ITEM_ONSETS)
    np.save(root / words_file, HP_ITEMS)
    n_rows = n_runs * (HP_TRS_PER_RUN - sum(HP_TRIM))
    rng = np.random.default_rng(seed)
    roi_masks = {
        "IFG": np.array([1, 1, 0, 0, 0, 0], bool),
        "AntTemp": np.array([0, 0, 1, 1, 0, 0], bool),
    }
    data = {}
    for subject in subjects:
        data[subject] = rng.standard_normal((n_rows, HP_VOXELS)).astype(np.float32)
        np.save(layouts.hp_data(root, subject), data[subject])
        if rois == "npz":
            np.savez(layouts.hp_rois(root, subject), **roi_masks)
        elif rois == "pickled":
            # the form some copies ship: a pickled dict of voxel indices
            indices = {name: np.flatnonzero(mask) for name, mask in roi_masks.items()}
            np.save(layouts.hp_rois_pickled(root, subject), indices, allow_pickle=True)
        if ceiling:
            np.save(layouts.hp_noise_ceiling(root, subject), np.linspace(0, 0.5, HP_VOXELS))
    return TinyHp(root, data, roi_masks if rois else {})


def write_hp_mat(root: Path, subject: str = "1", seed: int = 0) -> dict[str, np.ndarray]:
    """One Wehbe-style ``subject_N.mat``: 2 runs of 6 TRs, 4 voxels in a 3x4x5 volume."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_trs = 12
    data = rng.standard_normal((n_trs, 4))
    time = np.column_stack([2.0 * np.arange(n_trs), np.repeat([1, 2], 6)])
    items = [("+", 1.0), ("Harry", 1.5), ("@sighed.", 2.0), ("He", 13.0), ("left", 13.5)]
    words = np.zeros((1, len(items)), dtype=[("text", "O"), ("start", "O"), ("length", "O")])
    for i, (text, start) in enumerate(items):
        words[0, i] = (text, np.array([[start]]), np.array([[0.5]]))
    coords_1based = np.array([[1, 1, 1], [2, 3, 4], [3, 4, 5], [1, 2, 3]])
    matrix = np.array([[-3.0, 0, 0, 90], [0, 3, 0, -126], [0, 0, 3, -72], [0, 0, 0, 1]])
    meta = {
        "dimx": 3,
        "dimy": 4,
        "dimz": 5,
        "colToCoord": coords_1based.astype(float),
        "colToROInum": np.array([[1], [2], [0], [1]], dtype=float),
        "ROInumToName": np.array([["IFG"], ["AngularG"]], dtype=object),
        "matrix": matrix,
    }
    scipy.io.savemat(
        layouts.hp_mat(root, subject), {"data": data, "time": time, "words": words, "meta": meta}
    )
    return {"data": data, "coords_1based": coords_1based, "matrix": matrix}


# --- Praat TextGrid ------------------------------------------------------------------------
def textgrid_long(tiers: list[tuple[str, str, list[tuple]]], xmax: float) -> str:
    """Praat long text format; ``tiers`` = (class, name, items), items (xmin, xmax, text)
    for an ``IntervalTier`` or (time, mark) for a ``TextTier``."""
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0 ",
        f"xmax = {xmax} ",
        "tiers? <exists> ",
        f"size = {len(tiers)} ",
        "item []: ",
    ]
    for number, (kind, name, items) in enumerate(tiers, start=1):
        lines += [
            f"    item [{number}]:",
            f'        class = "{kind}" ',
            f'        name = "{name}" ',
            "        xmin = 0 ",
            f"        xmax = {xmax} ",
        ]
        if kind == "IntervalTier":
            lines.append(f"        intervals: size = {len(items)} ")
            for i, (start, end, text) in enumerate(items, start=1):
                lines += [
                    f"        intervals [{i}]:",
                    f"            xmin = {start} ",
                    f"            xmax = {end} ",
                    f'            text = "{quote(text)}" ',
                ]
        else:
            lines.append(f"        points: size = {len(items)} ")
            for i, (time, mark) in enumerate(items, start=1):
                lines += [
                    f"        points [{i}]:",
                    f"            number = {time} ",
                    f'            mark = "{quote(mark)}" ',
                ]
    return "\n".join(lines) + "\n"


def textgrid_short(tiers: list[tuple[str, str, list[tuple]]], xmax: float) -> str:
    """The same content in Praat's short text format."""
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "0",
        str(xmax),
        "<exists>",
        str(len(tiers)),
    ]
    for kind, name, items in tiers:
        lines += [f'"{kind}"', f'"{name}"', "0", str(xmax), str(len(items))]
        for item in items:
            lines += [str(item[0])] + ([str(item[1])] if kind == "IntervalTier" else [])
            lines.append(f'"{quote(item[-1])}"')
    return "\n".join(lines) + "\n"


def quote(text: str) -> str:
    return text.replace('"', '""')


STORY_WORD_INTERVALS = [
    (0.0, 2.5, ""),
    (2.5, 2.9, "so"),
    (2.9, 3.1, "sp"),
    (3.1, 3.6, "I"),
    (3.6, 4.0, "{LG}"),
    (4.0, 4.4, "went"),
    (4.4, 9.0, "sil"),
    (9.0, 9.5, "home"),
    (9.5, 12.0, ""),
]
STORY_WORDS = ["so", "I", "went", "home"]
STORY_ONSETS = [2.5, 3.1, 4.0, 9.0]


def story_textgrid(short: bool = False, word_tier: str = "word") -> str:
    phones = [(0.0, 2.5, ""), (2.5, 2.7, "S"), (2.7, 12.0, "OW")]
    tiers = [("IntervalTier", "phone", phones), ("IntervalTier", word_tier, STORY_WORD_INTERVALS)]
    return (textgrid_short if short else textgrid_long)(tiers, 12.0)


# --- Moth ------------------------------------------------------------------------------------
# 2 training stories and 1 repeated story, 8 TRs each, trimming 2 / 1 -> 5 rows per story.
MOTH_TR = 1.5
MOTH_TRS = 8
MOTH_TRIM = (2, 1)
MOTH_VOXELS = 5


@dataclass
class TinyMoth:
    root: Path
    train: dict[str, np.ndarray]  # story -> (5, V)
    val: dict[str, np.ndarray]  # story -> (2, 5, V)


def write_moth(root: Path, subject: str = "01", trfiles: bool = True, seed: int = 0) -> TinyMoth:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = MOTH_TRS - sum(MOTH_TRIM)
    train = {
        s: rng.standard_normal((rows, MOTH_VOXELS)).astype(np.float32)
        for s in ("story_01", "story_02")
    }
    val = {"story_03": rng.standard_normal((2, rows, MOTH_VOXELS)).astype(np.float32)}
    for path, stories in (
        (layouts.moth_train(root, subject), train),
        (layouts.moth_val(root, subject), val),
    ):
        with h5py.File(path, "w") as handle:
            for story, array in stories.items():
                handle.create_dataset(story, data=array)
    with h5py.File(layouts.moth_mappers(root, subject), "w") as handle:
        handle.create_dataset("roi_masks/AC", data=np.array([1, 1, 0, 0, 0], bool))
        handle.create_dataset("roi_masks/Broca", data=np.array([0, 0, 0, 1, 1], bool))
    for story in (*train, *val):
        textgrid = layouts.moth_textgrid(root, story)
        textgrid.parent.mkdir(parents=True, exist_ok=True)
        textgrid.write_text(story_textgrid(short=story == "story_02"), encoding="utf-8")
        if trfiles:
            trfile = layouts.moth_trfile(root, story)
            trfile.parent.mkdir(parents=True, exist_ok=True)
            lines = ["-0.5 sound-start"]  # TR times relative to the sound start
            lines += [
                f"{i * MOTH_TR - 0.5:.4f} {'first-trigger' if i == 0 else 'trigger'}"
                for i in range(MOTH_TRS)
            ]
            trfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return TinyMoth(root, train, val)


# --- NIfTI -------------------------------------------------------------------------------------
NIFTI_SHAPE = (3, 3, 2)
NIFTI_TR = 2.0
NIFTI_VOLUMES = (6, 5)


def write_nifti(root: Path, subject: str = "01", atlas: bool = True, seed: int = 0) -> dict:
    """2 runs in a 3x3x2 volume; 5 in-brain voxels (the rest zero); an ROI atlas or mask."""
    rng = np.random.default_rng(seed)
    brain = np.zeros(NIFTI_SHAPE, bool)
    brain[0, 0, 0] = brain[1, 1, 0] = brain[2, 1, 1] = brain[0, 2, 1] = brain[1, 0, 1] = True
    affine = np.diag([2.5, 2.5, 3.0, 1.0])
    affine[:3, 3] = [-10, 5, 2]
    runs = []
    for run, n_volumes in enumerate(NIFTI_VOLUMES, start=1):
        data = np.zeros((*NIFTI_SHAPE, n_volumes), np.float32)
        data[brain] = rng.standard_normal((int(brain.sum()), n_volumes)) + 100
        image = nib.Nifti1Image(data, affine)
        image.header.set_zooms((2.5, 2.5, 3.0, NIFTI_TR))
        image.header.set_xyzt_units("mm", "sec")
        bold = layouts.nifti_bold(root, subject, run)
        bold.parent.mkdir(parents=True, exist_ok=True)
        nib.save(image, bold)
        words = (
            [("Once", 0.5), ("upon", 1.0), ("a", 2.0), ("time", 3.9)]
            if run == 1
            else [("end", 1.0)]
        )
        rows = ["word\tonset\tduration"] + [f"{w}\t{o}\t0.3" for w, o in words]
        layouts.nifti_events(root, subject, run).write_text(
            "\n".join(rows) + "\n", encoding="utf-8"
        )
        runs.append(data)
    labels = np.zeros(NIFTI_SHAPE, np.int16)
    labels[0, 0, 0] = labels[1, 1, 0] = 1
    if atlas:
        labels[2, 1, 1] = 3
        labels[2, 2, 1] = 3  # outside the brain: becomes a voxel too (ROI voxels are kept)
    roi_path = layouts.nifti_roi(root, subject)
    roi_path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(labels, affine), roi_path)
    if atlas:
        layouts.nifti_roi_labels(root, subject).write_text("index\tname\n1\tIFG\n3\tPostTemp\n")
    return {"runs": runs, "brain": brain, "labels": labels, "affine": affine}


def write_manifest(path: Path, content: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    return path
