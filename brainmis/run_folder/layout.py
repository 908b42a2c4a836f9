"""Every file and folder name of a run folder, and the columns of ``probing.csv``.

A run folder (``lightning_logs/<name>/version_N/``, or a sweep's ``runs/<run_id>/``)::

    config.yaml                       LightningCLI config of the fit
    run_manifest.json                 identity, status, versions (brainmis.run_folder.manifest)
    events.out.tfevents.*             TensorBoard scalars
    checkpoints/last.ckpt, best.ckpt  trainable weights only
    evaluation/lm.json                {"epoch": E, "lm_loss": float}
    evaluation/lm_windows.csv         per test window: LM_WINDOWS_COLUMNS (beside lm.json)
    evaluation/brain_alignment.json   latest brain evaluation + history
    evaluation/brain_r_epoch{E}.npy   (V,) per-voxel r of the evaluation after E epochs
    evaluation/brain_similarity.json  RSA / CKA / Procrustes per epoch (when asked for)
    evaluation/brain_layers.json      per-layer ridge (+ measures) per epoch (when asked for)
    evaluation/brain_p_epoch{E}.npy   (V,) its permutation p; brain_q_epoch{E}.npy BH q-values
    evaluation/probing.csv            long format, PROBING_COLUMNS

E follows the one epoch convention (``brainmis.run_folder.trainer.epochs_finished``).
"""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "config.yaml"
MANIFEST_FILE = "run_manifest.json"
EVENT_FILE_PREFIX = "events.out.tfevents"

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"  # rewritten after every epoch (resume, evaluate-brain, probe)
BEST_CHECKPOINT = "best.ckpt"  # the paper trainer: lowest val/lm_loss

EVALUATION_DIR = "evaluation"
LM_FILE = "lm.json"
# Written with lm.json (brainmis.models.lm_windows): one row per held-out (test run) window,
# its index in the datamodule's window table, mean LM loss (nats per predicted token) and
# number of predicted tokens; lm.json's lm_loss is the token-weighted mean of the rows.
LM_WINDOWS_FILE = "lm_windows.csv"
LM_WINDOWS_COLUMNS = ("window", "lm_loss", "n_tokens")
BRAIN_FILE = "brain_alignment.json"
# brainmis.evaluation.brain.measures: {"latest_epoch": E, "epochs": {"<E>": record}}
BRAIN_SIMILARITY_FILE = "brain_similarity.json"
BRAIN_LAYERS_FILE = "brain_layers.json"
PROBING_FILE = "probing.csv"
PROBING_COLUMNS = ("run", "epoch", "task", "subfield", "seed", "metric", "score")
PROBING_SUMMARY_FILE = "probing_summary.json"  # probe --out DIR
INPUTS_FILE = "inputs.json"  # evaluate-brain --out DIR: what was evaluated


def evaluation_dir(run_dir: str | Path) -> Path:
    """``<run_dir>/evaluation``: every result file of the run."""
    return Path(run_dir) / EVALUATION_DIR


def last_checkpoint(run_dir: str | Path) -> Path:
    """``<run_dir>/checkpoints/last.ckpt``."""
    return Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


def brain_r_file(epoch: int) -> str:
    """``brain_r_epoch{E}.npy``: ``(V,)`` per-voxel r of the evaluation after ``E`` finished
    training epochs (0 = the model before any training)."""
    return f"brain_r_epoch{epoch}.npy"


def brain_map_file(epoch: int) -> str:
    """``brain_r_epoch{E}.nii.gz``: the same r as a volume (subjects with voxel coordinates)."""
    return f"brain_r_epoch{epoch}.nii.gz"


def brain_p_file(epoch: int) -> str:
    """``brain_p_epoch{E}.npy``: ``(V,)`` block-permutation p of each voxel's held-out r
    (when the permutation test ran)."""
    return f"brain_p_epoch{epoch}.npy"


def brain_q_file(epoch: int) -> str:
    """``brain_q_epoch{E}.npy``: ``(V,)`` Benjamini-Hochberg q-values of those p; a voxel is
    significant when q <= the record's ``significance.fdr_q``."""
    return f"brain_q_epoch{epoch}.npy"


def brain_fdr_map_file(epoch: int) -> str:
    """``brain_r_fdr_epoch{E}.nii.gz``: r of the significant voxels, 0 at the other evaluated
    voxels (subjects with voxel coordinates, when the permutation test ran)."""
    return f"brain_r_fdr_epoch{epoch}.nii.gz"


def leakage_r_file(epoch: int) -> str:
    """``leakage_mlp_r_epoch{E}.npy``: ``(V,)`` r of the MLP leakage check, when it ran."""
    return f"leakage_mlp_r_epoch{epoch}.npy"


def probing_summary_file(epoch: int) -> str:
    """``probing_summary_epoch{E}.json``: ``probe --ckpt`` into a run's ``evaluation/``."""
    return f"probing_summary_epoch{epoch}.json"
