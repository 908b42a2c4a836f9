"""Write the built-in tasks as Holmes datasets, once per (seed, sizes), into a cache folder.

``builtin_suite_dir(cache_dir)`` returns a folder of ``<task>/samples.csv`` +
``<task>/config-none.yaml`` that ``read_holmes_folder`` reads like any Holmes folder. Task
folders are written lazily (only the missing ones) and atomically (written beside, then
renamed), and the same seed always gives the same files.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import tempfile
from pathlib import Path

import yaml

from brainmis.errors import BrainmisInputError
from brainmis.evaluation.probing.builtin import (
    discourse,
    morphology,
    reasoning,
    semantics,
    syntax,
    word_category,
)
from brainmis.evaluation.probing.builtin.spec import TaskSpec
from brainmis.evaluation.probing.holmes_reader import ProbingTask, read_holmes_folder

SUITE_VERSION = 1
BUILTIN_TASKS: tuple[TaskSpec, ...] = (
    *morphology.TASKS, *syntax.TASKS, *semantics.TASKS, *reasoning.TASKS, *discourse.TASKS,
    *word_category.TASKS,
)  # fmt: skip
DEFAULT_SIZES = (1000, 200, 200)  # train, dev, test


def builtin_task_names() -> list[str]:
    return [spec.name for spec in BUILTIN_TASKS]


def builtin_spec(name: str) -> TaskSpec:
    for spec in BUILTIN_TASKS:
        if spec.name == name:
            return spec
    raise BrainmisInputError(
        None, f"no built-in probing task {name!r}; known: {', '.join(builtin_task_names())}"
    )


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "brainmis" / "probing-builtin"


def generate_rows(
    spec: TaskSpec, seed: int, sizes: tuple[int, int, int] = DEFAULT_SIZES
) -> list[dict]:
    """Holmes ``samples.csv`` rows of one task, reproducible from ``seed``."""
    rng = random.Random(f"brainmis-builtin/{SUITE_VERSION}/{seed}/{spec.name}")
    rows = []
    for split, count in zip(("train", "dev", "test"), sizes, strict=True):
        for _ in range(count):
            sample = spec.make(rng, split) if spec.split_words else spec.make(rng)
            rows.append(
                {
                    "id": len(rows),
                    "inputs": repr(list(sample.inputs)),
                    "context": repr(list(sample.context)) if sample.context else "",
                    "label": sample.label,
                    "set-0": split,
                }
            )
    return rows


def write_builtin_task(
    spec: TaskSpec, folder: Path, seed: int, sizes: tuple[int, int, int] = DEFAULT_SIZES
) -> None:
    """Write one task's ``samples.csv`` and ``config-none.yaml`` into ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=False)
    rows = generate_rows(spec, seed, sizes)
    with (folder / "samples.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "inputs", "context", "label", "set-0"])
        writer.writeheader()
        writer.writerows(rows)
    config = {
        "probe_name": spec.name,
        "probe_task_type": spec.task_type.value,
        "control_task_type": "NONE",
        "num_labels": spec.num_labels,
        "num_inputs": len(spec.make(random.Random(0)).inputs),
        "subfield": spec.subfield,
        "description": spec.description,
        "generator": f"brainmis built-in suite v{SUITE_VERSION}",
        "generator_seed": seed,
    }
    (folder / "config-none.yaml").write_text(
        yaml.safe_dump(config, sort_keys=False), encoding="utf-8"
    )


def builtin_suite_dir(
    cache_dir: str | Path | None = None,
    seed: int = 0,
    tasks: list[str] | None = None,
    sizes: tuple[int, int, int] = DEFAULT_SIZES,
) -> Path:
    """Folder holding the built-in tasks (all, or ``tasks``), generating missing ones."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / f"v{SUITE_VERSION}-seed{seed}-{sizes[0]}-{sizes[1]}-{sizes[2]}"
    specs = [builtin_spec(name) for name in tasks] if tasks is not None else list(BUILTIN_TASKS)
    folder.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        target = folder / spec.name
        if (target / "config-none.yaml").is_file():
            continue
        staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=folder))
        try:
            write_builtin_task(spec, staging / "task", seed, sizes)
            try:
                (staging / "task").rename(target)
            except OSError:  # another process wrote it first
                if not (target / "config-none.yaml").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_builtin_suite(
    cache_dir: str | Path | None = None,
    seed: int = 0,
    tasks: list[str] | None = None,
    sizes: tuple[int, int, int] = DEFAULT_SIZES,
) -> list[ProbingTask]:
    """The built-in tasks, generated if needed and read back with the Holmes reader."""
    folder = builtin_suite_dir(cache_dir, seed, tasks, sizes)
    return read_holmes_folder(folder, names=tasks if tasks is not None else builtin_task_names())
