"""``brainmis fit|validate|test``: the LightningCLI over the module and the datamodule.

Links, so that one line of a config sets what belongs together:

- ``data.n_voxels -> model.n_voxels`` once the datamodule exists (voxel selection decides it);
- ``model.pretrained_path -> data.tokenizer_path`` (the model's own tokenizer);
- ``model.condition -> data.shuffle_targets`` (true for ``preserving`` only);
- ``model.condition -> data.noise_targets`` (true for ``noise_adversary`` only);
- ``data.context_trs -> model.context_trs``.

``--probing.holmes DIR`` (or ``probing: {holmes: DIR}`` in a config) points the trainer's
``ProbingCallback`` at a Holmes data folder; without it the callback probes the built-in
offline suite and logs which. ``--probing.tasks`` and ``--probing.max_items`` narrow what it
probes (quick runs, tests).

The default seed is 42; the resolved config is saved into the run folder, overwriting a
previous copy (a requeued SLURM job writes it again into the same folder).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional

from jsonargparse import Namespace
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from brainmis.commands.fit_checks import (
    LightningUsageError,
    OneLineErrorParser,
    check_config_files,
    check_linked_n_voxels,
    check_resume_checkpoint,
    config_file_setting,
    refuse_used_run_folder,
    usage_error,
)
from brainmis.data.datamodule import BrainDataModule
from brainmis.errors import BrainmisInputError
from brainmis.evaluation.probing.callback import ProbingCallback
from brainmis.launch.manifest import RunManifestCallback
from brainmis.launch.requeue import SlurmRequeueCallback
from brainmis.models.module import BrainMisalignmentModule

DEFAULT_SEED = 42
DEFAULT_RUN_NAME = "brainmis"
TENSORBOARD_LOGGER = "lightning.pytorch.loggers.TensorBoardLogger"
DEFAULT_FIT_CALLBACKS = (RunManifestCallback, SlurmRequeueCallback)
# Lightning warns when ``args`` are given while sys.argv has arguments: ours are sys.argv
ARGS_AND_ARGV_WARNING = "LightningCLI's args parameter is intended"


def shuffle_targets_for(condition: str) -> bool:
    """The ``preserving`` control trains on targets shuffled against the stimuli."""
    return condition == "preserving"


def noise_targets_for(condition: str) -> bool:
    """The ``noise_adversary`` condition trains against matched noise instead of responses."""
    return condition == "noise_adversary"


class BrainmisCLI(LightningCLI):
    """LightningCLI with the model/data links of this project."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.n_voxels", "model.n_voxels", apply_on="instantiate")
        parser.link_arguments("model.pretrained_path", "data.tokenizer_path")
        parser.link_arguments(
            "model.condition", "data.shuffle_targets", compute_fn=shuffle_targets_for
        )
        parser.link_arguments("model.condition", "data.noise_targets", compute_fn=noise_targets_for)
        parser.link_arguments("data.context_trs", "model.context_trs")
        parser.add_argument(
            "--probing.holmes",
            type=Optional[str],  # noqa: UP045 - jsonargparse reads the annotation at run time
            default=None,
            help="Holmes data folder for the trainer's ProbingCallback (default: built-in suite)",
        )
        parser.add_argument(
            "--probing.tasks",
            type=Optional[list[str]],  # noqa: UP045
            default=None,
            help="only these probing tasks (default: all of the folder or suite)",
        )
        parser.add_argument(
            "--probing.max_items",
            type=Optional[int],  # noqa: UP045
            default=None,
            help="at most this many training items per task (default: the callback's setting)",
        )

    def before_instantiate_classes(self) -> None:
        """Without an explicit ``trainer.logger``, log with TensorBoard into
        ``<default_root_dir>/lightning_logs/<name>/version_N``, ``<name>`` being the stem of
        the last ``--config`` file (``configs/gpt2_hp_tuned.yaml`` -> ``gpt2_hp_tuned``)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.trainer.logger not in (None, True):
            return
        config_files = config.get("config") or []
        name = Path(str(config_files[-1])).stem if config_files else DEFAULT_RUN_NAME
        root = Path(config.trainer.default_root_dir or ".")
        config.trainer.logger = Namespace(
            class_path=TENSORBOARD_LOGGER,
            init_args=Namespace(save_dir=str(root / "lightning_logs"), name=name),
        )

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The configured trainer, plus the run manifest and SLURM requeue callbacks of every
        ``fit`` unless the config already has them (``fit.sbatch`` and sweeps add their own)."""
        trainer = super().instantiate_trainer(**kwargs)
        self._apply_probing_options(trainer)
        if self.subcommand == "fit":
            for callback_type in DEFAULT_FIT_CALLBACKS:
                if not any(isinstance(c, callback_type) for c in trainer.callbacks):
                    trainer.callbacks.append(callback_type())
        return trainer

    def instantiate_classes(self) -> None:
        """Build the classes, then refuse a ``model.n_voxels`` from a config or a checkpoint
        that the data contradict (the link from ``data.n_voxels`` would override it
        silently)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        requested = config.model.get("n_voxels")
        super().instantiate_classes()
        if requested is None:
            return
        given_in = config_file_setting(config.get("config") or [], "model", "n_voxels")
        from_checkpoint = None if self._n_voxels_in_config is not None else config.get("ckpt_path")
        check_linked_n_voxels(requested, self.datamodule.n_voxels, given_in, from_checkpoint)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, then check ``--ckpt_path`` before LightningCLI reads its hyperparameters
        into the model's config (noting first whether a config set ``model.n_voxels``)."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        self._n_voxels_in_config = config.model.get("n_voxels")
        if subcommand:
            check_resume_checkpoint(config.get("ckpt_path"))

    def before_fit(self) -> None:
        """Refuse the run folder before the trainer writes anything into it."""
        refuse_used_run_folder(self.trainer, "fit")

    def before_validate(self) -> None:
        refuse_used_run_folder(self.trainer, "validate")

    def before_test(self) -> None:
        refuse_used_run_folder(self.trainer, "test")

    def _apply_probing_options(self, trainer: Trainer) -> None:
        """Apply the ``probing.*`` options to the trainer's ``ProbingCallback``."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        options = {k: v for k, v in dict(config.get("probing") or {}).items() if v is not None}
        if not options:
            return
        callbacks = [c for c in trainer.callbacks if isinstance(c, ProbingCallback)]
        if not callbacks:
            given = ", ".join(f"--probing.{name}" for name in options)
            raise BrainmisInputError(None, f"{given} given but the trainer has no ProbingCallback")
        holmes = options.get("holmes")
        if holmes is not None and not Path(holmes).is_dir():
            raise BrainmisInputError(holmes, "Holmes data folder not found")
        for callback in callbacks:
            callback.narrow(
                holmes_dir=holmes, tasks=options.get("tasks"), max_items=options.get("max_items")
            )


def run_lightning_cli(args: list[str]) -> BrainmisCLI:
    """Run ``brainmis <fit|validate|test> ...``; ``args`` starts with the subcommand.

    A ``BrainmisInputError`` raised while building the datamodule or the model propagates
    unchanged to the caller (``brainmis.cli.main`` prints its one line and exits 2); so does
    a usage error of the parser, as one line pointing at ``--help`` instead of the usage.
    """
    check_config_files(args)
    try:
        with warnings.catch_warnings():  # ``args`` are sys.argv here: nothing to warn about
            warnings.filterwarnings("ignore", message=ARGS_AND_ARGV_WARNING)
            return BrainmisCLI(
                BrainMisalignmentModule,
                BrainDataModule,
                seed_everything_default=DEFAULT_SEED,
                save_config_kwargs={"overwrite": True},
                parser_class=OneLineErrorParser,
                args=args,
            )
    except LightningUsageError as error:
        raise usage_error(error, args[0]) from None
