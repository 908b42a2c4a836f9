"""Write a simulated ``SyntheticBrain`` to disk in the HP, Moth, NIfTI, Narratives or LeBel layout
(the last two in ``brainmis.data.synthetic.story_layout_writers``).

``generate_synthetic`` simulates (``brainmis.data.synthetic.simulation``) and writes one
dataset atomically; ``write_dataset`` writes a ``SyntheticBrain`` already in memory. Every
file name comes from ``brainmis.data.readers.layouts``, so the readers load these files the
way they load the real distributions. Beside the data:

- ``source.yaml``: ``name: synthetic-<layout>``, ``layout``, ``root: "."``, ``subjects``,
  ``options`` (trimming and TR of the layout), read by ``brainmis.data.readers.read_source``;
- ``ground_truth/`` (``layouts.SYNTH_TRUTH_DIR``):
  ``true_ceiling_subject_<S>.npy`` ``(V,)`` (correlation of the noiseless signal with one
  noisy scan), ``features_<run>.npy`` ``(n_kept, F)`` (HRF-convolved word features at the kept
  TRs), ``signal_<run>_subject_<S>.npy`` ``(n_kept, V)`` (noiseless signal, unit variance per
  voxel over all kept TRs), ``weights_subject_<S>.npy`` ``(F, V)``, ``snr_subject_<S>.npy``
  ``(V,)``, ``signal_voxels.npy`` / ``dead_voxels.npy`` ``(V,)`` bool,
  ``voxel_coords.npy`` ``(V, 3)``, ``word_features.tsv`` (word and its ``F`` values) and
  ``truth.json`` (parameters, the world and its axes (``categories``), the probing tasks it
  targets (``probing_task_groups``), runs, subjects, ROI names). Moth adds
  ``true_ceiling_repeat_mean_subject_<S>.npy``: the ceiling of the mean of the repeats of the
  repeated story (what a Schoppe ``cc_max`` estimates), and ``true_ceiling_single_scan_
  repeated_subject_<S>.npy``, the single-scan ceiling on that story alone.

Voxel order: ``V`` columns in every layout; for NIfTI they are the in-brain voxels of the
volume in C order (``voxel_coords.npy``), the voxels that carry non-constant data.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import yaml

from brainmis.data.noise_ceiling import inter_subject_ceiling
from brainmis.data.readers import layouts
from brainmis.data.synthetic.simulation import simulate
from brainmis.data.synthetic.spec import (
    GENERATOR_VERSION,
    SyntheticBrain,
    SyntheticSpec,
    make_spec,
)
from brainmis.data.synthetic.story_layout_writers import (
    bold_image,
    write_lebel,
    write_narratives,
    write_roi_atlas,
)
from brainmis.data.synthetic.textgrid_writer import write_story_textgrid
from brainmis.data.synthetic.worlds import probing_task_groups
from brainmis.errors import refuse_non_empty_dir


def generate_synthetic(
    layout: str,
    out_dir: str | Path,
    n_subjects: int = 2,
    seed: int = 0,
    **sizes,
) -> Path:
    """Write a synthetic dataset in the real on-disk ``layout`` (``spec.LAYOUTS``).

    ``sizes`` are ``SyntheticSpec`` fields (``n_voxels``, ``n_runs``, ...). Beside the data
    it writes ``source.yaml`` (for ``brainmis.data.readers.read_source``) and
    ``ground_truth/`` (true ceilings, true features per run, weights, SNR, ...; see the
    module docstring). ``out_dir`` must not exist or be empty; the dataset is assembled in a
    temporary sibling folder and renamed at the end, so a failure leaves nothing behind.
    Returns ``out_dir``.
    """
    out_dir = refuse_non_empty_dir(out_dir)
    spec = make_spec(**sizes)
    brain = simulate(layout, spec, n_subjects, seed)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        write_dataset(brain, spec, seed, staging)
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above)
        os.replace(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out_dir


def write_dataset(brain: SyntheticBrain, spec: SyntheticSpec, seed: int, out: Path) -> Path:
    """Write ``brain`` under ``out`` (created) in its layout, with source.yaml and ground truth."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=False)
    writers = {
        "hp": _write_hp,
        "moth": _write_moth,
        "nifti": _write_nifti,
        "narratives": write_narratives,
        "lebel": write_lebel,
    }
    options = writers[brain.layout](brain, spec, out)
    _write_ground_truth(brain, spec, seed, out)
    source = {
        "name": f"synthetic-{brain.layout}",
        "layout": brain.layout,
        "root": ".",
        "subjects": [subject.name for subject in brain.subjects],
        "options": options,
    }
    (out / "source.yaml").write_text(yaml.safe_dump(source, sort_keys=False), encoding="utf-8")
    return out


# --- Harry Potter array layout -----------------------------------------------------------


def _write_hp(brain: SyntheticBrain, spec: SyntheticSpec, out: Path) -> dict:
    runs = brain.runs
    np.save(out / layouts.HP_TIME_FMRI, np.concatenate([run.tr_times for run in runs]))
    run_numbers = [
        np.full(run.tr_times.size, index + 1, dtype=np.int64) for index, run in enumerate(runs)
    ]
    np.save(out / layouts.HP_RUNS_FMRI, np.concatenate(run_numbers))
    np.save(out / layouts.HP_TIME_WORDS, np.concatenate([run.onsets for run in runs]))
    tokens = [token for run in runs for token in run.tokens]
    np.save(out / layouts.HP_WORDS, np.array(tokens, dtype=str))
    ceilings = _hp_ceilings(brain, spec)
    for subject in brain.subjects:
        data = np.concatenate([subject.responses[run.name] for run in runs])
        np.save(layouts.hp_data(out, subject.name), data.astype(np.float32))
        np.savez(layouts.hp_rois(out, subject.name), **brain.roi_masks)
        if ceilings is not None:
            np.save(layouts.hp_noise_ceiling(out, subject.name), ceilings[subject.name])
    return {"trim_start": layouts.HP_TRIM_START, "trim_end": layouts.HP_TRIM_END, "tr": brain.tr}


def _hp_ceilings(brain: SyntheticBrain, spec: SyntheticSpec) -> dict[str, np.ndarray] | None:
    if spec.hp_noise_ceiling == "none":
        return None
    if spec.hp_noise_ceiling == "true":
        return {s.name: s.true_ceiling.astype(np.float32) for s in brain.subjects}
    if len(brain.subjects) < 2:
        raise ValueError("hp_noise_ceiling='inter_subject' needs at least 2 subjects")
    run_of_row = np.concatenate(
        [np.full(run.kept_trs.size, index) for index, run in enumerate(brain.runs)]
    )
    responses = [
        np.concatenate([s.responses[run.name] for run in brain.runs]) for s in brain.subjects
    ]
    estimate = inter_subject_ceiling(responses, run_of_row)
    return {s.name: estimate[index].astype(np.float32) for index, s in enumerate(brain.subjects)}


# --- Moth Radio Hour reading layout -----------------------------------------------------


def _write_moth(brain: SyntheticBrain, spec: SyntheticSpec, out: Path) -> dict:
    for run in brain.runs:
        write_story_textgrid(run, layouts.moth_textgrid(out, run.name), spec.textgrid_short_format)
        trfile = layouts.moth_trfile(out, run.name)
        trfile.parent.mkdir(parents=True, exist_ok=True)
        labels = ["first-trigger"] + ["trigger"] * (run.tr_times.size - 1)
        lines = [f"{time:.4f} {label}" for time, label in zip(run.tr_times, labels, strict=True)]
        trfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for subject in brain.subjects:
        with h5py.File(layouts.moth_train(out, subject.name), "w") as train:
            for run in brain.runs:
                if run.name != brain.repeated_run:
                    train.create_dataset(run.name, data=subject.responses[run.name])
        with h5py.File(layouts.moth_val(out, subject.name), "w") as val:
            val.create_dataset(brain.repeated_run, data=subject.responses[brain.repeated_run])
        with h5py.File(layouts.moth_mappers(out, subject.name), "w") as mappers:
            for name, mask in brain.roi_masks.items():
                mappers.create_dataset(f"roi_masks/{name}", data=mask)
    return {
        "trim_start": layouts.MOTH_TRIM_START,
        "trim_end": layouts.MOTH_TRIM_END,
        "tr": brain.tr,
    }


# --- Generic NIfTI + events TSV ----------------------------------------------------------


def _write_nifti(brain: SyntheticBrain, spec: SyntheticSpec, out: Path) -> dict:
    shape, coords = brain.volume_shape, brain.voxel_coords
    for subject in brain.subjects:
        for index, run in enumerate(brain.runs, start=1):
            bold = layouts.nifti_bold(out, subject.name, index)
            bold.parent.mkdir(parents=True, exist_ok=True)
            nib.save(bold_image(subject.responses[run.name], coords, shape, brain.tr), bold)
            rows = ["onset\tduration\tword"]
            rows += [
                f"{onset:.4f}\t{duration:.4f}\t{word}"
                for word, onset, duration in zip(run.tokens, run.onsets, run.durations, strict=True)
            ]
            layouts.nifti_events(out, subject.name, index).write_text(
                "\n".join(rows) + "\n", encoding="utf-8"
            )
        write_roi_atlas(
            brain, layouts.nifti_roi(out, subject.name), layouts.nifti_roi_labels(out, subject.name)
        )
    return {}


# --- Ground truth ------------------------------------------------------------------------


def _write_ground_truth(brain: SyntheticBrain, spec: SyntheticSpec, seed: int, out: Path) -> None:
    truth = out / layouts.SYNTH_TRUTH_DIR
    truth.mkdir()
    for run_name, features in brain.features.items():
        np.save(layouts.synth_true_features(out, run_name), features.astype(np.float32))
    np.save(truth / "signal_voxels.npy", brain.signal_voxels)
    np.save(truth / "dead_voxels.npy", brain.dead_voxels)
    np.save(truth / "voxel_coords.npy", brain.voxel_coords)
    for subject in brain.subjects:
        np.save(
            layouts.synth_true_ceiling(out, subject.name), subject.true_ceiling.astype(np.float32)
        )
        np.save(truth / f"weights_subject_{subject.name}.npy", subject.weights)
        np.save(truth / f"snr_subject_{subject.name}.npy", subject.snr.astype(np.float32))
        for run_name, signal in subject.signal.items():
            np.save(truth / f"signal_{run_name}_subject_{subject.name}.npy", signal)
        if brain.repeated_run is not None:
            signal_var = subject.signal[brain.repeated_run].var(axis=0)
            noise_var = subject.noise_sd**2
            single = np.sqrt(signal_var / (signal_var + noise_var))
            mean_of_repeats = np.sqrt(signal_var / (signal_var + noise_var / spec.n_repeats))
            np.save(
                truth / f"true_ceiling_single_scan_repeated_subject_{subject.name}.npy",
                single.astype(np.float32),
            )
            np.save(
                truth / f"true_ceiling_repeat_mean_subject_{subject.name}.npy",
                mean_of_repeats.astype(np.float32),
            )
    rows = ["word\t" + "\t".join(brain.categories)]
    rows += [
        word + "\t" + "\t".join(f"{value:.6f}" for value in vector)
        for word, vector in brain.word_features.items()
    ]
    (truth / "word_features.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    description = {
        "generator_version": GENERATOR_VERSION,
        "layout": brain.layout,
        "seed": seed,
        "spec": asdict(spec),
        "tr": brain.tr,
        "world": spec.world,
        "categories": list(brain.categories),
        "probing_task_groups": probing_task_groups(spec.world, spec.n_features),
        "runs": [
            {
                "name": run.name,
                "n_tr": int(run.tr_times.size),
                "n_kept": int(run.kept_trs.size),
                "n_words": len(run.words),
            }
            for run in brain.runs
        ],
        "repeated_run": brain.repeated_run,
        "subjects": [subject.name for subject in brain.subjects],
        "rois": {name: int(mask.sum()) for name, mask in brain.roi_masks.items()},
        "n_signal_voxels": int(brain.signal_voxels.sum()),
        "volume_shape": list(brain.volume_shape),
        "model": "responses = offset + gain * (signal + noise); signal = unit-variance "
        "features @ weights per voxel; noise variance = 1 / snr; "
        "see brainmis.data.synthetic.simulation",
    }
    (truth / "truth.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
