"""Synthetic fMRI datasets with a known ground truth, written in the real on-disk layouts.

The simulated brain reads the project's narrative (``narrative.txt``) and responds to a few
*semantic* properties of the words (``brainmis.data.word_categories``: emotion, motion,
people, place, number, sensory), not to word identity:

1. Each word type gets a feature vector ``(F,)``: 1/0 membership of the first ``n_features``
   categories plus a small random per-word part (``word_jitter``).
2. The features of the words, as impulses at their onsets, are convolved with the canonical
   double-gamma HRF and read at every TR: ``features (n_kept, F)`` per run
   (``ground_truth/features_<run>.npy``).
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

``generate_synthetic`` writes one dataset; ``synthetic_bundle`` generates, reads and bundles
once into a cache folder (the embedded default of the demo and of the tests), adding the
noise ceiling exactly as ``brainmis prepare`` does: the predictive inter-subject ceiling
(``brainmis.data.dataset_ceiling``) for layouts without repeats and with 2+ subjects (HP,
NIfTI), while Moth keeps its repeats (the Schoppe ceiling).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from brainmis.data import layouts
from brainmis.data.hrf import hrf_response
from brainmis.data.noise_ceiling import DEFAULT_CEILING_COMPONENTS, predictive_ceiling_method
from brainmis.data.synthetic_stimulus import (
    StimulusRun,
    default_text_path,
    load_paragraphs,
    rsvp_runs,
    split_into_runs,
    spoken_runs,
)
from brainmis.data.word_categories import CATEGORY_NAMES, category_vector, normalize_word
from brainmis.errors import BrainmisInputError, refuse_non_empty_dir

LAYOUTS = ("hp", "moth", "nifti")
GENERATOR_VERSION = 2  # bump when the generated data change, so caches are rebuilt
# 2: no HP ceiling file by default; the bundle carries the predictive inter-subject ceiling
HP_SUBJECT_NAMES = ("F", "H", "I", "J", "K", "L", "M", "N")
ROI_NAMES = ("PostTemp", "AntTemp", "IFG", "AngularG", "MFG", "IFGorb", "pCingulate", "dmpfc")
HP_TR = 2.0  # seconds, as in Wehbe et al. 2014
NIFTI_TR = 2.0
NIFTI_VOXEL_MM = 3.0
HP_CEILING_CHOICES = ("true", "inter_subject", "none")


@dataclass(frozen=True)
class SyntheticSpec:
    """Sizes and signal parameters of a synthetic dataset (defaults suit the CPU demo).

    Attributes:
        n_voxels: voxels per subject (for ``nifti``: voxels inside the brain mask).
        n_runs: runs (HP, NIfTI) or training stories (Moth; one repeated story is added).
        n_features: semantic axes driving the brain, the first of ``CATEGORY_NAMES`` (1-6).
        n_rois: language ROIs (named from ``ROI_NAMES``).
        roi_fraction: fraction of the voxels inside the ROIs.
        noise_voxel_fraction: fraction of ROI voxels without any signal.
        outside_signal_fraction: fraction of non-ROI voxels with a (weak) signal.
        snr_range: signal/noise variance ratio of ROI signal voxels, log-uniform.
        outside_snr_range: the same for the signal voxels outside the ROIs.
        subject_specific: size of the subject-specific part of the voxel weights (0-1).
        word_jitter: standard deviation of the random per-word part of the word features.
            Kept small: category indicators of rare categories vary little (a category
            with 3% of the words has variance 0.03), and with the default 0.05 about 95% of
            the HRF-convolved feature variance is semantic (0.2 would leave only ~55%).
        noise_autocorr: AR(1) coefficient of the noise in time (0 = white).
        n_repeats: presentations of the repeated story (Moth).
        n_dead_voxels: voxels that are constant (zero variance), taken outside the ROIs.
        max_words: use only the first that many words of the text (None = all).
        text_path: a UTF-8 text to present instead of the narrative (None = narrative).
        textgrid_short_format: write the Moth TextGrids in Praat's short text format
            (default: the long format).
        hp_noise_ceiling: what ``noise_ceiling_subject_X.npy`` holds in the HP layout:
            ``"none"`` (not written, as in the real distribution: ``brainmis prepare`` and
            ``synthetic_bundle`` then add the predictive inter-subject ceiling), ``"true"``
            (the true ceiling, a precomputed file) or ``"inter_subject"`` (the same-voxel
            inter-subject estimate of ``inter_subject_ceiling``, needs 2+ subjects).
    """

    n_voxels: int = 400
    n_runs: int = 4
    n_features: int = 5
    n_rois: int = 3
    roi_fraction: float = 0.6
    noise_voxel_fraction: float = 0.2
    outside_signal_fraction: float = 0.1
    snr_range: tuple[float, float] = (0.1, 2.0)
    outside_snr_range: tuple[float, float] = (0.02, 0.2)
    subject_specific: float = 0.2
    word_jitter: float = 0.05
    noise_autocorr: float = 0.0
    n_repeats: int = 2
    n_dead_voxels: int = 0
    max_words: int | None = None
    text_path: str | None = None
    textgrid_short_format: bool = False
    hp_noise_ceiling: str = "none"

    def validate(self) -> None:
        """Raise ValueError naming the first out-of-range parameter."""
        checks = [
            (self.n_voxels >= 8, "n_voxels must be at least 8"),
            (self.n_runs >= 2, "n_runs must be at least 2"),
            (
                1 <= self.n_features <= len(CATEGORY_NAMES),
                f"n_features must be 1..{len(CATEGORY_NAMES)}",
            ),
            (1 <= self.n_rois <= len(ROI_NAMES), f"n_rois must be 1..{len(ROI_NAMES)}"),
            (0 < self.roi_fraction <= 1, "roi_fraction must be in (0, 1]"),
            (0 <= self.noise_voxel_fraction < 1, "noise_voxel_fraction must be in [0, 1)"),
            (0 <= self.outside_signal_fraction <= 1, "outside_signal_fraction must be in [0, 1]"),
            (0 < self.snr_range[0] <= self.snr_range[1], "snr_range must be 0 < low <= high"),
            (
                0 < self.outside_snr_range[0] <= self.outside_snr_range[1],
                "outside_snr_range must be 0 < low <= high",
            ),
            (0 <= self.subject_specific <= 1, "subject_specific must be in [0, 1]"),
            (self.word_jitter >= 0, "word_jitter must be >= 0"),
            (-1 < self.noise_autocorr < 1, "noise_autocorr must be in (-1, 1)"),
            (self.n_repeats >= 2, "n_repeats must be at least 2"),
            (self.n_dead_voxels >= 0, "n_dead_voxels must be >= 0"),
            (
                self.hp_noise_ceiling in HP_CEILING_CHOICES,
                f"hp_noise_ceiling must be one of {HP_CEILING_CHOICES}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"synthetic spec: {message}")
        n_outside = self.n_voxels - int(round(self.roi_fraction * self.n_voxels))
        if self.n_dead_voxels > n_outside:
            raise ValueError(f"synthetic spec: n_dead_voxels > {n_outside} voxels outside the ROIs")


@dataclass
class SyntheticSubject:
    """One simulated subject.

    Attributes:
        name: subject identifier in the layout (``"F"``, ``"01"``).
        responses: run name -> ``(n_kept, V)`` float32; the repeated run ->
            ``(n_repeats, n_kept, V)``.
        signal: run name -> ``(n_kept, V)`` float32 noiseless signal (unit variance per
            voxel over all kept TRs, before gain and offset).
        weights: ``(F, V)`` voxel weights of this subject.
        snr: ``(V,)`` signal/noise variance ratio (0 for pure noise voxels).
        noise_sd: ``(V,)`` noise standard deviation in signal units.
        true_ceiling: ``(V,)`` correlation of the noiseless signal with one noisy scan.
    """

    name: str
    responses: dict[str, np.ndarray]
    signal: dict[str, np.ndarray]
    weights: np.ndarray
    snr: np.ndarray
    noise_sd: np.ndarray
    true_ceiling: np.ndarray


@dataclass
class SyntheticBrain:
    """A generated dataset in memory, before it is written in a layout.

    Attributes:
        layout: ``hp``, ``moth`` or ``nifti``.
        tr: seconds.
        runs: the timed stimulus of every run (Moth: training stories, then the repeated one).
        repeated_run: name of the run presented ``n_repeats`` times, or None.
        features: run name -> ``(n_kept, F)`` HRF-convolved word features at the kept TRs.
        categories: the ``F`` semantic axes, in feature order.
        word_features: normalised word -> ``(F,)`` feature vector.
        voxel_coords: ``(V, 3)`` int voxel indices in ``volume_shape``.
        volume_shape: ``(X, Y, Z)``.
        roi_masks: ROI name -> ``(V,)`` bool (the same for every subject: a common space).
        signal_voxels: ``(V,)`` bool, voxels that carry signal.
        dead_voxels: ``(V,)`` bool, constant voxels.
        subjects: the simulated subjects.
    """

    layout: str
    tr: float
    runs: list[StimulusRun]
    repeated_run: str | None
    features: dict[str, np.ndarray]
    categories: tuple[str, ...]
    word_features: dict[str, np.ndarray]
    voxel_coords: np.ndarray
    volume_shape: tuple[int, int, int]
    roi_masks: dict[str, np.ndarray]
    signal_voxels: np.ndarray
    dead_voxels: np.ndarray
    subjects: list[SyntheticSubject] = field(default_factory=list)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent random stream per purpose, so parts do not disturb each other."""
    return np.random.default_rng([seed, *stream])


_STREAM_WORDS, _STREAM_TIMING, _STREAM_VOXELS, _STREAM_SUBJECT = 1, 2, 3, 4


def subject_names(layout: str, n_subjects: int) -> list[str]:
    """Subject identifiers as the layout spells them: HP letters, else ``01``, ``02``..."""
    if layout == "hp":
        extra = [letter for letter in "ABCDEGOPQRSTUVWXYZ" if letter not in HP_SUBJECT_NAMES]
        names = list(HP_SUBJECT_NAMES) + extra
        if n_subjects > len(names):
            raise ValueError(f"at most {len(names)} HP subjects")
        return names[:n_subjects]
    return [f"{index + 1:02d}" for index in range(n_subjects)]


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
    names = [f"run{index + 1}" for index in range(spec.n_runs)]
    runs = spoken_runs(chunks, rng, names, tr=NIFTI_TR, lead_in_s=6.0, tail_s=16.0, lowercase=False)
    return runs, None, NIFTI_TR


def _word_features(
    runs: list[StimulusRun], spec: SyntheticSpec, seed: int
) -> dict[str, np.ndarray]:
    """Normalised word -> ``(F,)``: category membership plus a seeded per-word jitter."""
    categories = CATEGORY_NAMES[: spec.n_features]
    vocabulary = sorted({normalize_word(word) for run in runs for word in run.words})
    rng = _rng(seed, _STREAM_WORDS)
    jitter = rng.normal(0.0, spec.word_jitter, size=(len(vocabulary), spec.n_features))
    return {
        word: np.asarray(category_vector(word, categories)) + jitter[index]
        for index, word in enumerate(vocabulary)
    }


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
        categories=CATEGORY_NAMES[: spec.n_features],
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


def generate_synthetic(
    layout: str,
    out_dir: str | Path,
    n_subjects: int = 2,
    seed: int = 0,
    **sizes,
) -> Path:
    """Write a synthetic dataset in the real on-disk ``layout`` (``hp``, ``moth``, ``nifti``).

    ``sizes`` are ``SyntheticSpec`` fields (``n_voxels``, ``n_runs``, ...). Beside the data
    it writes ``source.yaml`` (for ``brainmis.data.readers.read_source``) and
    ``ground_truth/`` (true ceilings, true features per run, weights, SNR, ...; see
    ``brainmis.data.synthetic_writers``). ``out_dir`` must not exist or be empty; the
    dataset is assembled in a temporary sibling folder and renamed at the end, so a failure
    leaves nothing behind. Returns ``out_dir``.
    """
    from brainmis.data.synthetic_writers import write_dataset

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


def make_spec(**sizes) -> SyntheticSpec:
    """A ``SyntheticSpec`` from keyword arguments, naming any unknown one."""
    known = {spec_field.name for spec_field in fields(SyntheticSpec)}
    unknown = sorted(set(sizes) - known)
    if unknown:
        raise ValueError(f"unknown synthetic parameter(s) {unknown}; known: {sorted(known)}")
    if "snr_range" in sizes:
        sizes["snr_range"] = tuple(sizes["snr_range"])
    if "outside_snr_range" in sizes:
        sizes["outside_snr_range"] = tuple(sizes["outside_snr_range"])
    spec = SyntheticSpec(**sizes)
    spec.validate()
    return spec


def synthetic_cache_key(layout: str, n_subjects: int, seed: int, **sizes) -> str:
    """Folder name identifying a synthetic dataset: its arguments, the text and the generator."""
    spec = make_spec(**sizes)
    text_path = Path(spec.text_path) if spec.text_path else default_text_path()
    text_digest = (
        hashlib.sha256(text_path.read_bytes()).hexdigest() if text_path.is_file() else "missing"
    )
    identity = {
        "layout": layout,
        "n_subjects": n_subjects,
        "seed": seed,
        "spec": asdict(spec),
        "text_sha256": text_digest,
        "generator_version": GENERATOR_VERSION,
        "bundle_ceiling": predictive_ceiling_method(DEFAULT_CEILING_COMPONENTS),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return f"{layout}-s{n_subjects}-seed{seed}-{digest}"


def synthetic_bundle(
    cache_dir: str | Path,
    layout: str = "hp",
    n_subjects: int = 2,
    seed: int = 0,
    **sizes,
) -> Path:
    """Generate, read and bundle a synthetic dataset once; return the bundle folder.

    Layout of the cache: ``<cache_dir>/<key>/source`` (the dataset in its real layout, ground
    truth included) and ``<cache_dir>/<key>/bundle`` (``brainmis.data.bundle.write_bundle``),
    with ``key = synthetic_cache_key(...)``. Subjects without a ceiling (no file, no repeats)
    get the predictive inter-subject ceiling when there are 2+ subjects, as in ``brainmis
    prepare`` (``brainmis.data.dataset_ceiling.add_predictive_ceilings``). Both are built in
    a temporary folder that is renamed to ``<key>`` only when complete, so an interrupted run
    never leaves a half cache; a later call finds the complete folder and re-uses it.
    """
    from brainmis.data.bundle import write_bundle
    from brainmis.data.dataset_ceiling import add_predictive_ceilings
    from brainmis.data.readers import read_source

    cache_dir = Path(cache_dir)
    final = cache_dir / synthetic_cache_key(layout, n_subjects, seed, **sizes)
    bundle = final / "bundle"
    if final.exists():
        if not (bundle / "manifest.json").is_file():
            raise BrainmisInputError(
                final, "synthetic cache folder is incomplete; delete it and retry"
            )
        return bundle
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        generate_synthetic(layout, staging / "source", n_subjects=n_subjects, seed=seed, **sizes)
        dataset = read_source(staging / "source")
        add_predictive_ceilings(dataset)
        write_bundle(dataset, staging / "bundle")
        try:
            os.rename(staging, final)
        except OSError:
            if not (bundle / "manifest.json").is_file():  # not a concurrent builder's result
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return bundle
