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

Checkpoints hold only the trainable weights (LoRA + head). The training order and the
global torch RNG (BERT masks, dropout) of every epoch are seeded from (seed, epoch, rank), so
a fit resumed from an end-of-epoch checkpoint repeats the uninterrupted fit exactly.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch.utils.data import RandomSampler
from torchmetrics import MeanMetric, PearsonCorrCoef

from brainmis.errors import BrainmisInputError
from brainmis.models.backbone import MASKED_LM_FAMILIES, load_backbone
from brainmis.models.brain_head import BrainHead
from brainmis.models.features import pool_groups, transformer_body
from brainmis.models.gradient_reversal import GRL_SCHEDULES, grl_strength, reverse_gradient
from brainmis.models.lora import add_lora
from brainmis.models.losses import pearson_loss
from brainmis.models.masking import IGNORE_INDEX, mask_tokens
from brainmis.run_folder.layout import LM_FILE, evaluation_dir
from brainmis.run_folder.trainer import epochs_finished, run_folder

CONDITIONS = ("misaligned", "preserving", "tuned", "lm_only")
REVERSED_CONDITIONS = ("misaligned", "preserving")
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


class BrainMisalignmentModule(LightningModule):
    """LoRA-tuned language model with a brain head; see the module docstring.

    Args:
        pretrained_path: local model folder (``save_pretrained`` output).
        n_voxels: voxels predicted by the head (linked from the datamodule by the CLI).
        condition: ``misaligned | preserving | tuned | lm_only``.
        family: ``bert|gpt2|llama``; None reads it from the folder's ``config.json``.
        dtype: base weights dtype (``auto`` = as saved); LoRA and head stay float32.
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
        lora_target_modules: module names; None = the family's defaults.
        lora_layers: block indices that get adapters; None = all.
        lora_include_mlp: llama only: also adapt gate/up/down projections.
        gradient_checkpointing: non-reentrant checkpointing of the backbone.
        lr, weight_decay: AdamW settings for LoRA and head.
        head_lr: learning rate of the head (None = ``lr``). Default 10x ``lr``: an
            adversarial head must re-fit faster than the backbone moves, or the backbone
            only flips the sign of the brain information instead of removing it.
        mlm_probability: share of tokens predicted by the masked-LM loss (bert).
    """

    def __init__(
        self,
        pretrained_path: str,
        n_voxels: int,
        condition: str = "misaligned",
        family: str | None = None,
        dtype: str = "auto",
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
        loaded = load_backbone(pretrained_path, family=family, dtype=dtype)
        self.family = loaded.family
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
        self.val_lm_loss = MeanMetric()
        self.test_lm_loss = MeanMetric()
        self.val_brain_r = PearsonCorrCoef(num_outputs=n_voxels)
        self.test_brain_r = PearsonCorrCoef(num_outputs=n_voxels)
        # The frozen base is not saved in checkpoints; loading one restores LoRA + head only.
        self.strict_loading = False
        self._step_started = 0.0
        self._eval_generator: torch.Generator | None = None

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
        if self.family in MASKED_LM_FAMILIES:
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
        out = transformer_body(self.backbone)(
            input_ids=torch.cat([masked_ids, input_ids]),
            attention_mask=torch.cat([attention_mask, attention_mask]),
            output_hidden_states=True,
        )
        features = pool_groups(
            hidden_states_of(out)[self.feature_layer][batch_size:], group_ids, self.context_trs
        )
        chosen = labels != IGNORE_INDEX
        masked_hidden = out.last_hidden_state[:batch_size][chosen]  # (n_masked, hidden)
        base = self.backbone.get_base_model()
        mlm_head = base.cls if hasattr(base, "cls") else base.lm_head
        logits = mlm_head(masked_hidden)
        if logits.shape[0] == 0:  # nothing masked in this batch: a zero that keeps the graph
            lm_loss = out.last_hidden_state.sum() * 0.0
        else:
            lm_loss = torch.nn.functional.cross_entropy(logits.float(), labels[chosen])
        return lm_loss, features, chosen.sum()

    def grl_lambda_now(self) -> float:
        """Reversal strength at the current training progress (global step / total steps)."""
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
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        lm_loss, features, _ = self.lm_loss_and_features(batch)
        strength = self.grl_lambda_now()
        predicted = self.head(self.head_input(features, strength))
        brain_loss = pearson_loss(predicted, batch["targets"])
        loss = self.hparams.w_lm * lm_loss + self.hparams.w_ba * brain_loss + self.head.penalty()
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

    def on_train_epoch_end(self) -> None:
        self._seed_epoch_order(self.current_epoch + 1)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:  # masks and dropout of the epoch from (seed, epoch, rank)
            torch.manual_seed(self._epoch_seed(self.current_epoch) + 1)
        self._step_started = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # global_step has advanced by one since training_step: compare with the step before
        every = max(int(self.trainer.log_every_n_steps or 1), 1)
        if self.global_step % every != 0 and not (
            self.trainer.should_stop or self.trainer.is_last_batch
        ):
            return
        seconds = time.perf_counter() - self._step_started
        tokens = float(batch["attention_mask"].sum())
        self.log("tokens_per_s", tokens / max(seconds, 1e-9), batch_size=len(batch["input_ids"]))

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
        with the training epochs finished (as the brain-alignment and probing results)."""
        trainer = self.trainer
        datamodule = getattr(trainer, "datamodule", None)
        if trainer.fast_dev_run or datamodule is None or trainer.logger is None:
            return
        if not trainer.is_global_zero:
            return
        lm_loss = self.held_out_lm_loss(datamodule.test_dataloader())
        folder = evaluation_dir(run_folder(trainer))
        folder.mkdir(parents=True, exist_ok=True)
        record = {"epoch": epochs_finished(trainer), "lm_loss": lm_loss}
        (folder / LM_FILE).write_text(json.dumps(record, indent=2) + "\n")

    # ---------------------------------------------------------------- checkpoints
    def trainable_state_keys(self) -> list[str]:
        """State-dict keys of the trainable weights (LoRA adapters and the head)."""
        return [name for name, parameter in self.named_parameters() if parameter.requires_grad]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep = set(self.trainable_state_keys())
        checkpoint["state_dict"] = {
            key: value for key, value in checkpoint["state_dict"].items() if key in keep
        }
        checkpoint["brainmis_trainable_keys"] = sorted(keep)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        missing = sorted(set(self.trainable_state_keys()) - set(checkpoint["state_dict"]))
        if missing:
            raise BrainmisInputError(
                None,
                f"checkpoint lacks {len(missing)} trainable weights of this model (e.g."
                f" {missing[0]}): it was made with another model or LoRA setting",
            )
