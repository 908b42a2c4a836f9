"""Read probing datasets in the Holmes on-disk format.

A dataset is a folder with ``samples.csv`` (columns ``id``, ``inputs``, ``context``, ``label``,
``set-0``) and one or more ``config-<control>.yaml`` (``probe_name``, ``probe_task_type``,
``control_task_type``, ``num_labels``, ``num_inputs``; ``num_labels = 1`` means regression).
``inputs`` is a Python literal list: sentences for sentence tasks, or
``(text, context_idx, char_start, char_end[, group])`` tuples pointing into ``context`` (itself
a literal list of sentences) for token and span tasks. Literals are parsed with
``ast.literal_eval``; every problem raises ``BrainmisInputError`` naming the file and row.
"""

from __future__ import annotations

import ast
import csv
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from brainmis.errors import BrainmisInputError
from brainmis.evaluation.probing.subfields import subfield_of
from brainmis.evaluation.probing.task_types import SPLITS, ControlTaskType, ProbeTaskType
from brainmis.structured_files import read_mapping

SAMPLES_FILE = "samples.csv"
SPLIT_COLUMN = "set-0"
REQUIRED_COLUMNS = ("inputs", "label", SPLIT_COLUMN)


@dataclass(frozen=True)
class Position:
    """A token or span: characters ``[char_start, char_end)`` of context sentence
    ``context_index``. ``group`` optionally ties several positions together."""

    text: str
    context_index: int
    char_start: int
    char_end: int
    group: int | None = None


@dataclass(frozen=True)
class ProbeItem:
    """One sample. ``inputs`` holds sentences (sentence tasks) or ``Position``s."""

    item_id: str
    inputs: tuple[str | Position, ...]
    context: tuple[str, ...]
    label: float
    split: str

    def surface_key(self) -> tuple[str, ...]:
        """Lower-cased input texts: a test item is "seen" when a train item has the same key."""
        return tuple((x.text if isinstance(x, Position) else x).lower() for x in self.inputs)


@dataclass
class ProbingTask:
    """A probing dataset: its items and how to read them."""

    name: str
    subfield: str
    task_type: ProbeTaskType
    num_labels: int
    items: list[ProbeItem] = field(repr=False)
    source: Path | None = None
    control: ControlTaskType = ControlTaskType.NONE

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def num_inputs(self) -> int:
        return max(len(item.inputs) for item in self.items)

    def split(self, name: str) -> list[ProbeItem]:
        return [item for item in self.items if item.split == name]

    def labels(self, name: str) -> np.ndarray:
        """``(n_items,)`` labels of a split: int64 classes, or float32 for regression."""
        dtype = np.float32 if self.is_regression else np.int64
        return np.asarray([item.label for item in self.split(name)], dtype=dtype)

    def capped(self, max_items: int | None, seed: int = 0) -> ProbingTask:
        """A copy with at most ``max_items`` train items and ``max_items // 5`` (>= 1) dev and
        test items each, drawn reproducibly from ``seed``; ``None`` keeps everything."""
        if max_items is None:
            return self
        limits = {"train": max_items, "dev": max(1, max_items // 5), "test": max(1, max_items // 5)}
        rng = random.Random(seed)
        kept: list[ProbeItem] = []
        for split_name in SPLITS:
            items = self.split(split_name)
            if len(items) > limits[split_name]:
                items = rng.sample(items, limits[split_name])
            kept.extend(items)
        return replace(self, items=kept)


def _fail(path: Path, problem: str) -> BrainmisInputError:
    return BrainmisInputError(path, problem)


def read_task_config(folder: Path) -> dict:
    """The ``config-*.yaml`` of a dataset folder (the ``NONE`` control one when there are several)."""
    configs = sorted(folder.glob("config-*.yaml"))
    if not configs:
        raise _fail(folder, "no config-*.yaml beside samples.csv (a Holmes dataset needs one)")
    chosen = None
    for path in configs:
        config = read_mapping(path, "Holmes config")
        config["_path"] = path
        if chosen is None or str(config.get("control_task_type", "NONE")).upper() == "NONE":
            chosen = config
            if str(config.get("control_task_type", "NONE")).upper() == "NONE":
                break
    assert chosen is not None
    path = chosen["_path"]
    for key in ("probe_task_type", "num_labels"):
        if key not in chosen:
            raise _fail(path, f"missing key {key!r}")
    try:
        chosen["probe_task_type"] = ProbeTaskType(str(chosen["probe_task_type"]).upper())
    except ValueError:
        allowed = ", ".join(t.value for t in ProbeTaskType)
        raise _fail(
            path, f"unknown probe_task_type {chosen['probe_task_type']!r}; one of {allowed}"
        ) from None
    num_labels = chosen["num_labels"]
    if not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 1:
        raise _fail(path, f"num_labels must be a positive integer, got {num_labels!r}")
    return chosen


def _literal(text: str, path: Path, where: str, column: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise _fail(path, f"{where}: {column} is not a valid Python literal: {shown!r}") from None


def _parse_position(raw: object, context: tuple[str, ...], path: Path, where: str) -> Position:
    if not isinstance(raw, (tuple, list)) or len(raw) not in (4, 5):
        raise _fail(
            path, f"{where}: an input must be (text, context_idx, char_start, char_end[, group])"
        )
    text, index, start, end = raw[:4]
    group = raw[4] if len(raw) == 5 else None
    if not isinstance(text, str) or not all(isinstance(v, int) for v in (index, start, end)):
        raise _fail(path, f"{where}: input {raw!r} needs a string and integer offsets")
    if not 0 <= index < len(context):
        raise _fail(
            path, f"{where}: input {raw!r} points to context {index}, but there are {len(context)}"
        )
    if not 0 <= start < end <= len(context[index]):
        raise _fail(
            path,
            f"{where}: span [{start}, {end}) of input {text!r} lies outside its context "
            f"sentence of {len(context[index])} characters",
        )
    return Position(text, index, start, end, group if isinstance(group, int) else None)


def _parse_row(
    row: dict[str, str], row_number: int, path: Path, task_type: ProbeTaskType, num_labels: int
) -> ProbeItem:
    item_id = (row.get("id") or "").strip() or str(row_number - 2)
    where = f"row {row_number} (id {item_id})"
    raw_inputs = _literal(row["inputs"], path, where, "inputs")
    if not isinstance(raw_inputs, (list, tuple)) or not raw_inputs:
        raise _fail(path, f"{where}: inputs must be a non-empty list")
    context_text = (row.get("context") or "").strip()
    context: tuple[str, ...] = ()
    if context_text and context_text.lower() != "nan":
        parsed = _literal(context_text, path, where, "context")
        parsed = [parsed] if isinstance(parsed, str) else parsed
        if not isinstance(parsed, (list, tuple)) or not all(isinstance(c, str) for c in parsed):
            raise _fail(path, f"{where}: context must be a list of sentences")
        context = tuple(parsed)
    if task_type.reads_positions:
        if not context:
            raise _fail(path, f"{where}: a {task_type.value} task needs a context")
        inputs: tuple[str | Position, ...] = tuple(
            _parse_position(raw, context, path, where) for raw in raw_inputs
        )
        if task_type.is_pair and len(context) != 2:
            raise _fail(path, f"{where}: a {task_type.value} task needs 2 context sentences")
    else:
        if not all(isinstance(x, str) for x in raw_inputs):
            raise _fail(path, f"{where}: inputs of a {task_type.value} task must be sentences")
        if task_type.is_pair and len(raw_inputs) != 2:
            raise _fail(path, f"{where}: a {task_type.value} task needs exactly 2 sentences")
        inputs = tuple(raw_inputs)
    label_text = (row.get("label") or "").strip()
    try:
        label = float(label_text)
    except ValueError:
        raise _fail(path, f"{where}: label {label_text!r} is not a number") from None
    if num_labels == 1:
        if not math.isfinite(label):
            raise _fail(path, f"{where}: regression label {label_text!r} is not finite")
    elif not (label.is_integer() and 0 <= label < num_labels):
        raise _fail(
            path, f"{where}: label {label_text!r} is outside 0..{num_labels - 1} (num_labels)"
        )
    split = (row.get(SPLIT_COLUMN) or "").strip()
    if split not in SPLITS:
        raise _fail(path, f"{where}: {SPLIT_COLUMN} is {split!r}, expected train, dev or test")
    return ProbeItem(item_id, inputs, context, label if num_labels == 1 else int(label), split)


def read_holmes_task(folder: str | Path, subfield: str | None = None) -> ProbingTask:
    """Read one dataset folder. The subfield comes from ``subfield`` or the config's
    ``subfield`` key or the shipped Holmes table (by folder name)."""
    folder = Path(folder)
    samples = folder / SAMPLES_FILE
    if not samples.is_file():
        raise _fail(folder, f"no {SAMPLES_FILE} in this folder")
    config = read_task_config(folder)
    task_type: ProbeTaskType = config["probe_task_type"]
    num_labels: int = config["num_labels"]
    csv.field_size_limit(1 << 24)
    with samples.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise _fail(samples, f"missing column(s) {', '.join(missing)}")
        items = [
            _parse_row(row, number, samples, task_type, num_labels)
            for number, row in enumerate(reader, start=2)
        ]
    present = {item.split for item in items}
    for split_name in SPLITS:
        if split_name not in present:
            raise _fail(
                samples,
                f"no {split_name!r} items ({SPLIT_COLUMN} column); need train, dev and test",
            )
    name = folder.name
    return ProbingTask(
        name=name,
        subfield=subfield or str(config.get("subfield") or subfield_of(name)),
        task_type=task_type,
        num_labels=num_labels,
        items=items,
        source=folder,
    )


def read_holmes_folder(root: str | Path, names: list[str] | None = None) -> list[ProbingTask]:
    """Every dataset under ``root`` (a Holmes or FlashHolmes folder, or one dataset folder),
    sorted by name; ``names`` keeps only those datasets (unknown names are an error)."""
    root = Path(root)
    if not root.is_dir():
        raise _fail(root, "not a folder")
    folders = sorted({p.parent for p in root.rglob(SAMPLES_FILE)}, key=lambda p: p.name)
    if not folders:
        raise _fail(root, f"no dataset folders ({SAMPLES_FILE}) below this folder")
    if names is not None:
        by_name = {folder.name: folder for folder in folders}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise _fail(root, f"no dataset named {', '.join(unknown)}")
        folders = [by_name[n] for n in names]
    return [read_holmes_task(folder) for folder in folders]
