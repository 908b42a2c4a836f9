"""What a synthetic dataset is: its settings (``SyntheticSpec``) and its in-memory records.

``SyntheticSpec`` holds the sizes and signal parameters (``make_spec`` builds one from
keyword arguments, naming any unknown one); ``SyntheticBrain`` and ``SyntheticSubject`` are
what ``brainmis.data.synthetic.simulation.simulate`` produces and what
``brainmis.data.synthetic.writers`` writes to disk. The constants name the layouts the
generator writes, their TRs, subject and ROI names, and the generator version (part of the
cache key of ``brainmis.data.synthetic.cache``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from brainmis.data.synthetic.stimulus import StimulusRun
from brainmis.data.synthetic.word_categories import CATEGORY_NAMES
from brainmis.data.synthetic.worlds import WORLDS

LAYOUTS = ("hp", "moth", "nifti", "narratives", "lebel")
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
        n_runs: runs (HP, NIfTI), stories (Narratives, LeBel) or training stories (Moth;
            one repeated story is added).
        world: what drives the brain (``brainmis.data.synthetic.worlds``): ``semantic``
            (categories), ``probed`` (categories that probing tasks test) or ``unprobed`` (a
            random partition of the vocabulary).
        n_features: axes driving the brain (1-6): the world's first ``n_features`` axes.
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
    world: str = "semantic"
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
            (self.world in WORLDS, f"world must be one of {WORLDS}"),
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
        layout: one of ``LAYOUTS``.
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


def subject_names(layout: str, n_subjects: int) -> list[str]:
    """Subject identifiers as the layout spells them: HP letters, Narratives ``001``, LeBel
    ``UTS01``, else ``01``, ``02``..."""
    if layout == "narratives":
        return [f"{index + 1:03d}" for index in range(n_subjects)]
    if layout == "lebel":
        return [f"UTS{index + 1:02d}" for index in range(n_subjects)]
    if layout == "hp":
        extra = [letter for letter in "ABCDEGOPQRSTUVWXYZ" if letter not in HP_SUBJECT_NAMES]
        names = list(HP_SUBJECT_NAMES) + extra
        if n_subjects > len(names):
            raise ValueError(f"at most {len(names)} HP subjects")
        return names[:n_subjects]
    return [f"{index + 1:02d}" for index in range(n_subjects)]
