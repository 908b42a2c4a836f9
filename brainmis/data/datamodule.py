"""``BrainDataModule``: windows of words paired with the fMRI response of their target TR.

What happens when:

- ``__init__`` (cheap, so that ``n_voxels`` is known when the CLI builds the model): load
  the bundle memory-mapped (or generate the synthetic default into ``cache_dir`` once),
  pick the subject, choose the noise ceiling, select voxels, build the window table and the
  fold's split, and load the tokenizer. Every input problem is raised here, as a
  ``BrainmisInputError``, before a trainer writes anything.
- ``setup()``: z-score the responses per run, shuffle targets if asked, tokenize windows.

Noise ceiling used for voxel selection, first available of: the subject's own
(``Subject.noise_ceiling``, e.g. precomputed or predictive inter-subject, stored by
``brainmis prepare``) or one computed from the repeats of a repeated run (Schoppe cc_max; see
``subject_noise_ceilings``). Selected voxels = ROI AND ceiling > ``ceiling_threshold``. A
subject without any ceiling is refused unless ``allow_roi_only`` (then: ROI mask only).
``ceiling_source`` says which ceiling, ``ceiling_threshold`` the threshold applied (None for
ROI only), ``voxel_counts`` the selection's counts.
Batches follow the contract in docs/architecture.md ("Batches").

Targets under ``shuffle_targets`` (the ``preserving`` control): see
``brainmis.data.target_shuffle``; training and validation windows are shuffled separately,
test windows and ``true_targets`` never. Under ``noise_targets`` (the ``noise_adversary``
condition) the training and validation targets are replaced by AR(1) noise matched per run
and voxel to the real targets' mean, standard deviation and lag-1 autocorrelation (see
``brainmis.data.target_noise``); test windows and ``true_targets`` again keep the real
responses. Training batches are drawn in random order and the
last incomplete batch is dropped (when the training set holds at least one full batch), so
the brain loss's per-batch correlation always sees ``batch_size`` samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset

from brainmis.data.alignment import WindowTable, build_window_table, zscored_targets
from brainmis.data.records import BrainDataset, Subject
from brainmis.data.splits import FoldSplit, fold_split
from brainmis.data.target_noise import matched_noise_targets
from brainmis.data.target_shuffle import SHUFFLE_MODES, shuffled_target_source
from brainmis.data.window_tokens import (
    PaddedWindows,
    TokenizedWindow,
    WindowCollator,
    check_tokenizer,
    pad_token_id,
    tokenize_windows,
)
from brainmis.errors import BrainmisInputError, missing_model_folder, refuse_file_in_the_way


class WindowDataset(Dataset):
    """Windows ``indices`` of the table. ``dataset[i]`` is one item for ``WindowCollator``;
    the DataLoader fetches whole batches through ``__getitems__`` (vectorised), which
    ``WindowCollator`` passes through.

    Args:
        indices: ``(n,)`` int64 indices into the window table.
        tokens: the padded tokens of the whole table.
        targets: ``(N, V)`` float32 targets of the whole table.
    """

    def __init__(self, indices: np.ndarray, tokens: PaddedWindows, targets: np.ndarray) -> None:
        self.indices = np.asarray(indices, dtype=np.int64)
        self.tokens = tokens
        self.targets = targets

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict[str, Any]:
        window = int(self.indices[position])
        length = int(self.tokens.lengths[window])
        return {
            "input_ids": self.tokens.input_ids[window, :length],
            "group_ids": self.tokens.group_ids[window, :length],
            "targets": self.targets[window],
            "sample_id": window,
        }

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        windows = self.indices[np.asarray(positions, dtype=np.int64)]
        return self.tokens.batch(windows, self.targets[windows], windows)


def load_tokenizer(path: str | Path) -> Any:
    """A fast tokenizer from a local folder (nothing is downloaded)."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.exists():
        raise missing_model_folder(path)
    if not path.is_dir():
        raise BrainmisInputError(
            path, "is a file; expected a folder written by save_pretrained (the model's)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, TypeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise BrainmisInputError(path, f"cannot load a tokenizer: {first_line}") from error
    if not getattr(tokenizer, "is_fast", False):
        raise BrainmisInputError(path, "not a fast tokenizer (tokenizer.json missing)")
    return tokenizer


def subject_noise_ceilings(
    subject: Subject, test_run: int
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """The noise ceilings used for voxel selection and for the test run, and their source.

    The subject's own ceiling (``Subject.noise_ceiling``: precomputed or inter-subject) serves
    both. Computed from the repeats of a repeated run (Schoppe ``cc_max``), selection uses the
    ceiling of a single scan, the form of the training targets, while the test run's ceiling
    is that of the mean of the repeats when the test run is the repeated run (its responses
    are that mean), else that of a single scan.

    Returns:
        ``selection (V,)`` and ``test (V,)`` float64 ceilings (None, None without any), and a
        short description of their source.
    """
    if subject.noise_ceiling is not None:
        ceiling = np.asarray(subject.noise_ceiling, dtype=np.float64)
        method = subject.noise_ceiling_method
        return ceiling, ceiling, "subject noise ceiling" + (f" ({method})" if method else "")
    for index, run in enumerate(subject.runs):
        if run.repeats is not None and len(run.repeats) >= 2:
            from brainmis.data.noise_ceiling import noise_ceiling_from_repeats

            repeats = np.asarray(run.repeats, dtype=np.float64)
            single = noise_ceiling_from_repeats(repeats, n_averaged=1)
            if index != test_run:
                return single, single, f"repeats of run {run.name} (single-scan ceiling)"
            mean = noise_ceiling_from_repeats(repeats)
            return (
                single,
                mean,
                (
                    f"repeats of run {run.name} (single-scan ceiling for selection, "
                    f"{len(repeats)}-repeat mean ceiling for the test run)"
                ),
            )
    return None, None, "none (ROI mask only)"


class BrainDataModule(LightningDataModule):
    """Windows of one subject, one fold. See the module docstring and docs/architecture.md.

    Args:
        bundle: folder of a prepared bundle; None uses the synthetic default, generated into
            ``cache_dir`` on first use.
        synthetic_layout: layout of the synthetic default (``brainmis.data.synthetic.LAYOUTS``).
        synthetic_subjects: subjects of the synthetic default.
        synthetic_seed: seed of the synthetic default.
        cache_dir: where the synthetic default is generated.
        subject: subject name; None takes the first.
        fold: index of the run held out for testing.
        context_trs: TR groups per window (the target TR and the ones before it).
        val_fraction: fraction of training windows (the last in time) used for validation.
        val_run: name of a run used whole for validation instead.
        rois: ROI names whose union restricts the voxels; None takes every ROI.
        ceiling_threshold: voxels need a noise ceiling above this.
        allow_roi_only: select by the ROI mask alone when the subject has no noise ceiling at
            all (no ceiling in the bundle, no repeats); without it such a subject is refused.
        tokenizer_path: local Hugging Face tokenizer folder (normally the model's folder).
        max_length: the most tokens per window (oldest words dropped first).
        batch_size: windows per batch.
        num_workers: DataLoader worker processes.
        shuffle_targets: pair training/validation stimuli with shuffled targets (control).
        shuffle_mode: ``permutation`` or ``circular_shift`` (within runs).
        shuffle_seed: seed of the target shuffle.
        noise_targets: replace training/validation targets by matched AR(1) noise (the
            ``noise_adversary`` condition; the CLI links it from ``model.condition``).
        noise_seed: seed of the noise targets.
    """

    def __init__(
        self,
        bundle: str | None = None,
        synthetic_layout: str = "hp",
        synthetic_subjects: int = 2,
        synthetic_seed: int = 0,
        cache_dir: str = ".cache/brainmis",
        subject: str | None = None,
        fold: int = 0,
        context_trs: int = 5,
        val_fraction: float = 0.2,
        val_run: str | None = None,
        rois: list[str] | None = None,
        ceiling_threshold: float = 0.05,
        allow_roi_only: bool = False,
        tokenizer_path: str | None = None,
        max_length: int = 256,
        batch_size: int = 16,
        num_workers: int = 0,
        shuffle_targets: bool = False,
        shuffle_mode: str = "permutation",
        shuffle_seed: int = 0,
        noise_targets: bool = False,
        noise_seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        given_dataset: BrainDataset | None = self.__dict__.pop("_given_dataset", None)
        self._check_arguments()
        if given_dataset is not None:
            self.bundle_path: Path | None = None
            dataset, self.source = given_dataset, f"dataset {given_dataset.name}"
        else:
            self.bundle_path = self._bundle_path()
            from brainmis.data.bundle import load_bundle

            dataset = load_bundle(self.bundle_path, verify=True, mmap=True)
            self.source = str(self.bundle_path)
        self.dataset_name = dataset.name
        self.tr = float(dataset.tr)
        self.context_trs = int(context_trs)
        self.subject = self._pick_subject(dataset, subject)
        self.run_names = [run.name for run in self.subject.runs]
        if not 0 <= fold < len(self.run_names):
            raise BrainmisInputError(
                self.source,
                f"fold {fold} out of range: subject {self.subject.name} has "
                f"{len(self.run_names)} runs, so folds 0..{len(self.run_names) - 1}",
            )
        self.test_run = int(fold)
        self._select_voxels()
        self.window_table: WindowTable = build_window_table(
            self.subject.runs, self.tr, self.context_trs
        )
        self.window_runs = self.window_table.run_index
        self.split: FoldSplit = fold_split(
            self.window_runs, self.run_names, fold, val_fraction, val_run, self.source
        )
        self.tokenizer = None if tokenizer_path is None else load_tokenizer(tokenizer_path)
        if self.tokenizer is not None:
            check_tokenizer(self.tokenizer, max_length)
        self.true_targets: np.ndarray | None = None
        self.targets: np.ndarray | None = None
        self.target_source: np.ndarray | None = None
        self.tokens: list[TokenizedWindow] | None = None
        self.padded_tokens: PaddedWindows | None = None

    @classmethod
    def from_dataset(cls, dataset: BrainDataset, **kwargs: Any) -> BrainDataModule:
        """A datamodule over an in-memory ``BrainDataset`` instead of a bundle on disk;
        ``kwargs`` are the other ``__init__`` arguments (``bundle`` is ignored)."""
        module = cls.__new__(cls)
        module._given_dataset = dataset
        module.__init__(**kwargs)
        return module

    # --- __init__ helpers --------------------------------------------------------------

    def _check_arguments(self) -> None:
        hp = self.hparams
        problems = []
        if hp.context_trs < 1:
            problems.append(f"context_trs must be >= 1, got {hp.context_trs}")
        if hp.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {hp.batch_size}")
        if hp.num_workers < 0:
            problems.append(f"num_workers must be >= 0, got {hp.num_workers}")
        if hp.max_length < 2:
            problems.append(f"max_length must be >= 2, got {hp.max_length}")
        if hp.shuffle_mode not in SHUFFLE_MODES:
            problems.append(
                f"shuffle_mode must be one of {', '.join(SHUFFLE_MODES)}, got {hp.shuffle_mode!r}"
            )
        if hp.shuffle_targets and hp.noise_targets:
            problems.append(
                "shuffle_targets and noise_targets are both set; a run trains on one kind of "
                "control targets (preserving: shuffled, noise_adversary: noise)"
            )
        if hp.rois is not None and len(hp.rois) == 0:
            problems.append("rois is an empty list; give ROI names or leave it unset for all")
        if problems:
            raise BrainmisInputError(hp.bundle, "; ".join(problems))

    def _bundle_path(self) -> Path:
        hp = self.hparams
        if hp.bundle is not None:
            path = Path(hp.bundle)
            if not path.is_dir():
                raise BrainmisInputError(path, "bundle folder not found")
            return path
        from brainmis.data.synthetic import synthetic_bundle

        refuse_file_in_the_way(hp.cache_dir, "cache_dir folder")
        return Path(
            synthetic_bundle(
                hp.cache_dir,
                layout=hp.synthetic_layout,
                n_subjects=hp.synthetic_subjects,
                seed=hp.synthetic_seed,
            )
        )

    def _pick_subject(self, dataset: BrainDataset, name: str | None) -> Subject:
        if not dataset.subjects:
            raise BrainmisInputError(self.source, "dataset has no subjects")
        if name is None:
            return next(iter(dataset.subjects.values()))
        if name not in dataset.subjects:
            raise BrainmisInputError(
                self.source,
                f"unknown subject {name!r}; subjects are {', '.join(dataset.subjects)}",
            )
        return dataset.subjects[name]

    def _select_voxels(self) -> None:
        from brainmis.data.voxel_selection import select_voxels

        subject = self.subject
        selection_ceiling, test_ceiling, self.ceiling_source = subject_noise_ceilings(
            subject, self.test_run
        )
        if selection_ceiling is None:
            if not self.hparams.allow_roi_only:
                raise BrainmisInputError(
                    self.source,
                    f"subject {subject.name}: no noise ceiling is available (none in the "
                    "bundle, no repeated run), so voxels cannot be selected by ROI AND "
                    f"ceiling > {self.hparams.ceiling_threshold:g}; prepare the bundle with "
                    ">= 2 subjects on one stimulus timeline, with repeats or with a ceiling "
                    "file, or set data.allow_roi_only: true to select by ROI only",
                )
            rank_zero_info(
                f"BrainDataModule: subject {subject.name} has no noise ceiling; "
                "allow_roi_only: voxels selected by the ROI mask only"
            )
        selection = select_voxels(
            [run.responses for run in subject.runs],
            subject.roi_masks,
            self.hparams.rois,
            selection_ceiling,
            self.hparams.ceiling_threshold,
            source=self.source,
        )
        self.voxel_selection = selection
        self.ceiling_threshold: float | None = selection.threshold
        self.selected_voxels = np.asarray(selection.indices, dtype=np.int64)
        self.voxel_counts: dict[str, int] = {k: int(v) for k, v in selection.counts.items()}
        self.n_voxels = len(self.selected_voxels)
        self.roi_masks = selection.restrict_masks(
            {name: subject.roi_masks[name] for name in selection.rois}
        )
        self.noise_ceiling = None if test_ceiling is None else test_ceiling[self.selected_voxels]
        rank_zero_info(
            f"BrainDataModule: subject {subject.name}, {selection.summary()}; "
            f"noise ceiling: {self.ceiling_source}"
        )

    # --- setup and loaders -------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Z-score targets, shuffle them if asked, tokenize every window (once)."""
        if self.true_targets is None:
            self.true_targets = zscored_targets(
                self.subject.runs, self.window_table, self.selected_voxels
            )
            if self.hparams.shuffle_targets:
                self.target_source = shuffled_target_source(
                    self.window_runs,
                    (self.split.train, self.split.val),
                    self.hparams.shuffle_mode,
                    self.hparams.shuffle_seed,
                )
                self.targets = self.true_targets[self.target_source]
            elif self.hparams.noise_targets:
                self.target_source = np.arange(len(self.window_table), dtype=np.int64)
                self.targets = matched_noise_targets(
                    self.true_targets,
                    self.window_runs,
                    (self.split.train, self.split.val),
                    self.hparams.noise_seed,
                )
            else:
                self.target_source = np.arange(len(self.window_table), dtype=np.int64)
                self.targets = self.true_targets
        if self.tokens is None:
            if self.tokenizer is None:
                if self.hparams.tokenizer_path is None:
                    raise BrainmisInputError(
                        self.source,
                        "no tokenizer: set tokenizer_path (the model's folder) or assign "
                        "datamodule.tokenizer before setup()",
                    )
                self.tokenizer = load_tokenizer(self.hparams.tokenizer_path)
            self.tokens = tokenize_windows(
                self.tokenizer, self.window_table.groups, self.hparams.max_length
            )
            self.padded_tokens = PaddedWindows.from_windows(
                self.tokens, pad_token_id(self.tokenizer)
            )

    def _loader(
        self, indices: np.ndarray, targets: np.ndarray, shuffle: bool = False
    ) -> DataLoader:
        if self.tokens is None:
            self.setup()
        workers = self.hparams.num_workers
        drop_last = shuffle and len(indices) >= self.hparams.batch_size
        return DataLoader(
            WindowDataset(indices, self.padded_tokens, targets),
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=workers,
            persistent_workers=workers > 0,
            collate_fn=WindowCollator(pad_token_id(self.tokenizer)),
        )

    def train_dataloader(self) -> DataLoader:
        """Training windows in random order; shuffled targets under ``shuffle_targets``,
        noise under ``noise_targets``."""
        self.setup()
        return self._loader(self.split.train, self.targets, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation windows in table order; shuffled targets under ``shuffle_targets``,
        noise under ``noise_targets``."""
        self.setup()
        return self._loader(self.split.val, self.targets)

    def test_dataloader(self) -> DataLoader:
        """Windows of the held-out run in table order, true targets."""
        self.setup()
        return self._loader(self.split.test, self.true_targets)

    def full_dataloader(self) -> DataLoader:
        """Every window in table order with its true (unshuffled) targets."""
        self.setup()
        return self._loader(np.arange(len(self.window_table)), self.true_targets)
