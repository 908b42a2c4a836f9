"""Write a simulated ``SyntheticBrain`` in the Narratives or the LeBel layout.

Every file name comes from ``brainmis.data.readers.layouts``, as the readers
(``brainmis.data.readers.narratives`` / ``lebel``) read the real distributions:

- Narratives: per subject and story a 4D BOLD (TR 1.5 s in the header, every volume) and an
  events TSV whose first event (``music``) starts the audio file ``AUDIO_ONSET_S`` seconds
  into the scan, then the ``story`` event; per story the Gentle ``align.json`` (times from
  the audio start, every ``UNTIMED_EVERY``-th word ``not-found-in-audio`` without times, as
  Gentle leaves some); per subject an ROI label atlas with its label table;
  ``participants.tsv`` and a ``code/scan_exclude.json`` that excludes nothing.
- LeBel: per subject and story ``<story>.hf5`` with dataset ``data`` ``(n_kept, V)``; per
  story a TextGrid (audio clock); ``respdict.json`` with ``n_TR + LEBEL_PAD`` per story.

Also the volume helpers the generic NIfTI writer shares (``volume_affine``, ``bold_image``,
``write_roi_atlas``).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np

from brainmis.data.readers import layouts
from brainmis.data.synthetic.spec import NIFTI_VOXEL_MM, SyntheticBrain, SyntheticSpec
from brainmis.data.synthetic.textgrid_writer import write_story_textgrid

AUDIO_ONSET_S = 3.0  # Narratives: seconds from the scan start to the audio start
UNTIMED_EVERY = 40  # Narratives: one word in this many has no time in align.json
UNTIMED_CASE = "not-found-in-audio"


def volume_affine(shape: tuple[int, int, int]) -> np.ndarray:
    """``(4, 4)`` voxel-to-mm affine of the synthetic volume, origin near its centre."""
    affine = np.diag([NIFTI_VOXEL_MM, NIFTI_VOXEL_MM, NIFTI_VOXEL_MM, 1.0])
    affine[:3, 3] = -NIFTI_VOXEL_MM * (np.array(shape) - 1) / 2
    return affine


def bold_image(
    data: np.ndarray, coords: np.ndarray, shape: tuple[int, int, int], tr: float
) -> nib.Nifti1Image:
    """A 4D image ``(X, Y, Z, T)`` holding ``data (T, V)`` at voxels ``coords (V, 3)``, zero
    elsewhere, TR ``tr`` seconds in the header."""
    volume = np.zeros((*shape, data.shape[0]), dtype=np.float32)
    volume[coords[:, 0], coords[:, 1], coords[:, 2], :] = data.T
    image = nib.Nifti1Image(volume, volume_affine(shape))
    image.header.set_zooms((NIFTI_VOXEL_MM,) * 3 + (tr,))
    image.header.set_xyzt_units("mm", "sec")
    return image


def write_roi_atlas(brain: SyntheticBrain, path: Path, labels_path: Path) -> None:
    """The ROIs as an integer atlas (1, 2, ... in ``roi_masks`` order) and its label TSV."""
    shape, coords = brain.volume_shape, brain.voxel_coords
    atlas = np.zeros(shape, dtype=np.int16)
    rows = ["index\tname"]
    for label, (name, mask) in enumerate(brain.roi_masks.items(), start=1):
        atlas[tuple(coords[mask].T)] = label
        rows.append(f"{label}\t{name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(atlas, volume_affine(shape)), path)
    labels_path.write_text("\n".join(rows) + "\n", encoding="utf-8")


# --- Narratives --------------------------------------------------------------------------


def write_narratives(brain: SyntheticBrain, spec: SyntheticSpec, out: Path) -> dict:
    """Narratives files under ``out``; returns the source manifest's options (none)."""
    stories = [run.name for run in brain.runs]
    for run in brain.runs:
        entries = []
        for index, (word, onset, duration) in enumerate(
            zip(run.tokens, run.onsets, run.durations, strict=True)
        ):
            entry = {"word": word, "alignedWord": word.lower()}
            if index % UNTIMED_EVERY == UNTIMED_EVERY // 2:
                entry["case"] = UNTIMED_CASE
            else:
                start = round(float(onset) - AUDIO_ONSET_S, 4)
                entry.update(case="success", start=start, end=round(start + float(duration), 4))
            entries.append(entry)
        align = layouts.narratives_align(out, run.name)
        align.parent.mkdir(parents=True, exist_ok=True)
        content = {"transcript": " ".join(run.tokens), "words": entries}
        align.write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
    for subject in brain.subjects:
        for run in brain.runs:
            bold = layouts.narratives_bold(out, subject.name, run.name)
            bold.parent.mkdir(parents=True, exist_ok=True)
            nib.save(bold_image(subject.responses[run.name], brain.voxel_coords,
                                brain.volume_shape, brain.tr), bold)  # fmt: skip
            story_start = float(run.onsets[0])
            story_end = float(run.onsets[-1] + run.durations[-1])
            audio = f"{run.name}_audio.wav"
            rows = [
                "onset\tduration\ttrial_type\tstim_file",
                f"{AUDIO_ONSET_S:.1f}\t{story_start - AUDIO_ONSET_S - 0.5:.1f}\tmusic\t{audio}",
                f"{story_start:.1f}\t{story_end - story_start:.1f}\tstory\t{audio}",
            ]
            layouts.narratives_events(out, subject.name, run.name).write_text(
                "\n".join(rows) + "\n", encoding="utf-8"
            )
        write_roi_atlas(
            brain,
            layouts.narratives_roi(out, subject.name),
            layouts.narratives_roi_labels(out, subject.name),
        )
    participants = ["participant_id\ttask"]
    participants += [f"sub-{subject.name}\t{','.join(stories)}" for subject in brain.subjects]
    (out / layouts.NARRATIVES_PARTICIPANTS).write_text(
        "\n".join(participants) + "\n", encoding="utf-8"
    )
    exclusions = out / layouts.NARRATIVES_EXCLUDE
    exclusions.parent.mkdir(parents=True, exist_ok=True)
    exclusions.write_text(json.dumps({story: {} for story in stories}, indent=2) + "\n")
    return {}


# --- LeBel et al. 2023 ---------------------------------------------------------------------


def write_lebel(brain: SyntheticBrain, spec: SyntheticSpec, out: Path) -> dict:
    """LeBel files under ``out``; returns the source manifest's options (the defaults)."""
    respdict = {}
    for run in brain.runs:
        write_story_textgrid(run, layouts.lebel_textgrid(out, run.name), spec.textgrid_short_format)
        respdict[run.name] = int(run.tr_times.size) + layouts.LEBEL_PAD
    respdict_path = out / layouts.LEBEL_RESPDICT
    respdict_path.write_text(json.dumps(respdict, indent=2) + "\n", encoding="utf-8")
    for subject in brain.subjects:
        for run in brain.runs:
            path = layouts.lebel_responses(out, subject.name, run.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(path, "w") as handle:
                handle.create_dataset("data", data=subject.responses[run.name])
    return {}
