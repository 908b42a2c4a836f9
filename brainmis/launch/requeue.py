"""Auto-requeue on SLURM that checkpoints at a clean point of the training loop.

SLURM sends ``SIGUSR1`` some seconds before the time limit (``--signal=SIGUSR1@90``).
Lightning's own handler saves ``hpc_ckpt_N.ckpt`` inside the signal handler, i.e. wherever the
signal lands (possibly between an optimizer step and the progress counters that record it).
This callback only notes the signal; the checkpoint is written at the end of a training batch
(every rank agrees on which one), or at the end of the epoch when that comes soon enough:

- epoch end expected within ``max_wait_s`` of the signal -> save there. An end-of-epoch
  checkpoint resumes exactly (the module re-seeds the RNG per epoch): same final weights
  and metrics as a run that was never interrupted;
- otherwise -> save at the end of the current batch. Weights, optimizer and progress are
  consistent; the rest of that epoch sees a fresh draw of the batch order (Lightning warns:
  the train loader is not resumable mid-epoch).

Then rank 0 runs ``scontrol requeue`` and every rank waits for SLURM to stop the job. The
requeued job starts in the same folder (stable version, see ``brainmis.launch.slurm``) and
Lightning restores the newest ``hpc_ckpt_*.ckpt`` of ``trainer.default_root_dir`` by itself.
Outside SLURM the callback does nothing. Installed before Lightning's handlers, so Lightning
does not add its own ``SIGUSR1`` handler.
"""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from brainmis.launch.slurm import SlurmJob, slurm_job_from_env

log = logging.getLogger(__name__)

HPC_CHECKPOINT = re.compile(r"^hpc_ckpt_(\d+)\.ckpt$")


def next_hpc_checkpoint_path(folder: Path | str) -> Path:
    """``folder/hpc_ckpt_{N+1}.ckpt`` after the highest ``N`` there (Lightning's naming)."""
    folder = Path(folder)
    numbers = [
        int(match.group(1))
        for path in (folder.iterdir() if folder.is_dir() else [])
        if (match := HPC_CHECKPOINT.match(path.name))
    ]
    return folder / f"hpc_ckpt_{max(numbers, default=0) + 1}.ckpt"


class SlurmRequeueCallback(Callback):
    """Save an hpc checkpoint at a batch or epoch boundary on ``SIGUSR1``, then requeue.

    Args:
        max_wait_s: wait for the epoch end if it is expected this many seconds after the
            signal or sooner (keep it well under the ``--signal`` lead time); else save at
            the end of the current batch.
        requeue_signal: the signal name SLURM sends (``--signal=<name>@<seconds>``).
        kill_timeout_s: how long to wait for SLURM to stop the job after the requeue.
    """

    def __init__(
        self,
        max_wait_s: float = 45.0,
        requeue_signal: str = "SIGUSR1",
        kill_timeout_s: float = 600.0,
    ) -> None:
        self.max_wait_s = float(max_wait_s)
        self.signal_number = signal.Signals[requeue_signal]
        self.kill_timeout_s = float(kill_timeout_s)
        self.job: SlurmJob | None = None
        self._signal_time: float | None = None
        self._previous_handler: Any = None
        self._installed = False
        self._batch_started = 0.0
        self._mean_batch_s: float | None = None
        self._save_at_epoch_end = False

    # --- signal --------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._signal_time is None:
            self._signal_time = time.monotonic()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.job = slurm_job_from_env()
        if stage != "fit" or self.job is None or self._installed:
            return
        if threading.current_thread() is not threading.main_thread():
            log.warning("SlurmRequeueCallback: not in the main thread; no signal handler set")
            return
        self._previous_handler = signal.signal(self.signal_number, self._on_signal)
        self._installed = True

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._remove_handler()

    def on_exception(self, trainer: pl.Trainer, pl_module: Any, exception: BaseException) -> None:
        # Lightning skips ``teardown`` hooks after an exception, and then puts back the handlers
        # it found when it started (ours among them): ours only records a time, so a stray
        # signal after a failed fit does nothing.
        self._remove_handler()

    def _remove_handler(self) -> None:
        if self._installed:
            signal.signal(self.signal_number, self._previous_handler or signal.SIG_DFL)
            self._installed = False

    # --- deciding where to save ----------------------------------------------------------

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._batch_started = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        if not self._installed:
            return
        seconds = time.monotonic() - self._batch_started
        previous = self._mean_batch_s
        self._mean_batch_s = seconds if previous is None else 0.8 * previous + 0.2 * seconds
        requested = trainer.strategy.reduce_boolean_decision(
            self._signal_time is not None, all=False
        )
        if not requested or self._save_at_epoch_end:
            return
        batch_index = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        remaining = max(float(trainer.num_training_batches) - batch_index, 0.0)
        waited = time.monotonic() - (self._signal_time or time.monotonic())
        epoch_end_in = remaining * (self._mean_batch_s or 0.0)
        wait_for_epoch_end = bool(
            trainer.strategy.broadcast(waited + epoch_end_in <= self.max_wait_s, src=0)
        )
        if wait_for_epoch_end:
            self._save_at_epoch_end = True
            return
        self._save_and_requeue(trainer, "end of batch")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._installed and self._save_at_epoch_end:
            if self._is_last_epoch(trainer):
                log.info("requeue signal in the last epoch: finishing instead of requeueing")
                self._save_at_epoch_end = False
                self._signal_time = None
                return
            self._save_and_requeue(trainer, "end of epoch")

    @staticmethod
    def _is_last_epoch(trainer: pl.Trainer) -> bool:
        last_epoch = trainer.max_epochs is not None and trainer.current_epoch + 1 >= max(
            trainer.max_epochs, 1
        )
        last_step = trainer.max_steps not in (None, -1) and trainer.global_step >= trainer.max_steps
        return last_epoch or last_step

    # --- saving and requeueing -----------------------------------------------------------

    def _save_and_requeue(self, trainer: pl.Trainer, where: str) -> None:
        assert self.job is not None
        folder = Path(trainer.default_root_dir)
        path = next_hpc_checkpoint_path(folder) if trainer.is_global_zero else None
        path = trainer.strategy.broadcast(path, src=0)
        for logger in trainer.loggers:
            logger.save()
        trainer.save_checkpoint(path)
        requeued = False
        if trainer.is_global_zero:
            log.info(
                f"requeue signal: saved {path} at the {where}; requeueing {self.job.requeue_id}"
            )
            result = subprocess.run(
                ["scontrol", "requeue", self.job.requeue_id],
                capture_output=True,
                text=True,
                check=False,
            )
            requeued = result.returncode == 0
            if not requeued:
                log.warning(f"scontrol requeue failed: {result.stderr.strip()}")
        requeued = bool(trainer.strategy.broadcast(requeued, src=0))
        self._signal_time = None
        self._save_at_epoch_end = False
        if not requeued:
            return  # keep training; the hpc checkpoint is there for a manual restart
        for logger in trainer.loggers:
            logger.finalize("requeued")
        deadline = time.monotonic() + self.kill_timeout_s
        while time.monotonic() < deadline:  # SLURM stops every task of the job
            time.sleep(1.0)
        raise RuntimeError(f"job {self.job.requeue_id} was requeued but not stopped")
