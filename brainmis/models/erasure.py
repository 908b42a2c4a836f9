"""Training-free removal baselines: a fixed affine projection of one layer's hidden states.

The conditions ``erased`` (LEACE-style least-squares erasure, this module) and ``inlp``
(iterative nullspace projection, ``brainmis.models.inlp``) fit a projection ``x' = mu +
(x - mu) @ P.T`` of the hidden size, once, from the frozen model's feature layer on the
TRAINING windows (every run but ``datamodule.test_run``), and install it as a forward hook
(``ProjectionHook``) on the module whose output is ``hidden_states[feature_layer]``: the
block ``L - 1`` for ``0 < L < n_layers``, the transformer body (its last hidden state, after
the final norm) for ``L = n_layers``. So the LM loss, the brain read-out and probing all see
the projected states, and only layers at and after ``L`` change. Layer 0 (the embeddings) is
refused.

Samples of the fit: the ridge reads the concatenation over the ``context_trs`` TR groups of
group-pooled states, while the hook acts per token on the hidden dimension. A window gives
``context_trs`` pooled vectors ``h_g`` (hidden,), each paired with the window's targets
``z`` (voxels,). The whitening uses the covariance of all stacked ``h_g``; the erased
subspace is the column space of ``W [S_0 ... S_{C-1}]`` with ``S_g = Cov(h_g, z)``, every
lag's cross-covariance side by side (hidden, C * voxels). Then ``P S_g = 0`` for every
group, so no linear read-out of the concatenated features (any lag) has a training-set
covariance with any voxel. Pooling is linear, so pooling erased tokens = erasing pooled
states (empty groups stay zeros).

The eraser (written from the least-squares concealment result, Belrose et al. 2023):
``W = Sigma_xx^{-1/2}`` (pseudo-inverse on the covariance's range), ``U`` an orthonormal
basis of the top ``rank`` left singular vectors of ``W S``, ``P = I - W^+ U U^T W``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from brainmis.errors import BrainmisInputError
from brainmis.models.architecture import transformer_blocks
from brainmis.models.features import transformer_body

ERASURE_CONDITIONS = ("erased", "inlp")
ERASURE_STATE = "brainmis_erasure"  # checkpoint key: {"layer", "matrix", "mean", "info"}
ERASURE_FILE = "brainmis_erasure.pt"  # written by `brainmis export` beside the merged model


class ProjectionHook(nn.Module):
    """Holds ``matrix (hidden, hidden)`` P and ``mean (hidden,)`` mu; ``apply`` maps
    ``(..., hidden)`` to ``mu + (x - mu) @ P.T``. Identity until ``set`` is called."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.register_buffer("matrix", torch.eye(hidden_size))
        self.register_buffer("mean", torch.zeros(hidden_size))
        self.fitted = False
        self.info: dict[str, Any] = {}
        self._handle = None

    def set(self, matrix: torch.Tensor, mean: torch.Tensor, info: dict[str, Any]) -> None:
        self.matrix.copy_(matrix.to(self.matrix))
        self.mean.copy_(mean.to(self.mean))
        self.fitted = True
        self.info = dict(info)

    def apply(self, hidden: torch.Tensor) -> torch.Tensor:
        matrix, mean = self.matrix.to(hidden.dtype), self.mean.to(hidden.dtype)
        return mean + (hidden - mean) @ matrix.T

    def install(self, model: nn.Module, layer: int) -> None:
        """Register the forward hook for ``hidden_states[layer]`` of ``model`` (LM or body;
        ``layer`` already non-negative, 1..n_layers)."""
        self.remove()
        body = transformer_body(model)
        n_layers = int(body.config.num_hidden_layers)
        if not 1 <= layer <= n_layers:
            raise BrainmisInputError(
                None, f"erasure needs feature_layer in 1..{n_layers} (not the embeddings), got {layer}"
            )
        if layer == n_layers:
            self._handle = body.register_forward_hook(self._body_hook, prepend=True)
        else:
            block = transformer_blocks(body).layers[layer - 1]
            # prepend: run before transformers' own output recorders (v5 records hidden_states
            # with forward hooks on the blocks), so hidden_states[layer] is the erased state
            self._handle = block.register_forward_hook(self._block_hook, prepend=True)

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _block_hook(self, module: nn.Module, args: Any, output: Any) -> Any:
        if not self.fitted:
            return output
        if isinstance(output, tuple):
            return (self.apply(output[0]), *output[1:])
        return self.apply(output)

    def _body_hook(self, module: nn.Module, args: Any, output: Any) -> Any:
        if not self.fitted:
            return output
        last = output[0]
        erased = self.apply(last)
        output["last_hidden_state"] = erased
        hidden_states = output.get("hidden_states")
        if hidden_states is not None:
            output["hidden_states"] = (*hidden_states[:-1], erased)
        return output

    def state(self, layer: int) -> dict[str, Any]:
        """What checkpoints and exports hold."""
        return {
            "layer": int(layer),
            "matrix": self.matrix.detach().cpu().clone(),
            "mean": self.mean.detach().cpu().clone(),
            "info": dict(self.info),
        }


def group_samples(
    features: np.ndarray, targets: np.ndarray, context_trs: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-group pooled states of windows and their targets.

    Args:
        features: ``(N, context_trs * hidden)`` window features.
        targets: ``(N, V)``.

    Returns:
        ``(stacked (N * C, hidden), [S_g (hidden, V) for g in groups])``: all groups as
        samples, and each group's cross-covariance with the targets.
    """
    n = features.shape[0]
    groups = features.reshape(n, context_trs, -1).astype(np.float64)
    z = targets.astype(np.float64) - targets.mean(axis=0)
    cross = [(g - g.mean(axis=0)).T @ z / n for g in groups.transpose(1, 0, 2)]
    return groups.reshape(n * context_trs, -1), cross


def leace_projection(
    x: np.ndarray, cross: list[np.ndarray], rank: int | None = None, rtol: float = 1e-8
) -> tuple[np.ndarray, np.ndarray, int]:
    """Least-squares eraser of the column space of the cross-covariances.

    Args:
        x: ``(n, hidden)`` samples (their covariance whitens).
        cross: cross-covariances ``(hidden, k_i)``, erased together.
        rank: directions erased; None = the full rank of ``W [cross]``.

    Returns:
        ``(P (hidden, hidden), mean (hidden,), rank erased)``, float64.
    """
    mean = x.mean(axis=0)
    xc = x - mean
    cov = xc.T @ xc / len(x)
    values, vectors = np.linalg.eigh(cov)
    keep = values > rtol * values.max()
    sqrt = np.sqrt(values[keep])
    basis = vectors[:, keep]
    whiten = basis @ np.diag(1 / sqrt) @ basis.T  # W
    unwhiten = basis @ np.diag(sqrt) @ basis.T  # W^+
    u, s, _ = np.linalg.svd(whiten @ np.concatenate(cross, axis=1), full_matrices=False)
    full = int((s > rtol * max(s.max(), 1e-300)).sum())
    r = full if rank is None else min(int(rank), full)
    # P = I - W^+ U U^T W, written as W^+ U_perp U_perp^T W with U_perp the rest of the
    # whitened range: equal on the data's support (x - mu has no part in the covariance's
    # null space) but exact where it matters: at full rank P = 0 and x' = mu, with no
    # float residue for a z-scoring ridge to blow back up
    rest = np.linalg.svd(np.eye(basis.shape[1]) - (basis.T @ u[:, :r]) @ (basis.T @ u[:, :r]).T)[0]
    rest = basis @ rest[:, : basis.shape[1] - r]  # (hidden, kept - r)
    projection = unwhiten @ rest @ rest.T @ whiten
    return projection, mean, r


def resolve_rank(value: int | str | None) -> int | None:
    """``model.erasure_rank``: an int >= 0, or None / ``"full"`` (the full rank)."""
    if value is None or value == "full":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BrainmisInputError(None, f"model.erasure_rank must be an int >= 0, null or 'full', got {value!r}")
    return value


def training_rows(data: Any) -> np.ndarray:
    """Boolean ``(N,)``: the windows of every run but the held-out test run."""
    return np.asarray(data.window_runs) != int(data.test_run)


def fit_removal(module: Any, datamodule: Any) -> dict[str, Any]:
    """Fit the condition's projection on the training windows of ``datamodule`` with the
    hook-free model, set it on ``module.erasure`` and install the hook; returns its info."""
    from brainmis.evaluation.brain.alignment import AlignmentData, model_window_features
    from brainmis.models.inlp import inlp_projection

    hp = module.hparams
    erasure: ProjectionHook = module.erasure
    erasure.remove()
    data = AlignmentData.from_datamodule(datamodule)
    was_training = module.training
    module.eval()
    features = model_window_features(module.backbone, data, layer=module.feature_layer)
    module.train(was_training)
    rows = training_rows(data)
    features, targets = features[rows], np.asarray(data.true_targets)[rows]
    x, cross = group_samples(features, targets, module.context_trs)
    mean = x.mean(axis=0)
    if module.condition == "erased":
        projection, mean, rank = leace_projection(x, cross, resolve_rank(hp.erasure_rank))
        info = {"method": "leace", "rank": rank, "fit_windows": int(rows.sum())}
    else:
        def log(step: int, r: float) -> None:
            print(f"inlp step {step}: cross-validated mean r {r:.4f}", flush=True)
            for logger in getattr(module, "loggers", []) or []:
                logger.log_metrics({"inlp/mean_r": r}, step=step)

        centred = features - np.tile(mean, module.context_trs)
        projection, history = inlp_projection(
            centred, targets, np.asarray(data.window_runs)[rows], module.context_trs,
            rank_per_step=hp.inlp_rank_per_step, target_r=hp.inlp_target_r,
            max_steps=hp.inlp_max_steps, log=log,
        )
        info = {"method": "inlp", "steps": len(history) - 1, "cv_mean_r": history,
                "fit_windows": int(rows.sum())}
    erasure.set(torch.from_numpy(projection), torch.from_numpy(mean), info)
    erasure.install(module.backbone, module.erasure_layer)
    return info


def restore_erasure(module: Any, checkpoint: dict[str, Any]) -> None:
    """Set and install the projection saved under ``checkpoint[ERASURE_STATE]``, if any."""
    state = checkpoint.get(ERASURE_STATE)
    if not state:
        return
    module.erasure.set(state["matrix"], state["mean"], state.get("info", {}))
    module.erasure.install(module.backbone, int(state["layer"]))
