"""``BrainAlignmentCallback``: a fresh cross-validated ridge on the model's features during fit.

When it evaluates, and the epoch label E of the files and the record: E counts the training
epochs finished before the evaluation (the project's convention,
``brainmis.run_folder.trainer.epochs_finished``; ``ProbingCallback`` and ``lm.json`` use the same).

- at fit start: the model before any training (the pretrained baseline), E = 0, logged at
  global step 0 (``brain_r_epoch0.npy``);
- after every ``every_n_epochs``-th training epoch: E = epochs finished (1 after the first);
- at fit end, unless the final weights were just evaluated (E = epochs finished; a fit
  stopped inside an epoch re-evaluates and overwrites that label with the final weights).

Each evaluation extracts the features of all windows (``AlignmentData.from_datamodule`` of
the trainer's datamodule) with the module's ``backbone`` and ``feature_layer``, fits the
ridge on the non-test runs against the true targets (never the shuffled training targets)
and scores the test run (see :mod:`brainmis.evaluation.brain.alignment`). It logs
``brain_alignment/mean``, ``/median``, ``/nc_normalized``, ``/roi/<name>``,
``/seconds`` (its own cost), ``/share_significant`` (the per-voxel block permutation test,
on by default) and a TensorBoard histogram ``brain_alignment/r``, and writes
``<log_dir>/evaluation/brain_alignment.json`` (with the voxel selection: ceiling source,
threshold and counts), ``brain_r_epoch{E}.npy`` and, with the test, ``brain_p_epoch{E}.npy``
and ``brain_q_epoch{E}.npy``.

With ``metrics`` beyond ``"ridge"`` (``rsa``, ``cka``, ``procrustes``) or ``layers``
(``"all"`` or hidden-state indices), each evaluation also writes ``brain_similarity.json`` /
``brain_layers.json`` (:mod:`brainmis.evaluation.brain.measures`; one more forward pass, for
all those layers at once) and logs ``brain_similarity/<metric>`` and
``brain_layers/<layer>/<measure>``.

Under DDP only global rank 0 evaluates (a forward pass on the unwrapped module needs no
other rank); the other ranks wait at a barrier. Sharded strategies (FSDP), where a forward
pass needs every rank, are not supported by this callback: evaluate the checkpoint with
``brainmis evaluate-brain`` instead.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from brainmis.evaluation.brain.alignment import (
    AlignmentData,
    ModelAlignment,
    align_features,
    history_entry,
    model_window_features,
    write_alignment_files,
)
from brainmis.evaluation.brain.measures import (
    layer_profile_record,
    measure_scalars,
    model_layer_window_features,
    resolve_layers,
    similarity_record,
    write_measure_files,
)
from brainmis.evaluation.brain.significance import (
    DEFAULT_BLOCK_TRS,
    DEFAULT_FDR_Q,
    DEFAULT_PERMUTATIONS,
    permutation_test_options,
)
from brainmis.evaluation.brain.similarity import SIMILARITY_METRICS, parse_metrics
from brainmis.evaluation.extract import hidden_state_count
from brainmis.run_folder.layout import evaluation_dir
from brainmis.run_folder.trainer import PRETRAINED_EPOCH, epochs_finished, run_folder


class BrainAlignmentCallback(Callback):
    """Evaluate brain alignment at fit start, every ``every_n_epochs`` epochs and at fit end.

    Args:
        every_n_epochs: evaluate after every N-th training epoch (0: only start and end).
        alphas: ridge penalty grid (default ``np.logspace(-2, 9, 12)``).
        leakage: also fit the MLP leakage check (slower).
        metrics: measures from ``ridge, rsa, cka, procrustes`` (the ridge always runs).
        layers: ``"all"`` or hidden-state indices (0 = embeddings) for a layer profile.
        at_fit_start: evaluate the untrained model (epoch label 0).
        permutations: block permutations of the per-voxel significance test (0: no test).
        permutation_block: TRs per permuted block of the test run.
        fdr_q: Benjamini-Hochberg false discovery rate of the significant voxels.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        alphas: list[float] | None = None,
        leakage: bool = False,
        at_fit_start: bool = True,
        metrics: list[str] | None = None,
        layers: str | list[int] | None = None,
        permutations: int = DEFAULT_PERMUTATIONS,
        permutation_block: int = DEFAULT_BLOCK_TRS,
        fdr_q: float = DEFAULT_FDR_Q,
    ) -> None:
        super().__init__()
        if every_n_epochs < 0:
            raise ValueError("every_n_epochs must be >= 0")
        self.every_n_epochs = every_n_epochs
        self.alphas = None if alphas is None else np.asarray(alphas, dtype=np.float64)
        self.leakage = leakage
        self.at_fit_start = at_fit_start
        self.metrics = parse_metrics(metrics or ["ridge"], option="metrics")
        resolve_layers(layers, 10**6, option="layers")  # the spec's form; indices at fit time
        self.layers = layers
        self.significance = permutation_test_options(
            permutations,
            permutation_block,
            fdr_q,
            names={
                "permutations": "permutations",
                "block_trs": "permutation_block",
                "fdr_q": "fdr_q",
            },
        )
        self.history: list[dict] = []
        self.last_alignment: ModelAlignment | None = None
        self._evaluated_at_step: dict[int, int] = {}  # epoch label -> global step
        self._data_record: AlignmentData | None = None
        self._data_of: object | None = None  # the datamodule the record was built from

    # --------------------------------------------------------------- hooks
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_fit_start:
            self._evaluate(trainer, pl_module, PRETRAINED_EPOCH, step=0)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        finished = epochs_finished(trainer)
        if self.every_n_epochs and finished % self.every_n_epochs == 0:
            self._evaluate(trainer, pl_module, finished, step=trainer.global_step)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        finished = epochs_finished(trainer)
        if self._evaluated_at_step.get(finished) != trainer.global_step:
            self._evaluate(trainer, pl_module, finished, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        evaluated = [[epoch, step] for epoch, step in sorted(self._evaluated_at_step.items())]
        return {"history": list(self.history), "evaluated": evaluated}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self._evaluated_at_step = {int(e): int(s) for e, s in state_dict.get("evaluated", [])}

    # --------------------------------------------------------------- work
    def _evaluate(self, trainer: Trainer, pl_module: LightningModule, epoch: int, step: int):
        if trainer.sanity_checking or getattr(trainer, "fast_dev_run", False):
            return
        self._evaluated_at_step[epoch] = trainer.global_step
        if trainer.is_global_zero:
            data = self._data(trainer)
            alignment = self._evaluate_on_rank_zero(data, pl_module, epoch)
            self._report(trainer, data, alignment, step)
            self._measure_other_ways(trainer, data, pl_module, epoch, step)
        trainer.strategy.barrier("brain_alignment")

    def _data(self, trainer: Trainer) -> AlignmentData:
        """The fold's record, from the trainer's ``BrainDataModule`` (built once per fit)."""
        datamodule = trainer.datamodule
        if datamodule is None:
            raise RuntimeError(
                "BrainAlignmentCallback needs a datamodule (trainer.fit(..., datamodule=))"
            )
        if self._data_of is not datamodule:
            self._data_record, self._data_of = AlignmentData.from_datamodule(datamodule), datamodule
        return self._data_record

    def _evaluate_on_rank_zero(
        self, data: AlignmentData, pl_module: LightningModule, epoch: int
    ) -> ModelAlignment:
        start = time.perf_counter()
        features = model_window_features(
            pl_module.backbone, data, layer=pl_module.feature_layer, device=pl_module.device
        )
        return align_features(
            features,
            data,
            epoch,
            alphas=self.alphas,
            leakage=self.leakage,
            device=pl_module.device,
            seconds_so_far=time.perf_counter() - start,
            significance=self.significance,
        )

    def _report(
        self, trainer: Trainer, data: AlignmentData, alignment: ModelAlignment, step: int
    ) -> None:
        self.last_alignment = alignment
        summary = history_entry(alignment)
        self.history = [h for h in self.history if h["epoch"] != alignment.epoch] + [summary]
        for logger in trainer.loggers:
            logger.log_metrics(alignment.scalars(), step=step)
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_histogram("brain_alignment/r", alignment.ridge.r, step)
        # rank 0 only: run_folder, not trainer.log_dir (a collective under DDP)
        write_alignment_files(
            evaluation_dir(run_folder(trainer)),
            alignment,
            subject=data.subject,
            selected_voxels=data.selected_voxels,
            history=self.history,
            voxel_selection=data.voxel_selection,
        )
        rank_zero_info(
            f"brain alignment (epoch {alignment.epoch}): mean r {alignment.ridge.mean:.4f}, "
            f"median {alignment.ridge.median:.4f}, {alignment.seconds:.1f} s"
        )

    def _measure_other_ways(
        self,
        trainer: Trainer,
        data: AlignmentData,
        pl_module: LightningModule,
        epoch: int,
        step: int,
    ) -> None:
        """The encoder-free measures and the layer profile, when asked for (rank 0)."""
        wants_similarity = any(name in SIMILARITY_METRICS for name in self.metrics)
        if not wants_similarity and self.layers is None:
            return
        count = hidden_state_count(pl_module.backbone)
        own_layer = pl_module.feature_layer % count
        layers = resolve_layers(self.layers, count, option="layers")
        by_layer = model_layer_window_features(
            pl_module.backbone, data, (*layers, own_layer), device=pl_module.device
        )
        similarity = None
        if wants_similarity:
            similarity = similarity_record(
                by_layer[own_layer], data, epoch, own_layer, self.metrics, device=pl_module.device
            )
        profile = None
        if layers:
            profile = layer_profile_record(
                {layer: by_layer[layer] for layer in layers},
                data,
                epoch,
                count,
                metrics=self.metrics,
                alphas=self.alphas,
                device=pl_module.device,
            )
        for logger in trainer.loggers:
            logger.log_metrics(measure_scalars(similarity, profile), step=step)
        write_measure_files(evaluation_dir(run_folder(trainer)), similarity, profile)
