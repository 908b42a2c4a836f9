"""``ProbingCallback``: probe the model being trained at fit start, every N epochs and at the
end of fit.

The epoch label of every row is the number of training epochs finished (the project's
convention, ``brainmis.run_folder.trainer.epochs_finished``): 0 for the untouched model at fit start,
1 after the first epoch, so brain-alignment, probing and LM results of the same weights carry
the same epoch. Nothing is probed under ``fast_dev_run`` or during the sanity check.

Reads the LightningModule's ``backbone``, ``tokenizer`` and ``feature_layer`` (see
docs/architecture.md). Per evaluation it logs ``probing/<task>`` (mean over seeds of accuracy,
or Pearson r for regression), ``probing/subfield/<name>``, ``probing/mean`` (over tasks) and
``probing/mean_of_subfields`` to every logger, and appends all scores to ``<log_dir>/evaluation/probing.csv``. Only global rank 0
probes (the other ranks go on; the probe pass does not touch DDP collectives).
"""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info

from brainmis.evaluation.probing.builtin.suite import load_builtin_suite
from brainmis.evaluation.probing.holmes_reader import ProbingTask, read_holmes_folder
from brainmis.evaluation.probing.probe import ProbeProtocol
from brainmis.evaluation.probing.representations import RepresentationCache
from brainmis.evaluation.probing.results_file import append_probing_csv
from brainmis.evaluation.probing.runner import (
    headline_metric,
    probe_tasks,
    subfield_means,
    task_means,
)
from brainmis.run_folder.layout import PROBING_FILE, evaluation_dir
from brainmis.run_folder.trainer import PRETRAINED_EPOCH, epochs_finished, run_folder


class ProbingCallback(Callback):
    """Args:
    every_n_epochs: probe after every N-th training epoch (0 = only at fit end).
    tasks: task names to probe (default: all of the suite).
    holmes_dir: a Holmes/FlashHolmes folder; default the built-in suite.
    max_items: at most this many train items (and a fifth of it for dev and test) per task;
        None = all.
    seeds: probe seeds (Holmes: 0-4).
    layer: hidden-state layer; None = the module's ``feature_layer``.
    controls: any of ``permuted_labels``, ``permuted_words``, ``random_weights`` (see
        ``runner``).
    cache_dir: where the built-in suite is generated (default ``~/.cache/brainmis``).
    suite_seed: generator seed of the built-in suite.
    on_fit_end: also probe when fit ends (unless that epoch was just probed).
    at_fit_start: also probe the untouched model when fit starts (epoch 0).
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        tasks: list[str] | None = None,
        holmes_dir: str | None = None,
        max_items: int | None = 400,
        seeds: list[int] | tuple[int, ...] = (0, 1, 2, 3, 4),
        layer: int | None = None,
        controls: list[str] | tuple[str, ...] = (),
        cache_dir: str | None = None,
        suite_seed: int = 0,
        on_fit_end: bool = True,
        at_fit_start: bool = False,
    ):
        super().__init__()
        if every_n_epochs < 0:
            raise ValueError("every_n_epochs must be >= 0")
        self.every_n_epochs = every_n_epochs
        self.task_names = list(tasks) if tasks is not None else None
        self.holmes_dir = holmes_dir
        self.max_items = max_items
        self.protocol = ProbeProtocol(seeds=tuple(int(s) for s in seeds))
        self.layer = layer
        self.controls = tuple(controls)
        self.cache_dir = cache_dir
        self.suite_seed = suite_seed
        self.probe_on_fit_end = on_fit_end
        self.at_fit_start = at_fit_start
        self._tasks: list[ProbingTask] | None = None
        self._cache = RepresentationCache(max_entries=64)
        self._last_probed_step: int | None = None

    def narrow(
        self,
        holmes_dir: str | None = None,
        tasks: list[str] | None = None,
        max_items: int | None = None,
    ) -> None:
        """Change what is probed before the first probe: another Holmes folder, only some
        tasks, fewer items (None leaves a setting as it is)."""
        if holmes_dir is not None:
            self.holmes_dir = str(holmes_dir)
        if tasks is not None:
            self.task_names = list(tasks)
        if max_items is not None:
            self.max_items = int(max_items)
        self._tasks = None

    def source(self) -> str:
        """Which tasks are probed, for the log line and the run's records."""
        if self.holmes_dir is not None:
            return f"Holmes folder {self.holmes_dir}"
        return "the built-in offline suite (no holmes folder given)"

    def tasks(self) -> list[ProbingTask]:
        """The (capped) tasks, read or generated on first use."""
        if self._tasks is None:
            if self.holmes_dir is not None:
                tasks = read_holmes_folder(self.holmes_dir, self.task_names)
            else:
                tasks = load_builtin_suite(self.cache_dir, self.suite_seed, self.task_names)
            self._tasks = [task.capped(self.max_items) for task in tasks]
            rank_zero_info(f"probing: {len(self._tasks)} tasks from {self.source()}")
        return self._tasks

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero:
            self.tasks()  # fail early on bad task names or data, before training starts

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_fit_start and trainer.global_step == 0:
            self.probe(trainer, pl_module, PRETRAINED_EPOCH)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        finished = epochs_finished(trainer)
        if self.every_n_epochs and finished % self.every_n_epochs == 0:
            self.probe(trainer, pl_module, finished)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Probe the final weights, unless the last epoch end already did."""
        if self.probe_on_fit_end and self._last_probed_step != trainer.global_step:
            self.probe(trainer, pl_module, epochs_finished(trainer))

    def probe(self, trainer: Trainer, pl_module: LightningModule, epoch: int) -> None:
        """Probe now, log the scalars at the global step, append the rows labelled ``epoch``
        (training epochs finished) to the CSV (rank 0 only)."""
        if trainer.sanity_checking or getattr(trainer, "fast_dev_run", False):
            return
        self._last_probed_step = trainer.global_step
        if not trainer.is_global_zero:
            return
        tasks = self.tasks()
        layer = (
            self.layer if self.layer is not None else int(getattr(pl_module, "feature_layer", -1))
        )
        scores = probe_tasks(
            pl_module.backbone,
            pl_module.tokenizer,
            tasks,
            self.protocol,
            layer=layer,
            controls=self.controls,
            cache=self._cache,
        )
        per_task = task_means(scores, {task.name: headline_metric(task) for task in tasks})
        per_subfield = subfield_means(per_task, {task.name: task.subfield for task in tasks})
        metrics = {f"probing/{name}": value for name, value in per_task.items()}
        metrics.update({f"probing/subfield/{name}": value for name, value in per_subfield.items()})
        if per_task:  # overall = mean over tasks (datasets), as in `brainmis compare`
            metrics["probing/mean"] = sum(per_task.values()) / len(per_task)
        if per_subfield:
            metrics["probing/mean_of_subfields"] = sum(per_subfield.values()) / len(per_subfield)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        append_probing_csv(
            evaluation_dir(run_folder(trainer)) / PROBING_FILE, run_name(trainer), epoch, scores
        )


def run_name(trainer: Trainer) -> str:
    """``<name>/version_<N>`` of the first logger, or the log folder's name."""
    logger = trainer.logger
    if logger is not None and logger.name is not None and logger.version is not None:
        version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
        return f"{logger.name}/{version}"
    return run_folder(trainer).name
