"""The study matrix: the loaded runs of a comparison, the cells they should fill, and what is
missing.

(Not the experiment matrix file of a sweep: that is ``brainmis.launch.sweep_matrix``.)

Runs are grouped by setting (model, dataset). Within a setting the expected matrix is the
product of the conditions, subjects, folds and seeds seen in any of its runs. A cell is
filled by exactly one run whose status is ``complete`` and whose ``evaluation/`` holds every
result kind (LM loss, brain alignment, probing) that any complete run of the setting has.
Anything else is a missing cell with a reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from brainmis.analysis.results import RunResults
from brainmis.analysis.runs import DiscoveredRun
from brainmis.errors import BrainmisInputError
from brainmis.run_folder.identity import RunIdentity
from brainmis.run_folder.layout import BRAIN_FILE, EVALUATION_DIR, LM_FILE, PROBING_FILE

# Conditions appear in tables and figures in this order; others follow alphabetically.
CONDITION_ORDER = ("pretrained", "lm_only", "preserving", "misaligned", "tuned")
RESULT_FILES = {"lm": LM_FILE, "brain": BRAIN_FILE, "probing": PROBING_FILE}


def ordered_conditions(conditions: Iterable[str]) -> list[str]:
    """``conditions`` sorted: the paper's order first, then any others alphabetically."""
    known = {name: position for position, name in enumerate(CONDITION_ORDER)}
    return sorted(set(conditions), key=lambda name: (known.get(name, len(known)), name))


@dataclass(frozen=True)
class LoadedRun:
    """A complete run and its results."""

    run: DiscoveredRun
    results: RunResults

    @property
    def identity(self) -> RunIdentity:
        return self.run.identity


@dataclass(frozen=True)
class MissingCell:
    """A cell of the expected matrix without a usable run, and why."""

    identity: RunIdentity
    reason: str

    def describe(self) -> str:
        return f"{self.identity.label()}: {self.reason}"


@dataclass
class SettingMatrix:
    """The axes of one (model, dataset) setting and the runs that fill it."""

    model: str
    dataset: str
    conditions: list[str]
    subjects: list[str]
    folds: list[int]
    seeds: list[int]
    result_kinds: list[str]
    runs: list[LoadedRun] = field(default_factory=list)
    missing: list[MissingCell] = field(default_factory=list)

    @property
    def n_cells(self) -> int:
        return len(self.conditions) * len(self.subjects) * len(self.folds) * len(self.seeds)


@dataclass
class StudyMatrix:
    """Every setting found, in sorted order."""

    settings: list[SettingMatrix]

    @property
    def missing(self) -> list[MissingCell]:
        return [cell for setting in self.settings for cell in setting.missing]

    @property
    def runs(self) -> list[LoadedRun]:
        return [run for setting in self.settings for run in setting.runs]

    @property
    def n_cells(self) -> int:
        return sum(setting.n_cells for setting in self.settings)


class IncompleteMatrixError(BrainmisInputError):
    """The matrix has missing cells. First line: the summary; then one line per cell."""

    def __init__(self, path: str | Path | None, summary: str, cells: list[MissingCell]):
        super().__init__(path, summary)
        self.cells = cells

    def __str__(self) -> str:
        lines = [super().__str__()] + [f"  missing: {cell.describe()}" for cell in self.cells]
        return "\n".join(lines)


def _fill_cell(
    identity: RunIdentity,
    candidates: list[DiscoveredRun],
    results: dict[Path, RunResults],
    required_kinds: list[str],
) -> LoadedRun | MissingCell:
    if not candidates:
        return MissingCell(identity, "no run found")
    complete = [run for run in candidates if run.status == "complete"]
    if not complete:
        statuses = ", ".join(f"{run.status} ({run.path})" for run in candidates)
        return MissingCell(identity, f"not complete: {statuses}")
    if len(complete) > 1:
        folders = ", ".join(str(run.path) for run in complete)
        raise BrainmisInputError(
            complete[0].path,
            f"several complete runs share the identity {identity.label()}: {folders}; "
            "pass only one of them",
        )
    run = complete[0]
    lacking = [kind for kind in required_kinds if kind not in results[run.path].kinds()]
    if lacking:
        files = ", ".join(f"{EVALUATION_DIR}/{RESULT_FILES[kind]}" for kind in lacking)
        return MissingCell(identity, f"complete but without {files} ({run.path})")
    return LoadedRun(run, results[run.path])


def build_study_matrix(
    runs: list[DiscoveredRun], read_results: Callable[[Path], RunResults]
) -> StudyMatrix:
    """Group ``runs`` into settings and fill each setting's expected matrix.

    ``read_results(run_folder)`` is called once for every complete run.
    """
    results = {run.path: read_results(run.path) for run in runs if run.status == "complete"}
    by_setting: dict[tuple[str, str], list[DiscoveredRun]] = {}
    for run in runs:
        by_setting.setdefault(run.identity.setting, []).append(run)
    settings = []
    for (model, dataset), members in sorted(by_setting.items()):
        kinds = set().union(*(results[run.path].kinds() for run in members if run.path in results))
        setting = SettingMatrix(
            model=model,
            dataset=dataset,
            conditions=ordered_conditions(run.identity.condition for run in members),
            subjects=sorted({run.identity.subject for run in members}),
            folds=sorted({run.identity.fold for run in members}),
            seeds=sorted({run.identity.seed for run in members}),
            result_kinds=[kind for kind in RESULT_FILES if kind in kinds],
        )
        by_identity: dict[RunIdentity, list[DiscoveredRun]] = {}
        for run in members:
            by_identity.setdefault(run.identity, []).append(run)
        axes = itertools.product(setting.conditions, setting.subjects, setting.folds, setting.seeds)
        for condition, subject, fold, seed in axes:
            identity = RunIdentity(model, dataset, subject, fold, condition, seed)
            filled = _fill_cell(
                identity, by_identity.get(identity, []), results, setting.result_kinds
            )
            if isinstance(filled, MissingCell):
                setting.missing.append(filled)
            else:
                setting.runs.append(filled)
        settings.append(setting)
    return StudyMatrix(settings)


def require_complete(matrix: StudyMatrix, path: str | Path | None) -> None:
    """Raise ``IncompleteMatrixError`` when any cell of ``matrix`` is missing."""
    missing = matrix.missing
    if missing:
        summary = (
            f"incomplete run matrix: {len(missing)} of {matrix.n_cells} runs missing "
            "(listed below); complete them, or pass --allow-incomplete to compare what is there"
        )
        raise IncompleteMatrixError(path, summary, missing)
