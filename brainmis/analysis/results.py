"""Reading a run's evaluation results (the files of the "Run folder" contract).

- ``evaluation/lm.json``: ``{"epoch": E, "lm_loss": float}``.
- ``evaluation/brain_alignment.json``: ``{"epoch", "mean", "median", "nc_normalized",
  "n_voxels", "per_roi", ...}`` of the latest evaluation, and per evaluation
  ``evaluation/brain_r_epoch{E}.npy``, ``(V,)`` per-voxel Pearson r. Optional keys (absent
  or null in older files): ``nc_ratio_of_means`` (mean r / mean ceiling over the voxels with
  a ceiling), ``nc_median`` (median over voxels with ceiling > 0 of r / ceiling) and
  ``voxel_selection`` = ``{"ceiling_source": str, "threshold": float | null, "counts":
  {"total", "non_finite_dropped", "zero_variance_dropped", "in_roi", "above_ceiling",
  "selected"}}`` (voxel counts).
- ``evaluation/probing.csv``: long format ``run,epoch,task,subfield,seed,metric,score``.
- ``evaluation/brain_similarity.json`` and ``evaluation/brain_layers.json`` (optional,
  ``{"latest_epoch": E, "epochs": {"<E>": record}}``, ``brainmis.evaluation.brain.measures``):
  the encoder-free measures (``rsa``, ``cka``, ``procrustes``; all voxels) and the per-layer
  profile (ridge mean r and measures per hidden state) of the latest epoch.

Each file is optional here (``None`` when absent); which results a study needs is decided
by ``brainmis.analysis.study``. A file that exists but is malformed is an input error
naming the file. Only the latest epoch of each result is kept. The file names and the CSV
columns are ``brainmis.run_folder.layout``'s.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brainmis.errors import BrainmisInputError
from brainmis.run_folder.layout import (
    BRAIN_FILE,
    BRAIN_LAYERS_FILE,
    BRAIN_SIMILARITY_FILE,
    LM_FILE,
    PROBING_COLUMNS,
    PROBING_FILE,
    brain_r_file,
    evaluation_dir,
)
from brainmis.structured_files import read_mapping

VOXEL_COUNT_KEYS = (
    "total",
    "non_finite_dropped",
    "zero_variance_dropped",
    "in_roi",
    "above_ceiling",
    "selected",
)


@dataclass(frozen=True)
class VoxelSelectionRecord:
    """How the evaluated voxels were chosen (``voxel_selection`` of brain_alignment.json).

    ``threshold``: the ceiling threshold, NaN when none was used (null). ``counts``: every key
    of ``VOXEL_COUNT_KEYS``, -1 for a count the file does not give.
    """

    ceiling_source: str
    threshold: float
    counts: dict[str, int]


@dataclass(frozen=True)
class BrainAlignment:
    """Fresh ridge read-out of the latest evaluation. ``per_voxel_file``: its ``(V,)`` r.

    ``nc_ratio_of_means`` and ``nc_median`` are NaN when the file does not give them;
    ``voxel_selection`` is None then.
    """

    epoch: int
    mean: float
    median: float
    nc_normalized: float
    n_voxels: int
    per_voxel_file: Path | None
    nc_ratio_of_means: float = math.nan
    nc_median: float = math.nan
    voxel_selection: VoxelSelectionRecord | None = None


@dataclass(frozen=True)
class ProbingScores:
    """Probing results of the latest epoch: ``scores[task][metric][seed] = score``."""

    epoch: int
    subfields: dict[str, str]
    scores: dict[str, dict[str, dict[int, float]]]

    def metrics(self) -> set[str]:
        return {metric for by_metric in self.scores.values() for metric in by_metric}


@dataclass(frozen=True)
class RunResults:
    """What a run folder's ``evaluation/`` holds; ``None`` for a file that is not there.

    ``similarity``: measure name -> value over all voxels (latest epoch of
    ``brain_similarity.json``; NaN for a null). ``layers``: hidden-state index -> measure
    name (``ridge_mean``, ``ridge_median``, ``ridge_nc_normalized``, ``rsa``...) -> value
    (latest epoch of ``brain_layers.json``)."""

    lm_epoch: int | None
    lm_loss: float | None
    brain: BrainAlignment | None
    probing: ProbingScores | None
    similarity: dict[str, float] | None = None
    layers: dict[int, dict[str, float]] | None = None

    def kinds(self) -> set[str]:
        """Names of the result kinds present: ``lm``, ``brain``, ``probing``."""
        present = {"lm": self.lm_loss is not None, "brain": self.brain is not None}
        present["probing"] = self.probing is not None
        return {kind for kind, here in present.items() if here}


def _number(path: Path, values: dict[str, Any], key: str, required: bool = True) -> float:
    value = values.get(key)
    if value is None and not required:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BrainmisInputError(path, f"'{key}' must be a number, got {value!r}")
    if required and not math.isfinite(value):
        raise BrainmisInputError(path, f"'{key}' is not finite ({value})")
    return float(value)


def _epoch(path: Path, values: dict[str, Any]) -> int:
    epoch = values.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise BrainmisInputError(path, f"'epoch' must be a non-negative integer, got {epoch!r}")
    return epoch


def read_lm_result(path: Path) -> tuple[int, float]:
    """``(epoch, held-out LM loss in nats per token)`` from ``lm.json``."""
    values = read_mapping(path, "held-out LM loss record")
    return _epoch(path, values), _number(path, values, "lm_loss")


def _voxel_selection(path: Path, value: Any) -> VoxelSelectionRecord | None:
    """The optional ``voxel_selection`` object (None when absent or null)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BrainmisInputError(path, f"'voxel_selection' must be an object, got {value!r}")
    source = value.get("ceiling_source")
    if source is not None and not isinstance(source, str):
        raise BrainmisInputError(
            path, f"'voxel_selection.ceiling_source' must be a string, got {source!r}"
        )
    threshold = value.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float))
    ):
        raise BrainmisInputError(
            path, f"'voxel_selection.threshold' must be a number or null, got {threshold!r}"
        )
    counts = value.get("counts") or {}
    if not isinstance(counts, dict):
        raise BrainmisInputError(
            path, f"'voxel_selection.counts' must be an object, got {counts!r}"
        )
    checked = {}
    for key in VOXEL_COUNT_KEYS:
        count = counts.get(key)
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 0
        ):
            raise BrainmisInputError(
                path,
                f"'voxel_selection.counts.{key}' must be a non-negative integer, got {count!r}",
            )
        checked[key] = -1 if count is None else count
    return VoxelSelectionRecord(
        ceiling_source=source or "",
        threshold=math.nan if threshold is None else float(threshold),
        counts=checked,
    )


def read_brain_alignment(path: Path) -> BrainAlignment:
    """The latest brain-alignment evaluation and the path of its per-voxel r (if present)."""
    values = read_mapping(path, "brain-alignment record")
    epoch = _epoch(path, values)
    n_voxels = values.get("n_voxels")
    if n_voxels is not None and (isinstance(n_voxels, bool) or not isinstance(n_voxels, int)):
        raise BrainmisInputError(path, f"'n_voxels' must be an integer, got {n_voxels!r}")
    per_voxel = path.parent / brain_r_file(epoch)
    return BrainAlignment(
        epoch=epoch,
        mean=_number(path, values, "mean"),
        median=_number(path, values, "median", required=False),
        nc_normalized=_number(path, values, "nc_normalized", required=False),
        n_voxels=-1 if n_voxels is None else n_voxels,
        per_voxel_file=per_voxel if per_voxel.is_file() else None,
        nc_ratio_of_means=_number(path, values, "nc_ratio_of_means", required=False),
        nc_median=_number(path, values, "nc_median", required=False),
        voxel_selection=_voxel_selection(path, values.get("voxel_selection")),
    )


def read_per_voxel_r(path: Path) -> np.ndarray:
    """Per-voxel Pearson r ``(V,)`` float64 from a ``brain_r_epoch{E}.npy``, NaNs dropped."""
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise BrainmisInputError(path, f"not a readable .npy array ({error})") from None
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.floating):
        raise BrainmisInputError(
            path, f"expected a 1-D float array of per-voxel r, got {values.dtype} {values.shape}"
        )
    values = values.astype(np.float64)
    values = values[np.isfinite(values)]
    if values.size and (values.min() < -1.0 - 1e-6 or values.max() > 1.0 + 1e-6):
        raise BrainmisInputError(path, "per-voxel correlations outside [-1, 1]")
    return values


def read_probing_scores(path: Path) -> ProbingScores:
    """The rows of the latest epoch of a ``probing.csv``, as task -> metric -> seed -> score."""
    try:
        handle = path.open(newline="")
    except OSError as error:
        raise BrainmisInputError(path, f"cannot be read ({error})") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [name for name in PROBING_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise BrainmisInputError(path, f"missing column(s) {', '.join(missing)}")
        rows: dict[int, list[tuple[str, str, int, str, float]]] = {}
        for line_number, row in enumerate(reader, start=2):
            try:
                epoch, seed = int(row["epoch"]), int(row["seed"])
                score = float(row["score"])
            except (TypeError, ValueError):
                raise BrainmisInputError(
                    path, f"line {line_number}: epoch and seed must be integers, score a number"
                ) from None
            if not row["task"] or not row["metric"]:
                raise BrainmisInputError(path, f"line {line_number}: empty task or metric")
            rows.setdefault(epoch, []).append(
                (row["task"], row["subfield"] or "unknown", seed, row["metric"], score)
            )
    if not rows:
        raise BrainmisInputError(path, "no probing results in the file")
    latest = max(rows)
    subfields: dict[str, str] = {}
    scores: dict[str, dict[str, dict[int, float]]] = {}
    for task, subfield, seed, metric, score in rows[latest]:
        if subfields.setdefault(task, subfield) != subfield:
            raise BrainmisInputError(
                path,
                f"task {task!r} is listed under subfields {subfields[task]!r} and {subfield!r}",
            )
        scores.setdefault(task, {}).setdefault(metric, {})[seed] = score
    return ProbingScores(epoch=latest, subfields=subfields, scores=scores)


def _latest_epoch_record(path: Path, what: str) -> dict[str, Any]:
    """The record of the highest epoch in a ``{"epochs": {"<E>": record}}`` file."""
    values = read_mapping(path, what)
    epochs = values.get("epochs")
    if not isinstance(epochs, dict) or not epochs:
        raise BrainmisInputError(path, f"not a {what}: no 'epochs' object with a record")
    if not all(str(key).isdigit() and isinstance(rec, dict) for key, rec in epochs.items()):
        raise BrainmisInputError(path, "'epochs' must map epoch numbers to objects")
    return epochs[max(epochs, key=int)]


def _measure_values(path: Path, values: Any, where: str) -> dict[str, float]:
    if not isinstance(values, dict):
        raise BrainmisInputError(path, f"'{where}' must be an object, got {values!r}")
    checked = {}
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BrainmisInputError(path, f"'{where}.{name}' must be a number or null")
        checked[str(name)] = math.nan if value is None else float(value)
    return checked


def read_brain_similarity(path: Path) -> dict[str, float]:
    """Measure name -> value over all voxels, of the latest epoch of ``brain_similarity.json``."""
    record = _latest_epoch_record(path, "brain-similarity record")
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        raise BrainmisInputError(path, "the record has no 'metrics' object")
    overall = {}
    for name, score in metrics.items():
        if not isinstance(score, dict):
            raise BrainmisInputError(path, f"'metrics.{name}' must be an object")
        overall[name] = score.get("all")
    return _measure_values(path, overall, "metrics")


def read_layer_profile(path: Path) -> dict[int, dict[str, float]]:
    """Hidden-state index -> measure -> value, of the latest epoch of ``brain_layers.json``."""
    record = _latest_epoch_record(path, "layer-profile record")
    layers = record.get("layers")
    if not isinstance(layers, dict) or not all(str(key).isdigit() for key in layers):
        raise BrainmisInputError(path, "'layers' must map hidden-state indices to objects")
    return {
        int(layer): _measure_values(path, entry, f"layers.{layer}")
        for layer, entry in sorted(layers.items(), key=lambda item: int(item[0]))
    }


def read_run_results(run_dir: Path) -> RunResults:
    """Every result file in ``run_dir/evaluation`` (absent files -> None)."""
    evaluation = evaluation_dir(run_dir)
    lm_epoch, lm_loss = None, None
    if (evaluation / LM_FILE).is_file():
        lm_epoch, lm_loss = read_lm_result(evaluation / LM_FILE)
    brain = None
    if (evaluation / BRAIN_FILE).is_file():
        brain = read_brain_alignment(evaluation / BRAIN_FILE)
    probing = None
    if (evaluation / PROBING_FILE).is_file():
        probing = read_probing_scores(evaluation / PROBING_FILE)
    similarity = None
    if (evaluation / BRAIN_SIMILARITY_FILE).is_file():
        similarity = read_brain_similarity(evaluation / BRAIN_SIMILARITY_FILE)
    layers = None
    if (evaluation / BRAIN_LAYERS_FILE).is_file():
        layers = read_layer_profile(evaluation / BRAIN_LAYERS_FILE)
    return RunResults(
        lm_epoch=lm_epoch,
        lm_loss=lm_loss,
        brain=brain,
        probing=probing,
        similarity=similarity,
        layers=layers,
    )
