"""Leakage check: does a small non-linear read-out find brain information a ridge misses?

A one-hidden-layer MLP maps z-scored features to z-scored responses of all voxels at once,
on the same outer folds as the ridge (:mod:`brainmis.evaluation.brain.encoding`). Early stopping
uses an inner split: the last training run (or, with one training run, its last 20%). If a
misaligned model's ridge score drops but the MLP's does not, the brain information is
hidden from a linear read-out rather than gone.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from brainmis.evaluation.brain.encoding import RegionScore, outer_test_runs, summarize_voxels
from brainmis.ridge import pearson_per_column, zscore_train_apply

SINGLE_RUN_VALIDATION_FRACTION = 0.2


@dataclass
class MLPSettings:
    """Training settings of the leakage MLP (defaults suit a few thousand TRs on CPU)."""

    hidden: int = 256
    dropout: float = 0.2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    max_epochs: int = 200
    patience: int = 10
    seed: int = 0


@dataclass
class LeakageResult:
    """Per-voxel r of the MLP ``(V,)`` (mean over outer folds) and its summary."""

    r: np.ndarray
    summary: RegionScore
    epochs: list[int]
    test_runs: list[int]

    def to_json(self) -> dict:
        return {**asdict(self.summary), "epochs": self.epochs, "test_runs": self.test_runs}


def early_stopping_split(train_runs: np.ndarray) -> np.ndarray:
    """Bool ``(n_train,)``: True for the rows used to stop early (last run or last 20%)."""
    train_runs = np.asarray(train_runs)
    distinct = np.unique(train_runs)
    if len(distinct) >= 2:
        return train_runs == distinct[-1]
    validation = np.zeros(len(train_runs), dtype=bool)
    validation[int(len(train_runs) * (1 - SINGLE_RUN_VALIDATION_FRACTION)) :] = True
    return validation


def _train_mlp(
    X_fit: torch.Tensor,
    Y_fit: torch.Tensor,
    X_val: torch.Tensor,
    Y_val: torch.Tensor,
    settings: MLPSettings,
) -> tuple[nn.Module, int]:
    """Fit on ``(X_fit, Y_fit)``, keep the weights of the epoch with the lowest validation
    MSE; stop after ``patience`` epochs without improvement. Returns (model, best epoch)."""
    with torch.random.fork_rng(devices=[]):  # seeded, and the global RNG left untouched
        torch.manual_seed(settings.seed)
        return _train_mlp_seeded(X_fit, Y_fit, X_val, Y_val, settings)


def _train_mlp_seeded(
    X_fit: torch.Tensor,
    Y_fit: torch.Tensor,
    X_val: torch.Tensor,
    Y_val: torch.Tensor,
    settings: MLPSettings,
) -> tuple[nn.Module, int]:
    model = nn.Sequential(
        nn.Linear(X_fit.shape[1], settings.hidden),
        nn.GELU(),
        nn.Dropout(settings.dropout),
        nn.Linear(settings.hidden, Y_fit.shape[1]),
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    best_loss, best_epoch, best_state = float("inf"), 0, copy.deepcopy(model.state_dict())
    for epoch in range(settings.max_epochs):
        model.train()
        order = torch.randperm(len(X_fit))
        for start in range(0, len(order), settings.batch_size):
            rows = order[start : start + settings.batch_size]
            loss = (model(X_fit[rows]) - Y_fit[rows]).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = float((model(X_val) - Y_val).square().mean())
        if val_loss < best_loss:
            best_loss, best_epoch, best_state = val_loss, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= settings.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return model, best_epoch


def mlp_leakage(
    features: np.ndarray,
    responses: np.ndarray,
    runs: np.ndarray,
    test_runs: int | Sequence[int] | None = None,
    noise_ceiling: np.ndarray | None = None,
    settings: MLPSettings | None = None,
) -> LeakageResult:
    """MLP read-out scored like the ridge: Pearson r per voxel on held-out runs.

    Args:
        features: ``(N, F)``; responses: ``(N, V)`` true responses; runs: ``(N,)`` run index.
        test_runs: held-out run(s); None = leave-one-run-out.
        noise_ceiling: optional ``(V,)`` for the normalised mean.
        settings: :class:`MLPSettings`.
    """
    settings = settings or MLPSettings()
    features = torch.as_tensor(np.asarray(features, dtype=np.float32))
    responses = torch.as_tensor(np.asarray(responses, dtype=np.float32))
    runs = np.asarray(runs)
    folds = outer_test_runs(runs, test_runs)
    r_per_fold, epochs = [], []
    for test_run in folds:
        test = runs == test_run
        X_train, X_test = zscore_train_apply(features[~test], features[test])
        Y_train, Y_test = zscore_train_apply(responses[~test], responses[test])
        stop = torch.as_tensor(early_stopping_split(runs[~test]))
        model, epoch = _train_mlp(
            X_train[~stop], Y_train[~stop], X_train[stop], Y_train[stop], settings
        )
        with torch.no_grad():
            r_per_fold.append(pearson_per_column(model(X_test), Y_test).numpy())
        epochs.append(epoch)
    r = np.mean(r_per_fold, axis=0)
    return LeakageResult(
        r=r, summary=summarize_voxels(r, noise_ceiling), epochs=epochs, test_runs=folds
    )
