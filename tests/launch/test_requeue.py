"""SlurmRequeueCallback in-process, with the SLURM environment faked and a stand-in
``scontrol``: the checkpoint lands at a clean point and a resumed fit matches an
uninterrupted one exactly."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from launch_helpers import EpochSeededModel, TinyData
from lightning.pytorch import Callback, Trainer, seed_everything

from brainmis.launch.requeue import SlurmRequeueCallback, next_hpc_checkpoint_path

EPOCHS = 3
BATCHES_PER_EPOCH = 8  # 64 samples / batch 8


class SignalAt(Callback):
    """Sends SIGUSR1 to this process after batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGUSR1)


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SLURM variables of a one-task batch job and an `scontrol` that logs its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol_calls.txt"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for name, value in {
        "SLURM_JOB_ID": "777",
        "SLURM_JOB_NAME": "requeue-test",
        "SLURM_NTASKS": "1",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_NODELIST": "localhost",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    return calls


def fit(root: Path, *callbacks: Callback) -> EpochSeededModel:
    seed_everything(5)
    model = EpochSeededModel()
    trainer = Trainer(
        max_epochs=EPOCHS,
        limit_val_batches=0,
        accelerator="cpu",
        devices=1,
        default_root_dir=root,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    trainer.fit(model, TinyData(shuffle=True))
    model.finished_step = trainer.global_step  # type: ignore[attr-defined]
    return model


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def test_next_hpc_checkpoint_path(tmp_path: Path) -> None:
    assert next_hpc_checkpoint_path(tmp_path / "missing").name == "hpc_ckpt_1.ckpt"
    (tmp_path / "hpc_ckpt_1.ckpt").touch()
    (tmp_path / "hpc_ckpt_3.ckpt").touch()
    (tmp_path / "hpc_ckpt_x.ckpt").touch()
    assert next_hpc_checkpoint_path(tmp_path) == tmp_path / "hpc_ckpt_4.ckpt"


def test_outside_slurm_the_callback_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [key for key in os.environ if key.startswith("SLURM_")]:
        monkeypatch.delenv(name)
    callback = SlurmRequeueCallback()
    model = fit(tmp_path / "run", callback)
    assert callback.job is None and model.finished_step == EPOCHS * BATCHES_PER_EPOCH
    assert signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None)


def test_signal_mid_epoch_saves_at_epoch_end_and_resume_is_exact(
    tmp_path: Path, fake_slurm: Path
) -> None:
    reference = fit(tmp_path / "reference")
    run_dir = tmp_path / "run"
    requeue = SlurmRequeueCallback(max_wait_s=60.0, kill_timeout_s=0.2)
    with pytest.raises(RuntimeError, match="requeued but not stopped"):
        fit(run_dir, requeue, SignalAt(epoch=1, batch=2))
    assert fake_slurm.read_text().split() == ["requeue", "777"]
    checkpoint = torch.load(run_dir / "hpc_ckpt_1.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2 * BATCHES_PER_EPOCH  # end of epoch 1, not batch 3

    resumed = fit(run_dir)  # Lightning finds hpc_ckpt_1.ckpt in the root dir by itself
    assert resumed.finished_step == EPOCHS * BATCHES_PER_EPOCH
    expected = weights(reference)
    for name, value in weights(resumed).items():
        assert torch.equal(value, expected[name]), name


def test_late_epoch_end_saves_at_the_next_batch(tmp_path: Path, fake_slurm: Path) -> None:
    run_dir = tmp_path / "run"
    requeue = SlurmRequeueCallback(max_wait_s=0.0, kill_timeout_s=0.2)
    with pytest.raises(RuntimeError, match="requeued but not stopped"):
        fit(run_dir, SignalAt(epoch=0, batch=2), requeue)
    checkpoint = torch.load(run_dir / "hpc_ckpt_1.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 3  # saved right after the batch that saw the signal
    resumed = fit(run_dir)
    assert resumed.finished_step == EPOCHS * BATCHES_PER_EPOCH


def test_signal_in_the_last_epoch_lets_the_fit_finish(tmp_path: Path, fake_slurm: Path) -> None:
    run_dir = tmp_path / "run"
    requeue = SlurmRequeueCallback(max_wait_s=60.0, kill_timeout_s=0.2)
    model = fit(run_dir, requeue, SignalAt(epoch=EPOCHS - 1, batch=1))
    assert model.finished_step == EPOCHS * BATCHES_PER_EPOCH
    assert not fake_slurm.exists()
    assert not list(run_dir.glob("hpc_ckpt_*.ckpt"))
