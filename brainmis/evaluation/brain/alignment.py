"""Brain alignment of a model on one subject's fold, and the run-folder files it writes.

Shared by :class:`brainmis.evaluation.brain.callback.BrainAlignmentCallback` and
``brainmis evaluate-brain``, so both give the same numbers for the same weights: features of
every window, a ridge fitted on the windows of the non-test runs against the *true* targets,
scored on the test run. What it needs of the data is one typed record, ``AlignmentData``
(``AlignmentData.from_datamodule`` builds it from a ``BrainDataModule``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from brainmis.errors import BrainmisInputError
from brainmis.evaluation.brain.encoding import BrainAlignmentResult, evaluate_brain_alignment
from brainmis.evaluation.brain.leakage import LeakageResult, mlp_leakage
from brainmis.evaluation.brain.maps import save_brain_map
from brainmis.evaluation.brain.significance import PermutationTestOptions
from brainmis.evaluation.extract import extract_window_features, features_in_table_order
from brainmis.run_folder.layout import (
    BRAIN_FILE,
    brain_fdr_map_file,
    brain_map_file,
    brain_p_file,
    brain_q_file,
    brain_r_file,
    leakage_r_file,
)
from brainmis.structured_files import read_mapping

if TYPE_CHECKING:
    from brainmis.data.datamodule import BrainDataModule
    from brainmis.data.records import Subject


@dataclass
class ModelAlignment:
    """One evaluation of a model: the ridge result, the optional MLP check, its cost."""

    epoch: int
    ridge: BrainAlignmentResult
    leakage: LeakageResult | None
    seconds: float

    def to_json(self) -> dict:
        """The ``brain_alignment.json`` record (docs/architecture.md, "Run folder")."""
        record = {"epoch": self.epoch, **self.ridge.to_json(), "seconds": self.seconds}
        record["leakage_mlp"] = None if self.leakage is None else self.leakage.to_json()
        return record

    def scalars(self) -> dict[str, float]:
        """Scalars to log: ``brain_alignment/mean``, ``/median``, ``/nc_normalized``,
        ``/roi/<name>`` (ROI mean), ``/seconds``, with the permutation test
        ``/share_significant`` and, with leakage, ``/leakage_mlp_mean``."""
        values = {
            "brain_alignment/mean": self.ridge.mean,
            "brain_alignment/median": self.ridge.median,
            "brain_alignment/seconds": self.seconds,
        }
        if self.ridge.nc_normalized is not None:
            values["brain_alignment/nc_normalized"] = self.ridge.nc_normalized
        for name, score in self.ridge.per_roi.items():
            values[f"brain_alignment/roi/{name}"] = score.mean
        significance = self.ridge.significance
        if significance is not None and significance.share_significant is not None:
            values["brain_alignment/share_significant"] = significance.share_significant
        if self.leakage is not None:
            values["brain_alignment/leakage_mlp_mean"] = self.leakage.summary.mean
        return values


@dataclass(frozen=True)
class AlignmentData:
    """What a brain-alignment evaluation needs of the data: one subject, one fold.

    Attributes:
        windows: every window in table order with its true targets (a DataLoader whose
            batches carry ``input_ids``, ``attention_mask``, ``group_ids``, ``sample_ids``).
        n_windows: N, the number of windows.
        context_trs: TR groups per window.
        true_targets: ``(N, V)`` float32 z-scored responses, never shuffled.
        window_runs: ``(N,)`` run index of every window.
        test_run: the run held out for scoring.
        noise_ceiling: ``(V,)`` ceiling of the test run's responses (correlation units), or None.
        roi_masks: ROI name -> ``(V,)`` bool over the selected voxels.
        subject: the subject record (its voxel coordinates make NIfTI maps), or None.
        selected_voxels: ``(V,)`` indices of the selected voxels among the subject's.
        voxel_selection: ``{"ceiling_source", "threshold", "counts"}``, or None.
    """

    windows: Iterable[dict[str, torch.Tensor]]
    n_windows: int
    context_trs: int
    true_targets: np.ndarray
    window_runs: np.ndarray
    test_run: int
    noise_ceiling: np.ndarray | None = None
    roi_masks: dict[str, np.ndarray] = field(default_factory=dict)
    subject: Subject | None = None
    selected_voxels: np.ndarray | None = None
    voxel_selection: dict[str, Any] | None = None

    @classmethod
    def from_datamodule(cls, datamodule: BrainDataModule) -> AlignmentData:
        """The record of a set-up ``BrainDataModule`` (sets it up when needed)."""
        datamodule.setup()
        return cls(
            windows=datamodule.full_dataloader(),
            n_windows=len(datamodule.window_runs),
            context_trs=int(datamodule.context_trs),
            true_targets=datamodule.true_targets,
            window_runs=np.asarray(datamodule.window_runs),
            test_run=int(datamodule.test_run),
            noise_ceiling=datamodule.noise_ceiling,
            roi_masks=dict(datamodule.roi_masks),
            subject=datamodule.subject,
            selected_voxels=datamodule.selected_voxels,
            voxel_selection=voxel_selection_record(datamodule),
        )


def model_window_features(
    model: nn.Module, data: AlignmentData, layer: int = -1, device: torch.device | None = None
) -> np.ndarray:
    """Features ``(N, context_trs * hidden)`` float32 of all N windows, in table order."""
    features, sample_ids = extract_window_features(
        model, data.windows, data.context_trs, layer=layer, device=device
    )
    return features_in_table_order(features, sample_ids, data.n_windows)


def align_features(
    features: np.ndarray,
    data: AlignmentData,
    epoch: int,
    alphas: np.ndarray | None = None,
    leakage: bool = False,
    device: torch.device | str | None = None,
    seconds_so_far: float = 0.0,
    significance: PermutationTestOptions | None = None,
) -> ModelAlignment:
    """Score window features ``(N, F)`` against the true targets: fit on the non-test runs,
    score ``data.test_run`` (with ``significance``, also its per-voxel permutation test).
    ``seconds`` counts from the caller's start (``seconds_so_far`` for the extraction) to the
    end of scoring."""
    start = time.perf_counter()
    ridge = evaluate_brain_alignment(
        features,
        data.true_targets,
        data.window_runs,
        test_runs=data.test_run,
        alphas=alphas,
        noise_ceiling=data.noise_ceiling,
        roi_masks=data.roi_masks,
        device=device,
        significance=significance,
    )
    check = None
    if leakage:
        check = mlp_leakage(
            features,
            data.true_targets,
            data.window_runs,
            test_runs=data.test_run,
            noise_ceiling=data.noise_ceiling,
        )
    seconds = seconds_so_far + time.perf_counter() - start
    return ModelAlignment(epoch=epoch, ridge=ridge, leakage=check, seconds=seconds)


def voxel_selection_record(datamodule: BrainDataModule) -> dict[str, Any] | None:
    """What the alignment's voxels are: ``{"ceiling_source", "threshold", "counts"}``, the
    datamodule's ceiling source, the ceiling threshold (None without a ceiling) and the
    selection's counts (``total``, ``non_finite_dropped``, ``zero_variance_dropped``,
    ``in_roi``, ``above_ceiling``, ``selected``); None for a datamodule without a selection."""
    counts = getattr(datamodule, "voxel_counts", None)
    if counts is None:
        return None
    selection = getattr(datamodule, "voxel_selection", None)
    threshold = None if selection is None else selection.threshold
    return {
        "ceiling_source": str(getattr(datamodule, "ceiling_source", "unknown")),
        "threshold": None if threshold is None else float(threshold),
        "counts": {key: int(value) for key, value in counts.items()},
    }


def history_entry(alignment: ModelAlignment, **extra: Any) -> dict[str, Any]:
    """The short record of one evaluation kept in ``brain_alignment.json``'s ``history``
    (``share_significant`` is None when the permutation test did not run)."""
    significance = alignment.ridge.significance
    return {
        "epoch": alignment.epoch,
        "mean": alignment.ridge.mean,
        "median": alignment.ridge.median,
        "nc_normalized": alignment.ridge.nc_normalized,
        "share_significant": None if significance is None else significance.share_significant,
        "seconds": alignment.seconds,
        **extra,
    }


def write_alignment_files(
    folder: str | Path,
    alignment: ModelAlignment,
    subject: Subject | None = None,
    selected_voxels: np.ndarray | None = None,
    history: list[dict] | None = None,
    voxel_selection: dict[str, Any] | None = None,
    record: dict[str, Any] | None = None,
) -> list[Path]:
    """Write ``brain_alignment.json`` (``record``, by default this evaluation's, plus
    ``history`` and ``voxel_selection`` if given), ``brain_r_epoch{E}.npy`` ``(V,)`` and, when
    the subject has voxel coordinates, ``brain_r_epoch{E}.nii.gz``. With the permutation
    test also ``brain_p_epoch{E}.npy``, ``brain_q_epoch{E}.npy`` ``(V,)`` and the thresholded
    map ``brain_r_fdr_epoch{E}.nii.gz``. Returns the written paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = alignment.to_json() if record is None else dict(record)
    if voxel_selection is not None:
        record["voxel_selection"] = voxel_selection
    if history is not None:
        record["history"] = history
    written = [folder / BRAIN_FILE, folder / brain_r_file(alignment.epoch)]
    written[0].write_text(json.dumps(record, indent=2) + "\n")
    np.save(written[1], alignment.ridge.r.astype(np.float64), allow_pickle=False)
    if alignment.leakage is not None:
        leakage_path = folder / leakage_r_file(alignment.epoch)
        np.save(leakage_path, alignment.leakage.r.astype(np.float64), allow_pickle=False)
        written.append(leakage_path)
    written += write_significance_arrays(folder, alignment)
    if subject is not None:
        maps = {brain_map_file(alignment.epoch): alignment.ridge.r}
        significance = alignment.ridge.significance
        if significance is not None:
            thresholded = np.where(significance.significant, alignment.ridge.r, 0.0)
            maps[brain_fdr_map_file(alignment.epoch)] = thresholded
        for name, values in maps.items():
            nifti = save_brain_map(values, subject, folder / name, voxel_indices=selected_voxels)
            if nifti is not None:
                written.append(nifti)
    return written


def write_significance_arrays(folder: Path, alignment: ModelAlignment) -> list[Path]:
    """``brain_p_epoch{E}.npy`` and ``brain_q_epoch{E}.npy`` ``(V,)`` float64 of the
    permutation test; nothing when it did not run. Returns the written paths."""
    significance = alignment.ridge.significance
    if significance is None:
        return []
    arrays = {
        folder / brain_p_file(alignment.epoch): significance.p,
        folder / brain_q_file(alignment.epoch): significance.q,
    }
    for path, values in arrays.items():
        np.save(path, np.asarray(values, dtype=np.float64), allow_pickle=False)
    return list(arrays)


def read_alignment_record(folder: str | Path) -> dict[str, Any] | None:
    """The ``brain_alignment.json`` of ``folder`` as a dict, None when there is none.

    Raises ``BrainmisInputError`` naming the file when it is not a readable JSON object."""
    path = Path(folder) / BRAIN_FILE
    if not path.is_file():
        return None
    record = read_mapping(path, "brain-alignment record")
    if not isinstance(record.get("epoch"), int):
        raise BrainmisInputError(path, "not a brain-alignment record (no integer 'epoch')")
    return record


def add_to_run_evaluation(
    folder: str | Path,
    alignment: ModelAlignment,
    subject: Subject | None = None,
    selected_voxels: np.ndarray | None = None,
    voxel_selection: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
) -> list[Path]:
    """Add one evaluation to a run's ``evaluation/`` folder without losing what is there.

    The per-voxel files of the new epoch are written (the caller has checked they are new);
    ``brain_alignment.json`` keeps the latest epoch at its top level (a checkpoint of an
    earlier epoch only joins the ``history``), and its history gains this evaluation.
    """
    existing = read_alignment_record(folder)
    history = [] if existing is None else list(existing.get("history") or [])
    if existing is not None and not any(h.get("epoch") == existing["epoch"] for h in history):
        history.append({key: existing.get(key) for key in ("epoch", "mean", "median")})
    history = [h for h in history if h.get("epoch") != alignment.epoch]
    history.append(history_entry(alignment, source="evaluate-brain", inputs=inputs or {}))
    history.sort(key=lambda h: h["epoch"])
    keep_existing = existing is not None and existing["epoch"] > alignment.epoch
    record = existing if keep_existing else None
    return write_alignment_files(
        folder,
        alignment,
        subject=subject,
        selected_voxels=selected_voxels,
        history=history,
        voxel_selection=None if keep_existing else voxel_selection,
        record=record,
    )
