"""The dual-objective LightningModule: LoRA language model + linear brain head.

``L = w_lm * L_lm + w_ba * L_ba + head penalty``. The brain head reads the window features
(``brainmis.models.features``: chosen layer, mean-pooled per TR group, concatenated) and
predicts the voxel responses of the target TR; ``L_ba = -mean_v r_v`` over the batch.
The condition decides what the backbone learns from the head:

- ``misaligned``: gradient reversal between features and head, true targets: the head learns
  to predict the brain and the backbone learns to make that impossible.
- ``preserving``: the same, but the datamodule shuffles the targets against the stimuli
  (the CLI links ``condition`` to ``data.shuffle_targets``): a control with identical
  training pressure and no brain information.
- ``tuned``: no reversal: the backbone learns to predict the brain.
- ``lm_only``: the backbone learns from the LM loss only; the head is trained on detached
  features, so its r is still logged.
- ``noise_adversary``: the misaligned recipe against AR(1) noise with the voxels' mean,
  variance and lag-1 autocorrelation (the CLI links ``condition`` to ``data.noise_targets``):
  what adversarial training does to the model by itself, with no stimulus information in
  the targets at all.
- ``erased`` / ``inlp``: training-free removal baselines: a fixed projection of the feature
  layer's hidden states, fitted on the training runs (LEACE-style least squares,
  ``brainmis.models.erasure``; iterative nullspace projection, ``brainmis.models.inlp``) and
  applied by a forward hook; no weight is updated.

Two options act on the reversed conditions (docs/training.md):

- ``lm_budget``: the reversal strength is set by a PID controller
  (``brainmis.models.lm_budget``) from the LM loss on the validation windows, measured every
  ``lm_budget_every`` steps, so that the held-out LM loss stays within the budget of a
  reference (the pretrained model's, measured at fit start, or ``lm_reference``).
- ``head_refit_every``: every N steps the head is re-fitted in closed form by ridge on the
  last ``head_refit_batches`` batches' features (``brainmis.models.head_refit``), so the
  backbone cannot escape the adversary by flipping the sign of the brain information.

Checkpoints hold only the trainable weights (LoRA + head). The training order and the
global torch RNG (BERT masks, dropout) of every epoch are seeded from (seed, epoch, rank), so
a fit resumed from an end-of-epoch checkpoint repeats the uninterrupted fit exactly.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch.utils.data import RandomSampler
from torchmetrics import MeanMetric, PearsonCorrCoef

from brainmis.errors import BrainmisInputError
from brainmis.models.backbone import load_backbone
from brainmis.models.brain_head import BrainHead
from brainmis.models.erasure import ERASURE_CONDITIONS, ERASURE_STATE, ProjectionHook, fit_removal, resolve_rank, restore_erasure
from brainmis.models.features import pool_groups, transformer_body
from brainmis.models.gradient_reversal import GRL_SCHEDULES, grl_strength, reverse_gradient
from brainmis.models.head_refit import FeatureBuffer, ridge_head_weights
from brainmis.models.lm_budget import LMBudgetController
from brainmis.models.lm_windows import window_lm_losses, write_lm_windows
from brainmis.models.lora import add_lora
from brainmis.models.losses import pearson_loss
from brainmis.models.masking import IGNORE_INDEX, mask_tokens
from brainmis.models.quantization import check_quantization
from brainmis.models.sharding import clean_parameter_name, clip_grad_norm, is_sharded
from brainmis.run_folder.layout import LM_FILE, evaluation_dir
from brainmis.run_folder.trainer import epochs_finished, run_folder
from brainmis.structured_files import read_mapping

CONDITIONS = ("misaligned", "preserving", "tuned", "lm_only", "noise_adversary", *ERASURE_CONDITIONS)
REVERSED_CONDITIONS = ("misaligned", "preserving", "noise_adversary")
LM_BUDGET_STATE = "brainmis_lm_budget"  # checkpoint keys of the controller and the buffer
HEAD_REFIT_STATE = "brainmis_head_refit_buffer"
EVAL_MASK_SEED = 1234  # fixed BERT masks in validation/test, comparable across epochs and runs


def nan_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over the finite entries (per-voxel r is NaN for constant voxels); NaN if none."""
    finite = torch.isfinite(values)
    if not finite.any():
        return torch.tensor(float("nan"), device=values.device)
    return values[finite].mean()


def hidden_states_of(output: Any) -> tuple[torch.Tensor, ...]:
    """``output.hidden_states``, or a clear error where the model returned none."""
    if output.hidden_states is None:
        raise RuntimeError(
            "the model returned no hidden_states: a transformers 5 model that was pickled"
            " (e.g. by strategy=ddp_spawn) loses its output-capturing hooks; use strategy=ddp"
            " (one process per device) or ddp_fork"
        )
    return output.hidden_states


def given_lm_reference(value: float | str | None) -> float | None:
    """``model.lm_reference`` as a held-out LM loss (nats per token), or None.

    A number is taken as it is; a path names a run folder (its ``evaluation/lm.json`` is
    read) or an ``lm.json`` itself.
    """
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        source: Any = None
    else:
        path = Path(str(value))
        source = evaluation_dir(path) / LM_FILE if path.is_dir() else path
        if not source.is_file():
            raise BrainmisInputError(
                source,
                "model.lm_reference: no such file (give a run folder, its lm.json or a number)",
            )
        record = read_mapping(source, "held-out LM loss record")
        number = record.get("lm_loss")
        if not isinstance(number, int | float) or isinstance(number, bool):
            raise BrainmisInputError(
                source, "model.lm_reference: the record has no numeric lm_loss"
            )
        number = float(number)
    if not (math.isfinite(number) and number > 0):
        raise BrainmisInputError(
            source, f"model.lm_reference: the reference LM loss must be > 0, got {number}"
        )
    return number


class BrainMisalignmentModule(LightningModule):
    """LoRA-tuned language model with a brain head; see the module docstring.

    Args:
        pretrained_path: local model folder (``save_pretrained`` output).
        n_voxels: voxels predicted by the head (linked from the datamodule by the CLI).
        condition: ``misaligned | preserving | tuned | lm_only``.
        family: the LoRA defaults' family (``brainmis.models.lora.FAMILY_TARGETS``); None =
            the folder's ``config.json`` ``model_type`` (any; docs/models.md).
        objective: ``auto`` (from ``config.json``), ``masked`` or ``causal``.
        dtype: base weights dtype (``auto`` = as saved); LoRA and head stay float32.
        quantization: None, ``4bit`` or ``8bit``: load the frozen base with bitsandbytes (one
            CUDA GPU; ``brainmis.models.quantization``); LoRA and head stay float32.
        context_trs: TR groups per window (linked from the datamodule by the CLI).
        feature_layer: index into ``hidden_states`` (0 embeddings, -1 last block).
        w_lm, w_ba: weights of the LM and brain losses (paper: 0.1 and 10).
        grl_lambda: reversal strength (the ramp's maximum under ``grl_schedule="dann"``).
            Not published; 0.05 keeps the held-out LM loss within ~2% of ``preserving`` on
            the synthetic default with the backbone-only gradient clipping (see
            docs/training.md for the trade-off).
        grl_schedule: ``dann`` (ramp ``2/(1+exp(-gamma p)) - 1`` over training progress p)
            or ``constant``.
        grl_gamma: steepness of the ramp.
        head_l2: ridge penalty ``head_l2 * ||W||^2`` of the head's weights.
        lora_r, lora_alpha, lora_dropout: LoRA rank, scale and dropout.
        lora_target_modules: module names; None = the family's defaults, or every linear
            layer of the blocks for a family without defaults (``brainmis.models.lora``).
        lora_layers: block indices that get adapters; None = all.
        lora_include_mlp: also adapt the MLP projections of the family's defaults (llama ...).
        gradient_checkpointing: non-reentrant checkpointing of the backbone.
        lr, weight_decay: AdamW settings for LoRA and head.
        head_lr: learning rate of the head (None = ``lr``). Default 10x ``lr``: an
            adversarial head must re-fit faster than the backbone moves, or the backbone
            only flips the sign of the brain information instead of removing it.
        mlm_probability: share of tokens predicted by the masked-LM loss (bert).
        lm_budget: relative LM-loss budget (0.01 = at most 1% above the reference); None =
            off. Reversed conditions only. The controller's lambda replaces ``grl_lambda``
            and its schedule.
        lm_reference: the reference: None = the pretrained model's LM loss on the
            validation windows, measured at fit start; a number, or a run folder (or its
            ``evaluation/lm.json``), = a held-out LM loss as ``lm.json`` records it (test
            run), carried over to the validation windows by the pretrained model's ratio
            of validation to test loss, both measured at fit start.
        lm_budget_every: training steps between two controller updates.
        lm_budget_batches: validation batches measured per update (None = all).
        lm_budget_lambda_max: the controller's ceiling on lambda.
        lm_budget_kp, lm_budget_ki, lm_budget_kd: proportional, integral and derivative gains
            (lambda per unit of relative excess; see ``brainmis.models.lm_budget``).
        lm_budget_setpoint: fraction of the budget the controller aims at.
        head_refit_every: re-fit the head by ridge every this many training steps (0 = off).
        head_refit_batches: training batches in the re-fit's buffer.
        head_refit_l2: ridge penalty of the re-fit, relative to the mean squared norm of the
            centred features.
        erasure_rank: ``erased``: directions erased (int >= 0); None or ``"full"`` = the full
            rank of the whitened cross-covariance.
        inlp_rank_per_step, inlp_target_r, inlp_max_steps: ``inlp``: directions projected out
            per iteration, the cross-validated mean r at which it stops, and its ceiling.
    """

    def __init__(
        self,
        pretrained_path: str,
        n_voxels: int,
        condition: str = "misaligned",
        family: str | None = None,
        objective: str = "auto",
        dtype: str = "auto",
        quantization: str | None = None,
        context_trs: int = 5,
        feature_layer: int = -1,
        w_lm: float = 0.1,
        w_ba: float = 10.0,
        grl_lambda: float = 0.05,
        grl_schedule: str = "dann",
        grl_gamma: float = 10.0,
        head_l2: float = 1e-3,
        lora_r: int = 8,
        lora_alpha: int = 8,
        lora_dropout: float = 0.0,
        lora_target_modules: list[str] | None = None,
        lora_layers: list[int] | None = None,
        lora_include_mlp: bool = False,
        gradient_checkpointing: bool = False,
        lr: float = 5e-4,
        weight_decay: float = 0.0,
        head_lr: float | None = 5e-3,
        mlm_probability: float = 0.15,
        lm_budget: float | None = None,
        lm_reference: float | str | None = None,
        lm_budget_every: int = 5,
        lm_budget_batches: int | None = None,
        lm_budget_lambda_max: float = 0.2,
        lm_budget_kp: float = 2.0,
        lm_budget_ki: float = 0.25,
        lm_budget_kd: float = 50.0,
        lm_budget_setpoint: float = 0.5,
        head_refit_every: int = 0,
        head_refit_batches: int = 8,
        head_refit_l2: float = 1.0,
        erasure_rank: int | str | None = None,
        inlp_rank_per_step: int = 1,
        inlp_target_r: float = 0.02,
        inlp_max_steps: int = 20,
    ):
        super().__init__()
        if condition not in CONDITIONS:
            raise BrainmisInputError(
                None, f"model.condition {condition!r}: use one of {CONDITIONS}"
            )
        if grl_schedule not in GRL_SCHEDULES:
            raise BrainmisInputError(
                None, f"model.grl_schedule {grl_schedule!r}: use one of {GRL_SCHEDULES}"
            )
        if n_voxels < 1 or context_trs < 1:
            raise BrainmisInputError(
                None, f"need n_voxels >= 1 and context_trs >= 1, got {n_voxels}, {context_trs}"
            )
        self.save_hyperparameters()
        self.lm_budget_controller = self._make_budget_controller()
        self.given_lm_reference = given_lm_reference(lm_reference)
        self.feature_buffer = self._make_feature_buffer()
        check_quantization(quantization, pretrained_path)  # one line, before loading anything
        loaded = load_backbone(
            pretrained_path,
            family=family,
            dtype=dtype,
            objective=objective,
            quantization=quantization,
        )
        self.family = loaded.family
        self.objective = loaded.objective
        self.mlm_head = loaded.mlm_head
        self.tokenizer = loaded.tokenizer
        self.condition = condition
        self.context_trs = context_trs
        self.feature_layer = feature_layer
        n_layers = loaded.model.config.num_hidden_layers
        if not -(n_layers + 1) <= feature_layer <= n_layers:
            raise BrainmisInputError(
                pretrained_path, f"feature_layer {feature_layer} outside the model's 0..{n_layers}"
            )
        loaded.model.train()  # dropout of the base as in ordinary fine-tuning
        self.backbone = add_lora(
            loaded.model,
            self.family,
            r=lora_r,
            alpha=lora_alpha,
            dropout=lora_dropout,
            target_modules=lora_target_modules,
            layers_to_transform=lora_layers,
            include_mlp=lora_include_mlp,
            gradient_checkpointing=gradient_checkpointing,
        )
        hidden_size = loaded.model.config.hidden_size
        self.head = BrainHead(context_trs * hidden_size, n_voxels, l2=head_l2)
        # erased / inlp: a fixed projection of hidden_states[feature_layer] (fitted in setup)
        self.erasure = ProjectionHook(hidden_size)
        self.erasure_layer = feature_layer % (n_layers + 1)
        resolve_rank(erasure_rank)  # one-line refusal of a bad value
        if condition in ERASURE_CONDITIONS and weight_decay:
            raise BrainmisInputError(None, f"model.condition {condition} trains nothing: set model.weight_decay to 0")
        self.val_lm_loss = MeanMetric()
        self.test_lm_loss = MeanMetric()
        self.val_brain_r = PearsonCorrCoef(num_outputs=n_voxels)
        self.test_brain_r = PearsonCorrCoef(num_outputs=n_voxels)
        # The frozen base is not saved in checkpoints; loading one restores LoRA + head only.
        self.strict_loading = False
        self._step_started = 0.0
        self._eval_generator: torch.Generator | None = None
        self._budget_batches: list[dict[str, torch.Tensor]] | None = None
        self._last_adapted_step: int | None = None

    def _make_budget_controller(self) -> LMBudgetController | None:
        hp = self.hparams
        if hp.lm_budget is None:
            if hp.lm_reference is not None:
                raise BrainmisInputError(
                    None, "model.lm_reference is set but model.lm_budget is not"
                )
            return None
        if hp.condition not in REVERSED_CONDITIONS:
            raise BrainmisInputError(
                None,
                f"model.lm_budget controls the reversal strength, so it needs a reversed "
                f"condition ({', '.join(REVERSED_CONDITIONS)}), not {hp.condition!r}",
            )
        if hp.lm_budget_every < 1 or (
            hp.lm_budget_batches is not None and hp.lm_budget_batches < 1
        ):
            raise BrainmisInputError(
                None,
                f"model.lm_budget_every must be >= 1 and model.lm_budget_batches >= 1 (or null), "
                f"got {hp.lm_budget_every}, {hp.lm_budget_batches}",
            )
        return LMBudgetController(
            budget=float(hp.lm_budget),
            lambda_max=float(hp.lm_budget_lambda_max),
            k_p=float(hp.lm_budget_kp),
            k_i=float(hp.lm_budget_ki),
            k_d=float(hp.lm_budget_kd),
            setpoint=float(hp.lm_budget_setpoint),
        )

    def _make_feature_buffer(self) -> FeatureBuffer | None:
        hp = self.hparams
        if hp.head_refit_every < 0 or hp.head_refit_batches < 1 or not hp.head_refit_l2 > 0:
            raise BrainmisInputError(
                None,
                "need model.head_refit_every >= 0 (0 = off), model.head_refit_batches >= 1 and "
                f"model.head_refit_l2 > 0, got {hp.head_refit_every}, {hp.head_refit_batches}, "
                f"{hp.head_refit_l2}",
            )
        return FeatureBuffer(hp.head_refit_batches) if hp.head_refit_every > 0 else None

    # ---------------------------------------------------------------- forward pieces
    def lm_loss_and_features(
        self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """LM loss, window features and the number of predicted tokens of a batch.

        Causal LMs: one forward with ``output_hidden_states``. Masked LMs: one body forward
        on the masked and the unmasked copies stacked along the batch (features come from the
        unmasked copy), and the MLM head only on the masked positions.

        Returns:
            ``(lm_loss scalar, features (B, context_trs * hidden), n_predicted scalar)``.
        """
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        group_ids = batch["group_ids"]
        if self.objective == "masked":
            return self._masked_lm_loss_and_features(
                input_ids, attention_mask, group_ids, generator
            )
        labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
        out = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            labels=labels,
            output_hidden_states=True,
        )
        features = pool_groups(
            hidden_states_of(out)[self.feature_layer], group_ids, self.context_trs
        )
        n_predicted = (labels[:, 1:] != IGNORE_INDEX).sum()
        return out.loss, features, n_predicted

    def _masked_lm_loss_and_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        group_ids: torch.Tensor,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        masked_ids, labels = mask_tokens(
            input_ids,
            maskable=group_ids >= 0,
            mask_token_id=self.tokenizer.mask_token_id,
            vocab_size=len(self.tokenizer),
            probability=self.hparams.mlm_probability,
            generator=generator,
        )
        batch_size = input_ids.shape[0]
        stacked = dict(
            input_ids=torch.cat([masked_ids, input_ids]),
            attention_mask=torch.cat([attention_mask, attention_mask]),
            output_hidden_states=True,
        )
        chosen = labels != IGNORE_INDEX
        if self.mlm_head is not None:  # the body, then the head on the masked positions only
            out = transformer_body(self.backbone)(**stacked)
            masked_hidden = out.last_hidden_state[:batch_size][chosen]  # (n_masked, hidden)
            logits = self.mlm_head(self.backbone.get_base_model(), masked_hidden)
        else:  # a head that needs more than the hidden states: the whole model
            out = self.backbone(**stacked)
            logits = out.logits[:batch_size][chosen]
        features = pool_groups(
            hidden_states_of(out)[self.feature_layer][batch_size:], group_ids, self.context_trs
        )
        if logits.shape[0] == 0:  # nothing masked in this batch: a zero that keeps the graph
            lm_loss = hidden_states_of(out)[-1].sum() * 0.0
        else:
            lm_loss = torch.nn.functional.cross_entropy(logits.float(), labels[chosen])
        return lm_loss, features, chosen.sum()

    def grl_lambda_now(self) -> float:
        """Reversal strength: the budget controller's lambda under ``lm_budget``, else the
        schedule's at the current training progress (global step / total steps)."""
        if self.lm_budget_controller is not None:
            return self.lm_budget_controller.strength
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else math.inf
        progress = self.global_step / total if math.isfinite(total) and total > 0 else 1.0
        return grl_strength(
            progress, self.hparams.grl_lambda, self.hparams.grl_schedule, self.hparams.grl_gamma
        )

    def head_input(self, features: torch.Tensor, strength: float) -> torch.Tensor:
        """What the head sees: reversed-gradient features, plain features or detached ones."""
        if self.condition in REVERSED_CONDITIONS:
            return reverse_gradient(features, strength)
        if self.condition == "lm_only":
            return features.detach()
        return features

    # ---------------------------------------------------------------- training
    def setup(self, stage: str) -> None:
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        if self.condition in ERASURE_CONDITIONS and stage == "fit" and not self.erasure.fitted:
            fit_removal(self, datamodule)  # brainmis.models.erasure: training windows only

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.condition in ERASURE_CONDITIONS:  # training-free: a zero-gradient step only
            return self.head.linear.weight.sum() * 0.0
        lm_loss, features, _ = self.lm_loss_and_features(batch)
        strength = self.grl_lambda_now()
        predicted = self.head(self.head_input(features, strength))
        brain_loss = pearson_loss(predicted, batch["targets"])
        loss = self.hparams.w_lm * lm_loss + self.hparams.w_ba * brain_loss + self.head.penalty()
        if self.feature_buffer is not None:
            self.feature_buffer.add(features, batch["targets"])
        if self.writes_logs_now():
            batch_size = batch["input_ids"].shape[0]
            self.log_dict(
                {
                    "train/lm_loss": lm_loss.detach(),
                    "train/brain_loss": brain_loss.detach(),
                    "train/brain_r": -brain_loss.detach(),
                },
                prog_bar=True,
                batch_size=batch_size,
            )
            self.log_dict(
                {"grl_lambda": strength, "lr": self.trainer.optimizers[0].param_groups[0]["lr"]},
                batch_size=batch_size,
            )
        return loss

    def writes_logs_now(self) -> bool:
        """True on the steps whose scalars the loggers write (every ``log_every_n_steps``)
        and on the last batch of an epoch (so ``callback_metrics`` always hold them).

        Logging only then saves Lightning's per-call bookkeeping on the other steps (about
        7% of a tiny model's CPU step; see docs/performance.md) and, on a GPU, the host-device
        copies of Python floats.
        """
        trainer = self.trainer
        every = max(int(trainer.log_every_n_steps or 1), 1)
        return (
            (self.global_step + 1) % every == 0
            or bool(trainer.should_stop)
            or bool(trainer.is_last_batch)  # callback_metrics hold every epoch's last values
        )

    def _epoch_seed(self, epoch: int) -> int:
        base_seed = int(os.environ.get("PL_GLOBAL_SEED", "0"))
        return base_seed * 1_000_003 + epoch * 1_009 + self.global_rank

    def _seed_epoch_order(self, epoch: int) -> None:
        """Give the training sampler a generator seeded from (seed, epoch, rank), so the
        order of an epoch does not depend on what ran before it (DDP's DistributedSampler
        is already seeded per epoch).

        Exact resume relies on the loader drawing its first indices lazily, at the first
        batch: true with ``num_workers=0`` (the default). With worker processes the iterator
        that Lightning creates before ``on_train_start`` pre-fetches indices, so the first
        epoch after a resume is ordered from the global RNG instead (not bit-exact)."""
        loader = getattr(self.trainer, "train_dataloader", None)
        sampler = getattr(loader, "sampler", None)
        if isinstance(sampler, RandomSampler):
            sampler.generator = torch.Generator().manual_seed(self._epoch_seed(epoch))

    def on_train_start(self) -> None:
        self._seed_epoch_order(self.current_epoch)  # fresh fit: 0; resumed fit: the next one
        self._last_adapted_step = self.global_step
        controller = self.lm_budget_controller
        if controller is not None:
            # Fetch the measurement windows now, before the epoch's seeding: a DataLoader
            # draws a seed from the global RNG when iterated, which mid-epoch would change
            # the dropout of a resumed fit (its cache is empty) but not of an uninterrupted one.
            self._budget_windows()
            if controller.reference is None:  # a fresh fit, not a resumed one
                self._start_lm_budget(controller)

    def on_train_epoch_end(self) -> None:
        self._seed_epoch_order(self.current_epoch + 1)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:  # masks and dropout of the epoch from (seed, epoch, rank)
            torch.manual_seed(self._epoch_seed(self.current_epoch) + 1)
        self._step_started = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._adapt_after_step()
        # global_step has advanced by one since training_step: compare with the step before
        every = max(int(self.trainer.log_every_n_steps or 1), 1)
        if self.global_step % every != 0 and not (
            self.trainer.should_stop or self.trainer.is_last_batch
        ):
            return
        seconds = time.perf_counter() - self._step_started
        tokens = float(batch["attention_mask"].sum())
        self.log("tokens_per_s", tokens / max(seconds, 1e-9), batch_size=len(batch["input_ids"]))

    # ---------------------------------------------------------------- budget and re-fit
    def _adapt_after_step(self) -> None:
        """After an optimizer step: a controller update every ``lm_budget_every`` steps and a
        head re-fit every ``head_refit_every`` steps (once per step under accumulation)."""
        step = self.global_step
        if step == self._last_adapted_step:
            return
        self._last_adapted_step = step
        controller = self.lm_budget_controller
        if controller is not None and step % self.hparams.lm_budget_every == 0:
            lm_loss = self.budget_lm_loss()
            controller.update(lm_loss)
            self._log_lm_budget(lm_loss)
        buffer = self.feature_buffer
        if buffer is not None and len(buffer) and step % self.hparams.head_refit_every == 0:
            self.refit_head()

    def _budget_windows(self) -> list[dict[str, torch.Tensor]]:
        """The controller's measurement windows: the first ``lm_budget_batches`` batches of
        the datamodule's validation loader (all of them by default), kept after first use."""
        if self._budget_batches is None:
            datamodule = getattr(self.trainer, "datamodule", None)
            if datamodule is None:
                raise BrainmisInputError(
                    None, "model.lm_budget measures the validation windows: fit with a datamodule"
                )
            limit = self.hparams.lm_budget_batches
            batches = []
            for batch in datamodule.val_dataloader():
                if limit is not None and len(batches) >= limit:
                    break
                batches.append(batch)
            if not batches:
                raise BrainmisInputError(
                    None, "model.lm_budget: the datamodule has no validation windows to measure"
                )
            self._budget_batches = batches
        return self._budget_batches

    def budget_lm_loss(self) -> float:
        """LM loss on the controller's measurement windows (nats per token, eval mode)."""
        return self.held_out_lm_loss(self._budget_windows())

    def _start_lm_budget(self, controller: LMBudgetController) -> None:
        """At fit start, before any update: fix the reference (the pretrained model's loss on
        the measurement windows, or ``lm_reference`` carried to them) and make the first
        controller update from the pretrained model's loss."""
        start_loss = self.budget_lm_loss()
        reference = start_loss
        if self.given_lm_reference is not None:
            pretrained_test = self.held_out_lm_loss(self.trainer.datamodule.test_dataloader())
            reference = start_loss * self.given_lm_reference / pretrained_test
        controller.set_reference(reference)
        controller.update(start_loss)
        self._log_lm_budget(start_loss)

    def _log_lm_budget(self, lm_loss: float) -> None:
        """The controller's trace, written straight to the loggers at every update (whatever
        ``log_every_n_steps``): ``budget/grl_lambda``, ``budget/relative_excess``,
        ``budget/lm_loss``, ``budget/reference``."""
        controller = self.lm_budget_controller
        metrics = {
            "budget/grl_lambda": controller.strength,
            "budget/relative_excess": controller.relative_excess,
            "budget/lm_loss": lm_loss,
            "budget/reference": controller.reference,
        }
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.global_step)

    @torch.no_grad()
    def refit_head(self) -> None:
        """Replace the head's weight and bias by the ridge solution on the buffered batches
        (``brainmis.models.head_refit``). Under DDP every rank takes rank 0's solution."""
        features, targets = self.feature_buffer.stacked(self.head.linear.weight.device)
        weight, bias = ridge_head_weights(features, targets, self.hparams.head_refit_l2)
        linear = self.head.linear
        linear.weight.copy_(weight.to(linear.weight.dtype))
        linear.bias.copy_(bias.to(linear.bias.dtype))
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast(linear.weight.data, src=0)
            torch.distributed.broadcast(linear.bias.data, src=0)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """``trainer.gradient_clip_val`` clips the backbone's (LoRA) gradients only.

        One norm over LoRA and head would let the head's gradient (large under a Pearson loss
        with many voxels) shrink the LoRA updates; the head is left unclipped. Gradients are
        already unscaled and, under DDP, averaged when Lightning calls this.
        """
        if not gradient_clip_val:
            return
        parameters = [
            p for p in self.backbone.parameters() if p.requires_grad and p.grad is not None
        ]
        if str(gradient_clip_algorithm or "norm").lower().endswith("value"):
            torch.nn.utils.clip_grad_value_(parameters, gradient_clip_val)
        elif is_sharded(self._trainer):  # each rank holds a shard: one norm over all ranks
            clip_grad_norm(parameters, gradient_clip_val, sharded=True)
        else:
            torch.nn.utils.clip_grad_norm_(parameters, gradient_clip_val)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        head = list(self.head.parameters())
        head_ids = {id(p) for p in head}
        adapters = [p for p in self.parameters() if p.requires_grad and id(p) not in head_ids]
        head_lr = self.hparams.lr if self.hparams.head_lr is None else self.hparams.head_lr
        groups = [{"params": adapters}, {"params": head, "lr": head_lr}]
        return torch.optim.AdamW(groups, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    # ---------------------------------------------------------------- evaluation
    def _fixed_generator(self, device: torch.device) -> torch.Generator:
        if self._eval_generator is None or self._eval_generator.device != device:
            self._eval_generator = torch.Generator(device=device)
        return self._eval_generator

    def _reset_eval_masks(self) -> None:
        self._fixed_generator(self.device).manual_seed(EVAL_MASK_SEED)

    def _evaluation_step(
        self, batch: dict[str, torch.Tensor], lm_metric: MeanMetric, r_metric: PearsonCorrCoef
    ) -> None:
        lm_loss, features, n_predicted = self.lm_loss_and_features(
            batch, generator=self._fixed_generator(self.device)
        )
        if n_predicted > 0:
            lm_metric.update(lm_loss.float(), weight=n_predicted.float())
        predicted = self.head(features).float()
        targets = batch["targets"].float()
        if self.hparams.n_voxels == 1:
            predicted, targets = predicted[:, 0], targets[:, 0]
        r_metric.update(predicted, targets)

    def on_validation_epoch_start(self) -> None:
        self._reset_eval_masks()

    def on_test_epoch_start(self) -> None:
        self._reset_eval_masks()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, self.val_lm_loss, self.val_brain_r)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, self.test_lm_loss, self.test_brain_r)

    def _log_evaluation(self, stage: str, lm_metric: MeanMetric, r_metric: PearsonCorrCoef) -> None:
        if lm_metric.update_called:
            self.log(f"{stage}/lm_loss", lm_metric.compute(), sync_dist=False)
        if r_metric.update_called:
            self.log(f"{stage}/brain_r", nan_mean(r_metric.compute().reshape(-1)))
        lm_metric.reset()
        r_metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_evaluation("val", self.val_lm_loss, self.val_brain_r)

    def on_test_epoch_end(self) -> None:
        self._log_evaluation("test", self.test_lm_loss, self.test_brain_r)

    @torch.no_grad()
    def held_out_lm_loss(self, dataloader: Any) -> float:
        """Token-weighted mean LM loss over a dataloader (fixed BERT masks), in eval mode."""
        was_training = self.training
        self.eval()
        generator = self._fixed_generator(self.device)
        generator.manual_seed(EVAL_MASK_SEED)
        total, count = 0.0, 0.0
        for batch in dataloader:
            batch = {key: value.to(self.device) for key, value in batch.items()}
            lm_loss, _, n_predicted = self.lm_loss_and_features(batch, generator=generator)
            total += float(lm_loss) * float(n_predicted)
            count += float(n_predicted)
        self.train(was_training)
        return total / count if count else float("nan")

    def on_fit_end(self) -> None:
        """Write ``<log_dir>/evaluation/lm.json``: LM loss on the held-out (test) run, labelled
        with the training epochs finished (as the brain-alignment and probing results), and
        ``lm_windows.csv``, the loss of each of its windows."""
        trainer = self.trainer
        datamodule = getattr(trainer, "datamodule", None)
        if trainer.fast_dev_run or datamodule is None or trainer.logger is None:
            return
        if is_sharded(trainer):  # a forward needs every rank; evaluate the checkpoint instead
            return
        if not trainer.is_global_zero:
            return
        lm_loss = self.held_out_lm_loss(datamodule.test_dataloader())
        folder = evaluation_dir(run_folder(trainer))
        folder.mkdir(parents=True, exist_ok=True)
        record = {"epoch": epochs_finished(trainer), "lm_loss": lm_loss}
        (folder / LM_FILE).write_text(json.dumps(record, indent=2) + "\n")
        windows = window_lm_losses(self, datamodule.test_dataloader(), EVAL_MASK_SEED)
        write_lm_windows(folder, windows)  # evaluation/lm_windows.csv, beside lm.json

    # ---------------------------------------------------------------- checkpoints
    def trainable_state_keys(self) -> list[str]:
        """State-dict keys of the trainable weights (LoRA adapters and the head), without
        FSDP's wrapper names (``brainmis.models.sharding``)."""
        return [
            clean_parameter_name(name)
            for name, parameter in self.named_parameters()
            if parameter.requires_grad
        ]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep = set(self.trainable_state_keys())
        checkpoint["state_dict"] = {
            key: value for key, value in checkpoint["state_dict"].items() if key in keep
        }
        checkpoint["brainmis_trainable_keys"] = sorted(keep)
        if self.erasure.fitted:
            checkpoint[ERASURE_STATE] = self.erasure.state(self.erasure_layer)
        if self.lm_budget_controller is not None:
            checkpoint[LM_BUDGET_STATE] = self.lm_budget_controller.state_dict()
        if self.feature_buffer is not None:
            checkpoint[HEAD_REFIT_STATE] = self.feature_buffer.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # FSDP loads the weights itself and drops the state_dict: its saved key list then
        saved = checkpoint.get("state_dict", checkpoint.get("brainmis_trainable_keys", ()))
        missing = sorted(set(self.trainable_state_keys()) - set(saved))
        if missing:
            raise BrainmisInputError(
                None,
                f"checkpoint lacks {len(missing)} trainable weights of this model (e.g."
                f" {missing[0]}): it was made with another model or LoRA setting",
            )
        restore_erasure(self, checkpoint)
        if self.lm_budget_controller is not None and LM_BUDGET_STATE in checkpoint:
            self.lm_budget_controller.load_state_dict(checkpoint[LM_BUDGET_STATE])
        if self.feature_buffer is not None and HEAD_REFIT_STATE in checkpoint:
            self.feature_buffer.load_state_dict(checkpoint[HEAD_REFIT_STATE])
