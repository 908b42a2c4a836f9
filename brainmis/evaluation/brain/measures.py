"""Brain alignment measured other ways and at every layer, and the two files that keep them.

Beside the ridge of ``brain_alignment.json`` (:mod:`brainmis.evaluation.brain.alignment`),
an evaluation can add

- ``brain_similarity.json``: the encoder-free measures (RSA, linear CKA, Procrustes
  similarity; :mod:`brainmis.evaluation.brain.similarity`) of the evaluated layer's features
  against the true responses of the held-out run, over all selected voxels and per ROI;
- ``brain_layers.json``: a layer profile, the ridge (fitted on the non-test runs, scored on
  the test run, exactly as for the run's own layer) and the chosen encoder-free measures for
  every asked-for hidden state (0 = embeddings), all from one forward pass per batch.

Both files hold one record per evaluated epoch, so the callback and ``evaluate-brain`` can
add epochs without losing earlier ones::

    {"latest_epoch": E, "epochs": {"<E>": {...record of epoch E...}, ...}}

A ``brain_similarity.json`` record: ``{"epoch", "layer", "test_run", "n_test_trs",
"n_voxels", "seconds", "metrics": {name: {"all": float | null, "per_roi": {roi: float |
null}}}}``. A ``brain_layers.json`` record: ``{"epoch", "n_hidden_states", "test_run",
"seconds", "layers": {"<layer>": {"ridge_mean", "ridge_median", "ridge_nc_normalized",
<metric>: float | null, ...}}}``. Layer keys are non-negative hidden-state indices.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainmis.errors import BrainmisInputError
from brainmis.evaluation.brain.alignment import AlignmentData, align_features
from brainmis.evaluation.brain.similarity import SIMILARITY_METRICS, held_out_similarity
from brainmis.evaluation.extract import extract_layer_window_features, features_in_table_order
from brainmis.run_folder.layout import BRAIN_LAYERS_FILE, BRAIN_SIMILARITY_FILE
from brainmis.structured_files import read_mapping


def resolve_layers(
    spec: str | Sequence[int] | None, n_hidden_states: int, option: str = "--layers"
) -> tuple[int, ...]:
    """Non-negative hidden-state indices of ``spec``: ``"all"`` (every hidden state,
    embeddings = 0), a comma list ``"0,2,-1"`` or a sequence of ints (negative ones count from
    the end), sorted and deduplicated; ``()`` for None. Raises ``BrainmisInputError`` naming
    ``option`` for anything else or an index the model does not have."""
    if spec is None:
        return ()
    if isinstance(spec, str) and spec.strip().lower() == "all":
        return tuple(range(n_hidden_states))
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    available = f"the model has hidden states 0..{n_hidden_states - 1} (0 = embeddings)"
    layers = set()
    for item in items:
        try:
            layer = int(str(item).strip())
        except ValueError:
            raise BrainmisInputError(
                None, f"{option} {spec}: expected 'all' or a comma list of integers"
            ) from None
        if not -n_hidden_states <= layer < n_hidden_states:
            raise BrainmisInputError(None, f"{option} {layer}: {available}")
        layers.add(layer % n_hidden_states)
    if not layers:
        raise BrainmisInputError(None, f"{option}: no layer given; {available}")
    return tuple(sorted(layers))


def model_layer_window_features(
    model: nn.Module,
    data: AlignmentData,
    layers: Sequence[int],
    device: torch.device | None = None,
) -> dict[int, np.ndarray]:
    """Layer -> features ``(N, context_trs * hidden)`` float32 of all N windows in table
    order, from one forward pass per batch."""
    by_layer, sample_ids = extract_layer_window_features(
        model, data.windows, data.context_trs, layers, device=device
    )
    return {
        layer: features_in_table_order(features, sample_ids, data.n_windows)
        for layer, features in by_layer.items()
    }


def similarity_record(
    features: np.ndarray,
    data: AlignmentData,
    epoch: int,
    layer: int,
    metrics: Sequence[str],
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """The ``brain_similarity.json`` record of window features ``(N, F)`` of ``layer``."""
    start = time.perf_counter()
    scores = held_out_similarity(
        features,
        data.true_targets,
        data.window_runs,
        data.test_run,
        metrics=[name for name in metrics if name in SIMILARITY_METRICS],
        roi_masks=data.roi_masks,
        device=device,
    )
    return {
        "epoch": int(epoch),
        "layer": int(layer),
        "test_run": int(data.test_run),
        "n_test_trs": int(np.sum(np.asarray(data.window_runs) == data.test_run)),
        "n_voxels": int(data.true_targets.shape[1]),
        "seconds": time.perf_counter() - start,
        "metrics": {name: score.to_json() for name, score in scores.items()},
    }


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def layer_profile_record(
    features_by_layer: dict[int, np.ndarray],
    data: AlignmentData,
    epoch: int,
    n_hidden_states: int,
    metrics: Sequence[str] = (),
    alphas: np.ndarray | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """The ``brain_layers.json`` record: per layer the ridge's mean, median and
    ceiling-normalised r on the test run, and each chosen encoder-free measure (all voxels)."""
    start = time.perf_counter()
    similarity_metrics = [name for name in metrics if name in SIMILARITY_METRICS]
    layers: dict[str, dict[str, float | None]] = {}
    for layer in sorted(features_by_layer):
        features = features_by_layer[layer]
        ridge = align_features(features, data, epoch, alphas=alphas, device=device).ridge
        entry = {
            "ridge_mean": _finite_or_none(ridge.mean),
            "ridge_median": _finite_or_none(ridge.median),
            "ridge_nc_normalized": _finite_or_none(ridge.nc_normalized),
        }
        if similarity_metrics:
            scores = held_out_similarity(
                features,
                data.true_targets,
                data.window_runs,
                data.test_run,
                metrics=similarity_metrics,
                device=device,
            )
            entry.update({name: _finite_or_none(score.all) for name, score in scores.items()})
        layers[str(layer)] = entry
    return {
        "epoch": int(epoch),
        "n_hidden_states": int(n_hidden_states),
        "test_run": int(data.test_run),
        "seconds": time.perf_counter() - start,
        "layers": layers,
    }


def read_epoch_records(path: str | Path, what: str) -> dict[int, dict[str, Any]]:
    """Epoch -> record of a ``brain_similarity.json`` / ``brain_layers.json`` (``what``
    names it in errors); ``{}`` when the file is not there. Raises ``BrainmisInputError``
    naming the file when it is not ``{"epochs": {"<E>": {...}}}``."""
    path = Path(path)
    if not path.is_file():
        return {}
    values = read_mapping(path, what)
    epochs = values.get("epochs")
    if not isinstance(epochs, dict):
        raise BrainmisInputError(path, f"not a {what} (no 'epochs' object)")
    records = {}
    for key, record in epochs.items():
        if not str(key).isdigit() or not isinstance(record, dict):
            raise BrainmisInputError(
                path, f"'epochs' must map epoch numbers to objects, got {key!r}: {record!r}"
            )
        records[int(key)] = record
    return records


def add_epoch_record(path: str | Path, record: dict[str, Any], what: str) -> Path:
    """Write ``record`` (with its ``"epoch"``) into the file at ``path``, keeping the other
    epochs' records (an earlier record of the same epoch is replaced). Returns ``path``."""
    path = Path(path)
    records = read_epoch_records(path, what)
    records[int(record["epoch"])] = record
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "latest_epoch": max(records),
        "epochs": {str(epoch): records[epoch] for epoch in sorted(records)},
    }
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path


def write_measure_files(
    folder: str | Path,
    similarity: dict[str, Any] | None = None,
    layers: dict[str, Any] | None = None,
) -> list[Path]:
    """Add the given records to ``folder``'s ``brain_similarity.json`` / ``brain_layers.json``."""
    folder = Path(folder)
    written = []
    if similarity is not None:
        written.append(
            add_epoch_record(folder / BRAIN_SIMILARITY_FILE, similarity, "brain-similarity record")
        )
    if layers is not None:
        written.append(add_epoch_record(folder / BRAIN_LAYERS_FILE, layers, "layer-profile record"))
    return written


def measure_scalars(
    similarity: dict[str, Any] | None, layers: dict[str, Any] | None
) -> dict[str, float]:
    """Scalars to log: ``brain_similarity/<metric>`` (all voxels) and
    ``brain_layers/<layer>/<measure>``."""
    values: dict[str, float] = {}
    for name, score in ((similarity or {}).get("metrics") or {}).items():
        if score.get("all") is not None:
            values[f"brain_similarity/{name}"] = float(score["all"])
    for layer, entry in ((layers or {}).get("layers") or {}).items():
        for name, value in entry.items():
            if value is not None:
                values[f"brain_layers/{layer}/{name}"] = float(value)
    return values
