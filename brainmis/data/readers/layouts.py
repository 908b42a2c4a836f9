"""On-disk file names of the source layouts, in one place.

The readers (``brainmis.data.readers``) and the synthetic generator
(``brainmis.data.synthetic``) both name files through these functions, so that what the
generator writes is exactly what the readers read, and both match the real distributions.
"""

from __future__ import annotations

from pathlib import Path

# --- Harry Potter, array layout (Toneva & Wehbe 2019 distribution) -------------------------
HP_TIME_FMRI = "time_fmri.npy"  # (n_TR_total,) seconds, TR time stamps of all runs
HP_RUNS_FMRI = "runs_fmri.npy"  # (n_TR_total,) run number 1..n_runs of each TR time
HP_TIME_WORDS = "time_words_fmri.npy"  # (n_words,) seconds, word onsets
HP_WORDS = "words_fmri.npy"  # (n_words,) <U str, '+' paragraph break, '@' italic prefix
HP_WORDS_ALT = "stimuli_words.npy"  # same content under the other name some copies use
HP_TRIM_START = 20  # TRs removed at the start of each run in data_subject_X.npy
HP_TRIM_END = 15  # TRs removed at the end of each run


def hp_data(root: Path, subject: str) -> Path:
    """``(n_kept_total, V)`` float responses of one subject."""
    return Path(root) / f"data_subject_{subject}.npy"


def hp_rois(root: Path, subject: str) -> Path:
    """``.npz`` with one ``(V,)`` bool array per ROI name (no pickle)."""
    return Path(root) / f"rois_subject_{subject}.npz"


def hp_rois_pickled(root: Path, subject: str) -> Path:
    """The pickled-dict ROI form some copies ship; read only on explicit opt-in."""
    return Path(root) / f"rois_subject_{subject}.npy"


def hp_noise_ceiling(root: Path, subject: str) -> Path:
    """Optional precomputed ``(V,)`` float ceiling."""
    return Path(root) / f"noise_ceiling_subject_{subject}.npy"


def hp_mat(root: Path, subject: str) -> Path:
    """Original Wehbe 2014 MATLAB file."""
    return Path(root) / f"subject_{subject}.mat"


# --- Moth Radio Hour, reading (Deniz et al. 2019) ----------------------------------------
MOTH_TR = 2.0045  # seconds
MOTH_TRIM_START = 10  # default TRs removed at the start of each story in the HDF files
MOTH_TRIM_END = 5  # default TRs removed at the end of each story


def moth_train(root: Path, subject: str) -> Path:
    """HDF5, one dataset per story (``story_01`` ...), each ``(T_story, V)``."""
    return Path(root) / f"subject{subject}_reading_fmri_data_trn.hdf"


def moth_val(root: Path, subject: str) -> Path:
    """HDF5, the repeated story (``story_11``), ``(n_repeats, T, V)``."""
    return Path(root) / f"subject{subject}_reading_fmri_data_val.hdf"


def moth_mappers(root: Path, subject: str) -> Path:
    """HDF5 with ROI masks as ``roi_masks/<ROI>`` ``(V,)`` bool datasets."""
    return Path(root) / f"subject{subject}_mappers.hdf"


def moth_textgrid(root: Path, story: str) -> Path:
    """Praat TextGrid with a ``word`` tier for one story."""
    return Path(root) / "textgrids" / f"{story}.TextGrid"


def moth_trfile(root: Path, story: str) -> Path:
    """Scanner trigger file: lines ``<time seconds> <label>``; one per TR."""
    return Path(root) / "trfiles" / f"{story}.txt"


# --- Generic NIfTI + events TSV (BIDS-like) ----------------------------------------------
# Volume i of a run is stamped at time i * TR (TR from the header's 4th zoom); event onsets
# are seconds from the run start.


def nifti_bold(root: Path, subject: str, run: int) -> Path:
    return (
        Path(root) / f"sub-{subject}" / "func" / f"sub-{subject}_task-reading_run-{run}_bold.nii.gz"
    )


def nifti_events(root: Path, subject: str, run: int) -> Path:
    """TSV with columns ``word``, ``onset``, ``duration`` (seconds)."""
    return (
        Path(root) / f"sub-{subject}" / "func" / f"sub-{subject}_task-reading_run-{run}_events.tsv"
    )


def nifti_roi(root: Path, subject: str) -> Path:
    """3D NIfTI: a 0/1 mask, or an integer atlas whose labels are in ``nifti_roi_labels``."""
    return Path(root) / f"sub-{subject}" / "anat" / f"sub-{subject}_roi.nii.gz"


def nifti_roi_labels(root: Path, subject: str) -> Path:
    """Optional TSV ``index  name`` naming the atlas labels."""
    return Path(root) / f"sub-{subject}" / "anat" / f"sub-{subject}_roi_labels.tsv"


# --- Synthetic ground truth (written beside any synthetic layout) --------------------------
SYNTH_TRUTH_DIR = "ground_truth"


def synth_true_ceiling(root: Path, subject: str) -> Path:
    """``(V,)`` float: the correlation of each voxel's noiseless signal with one noisy scan."""
    return Path(root) / SYNTH_TRUTH_DIR / f"true_ceiling_subject_{subject}.npy"


def synth_true_features(root: Path, run_name: str) -> Path:
    """``(n_kept, F)`` float: the HRF-convolved word features behind every kept TR of a run."""
    return Path(root) / SYNTH_TRUTH_DIR / f"features_{run_name}.npy"


# --- Narratives (Nastase et al. 2021, OpenNeuro ds002345, BIDS) ----------------------------
# Subjects are named without the ``sub-`` prefix (``001``); a story is the BIDS task label.
NARRATIVES_TR = 1.5  # seconds
NARRATIVES_EXCLUDE = "code/scan_exclude.json"  # task -> {sub-XXX: [scan names]} (published)
NARRATIVES_PARTICIPANTS = "participants.tsv"  # column participant_id (sub-XXX)


def narratives_bold(root: Path, subject: str, story: str) -> Path:
    """4D BOLD ``(X, Y, Z, T)`` of one story; volume ``i`` at ``i * TR`` s from the scan start."""
    func = Path(root) / f"sub-{subject}" / "func"
    return func / f"sub-{subject}_task-{story}_bold.nii.gz"


def narratives_events(root: Path, subject: str, story: str) -> Path:
    """BIDS events TSV (``onset``, ``duration``, ``trial_type``, ``stim_file``); the first
    event's onset is when the story's audio file starts, seconds from the scan start."""
    func = Path(root) / f"sub-{subject}" / "func"
    return func / f"sub-{subject}_task-{story}_events.tsv"


def narratives_task_events(root: Path, story: str) -> Path:
    """The BIDS top-level events TSV of a task, used when a subject has none of its own."""
    return Path(root) / f"task-{story}_events.tsv"


def narratives_align(root: Path, story: str) -> Path:
    """Gentle forced alignment: ``{"words": [{"word", "case", "start", "end"}, ...]}``, times
    in seconds from the audio start; only ``case == "success"`` words have times."""
    return Path(root) / "stimuli" / "gentle" / story / "align.json"


def narratives_roi(root: Path, subject: str) -> Path:
    """Optional 3D ROI mask or label atlas in the BOLD space (as ``nifti_roi``)."""
    return Path(root) / f"sub-{subject}" / "anat" / f"sub-{subject}_roi.nii.gz"


def narratives_roi_labels(root: Path, subject: str) -> Path:
    """Optional TSV ``index  name`` naming the atlas labels."""
    return Path(root) / f"sub-{subject}" / "anat" / f"sub-{subject}_roi_labels.tsv"


# --- LeBel et al. 2023 (OpenNeuro ds003020, derivative form) -------------------------------
# TR ``i`` of a story is at ``i * LEBEL_TR - LEBEL_SOUND_START`` s from the audio start (the
# TextGrid clock); ``respdict.json`` counts ``LEBEL_PAD`` TRs more than that TR clock has, and
# the response rows lack its first ``LEBEL_TRIM_START`` and last ``LEBEL_TRIM_END`` TRs.
LEBEL_TR = 2.0  # seconds
LEBEL_SOUND_START = 10.0  # seconds of scan before the story audio
LEBEL_PAD = 5
LEBEL_TRIM_START = 10
LEBEL_TRIM_END = 5
LEBEL_RESPDICT = "derivative/respdict.json"  # {story: number of TRs}


def lebel_responses(root: Path, subject: str, story: str) -> Path:
    """HDF5 with dataset ``data`` ``(n_kept, V)`` float: one subject's responses to a story."""
    return Path(root) / "derivative" / "preprocessed_data" / subject / f"{story}.hf5"


def lebel_textgrid(root: Path, story: str) -> Path:
    """Praat TextGrid with a ``word`` tier, seconds from the audio start."""
    return Path(root) / "derivative" / "TextGrids" / f"{story}.TextGrid"


def lebel_trfile(root: Path, story: str) -> Path:
    """Optional trigger file (lines ``<seconds> <label>``, as Moth's), instead of respdict."""
    return Path(root) / "derivative" / "trfiles" / f"{story}.report"
