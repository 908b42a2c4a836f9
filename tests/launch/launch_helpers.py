"""Small Lightning pieces for the launch tests: a boring model and a datamodule that looks
like ``BrainDataModule`` to the manifest (bundle path, dataset name, subject, fold)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningDataModule, Trainer
from lightning.pytorch.demos.boring_classes import BoringModel, RandomDataset
from torch.utils.data import DataLoader, Sampler


@dataclass
class NamedSubject:
    name: str


class TinyModel(BoringModel):
    """BoringModel with a condition attribute and hparams, like the real module."""

    def __init__(self, condition: str = "tuned", pretrained_path: str = "models/tiny-gpt2"):
        super().__init__()
        self.save_hyperparameters()
        self.condition = condition


class TinyData(LightningDataModule):
    """64 fixed random samples of 32 values; shuffled training order (seeded by the trainer)."""

    def __init__(self, bundle_path: Path | None = None, fold: int = 1, shuffle: bool = True):
        super().__init__()
        self.save_hyperparameters()
        self.bundle_path = bundle_path
        self.dataset_name = "synthetic-hp"
        self.subject = NamedSubject("F")
        self.n_voxels = 32
        generator = torch.Generator().manual_seed(0)
        self.samples = torch.randn(64, 32, generator=generator)
        self.shuffle = shuffle

    def train_dataloader(self) -> DataLoader:
        dataset = RandomDataset(32, 64)
        dataset.data = self.samples
        if not self.shuffle:
            return DataLoader(dataset, batch_size=8)
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        sampler = EpochSeededSampler(len(dataset), seed=11, epoch=epoch)
        return DataLoader(dataset, batch_size=8, sampler=sampler, generator=torch.Generator())


class EpochSeededSampler(Sampler[int]):
    """Order of epoch ``e`` = a permutation drawn from ``(seed, e)`` alone, computed when the
    epoch's iteration starts. Created with the trainer's current epoch, so a fit resumed at
    epoch ``e`` draws epoch ``e``'s order even though Lightning pre-fetches the first batch
    before it calls ``set_epoch``. (The loader's own generator keeps the global RNG untouched.)
    """

    def __init__(self, size: int, seed: int, epoch: int = 0) -> None:
        self.size, self.seed, self.epoch = size, seed, epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def val_dataloader(self) -> DataLoader:
        dataset = RandomDataset(32, 16)
        dataset.data = self.samples[:16]
        return DataLoader(dataset, batch_size=8)


class EpochSeededModel(TinyModel):
    """Re-seeds torch at each epoch start from (seed, epoch), as the real module does, so an
    end-of-epoch checkpoint resumes with the same batch order as an uninterrupted fit."""

    def on_train_epoch_start(self) -> None:
        torch.manual_seed(1000 + self.current_epoch)


PAUSE_MARKER_VARIABLE = "BRAINMIS_TEST_PAUSE_MARKER"


class PauseMidEpoch(Callback):
    """Holds a fit still in the middle of an epoch so a test can kill it there: after batch
    ``batch`` of epoch ``epoch`` has trained, write the file named by the environment variable
    ``BRAINMIS_TEST_PAUSE_MARKER`` and sleep; without that variable it does nothing (so the
    same command line serves the reference and the restarted fit). Touches neither the weights
    nor any RNG. Added on the command line (``launch_helpers`` on PYTHONPATH)."""

    def __init__(self, epoch: int, batch: int, seconds: float = 600.0) -> None:
        self.epoch, self.batch, self.seconds = epoch, batch, seconds

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        marker = os.environ.get(PAUSE_MARKER_VARIABLE)
        batch_idx = args[-1]
        if marker and trainer.current_epoch == self.epoch and batch_idx == self.batch:
            Path(marker).write_text(f"epoch {self.epoch} batch {self.batch}\n")
            time.sleep(self.seconds)


STEP_SECONDS_VARIABLE = "BRAINMIS_TEST_STEP_SECONDS"


class SlowSteps(Callback):
    """Sleeps ``$BRAINMIS_TEST_STEP_SECONDS`` after every training batch, so a test can signal
    a job in the middle of training however fast the machine is; without that variable it
    does nothing. Touches neither the weights nor any RNG."""

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        seconds = float(os.environ.get(STEP_SECONDS_VARIABLE) or 0)
        if seconds > 0:
            time.sleep(seconds)
