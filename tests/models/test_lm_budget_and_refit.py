"""The LM-loss budget controller and the closed-form re-fitted head (issue 15)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

sys.path.insert(0, str(Path(__file__).parent))
from standin import StandInDataModule  # noqa: E402

from brainmis.errors import BrainmisInputError  # noqa: E402
from brainmis.models.checkpoint import load_checkpoint_module  # noqa: E402
from brainmis.models.head_refit import ridge_head_weights  # noqa: E402
from brainmis.models.lm_budget import LMBudgetController  # noqa: E402
from brainmis.models.losses import pearson_per_voxel  # noqa: E402
from brainmis.models.module import (  # noqa: E402
    HEAD_REFIT_STATE,
    LM_BUDGET_STATE,
    BrainMisalignmentModule,
)

STEPS_PER_EPOCH = 8  # the stand-in: 64 training windows, batches of 8


def test_controller_follows_the_pid_law_with_anti_windup():
    gains = dict(budget=0.01, lambda_max=0.5, k_p=5.0, k_i=2.0, k_d=10.0, setpoint=0.5)
    controller = LMBudgetController(**gains)
    controller.set_reference(4.0)
    # no excess: error 0.005 -> integral 0.005, lambda 5 * 0.005 + 2 * 0.005 (no rise yet)
    assert controller.update(4.0) == pytest.approx(0.035)
    # 2% above: error -0.015 -> integral clipped at 0, lambda clipped at 0
    assert controller.update(4.08) == 0.0 and controller.integral == 0.0
    assert controller.relative_excess == pytest.approx(0.02)
    # back to the reference: the fall of 0.02 adds 10 * 0.02 to 5 * 0.005 + 2 * 0.005
    assert controller.update(4.0) == pytest.approx(0.235)
    for _ in range(1000):  # far below the reference for long: lambda at the ceiling ...
        controller.update(3.0)
    assert controller.strength == 0.5 and controller.integral == pytest.approx(0.25)
    # ... and the integral is capped (anti-windup): without the rise term, one update at 3%
    # over budget would give 5 * -0.025 + 2 * 0.225 = 0.325, not the ceiling
    controller.k_d = 0.0
    assert controller.update(4.0 * 1.03) == pytest.approx(0.325)
    restored = LMBudgetController(**gains)
    restored.load_state_dict(controller.state_dict())
    assert restored.state_dict() == {**controller.state_dict(), "k_d": 10.0}


def test_controller_settings_are_checked():
    with pytest.raises(BrainmisInputError, match="lm_budget must be > 0"):
        LMBudgetController(budget=0.0)
    with pytest.raises(BrainmisInputError, match="setpoint"):
        LMBudgetController(budget=0.01, setpoint=1.5)


@pytest.mark.parametrize("shape", [(40, 60), (80, 20)])  # dual form, primal form
def test_ridge_head_is_the_ridge_solution(shape):
    n, n_features = shape
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(n, n_features, generator=generator) * 3 + 1
    targets = features[:, :5] @ torch.randn(5, 4, generator=generator) + torch.randn(n, 4)
    weight, bias = ridge_head_weights(features, targets, l2=0.1)
    x, y = features.double().numpy(), targets.double().numpy()
    xc, yc = x - x.mean(0), y - y.mean(0)
    alpha = 0.1 * (xc**2).sum() / n
    direct = np.linalg.solve(xc.T @ xc + alpha * np.eye(n_features), xc.T @ yc)  # (F, V)
    np.testing.assert_allclose(weight.numpy(), direct.T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bias.numpy(), y.mean(0) - x.mean(0) @ direct, rtol=1e-4, atol=1e-5)
    assert weight.shape == (4, n_features) and weight.dtype == torch.float32


def make_module(folder, **kwargs):
    kwargs.setdefault("n_voxels", 6)
    kwargs.setdefault("context_trs", 3)
    kwargs.setdefault("condition", "misaligned")
    return BrainMisalignmentModule(str(folder), **kwargs)


TRAINER_OPTIONS = ("enable_checkpointing", "callbacks", "log_every_n_steps")


def fit(folder, root, epochs, ckpt_path=None, logger=False, **kwargs):
    L.seed_everything(7, verbose=False)
    trainer_kwargs = {k: kwargs.pop(k) for k in TRAINER_OPTIONS if k in kwargs}
    module = make_module(folder, lr=5e-3, **kwargs)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        max_epochs=epochs,
        default_root_dir=root,
        **trainer_kwargs,
    )
    trainer.fit(module, datamodule=StandInDataModule(module.tokenizer), ckpt_path=ckpt_path)
    return module, trainer


BUDGET = dict(lm_budget=0.01, lm_budget_every=3, head_refit_every=2, head_refit_batches=3)


def test_budget_and_refit_state_resume_exactly(tiny_models, tmp_path):
    folder = tiny_models("gpt2")
    straight, _ = fit(folder, tmp_path / "a", epochs=2, enable_checkpointing=False, **BUDGET)
    first, trainer = fit(folder, tmp_path / "b", epochs=1, **BUDGET)
    path = trainer.checkpoint_callback.best_model_path
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint[LM_BUDGET_STATE]["updates"] == 1 + STEPS_PER_EPOCH // 3  # start + steps 3, 6
    assert len(checkpoint[HEAD_REFIT_STATE]["features"]) == 3
    resumed, _ = fit(folder, tmp_path / "b", epochs=2, ckpt_path=path, **BUDGET)
    assert resumed.lm_budget_controller == straight.lm_budget_controller
    assert resumed.lm_budget_controller.updates == 1 + 2 * STEPS_PER_EPOCH // 3
    assert resumed.lm_budget_controller.strength > 0
    weights = [k for k, p in straight.named_parameters() if p.requires_grad]
    for key in weights:
        assert torch.equal(straight.state_dict()[key], resumed.state_dict()[key]), key


def test_budget_trace_is_in_tensorboard_and_lambda_drives_the_reversal(tiny_models, tmp_path):
    logger = L.pytorch.loggers.TensorBoardLogger(tmp_path / "lightning_logs", name="run")
    module, trainer = fit(
        tiny_models("gpt2"), tmp_path, epochs=1, logger=logger, lm_budget=0.01, lm_budget_every=2
    )
    events = EventAccumulator(str(trainer.log_dir))
    events.Reload()
    trace = events.Scalars("budget/grl_lambda")
    assert [e.step for e in trace] == [0, 2, 4, 6, 8]
    assert trace[-1].value == pytest.approx(module.lm_budget_controller.strength)
    excess = events.Scalars("budget/relative_excess")
    assert excess[0].value == 0.0 and len(excess) == len(trace)
    reference = events.Scalars("budget/reference")[0].value
    lm_loss = events.Scalars("budget/lm_loss")[-1].value
    assert excess[-1].value == pytest.approx(lm_loss / reference - 1, rel=1e-4)
    assert module.grl_lambda_now() == module.lm_budget_controller.strength


def test_a_reference_run_folder_sets_the_reference(tiny_models, tmp_path):
    """The reference run's held-out (test) loss, carried to the validation windows by the
    pretrained model's ratio of validation to test loss."""
    run = tmp_path / "reference_run"
    (run / "evaluation").mkdir(parents=True)
    (run / "evaluation" / "lm.json").write_text(json.dumps({"epoch": 4, "lm_loss": 2.5}))
    pretrained = make_module(tiny_models("gpt2"))  # LoRA B starts at 0: the pretrained model
    data = StandInDataModule(pretrained.tokenizer)
    val_loss = pretrained.held_out_lm_loss(data.val_dataloader())
    test_loss = pretrained.held_out_lm_loss(data.test_dataloader())
    module, trainer = fit(
        tiny_models("gpt2"), tmp_path, epochs=1, lm_budget=0.05, lm_reference=str(run),
        lm_budget_every=100,
    )  # fmt: skip
    controller = module.lm_budget_controller
    assert controller.reference == pytest.approx(val_loss * 2.5 / test_loss, rel=1e-5)
    assert controller.relative_excess == pytest.approx(val_loss / controller.reference - 1)
    assert controller.updates == 1  # only the one at fit start (every 100 steps)
    shutil.rmtree(run)  # a fit-time input: its checkpoint still loads without it
    loaded = load_checkpoint_module(trainer.checkpoint_callback.best_model_path)
    assert loaded.module.hparams.lm_budget == 0.05


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(condition="tuned", lm_budget=0.01), "needs a reversed condition"),
        (dict(lm_reference=3.0), "lm_reference is set but model.lm_budget is not"),
        (dict(lm_budget=0.01, lm_reference="/no/such/run"), "no such file"),
        (dict(lm_budget=0.01, lm_reference=-1.0), "must be > 0"),
        (dict(head_refit_every=-1), "head_refit_every >= 0"),
    ],
)
def test_bad_budget_and_refit_settings_are_one_line_errors(tiny_models, kwargs, message):
    with pytest.raises(BrainmisInputError, match=message):
        make_module(tiny_models("gpt2"), **kwargs)


class TrainR(L.Callback):
    """The head's r on every training batch (logged before the step, so on a batch the
    latest re-fit did not see)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.values.append(float(trainer.callback_metrics["train/brain_r"]))


def test_refit_head_is_the_ridge_on_the_buffer_and_the_backbone_cannot_flip_it(
    tiny_models, tmp_path
):
    """A strong reversal against a slow head: without the re-fit the backbone turns the
    head's r negative (flips the sign of the brain information); with a re-fit every step
    it stays positive, and the head is the ridge solution on the buffered batches."""
    strong = dict(grl_lambda=1.0, grl_schedule="constant", head_lr=1e-4, head_refit_l2=0.1)
    train_r = {}
    for every in (0, 1):
        recorder = TrainR()
        module, _ = fit(
            tiny_models("gpt2"), tmp_path / str(every), epochs=2, enable_checkpointing=False,
            callbacks=[recorder], log_every_n_steps=1, head_refit_every=every,
            head_refit_batches=4, **strong,
        )  # fmt: skip
        train_r[every] = float(np.mean(recorder.values[-STEPS_PER_EPOCH:]))  # the 2nd epoch
    assert train_r[0] < -0.1 < 0.0 < train_r[1]
    features, targets = module.feature_buffer.stacked()
    assert features.shape == (4 * 8, 3 * 32)
    module.refit_head()
    weight, bias = ridge_head_weights(features, targets, 0.1)
    assert torch.equal(module.head.linear.weight, weight)
    assert torch.equal(module.head.linear.bias, bias)
    with torch.no_grad():
        head_r = pearson_per_voxel(module.head(features), targets)
        ridge_r = pearson_per_voxel(features @ weight.T + bias, targets)
    torch.testing.assert_close(head_r, ridge_r)
