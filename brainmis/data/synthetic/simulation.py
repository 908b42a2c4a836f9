"""The simulated brain: stimulus timing, word features, voxels and every subject's responses.

The simulated brain reads the project's narrative (``narrative.txt``) and responds to a few
properties of the words, not to word identity: by default *semantic* categories
(``brainmis.data.synthetic.word_categories``: emotion, motion, people, place, number,
sensory); the spec's ``world`` chooses others (``brainmis.data.synthetic.worlds``).

1. Each word type gets a feature vector ``(F,)``: 1/0 membership of the world's first
   ``n_features`` axes plus a small random per-word part (``word_jitter``).
2. The features of the words, as impulses at their onsets, are convolved with the canonical
   double-gamma HRF (``brainmis.data.synthetic.hrf``) and read at every TR:
   ``features (n_kept, F)`` per run (``ground_truth/features_<run>.npy``).
3. Voxel ``v`` of subject ``s`` has weights ``w_sv = sqrt(1 - c^2) w_v + c e_sv`` (shared
   weights plus a subject-specific part of size ``c = subject_specific``); its noiseless
   signal ``features @ w_sv`` is scaled to unit variance over all kept TRs.
4. Responses = offset + gain * (signal + noise), Gaussian noise of variance ``1 / snr_v``
   (optionally AR(1) in time). Language-ROI voxels carry signal with SNR log-uniform in
   ``snr_range`` except a fraction ``noise_voxel_fraction`` of pure-noise voxels; outside the
   ROIs only ``outside_signal_fraction`` of the voxels carry a weak signal (``outside_snr_range``).
5. The true ceiling of a voxel is the correlation of its noiseless signal with one noisy scan,
   ``sqrt(s / (s + n))`` with ``s`` the signal and ``n`` the noise variance; 0 for pure noise.

Every subject reads the same stimuli and shares the voxel weights up to the subject-specific
part, with independent noise, so inter-subject ceilings are meaningful. Everything is
deterministic from ``seed``; a subject's data does not depend on how many subjects are made.
``simulate`` builds a ``SyntheticBrain`` in memory; nothing here writes files.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from brainmis.data.readers import layouts
from brainmis.data.synthetic.hrf import hrf_response
from brainmis.data.synthetic.spec import (
    HP_TR,
    LAYOUTS,
    NIFTI_TR,
    ROI_NAMES,
    SyntheticBrain,
    SyntheticSpec,
    SyntheticSubject,
    subject_names,
)
from brainmis.data.synthetic.stimulus import (
    StimulusRun,
    default_text_path,
    load_paragraphs,
    rsvp_runs,
    split_into_runs,
    spoken_runs,
)
from brainmis.data.synthetic.word_categories import normalize_word
from brainmis.data.synthetic.worlds import axis_values, world_axes


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent random stream per purpose, so parts do not disturb each other."""
    return np.random.default_rng([seed, *stream])


_STREAM_WORDS, _STREAM_TIMING, _STREAM_VOXELS, _STREAM_SUBJECT, _STREAM_WORLD = 1, 2, 3, 4, 5


def _stimulus(
    layout: str, spec: SyntheticSpec, seed: int
) -> tuple[list[StimulusRun], str | None, float]:
    """The timed runs of a layout, the repeated run's name and the TR."""
    paragraphs = load_paragraphs(spec.text_path, spec.max_words)
    text = spec.text_path or default_text_path()
    rng = _rng(seed, _STREAM_TIMING)
    if layout == "hp":
        chunks = split_into_runs(paragraphs, spec.n_runs, text)
        runs = rsvp_runs(
            chunks, rng, tr=HP_TR, trim_start=layouts.HP_TRIM_START, trim_end=layouts.HP_TRIM_END
        )
        return runs, None, HP_TR
    if layout == "moth":
        chunks = split_into_runs(paragraphs, spec.n_runs + 1, text)
        names = [f"story_{index + 1:02d}" for index in range(spec.n_runs + 1)]
        runs = spoken_runs(
            chunks,
            rng,
            names,
            tr=layouts.MOTH_TR,
            lead_in_s=10.0,
            tail_s=12.0,
            trim_start=layouts.MOTH_TRIM_START,
            trim_end=layouts.MOTH_TRIM_END,
        )
        return runs, names[-1], layouts.MOTH_TR
    chunks = split_into_runs(paragraphs, spec.n_runs, text)
    if layout in ("narratives", "lebel"):
        return _story_stimulus(layout, chunks, rng), None, STORY_TRS[layout]
    names = [f"run{index + 1}" for index in range(spec.n_runs)]
    runs = spoken_runs(chunks, rng, names, tr=NIFTI_TR, lead_in_s=6.0, tail_s=16.0, lowercase=False)
    return runs, None, NIFTI_TR


STORY_TRS = {"narratives": layouts.NARRATIVES_TR, "lebel": layouts.LEBEL_TR}


def _story_stimulus(
    layout: str, chunks: list[list[list[str]]], rng: np.random.Generator
) -> list[StimulusRun]:
    """Spoken stories named ``story01``... (alphanumeric, as BIDS task labels must be).

    Narratives: every volume kept, TR times from the scan start (the writer puts the audio
    start a few seconds in). LeBel: TR ``i`` at ``i * TR - LEBEL_SOUND_START`` on the audio
    clock, the first ``LEBEL_TRIM_START`` and last ``LEBEL_TRIM_END`` TRs without rows.
    """
    names = [f"story{index + 1:02d}" for index in range(len(chunks))]
    if layout == "narratives":
        tr = layouts.NARRATIVES_TR
        return spoken_runs(chunks, rng, names, tr=tr, lead_in_s=6.0, tail_s=16.0, lowercase=False)
    runs = spoken_runs(
        chunks,
        rng,
        names,
        tr=layouts.LEBEL_TR,
        lead_in_s=2.0,
        tail_s=16.0 + layouts.LEBEL_SOUND_START,
        trim_start=layouts.LEBEL_TRIM_START,
        trim_end=layouts.LEBEL_TRIM_END,
    )
    for run in runs:
        run.tr_times = run.tr_times - layouts.LEBEL_SOUND_START
    return runs


def _word_features(
    runs: list[StimulusRun], spec: SyntheticSpec, seed: int
) -> dict[str, np.ndarray]:
    """Normalised word -> ``(F,)``: membership of the world's axes plus a seeded per-word
    jitter."""
    vocabulary = sorted({normalize_word(word) for run in runs for word in run.words})
    rng = _rng(seed, _STREAM_WORDS)
    jitter = rng.normal(0.0, spec.word_jitter, size=(len(vocabulary), spec.n_features))
    membership = axis_values(spec.world, vocabulary, spec.n_features, _rng(seed, _STREAM_WORLD))
    values = membership + jitter
    return {word: values[index] for index, word in enumerate(vocabulary)}


def _run_features(
    run: StimulusRun, word_features: dict[str, np.ndarray], n_features: int
) -> np.ndarray:
    """``(n_kept, F)`` HRF-convolved word features of a run at its kept TRs."""
    onsets = run.onsets[run.is_word]
    values = np.array([word_features[normalize_word(word)] for word in run.words]).reshape(
        -1, n_features
    )
    return hrf_response(run.tr_times[run.kept_trs], onsets, values)


def _brain_volume(n_voxels: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The ``n_voxels`` voxels of a small box closest to its centre (an ellipsoidal "brain")."""
    side = int(np.ceil((n_voxels / 0.45) ** (1 / 3))) + 1
    shape = (side, side + 1, side - 1)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    centre = (np.array(shape) - 1) / 2
    radii = np.array(shape) / 2
    distance = np.sqrt((((grid - centre) / radii) ** 2).sum(axis=1))
    chosen = np.sort(np.argsort(distance, kind="stable")[:n_voxels])  # C order in the volume
    return grid[chosen].astype(np.int64), shape


def _voxel_layout(
    spec: SyntheticSpec, seed: int
) -> tuple[
    np.ndarray, tuple[int, int, int], dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray
]:
    """Voxels shared by all subjects (a common space).

    Returns ``coords (V, 3)``, the volume shape, ROI masks (name -> ``(V,)`` bool, spatial
    blobs), ``signal (V,)`` bool, ``snr (V,)`` (0 where no signal) and ``dead (V,)`` bool.
    """
    rng = _rng(seed, _STREAM_VOXELS)
    coords, shape = _brain_volume(spec.n_voxels)
    n_in_roi = int(round(spec.roi_fraction * spec.n_voxels))
    per_roi = np.diff(np.linspace(0, n_in_roi, spec.n_rois + 1).round().astype(int))
    unassigned = np.ones(spec.n_voxels, dtype=bool)
    roi_masks: dict[str, np.ndarray] = {}
    for name, size in zip(ROI_NAMES[: spec.n_rois], per_roi, strict=True):
        candidates = np.flatnonzero(unassigned)
        centre = coords[rng.choice(candidates)]
        distance = np.linalg.norm(coords[candidates] - centre, axis=1) + rng.uniform(
            0, 1e-3, candidates.size
        )
        members = candidates[np.argsort(distance)[:size]]
        mask = np.zeros(spec.n_voxels, dtype=bool)
        mask[members] = True
        unassigned &= ~mask
        roi_masks[name] = mask
    in_roi = ~unassigned
    roi_index, outside_index = np.flatnonzero(in_roi), np.flatnonzero(~in_roi)
    signal = np.zeros(spec.n_voxels, dtype=bool)
    n_roi_signal = roi_index.size - int(round(spec.noise_voxel_fraction * roi_index.size))
    signal[rng.choice(roi_index, n_roi_signal, replace=False)] = True
    n_outside_signal = int(round(spec.outside_signal_fraction * outside_index.size))
    signal[rng.choice(outside_index, n_outside_signal, replace=False)] = True
    log_snr = np.where(
        in_roi,
        rng.uniform(*np.log(spec.snr_range), spec.n_voxels),
        rng.uniform(*np.log(spec.outside_snr_range), spec.n_voxels),
    )
    snr = np.where(signal, np.exp(log_snr), 0.0)
    dead = np.zeros(spec.n_voxels, dtype=bool)
    quiet_outside = outside_index[~signal[outside_index]]
    pool = quiet_outside if quiet_outside.size >= spec.n_dead_voxels else outside_index
    dead[rng.choice(pool, spec.n_dead_voxels, replace=False)] = True
    snr[dead] = 0.0
    signal &= ~dead
    return coords, shape, roi_masks, signal, snr, dead


def _noise(rng: np.random.Generator, shape: tuple[int, ...], autocorr: float) -> np.ndarray:
    """Unit-variance Gaussian noise, AR(1) along axis -2 (time) when ``autocorr`` != 0."""
    if autocorr == 0:
        return rng.standard_normal(shape)
    burn_in = 50
    white = rng.standard_normal(shape[:-2] + (shape[-2] + burn_in, shape[-1]))
    coloured = lfilter([np.sqrt(1 - autocorr**2)], [1.0, -autocorr], white, axis=-2)
    return coloured[..., burn_in:, :]


def simulate(layout: str, spec: SyntheticSpec, n_subjects: int, seed: int) -> SyntheticBrain:
    """Build the stimulus, features and every subject's responses in memory."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown synthetic layout {layout!r}; choose one of {LAYOUTS}")
    spec.validate()
    if n_subjects < 1:
        raise ValueError("n_subjects must be at least 1")
    runs, repeated_run, tr = _stimulus(layout, spec, seed)
    word_features = _word_features(runs, spec, seed)
    features = {run.name: _run_features(run, word_features, spec.n_features) for run in runs}
    coords, shape, roi_masks, signal_voxels, snr, dead = _voxel_layout(spec, seed)
    brain = SyntheticBrain(
        layout=layout,
        tr=tr,
        runs=runs,
        repeated_run=repeated_run,
        features=features,
        categories=world_axes(spec.world, spec.n_features),
        word_features=word_features,
        voxel_coords=coords,
        volume_shape=shape,
        roi_masks=roi_masks,
        signal_voxels=signal_voxels,
        dead_voxels=dead,
    )
    shared_weights = _rng(seed, _STREAM_VOXELS, 1).standard_normal((spec.n_features, spec.n_voxels))
    all_features = np.concatenate([features[run.name] for run in runs])
    lengths = [features[run.name].shape[0] for run in runs]
    c = spec.subject_specific
    for index, name in enumerate(subject_names(layout, n_subjects)):
        rng = _rng(seed, _STREAM_SUBJECT, index)
        weights = np.sqrt(1 - c**2) * shared_weights + c * rng.standard_normal(shared_weights.shape)
        raw = all_features @ weights
        raw -= raw.mean(axis=0)
        scale = raw.std(axis=0)
        signal = np.where(signal_voxels, raw / np.where(scale > 0, scale, 1.0), 0.0)
        subject_snr = snr * np.exp(rng.normal(0.0, 0.1, spec.n_voxels))  # small per-subject jitter
        noise_sd = np.where(
            signal_voxels, 1.0 / np.sqrt(np.where(subject_snr > 0, subject_snr, 1.0)), 1.0
        )
        true_ceiling = np.where(signal_voxels, np.sqrt(1.0 / (1.0 + noise_sd**2)), 0.0)
        gain = np.exp(rng.normal(0.0, 0.3, spec.n_voxels))
        offset = rng.normal(0.0, 2.0, spec.n_voxels)
        responses: dict[str, np.ndarray] = {}
        signals: dict[str, np.ndarray] = {}
        for run, run_signal in zip(runs, np.split(signal, np.cumsum(lengths)[:-1]), strict=True):
            n_scans = spec.n_repeats if run.name == repeated_run else 1
            noise = _noise(rng, (n_scans, run_signal.shape[0], spec.n_voxels), spec.noise_autocorr)
            scans = offset + gain * (run_signal + noise_sd * noise)
            scans[:, :, dead] = offset[dead]
            responses[run.name] = (scans if n_scans > 1 else scans[0]).astype(np.float32)
            signals[run.name] = run_signal.astype(np.float32)
        brain.subjects.append(
            SyntheticSubject(
                name=name,
                responses=responses,
                signal=signals,
                weights=weights.astype(np.float32),
                snr=np.where(signal_voxels, subject_snr, 0.0),
                noise_sd=noise_sd,
                true_ceiling=true_ceiling,
            )
        )
    return brain
