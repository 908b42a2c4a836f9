"""The experiment matrix file of a sweep: models x datasets x conditions x subjects x folds x
seeds -> planned runs (``RunSpec``), each with a ``brainmis.run_folder.identity.RunIdentity``.

(Not the study matrix of loaded runs that ``brainmis compare`` fills: that is
``brainmis.analysis.study``.)

A matrix file (YAML), e.g. ``configs/sweeps/paper.yaml``::

    name: paper
    config: ../{model}_{dataset}_{condition}.yaml   # base config per run, relative to this file
    models: [bert, gpt2, llama]                     # names, or {name: {dotted.key: value}}
    datasets:
      hp:   {subjects: [F, H, I, J, K, L, M, N], folds: [0, 1, 2, 3]}
      moth: {subjects: ["01", "02", "03", "04", "05", "06"], folds: [0, 1, 2, 3]}
    conditions: [misaligned, preserving, tuned]     # names, or {name: {dotted.key: value}}
    seeds: [42]
    overrides: {trainer.max_epochs: 5}              # for every run (optional)
    keys: {subject: data.subject, fold: data.fold, seed: seed_everything}   # (defaults)
    slurm: {devices: 1, gpus_per_node: 1, cpus_per_task: 8, time: "12:00:00", max_concurrent: 16}

Each run's config is the base config with, in this order, the matrix-wide ``overrides``, the
model's, the dataset's and the condition's overrides, and the subject/fold/seed values under
``keys`` (dotted keys address nested entries: ``data.fold`` is ``{"data": {"fold": ...}}``).
``condition_key`` (default ``model.condition``) receives the condition name unless the
condition's own overrides set it.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainmis.errors import BrainmisInputError
from brainmis.launch.slurm import SlurmResources
from brainmis.run_folder.identity import RunIdentity
from brainmis.structured_files import read_mapping

MATRIX_KEYS = {
    "name",
    "config",
    "models",
    "datasets",
    "conditions",
    "seeds",
    "overrides",
    "keys",
    "condition_key",
    "slurm",
}
DEFAULT_KEYS = {"subject": "data.subject", "fold": "data.fold", "seed": "seed_everything"}
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class RunSpec:
    """One planned run of a matrix: its identity and the overrides that make its config."""

    identity: RunIdentity
    base_config: Path
    overrides: dict[str, Any] = field(hash=False, compare=False, default_factory=dict)

    @property
    def run_id(self) -> str:
        """A folder-safe name, e.g. ``gpt2-hp-tuned-subF-fold0-seed42``."""
        return self.identity.run_id


@dataclass
class DatasetAxis:
    """A dataset of the matrix: its subjects, folds and config overrides."""

    name: str
    subjects: list[str]
    folds: list[int]
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Matrix:
    """A parsed matrix file. ``config_template`` may hold ``{model}``, ``{dataset}``,
    ``{condition}``; relative paths are relative to the matrix file's folder."""

    name: str
    path: Path
    config_template: str
    models: dict[str, dict[str, Any]]
    datasets: dict[str, DatasetAxis]
    conditions: dict[str, dict[str, Any]]
    seeds: list[int]
    overrides: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_KEYS))
    condition_key: str = "model.condition"
    slurm: SlurmResources = field(default_factory=SlurmResources)

    def base_config(self, model: str, dataset: str, condition: str) -> Path:
        relative = self.config_template.format(model=model, dataset=dataset, condition=condition)
        path = Path(relative)
        return (path if path.is_absolute() else self.path.parent / path).resolve()

    def runs(self) -> list[RunSpec]:
        """Every run, in a fixed order (model, dataset, condition, subject, fold, seed)."""
        runs = []
        for model, dataset_name, condition in itertools.product(
            self.models, self.datasets, self.conditions
        ):
            dataset = self.datasets[dataset_name]
            base = self.base_config(model, dataset_name, condition)
            for subject, fold, seed in itertools.product(
                dataset.subjects, dataset.folds, self.seeds
            ):
                overrides: dict[str, Any] = {}
                overrides.update(self.overrides)
                overrides.update(self.models[model])
                overrides.update(dataset.overrides)
                if self.condition_key not in self.conditions[condition]:
                    overrides[self.condition_key] = condition
                overrides.update(self.conditions[condition])
                overrides[self.keys["subject"]] = subject
                overrides[self.keys["fold"]] = fold
                overrides[self.keys["seed"]] = seed
                identity = RunIdentity(model, dataset_name, subject, fold, condition, seed)
                runs.append(RunSpec(identity, base, overrides))
        return runs

    def check_configs_exist(self) -> None:
        """Every base config the matrix names must exist (checked before anything is written)."""
        missing = sorted({str(run.base_config) for run in self.runs()} - _existing(self.runs()))
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise BrainmisInputError(self.path, f"base config not found: {missing[0]}{more}")


def _existing(runs: list[RunSpec]) -> set[str]:
    return {str(run.base_config) for run in runs if run.base_config.is_file()}


# --- parsing ---------------------------------------------------------------------------------


def load_matrix(path: Path | str) -> Matrix:
    """Read and validate a matrix file; every problem is a ``BrainmisInputError`` on it."""
    path = Path(path)
    values = read_mapping(path, "matrix")
    unknown = sorted(set(values) - MATRIX_KEYS)
    if unknown:
        raise BrainmisInputError(
            path, f"unknown keys {unknown}; known keys are {sorted(MATRIX_KEYS)}"
        )
    for required in ("config", "models", "datasets", "conditions"):
        if required not in values:
            raise BrainmisInputError(path, f"missing required key {required!r}")
    config = values["config"]
    if not isinstance(config, str) or not config:
        raise BrainmisInputError(path, "'config' must be a path (template) string")
    try:
        config.format(model="m", dataset="d", condition="c")
    except (KeyError, IndexError, ValueError) as error:
        raise BrainmisInputError(
            path, f"'config' may only use {{model}}, {{dataset}}, {{condition}} ({error})"
        ) from None
    keys = dict(DEFAULT_KEYS)
    keys.update(_mapping(values.get("keys") or {}, path, "keys"))
    if set(keys) != set(DEFAULT_KEYS):
        raise BrainmisInputError(path, f"'keys' may only set {sorted(DEFAULT_KEYS)}")
    seeds = values.get("seeds", [42])
    seeds = [_integer(seed, path, "seeds") for seed in _list(seeds, path, "seeds")]
    return Matrix(
        name=_name(values.get("name", path.stem), path, "name"),
        path=path.resolve(),
        config_template=config,
        models=_named_overrides(values["models"], path, "models"),
        datasets=_datasets(values["datasets"], path),
        conditions=_named_overrides(values["conditions"], path, "conditions"),
        seeds=seeds,
        overrides=_overrides(values.get("overrides") or {}, path, "overrides"),
        keys={name: str(key) for name, key in keys.items()},
        condition_key=str(values.get("condition_key", "model.condition")),
        slurm=_slurm(values.get("slurm") or {}, path),
    )


def _name(value: Any, path: Path, where: str) -> str:
    text = str(value)
    if not SAFE_NAME.match(text):
        raise BrainmisInputError(
            path, f"{where}: {text!r} is not a safe name (letters, digits, . _ + -)"
        )
    return text


def _list(value: Any, path: Path, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise BrainmisInputError(path, f"{where!r} must be a non-empty list")
    if len(set(map(str, value))) != len(value):
        raise BrainmisInputError(path, f"{where!r} lists a value twice")
    return value


def _mapping(value: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BrainmisInputError(path, f"{where!r} must be a mapping")
    return value


def _integer(value: Any, path: Path, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BrainmisInputError(path, f"{where}: {value!r} is not an integer")
    return value


def _overrides(value: Any, path: Path, where: str) -> dict[str, Any]:
    overrides = _mapping(value, path, where)
    for key in overrides:
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise BrainmisInputError(path, f"{where}: {key!r} is not a dotted config key")
    return dict(overrides)


def _named_overrides(value: Any, path: Path, where: str) -> dict[str, dict[str, Any]]:
    if isinstance(value, list):
        return {_name(name, path, where): {} for name in _list(value, path, where)}
    mapping = _mapping(value, path, where)
    if not mapping:
        raise BrainmisInputError(path, f"{where!r} is empty")
    return {
        _name(name, path, where): _overrides(overrides or {}, path, f"{where}.{name}")
        for name, overrides in mapping.items()
    }


def _datasets(value: Any, path: Path) -> dict[str, DatasetAxis]:
    mapping = _mapping(value, path, "datasets")
    if not mapping:
        raise BrainmisInputError(path, "'datasets' is empty")
    datasets = {}
    for name, entry in mapping.items():
        where = f"datasets.{name}"
        entry = _mapping(entry, path, where)
        unknown = sorted(set(entry) - {"subjects", "folds", "overrides"})
        if unknown:
            raise BrainmisInputError(path, f"{where}: unknown keys {unknown}")
        for required in ("subjects", "folds"):
            if required not in entry:
                raise BrainmisInputError(path, f"{where}: missing {required!r}")
        subjects = [
            _name(s, path, f"{where}.subjects") for s in _list(entry["subjects"], path, where)
        ]
        folds = [_integer(f, path, f"{where}.folds") for f in _list(entry["folds"], path, where)]
        if min(folds) < 0:
            raise BrainmisInputError(path, f"{where}: folds must be >= 0")
        datasets[_name(name, path, "datasets")] = DatasetAxis(
            name=str(name),
            subjects=subjects,
            folds=folds,
            overrides=_overrides(entry.get("overrides") or {}, path, f"{where}.overrides"),
        )
    return datasets


def _slurm(value: Any, path: Path) -> SlurmResources:
    mapping = _mapping(value, path, "slurm")
    known = set(SlurmResources.__dataclass_fields__)
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise BrainmisInputError(path, f"slurm: unknown keys {unknown}; known: {sorted(known)}")
    resources = SlurmResources(**mapping)
    for name in ("nodes", "devices", "cpus_per_task", "max_concurrent", "signal_seconds"):
        if _integer(getattr(resources, name), path, f"slurm.{name}") < 1:
            raise BrainmisInputError(path, f"slurm.{name} must be >= 1")
    if _integer(resources.gpus_per_node, path, "slurm.gpus_per_node") < 0:
        raise BrainmisInputError(path, "slurm.gpus_per_node must be >= 0")
    return resources


# --- composing a run's config ----------------------------------------------------------------


def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(c, "data.fold", 2)`` sets ``c["data"]["fold"] = 2``, creating levels."""
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def compose_config(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with each dotted override set (later overrides win)."""
    config = copy.deepcopy(base)
    for key, value in overrides.items():
        set_dotted(config, key, value)
    return config


def read_base_config(path: Path) -> dict[str, Any]:
    """A base config as a mapping (an empty file: ``{}``; ``BrainmisInputError`` if missing,
    not YAML or not a mapping)."""
    return read_mapping(path, "base config", allow_empty=True)
