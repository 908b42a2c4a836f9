"""The run folder and the epoch as a Lightning trainer sees them, without a collective call.

``Trainer.log_dir`` broadcasts the folder from rank 0, so under DDP every rank must call it at
the same point; code that runs on rank 0 only (evaluation callbacks, result files) would hang
the job waiting for the other ranks. ``run_folder`` computes the same folder locally.

The project's one epoch convention, for every result file, every checkpoint and every logged
evaluation: E = the number of training epochs finished when the weights were evaluated or
saved (``epochs_finished``); ``PRETRAINED_EPOCH`` (0) is the untouched pretrained model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning.pytorch import Trainer

PRETRAINED_EPOCH = 0  # the untouched pretrained model (a fit's start, ``--model`` evaluations)


def run_folder(trainer: Trainer) -> Path:
    """The folder ``trainer.log_dir`` names, computed on this rank only (no broadcast).

    Meant for rank 0, where it equals ``trainer.log_dir``: the first logger's ``log_dir``
    (TensorBoard/CSV) or ``save_dir``, else ``trainer.default_root_dir``.
    """
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    if trainer.loggers:
        logger = trainer.loggers[0]
        folder = logger.log_dir if isinstance(logger, TensorBoardLogger | CSVLogger) else None
        folder = folder or logger.save_dir
        if folder is not None:
            return Path(folder)
    return Path(trainer.default_root_dir)


def epochs_finished(trainer: Trainer) -> int:
    """Training epochs finished so far: 0 at fit start, 1 in the first epoch's
    ``on_train_epoch_end`` (Lightning counts the epoch as processed before that hook),
    the number of epochs run at fit end."""
    return int(trainer.fit_loop.epoch_progress.current.processed)
